"""Data-parallel learners (``[ray] learners = N``): N ranks behind one handle give what one learner gives.

Real Ray actors and a real gloo group on the session's tiny model: the same step on the same batch with 1 and
with 2 learners leaves the same parameters and reports the same metrics (the ranks' gradients are summed, the
losses normalise by step-wide constants), a rank may get no micro-batch at all, forward-only calls come back in
order, the weight sync reads one copy (rank 0's, equal to every rank's), a checkpoint restores every rank, and a
short SFT stage runs with two learners.
"""
from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest
import torch

from raylign.engine.learner_group import reduce_eval_metrics, reduce_train_metrics, split_balanced
from raylign.engine.types import SequenceBatch, TrainBatch

DATA = Path(__file__).parent / "data"
TOL = 1e-5  # max |difference| of parameters, logprobs and metrics between 1 and 2 learners (fp32 sums reordered)


# ---------------------------------------------------------------------------------------------- pure parts


def test_micro_batches_split_by_tokens_deterministically_and_in_order():
    costs = [10, 50, 20, 40, 30]
    parts = split_balanced(costs, 2)
    # largest first to the lighter rank: 50 | 40, 30 | 20 (70 vs 70: a tie goes to rank 0) | 10; in original order
    assert parts == [[0, 1, 2], [3, 4]]
    assert parts == split_balanced(costs, 2)
    assert sorted(i for p in parts for i in p) == list(range(5))
    assert split_balanced([5.0], 3) == [[0], [], []]  # fewer micro-batches than ranks: some ranks get none


def test_rank_metrics_reduce_to_the_token_weighted_means_of_one_learner():
    # one learner over micro-batches of 3 and 1 loss tokens with losses 2.0 and 6.0 reports (3*2 + 1*6) / 4 = 3.0
    ranks = [{"loss": 2.0, "kl": 0.5, "grad_norm": 1.5, "lr": 0.1, "step_tokens": 5, "tokens": 3.0,
              "learner_seconds": 0.2},
             {"loss": 6.0, "grad_norm": 1.5, "lr": 0.1, "step_tokens": 2, "tokens": 1.0, "learner_seconds": 0.3},
             {"grad_norm": 1.5, "lr": 0.1, "step_tokens": 0, "tokens": 0.0, "learner_seconds": 0.01}]  # no share
    out = reduce_train_metrics(ranks)
    assert out == pytest.approx({"loss": 3.0, "kl": 1.5 / 4, "grad_norm": 1.5, "lr": 0.1, "step_tokens": 7,
                                 "tokens": 4.0, "learner_seconds": 0.3})
    ev = reduce_eval_metrics([{"loss": 1.0, "tokens": 2}, {"loss": 4.0, "tokens": 6}, {"tokens": 0}])
    assert ev == {"loss": pytest.approx(26 / 8), "tokens": 8}


@pytest.mark.parametrize("ray_section, message", [
    ({"learners": 0}, r"^ray: learners must be 1 or more"),
    ({"learners": 2, "learner_num_gpus": 0.5}, r"^ray: learners = 2 needs a whole GPU per rank .* = 1"),
])
def test_bad_learner_counts_fail_naming_the_key(ray_section, message):
    from raylign.engine.config import build_config
    from raylign.engine.errors import ConfigError
    from raylign.engine.plugins import build_registry

    with pytest.raises(ConfigError, match=message):
        build_config({"run": {"name": "x", "pipeline": ["sft"], "base_model": "m"}, "ray": ray_section,
                      "sft": {"data": ["a.jsonl"]}}, build_registry())


# ---------------------------------------------------------------------------------------------- 1 vs 2 learners


