"""DPO: the loss math against hand-computed values, the stage as the entry points register it, a short real run
(held-out pair accuracy and margins rise; resume repeats the same steps; per-step reference log-probs equal the
precomputed ones), and the rule that the commits adding DPO change no engine file.
"""
from __future__ import annotations

import json
import math
import shutil
import subprocess
from pathlib import Path

import pytest
import torch

from raylign.engine.errors import DataError
from raylign.engine.types import TrainBatch
from raylign.plugins.dpo import (Pair, dpo_loss, dpo_pair_loss, encode_pair, ipo_loss, ipo_pair_loss, pair_batch,
                                 pair_mean, preference_delta)

LN2 = math.log(2.0)
REPO = Path(__file__).resolve().parent.parent


# ---------------------------------------------------------------------------------------------- loss math

def test_delta_and_pair_losses_match_hand_computed_values():
    # π_c = -10, ref_c = -12, π_r = -11, ref_r = -10: Δ = 2 - (-1) = 3
    delta = preference_delta(torch.tensor([-10.0]), torch.tensor([-12.0]), torch.tensor([-11.0]),
                             torch.tensor([-10.0]))
    assert delta.tolist() == [3.0]
    # -logσ(0.3) = log(1 + e^-0.3) = log(1.7408182206817179)
    assert dpo_pair_loss(delta, beta=0.1).item() == pytest.approx(0.5543552444685272, abs=1e-6)
    # ε = 0.1: 0.9·log(1+e^-0.3) + 0.1·log(1+e^0.3) = log(1+e^-0.3) + 0.1·0.3
    assert dpo_pair_loss(delta, 0.1, label_smoothing=0.1).item() == pytest.approx(0.5843552444685272, abs=1e-6)
    # Δ = 0: log 2 whatever ε is
    assert dpo_pair_loss(torch.zeros(2), 0.5, 0.3).tolist() == pytest.approx([LN2, LN2], abs=1e-6)
    # IPO: (Δ - 1/(2β))²: β = 0.1 puts the target margin at 5
    assert ipo_pair_loss(torch.tensor([1.25, 5.0, 7.0]), beta=0.1).tolist() == pytest.approx([14.0625, 0.0, 4.0])


def test_the_loss_falls_as_the_margin_grows_and_smoothing_pulls_back():
    d = torch.tensor([0.0, 1.0, -1.0], requires_grad=True)
    dpo_pair_loss(d, beta=0.5).sum().backward()
    assert (d.grad < 0).all()  # a larger Δ always lowers the plain DPO loss
    # with label smoothing the loss has a minimum at a finite Δ: βΔ* = log((1-ε)/ε)
    eps, beta = 0.2, 0.5
    best = math.log((1 - eps) / eps) / beta
    d = torch.tensor([best - 1.0, best, best + 1.0], requires_grad=True)
    dpo_pair_loss(d, beta, eps).sum().backward()
    assert d.grad[0] < 0 and abs(d.grad[1]) < 1e-6 and d.grad[2] > 0
    # IPO pushes Δ towards 1/(2β) from both sides
    d = torch.tensor([0.0, 10.0], requires_grad=True)
    ipo_pair_loss(d, beta=0.1).sum().backward()
    assert d.grad[0] < 0 < d.grad[1]


def _pair_batch_by_hand():
    """One pair over a 2-token vocabulary with zero logits (every token has log-prob -ln 2): chosen has two reply
    tokens, rejected one; the reference gave chosen -1 and -1, rejected -0.5 (its masked token ignored)."""
    ids = torch.tensor([[0, 1, 1], [0, 1, 0]])
    batch = TrainBatch(ids, torch.ones_like(ids), torch.tensor([[0.0, 1, 1], [0.0, 1, 0]]),
                       extras={"ref_logprobs": torch.tensor([[0.0, -1, -1], [0.0, -0.5, -9.0]])})
    return torch.zeros(2, 3, 2, requires_grad=True), batch