def _sequences(tok, seed: int = 0) -> SequenceBatch:
    """Six right-padded sequences of different lengths with GRPO-shaped extras (advantages, old and reference
    logprobs that differ from the model's, so the ratio, the clip and the KL all act)."""
    texts = ["What is an LLM? An LLM is a large language model that predicts the next token.",
             "What is 12+30? 12+30 is 42.", "The quick brown fox jumps over the lazy dog.",
             "def add(a, b):\n    return a + b\n", "What is 12+30?", "The lazy dog. The quick brown fox."]
    seqs = [tok(t, add_special_tokens=False)["input_ids"] for t in texts]
    T = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), T), tok.pad_token_id, dtype=torch.long)
    mask = torch.zeros_like(ids)
    for i, s in enumerate(seqs):
        ids[i, : len(s)] = torch.tensor(s)
        mask[i, : len(s)] = 1
    loss_mask = mask.float()
    loss_mask[:, :3] = 0.0  # a "prompt" of three tokens
    g = torch.Generator().manual_seed(seed)
    adv = torch.randn(len(seqs), 1, generator=g).expand(-1, T).contiguous() * loss_mask
    old = -3.0 + 0.5 * torch.randn(ids.shape, generator=g)
    ref = -3.0 + 0.5 * torch.randn(ids.shape, generator=g)
    return SequenceBatch(ids, mask, loss_mask, extras={"advantages": adv, "old_logprobs": old, "ref_logprobs": ref})


def _steps(batch: SequenceBatch) -> list[tuple[list[TrainBatch], str, dict]]:
    """Three optimizer steps: the policy-gradient loss over 3 uneven micro-batches (2 ranks get 2 and 1), the
    next-token loss with token-weighted micro-batches, and one micro-batch alone (rank 1 gets nothing)."""
    pg = {"agg": "seq_mean_token_mean", "norm_tokens": batch.loss_tokens, "norm_seqs": batch.loss_sequences,
          "kl_coef": 0.1, "clip_low": 0.2, "clip_high": 0.28}
    plain = SequenceBatch(batch.input_ids, batch.attention_mask, batch.loss_mask)
    return [(batch.micro_batches(2), "policy_gradient", pg),
            (plain.micro_batches(4, token_weighted=True), "next_token", {}),
            (plain.micro_batches(6), "next_token", {"norm_tokens": plain.loss_tokens})]


def _spec(model_dir: Path, head: str = "lm", pack: str = "none"):
    from raylign.engine.learner import LearnerSpec
    from raylign.engine.optim import OptimConfig

    return LearnerSpec(model_dir=str(model_dir), optim=OptimConfig(lr=1e-3, warmup_steps=0, grad_clip=1.0),
                       total_steps=10, seed=0, device="cpu", torch_threads=1, head=head, pack=pack)


def _handle(model_dir: Path, ranks: int, head: str = "lm", pack: str = "none"):
    from raylign.engine.learner_group import start_learner_group
    from raylign.engine.learner_handle import LearnerHandle
    from raylign.engine.plugins import build_registry

    actors = start_learner_group(_spec(model_dir, head, pack), ranks, num_cpus=0.5)
    return LearnerHandle(actors, build_registry(), role="policy" if head == "lm" else "critic", head=head)


def _max_diff(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    assert a.keys() == b.keys()
    return max(float((a[k].float() - b[k].float()).abs().max()) for k in a)


def test_the_tiny_model_has_no_dropout(tiny_model_dir):
    """Equal updates need the same forward on every rank: no random dropout in the test model."""
    cfg = json.loads((tiny_model_dir / "config.json").read_text())
    drops = {k: v for k, v in cfg.items() if "dropout" in k}
    assert drops and all(v == 0 for v in drops.values()), drops


def test_two_learners_take_the_same_update_as_one(ray_session, tiny_model_dir):
    import ray

    from raylign.engine.modeling import load_tokenizer

    batch = _sequences(load_tokenizer(tiny_model_dir))
    one, two = _handle(tiny_model_dir, 1), _handle(tiny_model_dir, 2)
    try:
        assert (one.ranks, two.ranks) == (1, 2)
        w0 = ray.get(one.weights_ref())
        assert _max_diff(w0, ray.get(two.actors[1].weights.remote())) == 0.0  # the same start on every rank
        for micro, loss, options in _steps(batch):
            m1 = one.train_step(micro, loss, options)
            m2 = two.train_step(micro, loss, options)
            assert m1.keys() == m2.keys()
            for k in m1.keys() - {"learner_seconds"}:
                assert m2[k] == pytest.approx(m1[k], rel=TOL, abs=TOL), (loss, k, m1[k], m2[k])
            assert m1["grad_norm"] > 0
        assert one.version == two.version == 3

        w1 = ray.get(one.weights_ref())
        ranks = [ray.get(a.weights.remote()) for a in two.actors]
        assert _max_diff(w1, w0) > 100 * TOL  # the steps moved the weights ...
        assert _max_diff(ranks[0], w1) < TOL  # ... as far on 2 learners as on 1
        assert _max_diff(ranks[0], ranks[1]) == 0.0  # and every rank holds the same weights:
        assert _max_diff(ray.get(two.weights_ref()), ranks[0]) == 0.0  # the sync's one copy (rank 0's) is theirs

        micro = batch.micro_batches(2)
        lp1, lp2 = one.token_logprobs(micro), two.token_logprobs(micro)
        assert [t.shape for t in lp1] == [t.shape for t in lp2] == [tuple(m.input_ids.shape) for m in micro]
        assert max(float((a - b).abs().max()) for a, b in zip(lp1, lp2)) < TOL  # and back in their order
        e1, e2 = one.eval_loss(micro, "next_token"), two.eval_loss(micro, "next_token")
        assert e2["tokens"] == e1["tokens"] and e2["loss"] == pytest.approx(e1["loss"], rel=TOL)
        canary = batch.input_ids[0, :12].tolist()
        assert two.sequence_logprobs(canary) == pytest.approx(one.sequence_logprobs(canary), abs=TOL)
    finally:
        one.kill()
        two.kill()


def test_two_value_learners_score_and_train_as_one(ray_session, tiny_model_dir):
    """A critic (a new scalar head, seeded; padding-free ``sort``) on 2 ranks: the same values, also for a single
    micro-batch (only rank 0 computes), and PPO's clipped value loss takes the same step."""
    import ray

    from raylign.engine.modeling import load_tokenizer

    batch = _sequences(load_tokenizer(tiny_model_dir))
    g = torch.Generator().manual_seed(1)
    batch.extras = {"returns": torch.randn(batch.input_ids.shape, generator=g),
                    "old_values": 0.1 * torch.randn(batch.input_ids.shape, generator=g)}
    micro = batch.micro_batches(2)
    one, two = _handle(tiny_model_dir, 1, "value", "sort"), _handle(tiny_model_dir, 2, "value", "sort")
    try:
        for mbs in (micro, batch.micro_batches(6)):
            v1, v2 = one.values(mbs), two.values(mbs)
            assert len(v1) == len(v2) == len(mbs)
            assert max(float((a - b).abs().max()) for a, b in zip(v1, v2)) < TOL
        options = {"clip": 0.2, "norm_tokens": batch.loss_tokens}
        m1, m2 = one.train_step(micro, "value_clipped", options), two.train_step(micro, "value_clipped", options)
        for k in m1.keys() - {"learner_seconds"}:
            assert m2[k] == pytest.approx(m1[k], rel=TOL, abs=TOL), k
        w1, w2 = ray.get(one.weights_ref()), ray.get(two.weights_ref())
        assert _max_diff(w1, w2) < TOL
        assert _max_diff(w2, ray.get(two.actors[1].weights.remote())) == 0.0
    finally:
        one.kill()
        two.kill()


def test_a_failing_rank_raises_its_error_at_once(ray_session, tiny_model_dir):
    """Rank 0's loss raises while rank 1 (no micro-batch) waits in the gradient all-reduce: the handle raises
    rank 0's error then, not when the group's collective times out."""
    import time

    from raylign.engine.modeling import load_tokenizer

    batch = _sequences(load_tokenizer(tiny_model_dir))
    plain = SequenceBatch(batch.input_ids, batch.attention_mask, batch.loss_mask)  # no advantages
    two = _handle(tiny_model_dir, 2)
    try:
        t0 = time.perf_counter()
        with pytest.raises(KeyError, match="policy_gradient needs batch.extras\\['advantages'\\]"):
            two.train_step(plain.micro_batches(6), "policy_gradient", {})
        assert time.perf_counter() - t0 < 300  # the group's timeout is GROUP_TIMEOUT_S = 1800 s
    finally:
        two.kill()


# ---------------------------------------------------------------------------------------------- stage context


def _ctx(tmp_path: Path, model_dir: Path, learners: int):
    from rich.console import Console

    from raylign.engine.checkpoint import CheckpointManager
    from raylign.engine.config import build_config
    from raylign.engine.metrics import MetricsLog
    from raylign.engine.plugins import build_registry
    from raylign.engine.stage import StageContext

    registry = build_registry()
    cfg = build_config({"run": {"name": "dp", "output_dir": str(tmp_path), "pipeline": ["pretrain"],
                                "base_model": str(model_dir), "probes": []},
                        "ray": {"learners": learners, "learner_num_cpus": 0.5, "learner_threads": 1},
                        "pretrain": {"data": ["x.txt"]}}, registry)
    return StageContext(name="pretrain", config=cfg.stages[0].config, engine=cfg, run_dir=tmp_path,
                        input_model=model_dir, output_model=tmp_path / "out", base_dir=tmp_path,
                        checkpoints=CheckpointManager(tmp_path / "ck"), metrics=MetricsLog(tmp_path, registry.hook),
                        registry=registry, console=Console(quiet=True))


def test_a_checkpoint_of_two_learners_restores_every_rank(ray_session, tiny_model_dir, tmp_path):
    import ray

    from raylign.engine.modeling import load_tokenizer
    from raylign.engine.optim import OptimConfig
    from raylign.engine.stage import Resume

    batch = _sequences(load_tokenizer(tiny_model_dir))
    (micro, loss, options), (micro2, loss2, options2) = _steps(batch)[:2]
    ctx = _ctx(tmp_path, tiny_model_dir, learners=2)
    try:
        policy = ctx.start_learner(tiny_model_dir, OptimConfig(lr=1e-3, warmup_steps=0), total_steps=10)
        reference = ctx.start_learner(tiny_model_dir, OptimConfig(), total_steps=1, trainable=False)
        assert (policy.ranks, reference.ranks) == (2, 1)  # a frozen learner only scores: one actor
        policy.train_step(micro, loss, options)
        path = ctx.save_checkpoint(1, policy, {"step": 1})
        assert (path / "learner.pt").is_file()
        saved = policy.token_logprobs(micro)

        policy.train_step(micro2, loss2, options2)  # moves every rank's weights and optimizer past the checkpoint
        ctx.restore(policy, Resume(step=1, state={"step": 1}, path=path))
        assert policy.version == 1
        for actor in policy.actors:  # each rank reloaded the weights ...
            assert ray.get(actor.get_version.remote()) == 1
            got = ray.get(actor.token_logprobs.remote(micro))
            assert all(torch.equal(a, b) for a, b in zip(got, saved))
        policy.train_step(micro2, loss2, options2)  # ... and the optimizer: the next step stays the same on both
        ranks = [ray.get(a.weights.remote()) for a in policy.actors]
        assert _max_diff(ranks[0], ranks[1]) == 0.0
        assert (policy.save_model(ctx.output_model) / "config.json").is_file()
    finally:
        ctx.close()
        ctx.metrics.close()


# ---------------------------------------------------------------------------------------------- a stage run

SFT_CONFIG = """
[run]
name = "dp"
output_dir = "{out}"
pipeline = ["sft"]
base_model = "{model}"
probes = []

[ray]
learners = 2
learner_num_cpus = 0.5

[sft]
data = ["sft.jsonl"]
steps = 3
batch_size = 8
micro_batch_size = 2
eval_every = 3
checkpoint_every = 2
log_every = 1
format_eval_prompts = 2
max_new_tokens = 4
"""


def test_a_short_sft_stage_runs_on_two_learners(ray_session, tiny_model_dir, tmp_path):
    from rich.console import Console

    from raylign.engine.config import load_config
    from raylign.engine.driver import run_pipeline
    from raylign.engine.metrics import read_metrics
    from raylign.engine.plugins import build_registry

    shutil.copy(DATA / "engine_sft.jsonl", tmp_path / "sft.jsonl")
    (tmp_path / "cfg.toml").write_text(SFT_CONFIG.format(model=tiny_model_dir, out=tmp_path / "runs"))
    reg = build_registry()
    cfg = load_config(tmp_path / "cfg.toml", reg)
    assert cfg.ray.learners == 2
    summary = run_pipeline(cfg, reg, console=Console(quiet=True))
    run_dir = tmp_path / "runs" / "dp"
    steps = [r for r in read_metrics(run_dir) if r["stage"] == "sft" and "grad_norm" in r]
    assert [r["step"] for r in steps] == [1, 2, 3]
    for r in steps:
        assert all(math.isfinite(float(v)) for k, v in r.items() if isinstance(v, (int, float)))
        assert r["loss"] > 0 and r["grad_norm"] > 0
    final = summary["stages"]["sft"]["metrics"]
    assert math.isfinite(final["eval_loss"])
    assert (run_dir / "models" / "sft" / "config.json").is_file()
    assert (run_dir / "checkpoints" / "sft" / "step_00000002" / "learner.pt").is_file()


GRPO_CONFIG = """
[run]
name = "dp_grpo"
output_dir = "{out}"
seed = 1
pipeline = ["grpo"]
base_model = "{model}"
probes = []

[ray]
learners = 2
learner_num_cpus = 0.5

[rollout]
max_model_len = 256

[rewards]
num_workers = 1

[grpo]
data = ["{data}"]
eval_data = ["{data}"]
fields = {{ prompt = "text" }}
eval_size = 4
verifier = "format"
steps = 2
prompts_per_step = 4
group_size = 4
micro_batch_size = 4
max_new_tokens = 6
kl_coef = 0.05
checkpoint_every = 0
"""


@pytest.mark.vllm
@pytest.mark.slow
def test_a_short_grpo_stage_on_two_learners_syncs_rank_0s_weights(ray_session, tiny_model_dir, tmp_path):
    """GRPO with two policy ranks and a frozen reference: every step's weights reach the engine (rank 0's copy,
    the canary scored against rank 0's logprobs) and the metrics are finite."""
    from rich.console import Console

    from raylign.engine.config import load_config
    from raylign.engine.driver import run_pipeline
    from raylign.engine.metrics import read_metrics
    from raylign.engine.plugins import build_registry

    data = tmp_path / "tasks.jsonl"
    data.write_text("".join(json.dumps({"text": f"Say anything {i}", "format": r"[^e]*"}) + "\n" for i in range(8)))
    (tmp_path / "cfg.toml").write_text(GRPO_CONFIG.format(out=tmp_path / "runs", model=tiny_model_dir, data=data))
    reg = build_registry()
    summary = run_pipeline(load_config(tmp_path / "cfg.toml", reg), reg, console=Console(quiet=True))
    rows = [r for r in read_metrics(tmp_path / "runs" / "dp_grpo") if r["stage"] == "grpo" and "grad_norm" in r]
    assert [r["step"] for r in rows] == [1, 2]
    for r in rows:
        assert r["weights_version"] == r["step"] and r["canary_max_abs_diff"] < 0.05
        assert all(math.isfinite(float(v)) for v in r.values() if isinstance(v, (int, float)))
        assert "kl" in r
    assert 0.0 <= summary["stages"]["grpo"]["metrics"]["eval_accuracy"] <= 1.0