def test_registered_losses_on_a_hand_built_batch():
    logits, batch = _pair_batch_by_hand()
    # DPO sums over reply tokens: π_c = -2 ln2, ref_c = -2, π_r = -ln2, ref_r = -0.5, so Δ = 1.5 - ln2
    loss, m = dpo_loss(logits, batch, beta=0.1)
    delta = 1.5 - LN2
    assert loss.item() == pytest.approx(math.log1p(math.exp(-0.1 * delta)), abs=1e-6)
    assert m["loss"] == pytest.approx(loss.item(), abs=1e-6)
    assert m["rewards/chosen"] == pytest.approx(0.1 * (2 - 2 * LN2), abs=1e-6)
    assert m["rewards/rejected"] == pytest.approx(0.1 * (0.5 - LN2), abs=1e-6)
    assert m["rewards/margins"] == pytest.approx(0.1 * delta, abs=1e-6)
    assert m["rewards/accuracies"] == 1.0
    assert m["logps/chosen"] == pytest.approx(-2 * LN2, abs=1e-6) and m["logps/rejected"] == pytest.approx(-LN2)
    smoothed, _ = dpo_loss(logits, batch, beta=0.1, label_smoothing=0.25)
    assert smoothed.item() == pytest.approx(math.log1p(math.exp(-0.1 * delta)) + 0.25 * 0.1 * delta, abs=1e-6)
    # IPO averages per token: chosen (-ln2) - (-1), rejected (-ln2) - (-0.5), so Δ = 0.5; (0.5 - 5)² = 20.25
    loss, m = ipo_loss(logits, batch, beta=0.1)
    assert loss.item() == pytest.approx(20.25, abs=1e-5)
    assert m["rewards/margins"] == pytest.approx(0.05, abs=1e-6)


@pytest.mark.parametrize("loss_fn", [dpo_loss, ipo_loss])
def test_gradients_raise_chosen_and_lower_rejected(loss_fn):
    logits, batch = _pair_batch_by_hand()
    loss, _ = loss_fn(logits, batch, beta=0.1)
    loss.backward()
    g = logits.grad  # logits[:, t-1] predicts token t: the reply tokens are ids[0, 1:] and ids[1, 1]
    assert g[0, 0, 1] < 0 and g[0, 1, 1] < 0  # the chosen reply's tokens are made more likely
    assert g[1, 0, 1] > 0  # the rejected reply's token less likely
    assert torch.all(g[1, 1] == 0)  # a token outside the reply mask gets no gradient


def test_micro_batch_metrics_average_to_the_pair_mean_under_token_weighting():
    """The engine averages a step's metrics weighted by each micro-batch's loss tokens; with the step's
    norm_pairs and norm_tokens the result is the plain mean over pairs, and the micro-batch losses sum to the
    step's mean loss."""
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(0, 5, (6, 7), generator=g)
    mask = torch.zeros(6, 7)
    for row, n in enumerate([6, 5, 1, 2, 2, 1]):  # the first pair has far more reply tokens than the others
        mask[row, 7 - n:] = 1.0
    ref = -torch.rand(6, 7, generator=g)
    logits = torch.randn(6, 7, 5, generator=g)
    full = TrainBatch(ids, torch.ones_like(ids), mask, extras={"ref_logprobs": ref})
    for fn in (dpo_loss, ipo_loss):
        whole_loss, whole = fn(logits, full, beta=0.5)
        norm = dict(norm_pairs=3.0, norm_tokens=float(mask.sum()))
        parts = [(slice(0, 2), None), (slice(2, 6), None)]
        total_loss, sums, weight = 0.0, {}, 0.0
        for sl, _ in parts:
            mb = TrainBatch(ids[sl], torch.ones_like(ids[sl]), mask[sl], extras={"ref_logprobs": ref[sl]})
            loss, m = fn(logits[sl], mb, beta=0.5, **norm)
            total_loss += loss.item()
            w = float(mask[sl].sum())
            weight += w
            for k, v in m.items():
                sums[k] = sums.get(k, 0.0) + v * w
        assert total_loss == pytest.approx(whole_loss.item(), abs=1e-5)
        for k, v in whole.items():
            assert sums[k] / weight == pytest.approx(v, abs=1e-5), k
    assert pair_mean(torch.tensor([1.0, 3.0]), 10.0, None, None) == 2.0


# ---------------------------------------------------------------------------------------------- data

def test_pairs_are_encoded_with_reply_masks_and_interleaved(tiny_model_dir):
    from raylign.engine.modeling import load_tokenizer

    tok = load_tokenizer(tiny_model_dir)
    row = {"prompt": "What is 12+30?", "chosen": "12+30 is 42.", "rejected": "The quick brown fox.", "margin": 2}
    pair = encode_pair(tok, row, "f.jsonl:1", "", 128)
    for ids, mask in (pair.chosen, pair.rejected):
        reply = tok.decode([t for t, m in zip(ids, mask) if m])
        assert reply.startswith(("12+30 is 42.", "The quick brown fox.")) and "What" not in reply
        assert mask[0] == 0.0
    chat = {"prompt": [{"role": "user", "content": "What is 12+30?"}],
            "chosen": [{"role": "assistant", "content": "12+30 is 42."}], "rejected": "The quick brown fox."}
    assert encode_pair(tok, chat, "f.jsonl:2", "", 128).chosen == pair.chosen
    batch = pair_batch([pair, pair], tok.pad_token_id)
    assert len(batch) == 4 and "ref_logprobs" not in batch.extras
    assert batch.input_ids[0, : len(pair.chosen[0])].tolist() == pair.chosen[0]
    assert batch.input_ids[1, : len(pair.rejected[0])].tolist() == pair.rejected[0]
    with_ref = Pair(pair.chosen, pair.rejected, ref=(-torch.ones(len(pair.chosen[0])),
                                                     -2 * torch.ones(len(pair.rejected[0]))))
    ref = pair_batch([with_ref], tok.pad_token_id).extras["ref_logprobs"]
    assert ref[0, : len(pair.chosen[0])].eq(-1).all() and ref[1, : len(pair.rejected[0])].eq(-2).all()
    # a prompt longer than max_len leaves no reply tokens: the pair is skipped
    assert encode_pair(tok, {**row, "prompt": "What is an LLM? " * 40}, "f.jsonl:3", "", 32) is None
    with pytest.raises(DataError, match=r"f.jsonl:4: missing field 'rejected'"):
        encode_pair(tok, {"prompt": "a", "chosen": "b"}, "f.jsonl:4", "", 32)
    with pytest.raises(DataError, match=r"f.jsonl:5: chosen\[0\] must be an object"):
        encode_pair(tok, {"prompt": "a", "chosen": ["b"], "rejected": "c"}, "f.jsonl:5", "", 32)
    with pytest.raises(DataError, match=r"f.jsonl:6: field 'margin' must be a number"):
        encode_pair(tok, {**row, "margin": "big"}, "f.jsonl:6", "", 32)


# ---------------------------------------------------------------------------------------------- registry

def test_the_stage_and_its_losses_come_from_the_entry_points():
    from raylign.engine.plugins import build_registry

    reg = build_registry()
    stage = reg.get("stages", "dpo")
    entry = reg.entries["stages"]["dpo"]
    assert entry.package == "raylign" and stage.__module__ == "raylign.plugins.dpo"
    for name in ("dpo", "ipo"):
        assert reg.entries["losses"][name].plugin == entry.plugin
    cfg = stage.config_cls()
    assert (cfg.loss, cfg.beta, cfg.label_smoothing, cfg.reference, cfg.gold) == ("dpo", 0.1, 0.0, "precompute", "")
    import dataclasses

    assert {"data", "eval_data", "eval_fraction", "system", "max_len", "steps", "batch_size", "micro_batch_size",
            "loss", "beta", "label_smoothing", "reference", "eval_every", "eval_pairs", "checkpoint_every", "optim",
            "gold", "gold_options", "eval_prompts", "max_new_tokens"} <= {f.name for f in dataclasses.fields(cfg)}


def test_a_bad_config_fails_before_any_actor(tmp_path, tiny_model_dir):
    from raylign.engine.config import build_config
    from raylign.engine.errors import ConfigError
    from raylign.engine.plugins import build_registry

    reg = build_registry()
    base = {"run": {"pipeline": ["dpo"], "base_model": str(tiny_model_dir)}, "dpo": {"data": ["x.jsonl"]}}
    with pytest.raises(ConfigError, match="dpo.reference"):
        build_config({**base, "dpo": {"data": ["x.jsonl"], "reference": "lazy"}}, reg)
    from raylign.plugins.dpo import DPOStage

    class Ctx:
        name, registry = "dpo", reg

    for bad, msg in [({"loss": "ipo", "label_smoothing": 0.1}, "no label_smoothing option"),
                     ({"beta": 0.0}, "beta must be > 0"), ({"label_smoothing": 0.5}, "label_smoothing"),
                     ({"gold": "nope"}, "not a registered verifier"), ({"gold": "length"}, "eval_prompts is empty")]:
        cfg = build_config({**base, "dpo": {"data": ["x.jsonl"], **bad}}, reg).stages[0].config
        with pytest.raises(ConfigError, match=msg):
            DPOStage._check(Ctx, cfg)


def test_the_example_config_is_valid_and_its_rows_encode(tiny_model_dir):
    """examples/dpo.toml validates, names a registered gold judge, and its data files hold well-formed pairs."""
    from raylign.engine.config import load_config
    from raylign.engine.data import read_rows
    from raylign.engine.modeling import load_tokenizer
    from raylign.engine.plugins import build_registry

    reg = build_registry()
    path = REPO / "examples" / "dpo.toml"
    cfg = load_config(path, reg)
    (spec,) = cfg.stages
    assert spec.plugin == "dpo" and cfg.run.pipeline == ("dpo",)
    dpo = spec.config
    assert dpo.gold in reg.names("verifiers") and dpo.eval_prompts
    reg.get("losses", dpo.loss)
    tok = load_tokenizer(tiny_model_dir)
    for files in (dpo.data, dpo.eval_data):
        rows = read_rows(files, path.parent)
        for where, row in rows[:: max(1, len(rows) // 200)]:
            assert encode_pair(tok, row, where, dpo.system, dpo.max_len) is not None, where
    assert all("prompt" in r for _, r in read_rows(dpo.eval_prompts, path.parent))


# ---------------------------------------------------------------------------------------------- pack

def test_a_bad_pack_is_one_config_error_naming_the_key(tiny_model_dir):
    from raylign.engine.config import build_config
    from raylign.engine.errors import ConfigError
    from raylign.engine.plugins import build_registry
    from raylign.plugins.dpo import DPOStage

    reg = build_registry()
    data = {"run": {"pipeline": ["dpo"], "base_model": str(tiny_model_dir)}, "dpo": {"data": ["x.jsonl"]}}
    assert build_config(data, reg).stages[0].config.pack == "none"  # the default: the padded path

    class Ctx:
        name, registry = "dpo", reg

    cfg = build_config({**data, "dpo": {"data": ["x.jsonl"], "pack": "zip"}}, reg).stages[0].config
    with pytest.raises(ConfigError) as err:
        DPOStage._check(Ctx, cfg)
    assert str(err.value) == "dpo.pack must be one of none, sort, pack, got 'zip'"


PACK_ROWS = [  # replies of very different lengths: every micro-batch holds real padding
    {"prompt": "What is 12+30?", "chosen": "42.", "rejected": "The quick brown fox jumps over the lazy dog. " * 4},
    {"prompt": "What is an LLM?", "chosen": "An LLM is a large language model that predicts the next token.",
     "rejected": "a + b"},
    {"prompt": "Hi?", "chosen": "The lazy dog sits.", "rejected": "def add(a, b):\n    return a + b\n" * 3},
    {"prompt": "What is 12+30? " * 3, "chosen": "12+30 is 42.", "rejected": "The fox."},
    {"prompt": "Say a word.", "chosen": "Dog.", "rejected": "An LLM predicts the next token. " * 2},
]


@pytest.mark.parametrize("loss", ["dpo", "ipo"])
def test_pack_modes_give_the_padded_step_and_eval(tiny_model_dir, loss):
    """The stage's path with pack = sort (pairs ordered by length) and pack (packed rows) against none, in
    process: the reference log-probs, one optimizer step's loss and metrics, then the held-out eval (the policy
    has moved off the reference, so Δ != 0) agree within a small tolerance."""
    from raylign.engine.config import build_config
    from raylign.engine.learner import Learner, LearnerSpec
    from raylign.engine.modeling import load_tokenizer
    from raylign.engine.optim import OptimConfig
    from raylign.engine.plugins import build_registry
    from raylign.plugins.dpo import DPOStage, attach_reference

    reg = build_registry()
    tok = load_tokenizer(tiny_model_dir)
    threads = torch.get_num_threads()
    optim = OptimConfig(lr=1e-2, warmup_steps=0, schedule="constant", weight_decay=0.0)
    micro, out = 2, {}
    try:
        for mode in ("none", "sort", "pack"):
            cfg = build_config({"run": {"pipeline": ["dpo"], "base_model": str(tiny_model_dir)},
                                "dpo": {"data": ["x.jsonl"], "loss": loss, "beta": 0.5, "pack": mode}},
                               reg).stages[0].config

            class Ctx:
                name, registry = "dpo", reg

            def learner(trainable: bool) -> Learner:
                spec = LearnerSpec(model_dir=str(tiny_model_dir), optim=optim, total_steps=10, seed=0,
                                   device="cpu", torch_threads=1, trainable=trainable, pack=mode)
                return Learner(spec, registry=reg)

            pairs = [encode_pair(tok, r, f"row {i}", "", 256) for i, r in enumerate(PACK_ROWS)]
            attach_reference(learner(False), pairs, tok.pad_token_id, micro)
            by_length = cfg.pack == "sort"
            batch = pair_batch(pairs, tok.pad_token_id, by_length)
            assert batch.attention_mask.sum() < batch.attention_mask.numel()  # real padding
            policy = learner(True)
            step = policy.train_step(batch.micro_batches(2 * micro), cfg.loss, DPOStage.loss_options(Ctx, cfg, batch))
            held = pair_batch(pairs, tok.pad_token_id, by_length)
            ev = policy.eval_loss(held.micro_batches(2 * micro), cfg.loss, DPOStage.loss_options(Ctx, cfg, held))
            out[mode] = {"ref": [torch.cat(p.ref) for p in pairs], "step": step, "eval": ev}
    finally:
        torch.set_num_threads(threads)
    ref = out["none"]
    assert abs(ref["eval"]["loss"] - ref["step"]["loss"]) > 1e-4  # the step moved the policy: a real check
    for mode in ("sort", "pack"):
        got = out[mode]
        assert max(float((a - b).abs().max()) for a, b in zip(got["ref"], ref["ref"])) < 1e-4, mode
        for part in ("step", "eval"):
            for k, v in ref[part].items():
                if k not in ("learner_seconds", "lr"):
                    assert got[part][k] == pytest.approx(v, rel=1e-4, abs=1e-4), (mode, part, k)


# ---------------------------------------------------------------------------------------------- a real run

STEPS = 10
GOOD = ["The quick brown fox jumps over the lazy dog.", "An LLM is a large language model.",
        "12+30 is 42.", "The lazy dog sits."]
BAD = ["def add(a, b):\n    return a + b", "return a + b", "def add(a, b):", "a + b a + b a + b"]

CONFIG = """
[run]
name = "{name}"
output_dir = "{out}"
seed = 2
pipeline = ["dpo"]
base_model = "{model}"
probes = []

[ray]
num_cpus = 8

[rewards]
num_workers = 1

[dpo]
data = ["train.jsonl"]
eval_data = ["eval.jsonl"]
max_len = 96
steps = {steps}
batch_size = 8
micro_batch_size = 4
beta = 0.5
eval_every = 5
checkpoint_every = 5
reference = "{reference}"
gold = "length"
gold_options = {{ unit = "words" }}
eval_prompts = ["prompts.jsonl"]
max_new_tokens = 8
optim = {{ lr = 5e-4, warmup_steps = 0, schedule = "constant", weight_decay = 0.0 }}
"""


def _write_pairs(path: Path, start: int, n: int) -> None:
    with open(path, "w") as fh:
        for i in range(start, start + n):
            fh.write(json.dumps({"prompt": f"What is {i}?", "chosen": GOOD[i % 4], "rejected": BAD[(i // 4) % 4]})
                     + "\n")


@pytest.fixture(scope="module")
def dpo_work(tmp_path_factory, tiny_model_dir):
    work = tmp_path_factory.mktemp("dpo")
    _write_pairs(work / "train.jsonl", 0, 48)
    _write_pairs(work / "eval.jsonl", 100, 12)
    (work / "prompts.jsonl").write_text("".join(json.dumps({"prompt": f"What is {i}?"}) + "\n" for i in range(6)))

    def config(name: str, reference: str = "precompute", steps: int = STEPS) -> Path:
        path = work / f"{name}.toml"
        path.write_text(CONFIG.format(name=name, out=work / "runs", model=tiny_model_dir, steps=steps,
                                      reference=reference))
        return path

    return work, config


def _run(path: Path, resume: bool = False):
    from rich.console import Console

    from raylign.engine.config import load_config
    from raylign.engine.driver import run_pipeline
    from raylign.engine.plugins import build_registry

    reg = build_registry()
    return run_pipeline(load_config(path, reg), reg, resume=resume, console=Console(quiet=True))


def _step_rows(run_dir: Path) -> dict[int, dict]:
    from raylign.engine.metrics import read_metrics

    return {r["step"]: r for r in read_metrics(run_dir) if r["stage"] == "dpo" and "grad_norm" in r}


def test_a_short_dpo_run_learns_the_preference_and_resumes_exactly(dpo_work, ray_session):
    from transformers import AutoModelForCausalLM

    work, config = dpo_work
    summary = _run(config("a"))
    run_dir = work / "runs" / "a"
    m = summary["stages"]["dpo"]["metrics"]
    # before training the policy is the reference: every margin is 0, no pair is ranked right yet
    assert m["eval_accuracy_before"] == 0.0 and m["eval_margin_before"] == pytest.approx(0.0, abs=1e-4)
    assert m["eval_loss_before"] == pytest.approx(LN2, abs=1e-4)
    assert m["eval_accuracy"] >= 0.9 and m["eval_margin"] > 1.0 and m["eval_loss"] < 0.3, m
    assert m["eval_reward_chosen"] > m["eval_reward_rejected"]
    assert m["eval_accuracy_length_confounded"] >= 0.9 and m["eval_accuracy_longer_chosen"] >= 0.9
    for k in ("gold_win_rate", "gold_tie_rate", "eval_gold_score_before", "eval_gold_score"):
        assert k in m
    assert 0.0 <= m["gold_win_rate"] <= 1.0 and m["gold_prompts"] == 6 and m["gold_failed"] == 0
    rows = _step_rows(run_dir)
    assert sorted(rows) == list(range(1, STEPS + 1))
    assert rows[STEPS]["rewards/margins"] > rows[1]["rewards/margins"]
    assert rows[1]["loss"] == pytest.approx(LN2, abs=1e-4)  # the first step's policy is the reference
    assert "eval_accuracy" in rows[5]  # the mid-run eval
    model = AutoModelForCausalLM.from_pretrained(str(run_dir / "models" / "dpo"))
    assert model.config.model_type == "qwen2"

    # resume: lose everything after the step-5 checkpoint; the resumed steps repeat the uninterrupted ones
    # (the precomputed reference log-probs are recomputed, the batches are a function of the step)
    assert (run_dir / "checkpoints" / "dpo" / "step_00000005").is_dir()
    shutil.rmtree(run_dir / "models" / "dpo")
    resumed = _run(config("a"), resume=True)["stages"]["dpo"]["metrics"]
    again = _step_rows(run_dir)
    assert sorted(again) == list(range(1, STEPS + 1))
    for step in range(6, STEPS + 1):
        for k in ("loss", "rewards/margins", "logps/chosen"):
            assert again[step][k] == pytest.approx(rows[step][k], rel=1e-3, abs=1e-5), (step, k)
    assert resumed["eval_accuracy"] == pytest.approx(m["eval_accuracy"])
    assert resumed["eval_accuracy_before"] == 0.0


def test_per_step_reference_gives_the_precomputed_losses(dpo_work, ray_session):
    work, config = dpo_work
    if not (work / "runs" / "a").exists():
        pytest.skip("needs the precompute run of the test above")
    _run(config("b", reference="per_step", steps=3))
    a, b = _step_rows(work / "runs" / "a"), _step_rows(work / "runs" / "b")
    for step in (1, 2, 3):
        assert b[step]["loss"] == pytest.approx(a[step]["loss"], abs=1e-4)
        assert b[step]["rewards/margins"] == pytest.approx(a[step]["rewards/margins"], abs=1e-3)


# ---------------------------------------------------------------------------------------------- history

def test_commits_that_add_dpo_change_no_engine_file():
    """Every commit that put DPO code into plugins/dpo.py touched nothing under engine/ (DPO is only a plugin).
    The commit that reserved the entry point left a placeholder docstring there and is not DPO code."""
    def git(*args):
        return subprocess.run(["git", "-C", str(REPO), *args], capture_output=True, text=True)

    if git("rev-parse", "--verify", "HEAD").returncode != 0:
        pytest.skip("no git history (not a git checkout)")
    shas = git("log", "--format=%H", "--", "plugins/dpo.py").stdout.split()
    with_code = [s for s in shas if "raylign_register_stages" in git("show", f"{s}:plugins/dpo.py").stdout]
    assert with_code, "no commit has put the dpo stage into plugins/dpo.py"
    for sha in with_code:
        files = git("show", "--name-only", "--format=", sha).stdout.split()
        assert not [f for f in files if f.startswith("engine/")], (sha, files)
