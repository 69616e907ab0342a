"""The learner's padding-free paths (``LearnerSpec.pack`` = sort | pack) against the padded one (none).

A tiny Qwen2 in-process (no Ray), fp32 on CPU, batches whose sequences have very different lengths, left- and
right-padded: per-token logprobs, values, every metric of the policy loss and the gradients agree with the
padded path within TOL; ``SequenceBatch.micro_batches(by_length=True)`` keeps the step's loss normalization.
"""
from __future__ import annotations

import pytest
import torch

from raylign.engine.learner import Learner, LearnerSpec
from raylign.engine.ops import Packing, contiguous, real_span
from raylign.engine.optim import OptimConfig
from raylign.engine.types import SequenceBatch, TrainBatch

TOL = 1e-5
LENGTHS = (1, 3, 7, 40, 2, 120, 9, 200)  # prompt + completion tokens of each sequence
PROMPT = 2  # the first PROMPT tokens of each sequence are the prompt (never in the loss)
MODES = ("none", "sort", "pack")


@pytest.fixture(scope="module")
def learners(tiny_model_dir):
    threads = torch.get_num_threads()
    out = {}
    for head in ("lm", "value"):
        for mode in MODES:
            spec = LearnerSpec(model_dir=str(tiny_model_dir), optim=OptimConfig(lr=1e-3), total_steps=10, seed=0,
                               device="cpu", torch_threads=1, head=head, pack=mode)
            out[head, mode] = Learner(spec)
    yield out
    torch.set_num_threads(threads)


def make_batch(side: str, seed: int = 0, lengths=LENGTHS) -> SequenceBatch:
    """Sequences of ``lengths`` padded on ``side``, with the extras a GRPO/PPO step carries."""
    g = torch.Generator().manual_seed(seed)
    S, T = len(lengths), max(lengths)
    ids = torch.zeros((S, T), dtype=torch.long)
    attn = torch.zeros((S, T), dtype=torch.long)
    loss = torch.zeros((S, T))
    for s, n in enumerate(lengths):
        cols = slice(0, n) if side == "right" else slice(T - n, T)
        ids[s, cols] = torch.randint(5, 250, (n,), generator=g)
        attn[s, cols] = 1
        start = cols.start + min(PROMPT, n - 1) if n > 1 else cols.stop
        loss[s, start : cols.stop] = 1.0
    adv = torch.randn((S, 1), generator=g) * loss
    near = lambda: (torch.randn((S, T), generator=g) * 0.1 - 5.0) * attn  # noqa: E731 (logprob-like values)
    return SequenceBatch(ids, attn, loss, {"advantages": adv, "old_logprobs": near(), "ref_logprobs": near(),
                                           "sampler_logprobs": near()})


PG_OPTIONS = {"clip_low": 0.2, "clip_high": 0.28, "kl_coef": 0.05, "entropy_coef": 0.01, "is_cap": 2.0}


def grads_and_metrics(learner: Learner, microbatches: list[TrainBatch], loss: str, options: dict):
    """What ``train_step`` computes before it clips and steps: the accumulated gradients and the metrics."""
    fn = learner.registry.get("losses", loss)
    learner.model.zero_grad(set_to_none=True)
    metrics = []
    for mb in microbatches:
        out, used = learner._forward(mb)
        value, m = fn(out, used, **options)
        value.backward()
        metrics.append((float(value.detach()), m))
    grads = {n: p.grad.clone() for n, p in learner.model.named_parameters() if p.grad is not None}
    learner.model.zero_grad(set_to_none=True)
    return grads, metrics


def assert_close_grads(a: dict, b: dict, tol: float = TOL) -> float:
    assert a.keys() == b.keys()
    worst = max(float((a[k] - b[k]).abs().max() / a[k].abs().max().clamp(min=1.0)) for k in a)
    assert worst < tol, worst
    return worst


# ---------------------------------------------------------------------------------------------- layout


@pytest.mark.parametrize("side", ["right", "left"])
def test_packing_layout(side):
    b = make_batch(side, lengths=(3, 5, 2, 4))
    p = Packing(b.input_ids, b.attention_mask, pad_id=0)
    assert p.shape == (3, 5)  # rows as long as the longest sequence: [5], [4], [3, 2]
    real = b.attention_mask.bool()
    # every real token lands once, with its id, at a position counting from 0 within its own sequence
    assert torch.equal(p.input_ids.view(-1)[p.src], b.input_ids[p.rows, p.cols])
    assert sorted(p.src.tolist()) == sorted(set(p.src.tolist()))
    assert int(real.sum()) == len(p.src)
    k = p.position_ids.view(-1)[p.src]
    first = real.long().argmax(1)
    assert torch.equal(k, p.cols - first[p.rows])
    # scatter puts per-token outputs back in the [B, T] layout, zeros on padding
    back = p.scatter(p.input_ids.unsqueeze(-1).float(), tuple(b.input_ids.shape)).squeeze(-1)
    assert torch.equal(back.long(), b.input_ids * b.attention_mask)


def test_packing_rows_first_fit():
    ids = torch.ones((4, 5), dtype=torch.long)
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [1, 1, 0, 0, 0], [1, 1, 1, 1, 0]])
    p = Packing(ids, mask)
    assert p.shape == (3, 5)  # [5], [4], [3, 2]
    assert p.position_ids.tolist() == [[0, 1, 2, 3, 4], [0, 1, 2, 3, 0], [0, 1, 2, 0, 1]]


def test_span_and_contiguity():
    mask = torch.tensor([[0, 1, 1, 0], [0, 0, 1, 0]])
    assert real_span(mask) == (1, 3)
    assert real_span(torch.zeros((2, 3), dtype=torch.long)) == (0, 0)
    assert contiguous(mask)
    assert not contiguous(torch.tensor([[1, 0, 1]]))


# ---------------------------------------------------------------------------------------------- forward


@pytest.mark.parametrize("side", ["right", "left"])
def test_token_logprobs_match_padded(learners, side):
    batch = make_batch(side)
    mbs = batch.micro_batches(3)
    ref = learners["lm", "none"].token_logprobs(mbs)
    mask = batch.attention_mask
    # a token is predicted where the one before it is real too (a left-padded sequence's first token is "predicted"
    # by padding in the padded path: meaningless, and never under a loss mask)
    predicted = mask * torch.nn.functional.pad(mask[:, :-1], (1, 0))
    assert int(predicted.sum()) == sum(LENGTHS) - len(LENGTHS)
    for mode in ("sort", "pack"):
        got = learners["lm", mode].token_logprobs(mbs)
        assert [g.shape for g in got] == [r.shape for r in ref]
        diff = (torch.cat(got) - torch.cat(ref)).abs() * predicted
        assert float(diff.max()) < TOL, (mode, float(diff.max()))
        # padding columns come back as 0 (the padded path leaves whatever the pad tokens produced there)
        assert float((torch.cat(got) * (1 - mask)).abs().max()) == 0.0


@pytest.mark.parametrize("side", ["right", "left"])
def test_values_match_padded(learners, side):
    batch = make_batch(side)
    mbs = batch.micro_batches(4)
    ref = torch.cat(learners["value", "none"].values(mbs))
    for mode in ("sort", "pack"):
        got = torch.cat(learners["value", mode].values(mbs))
        diff = (got - ref).abs() * batch.attention_mask
        assert float(diff.max()) < TOL, (mode, float(diff.max()))


def test_sequence_logprobs_match(learners):
    ids = make_batch("right", lengths=(30,)).input_ids[0].tolist()
    ref = learners["lm", "none"].sequence_logprobs(ids)
    for mode in ("sort", "pack"):
        got = learners["lm", mode].sequence_logprobs(ids)
        assert max(abs(a - b) for a, b in zip(got, ref)) < TOL


# ---------------------------------------------------------------------------------------------- loss, gradients


@pytest.mark.parametrize("side", ["right", "left"])
@pytest.mark.parametrize("agg", ["token_mean", "seq_mean_token_mean"])
def test_policy_loss_and_gradients_match_padded(learners, side, agg):
    batch = make_batch(side)
    options = dict(PG_OPTIONS, agg=agg, norm_tokens=batch.loss_tokens, norm_seqs=batch.loss_sequences)
    mbs = batch.micro_batches(3)
    ref_grads, ref_metrics = grads_and_metrics(learners["lm", "none"], mbs, "policy_gradient", options)
    for mode in ("sort", "pack"):
        grads, metrics = grads_and_metrics(learners["lm", mode], mbs, "policy_gradient", options)
        assert_close_grads(ref_grads, grads)
        for (v0, m0), (v1, m1) in zip(ref_metrics, metrics):
            assert abs(v0 - v1) < TOL
            assert m0.keys() == m1.keys()
            for k in m0:
                assert abs(m0[k] - m1[k]) < TOL * max(1.0, abs(m0[k])), (mode, k, m0[k], m1[k])


def test_value_loss_gradients_match_padded(learners):
    batch = make_batch("left")
    batch.extras.update(returns=torch.randn(batch.input_ids.shape) * batch.loss_mask,
                        old_values=torch.zeros(batch.input_ids.shape))

    def mse(values, mb):  # a value loss over the loss tokens, normalized by the step's tokens
        return ((values - mb.extras["returns"]).square() * mb.loss_mask).sum() / batch.loss_tokens, {}

    mbs = batch.micro_batches(3)
    out = {}
    for mode in MODES:
        lrn = learners["value", mode]
        lrn.model.zero_grad(set_to_none=True)
        for mb in mbs:
            values, used = lrn._forward(mb)
            mse(values, used)[0].backward()
        out[mode] = {n: p.grad.clone() for n, p in lrn.model.named_parameters() if p.grad is not None}
        lrn.model.zero_grad(set_to_none=True)
    for mode in ("sort", "pack"):
        assert_close_grads(out["none"], out[mode])


@pytest.mark.parametrize("mode", ["none", "sort", "pack"])
def test_by_length_micro_batches_keep_normalization(learners, mode):
    """Length-sorted micro-batches (cut to their real columns) give the step the same loss and gradients as the
    batch in one piece, whatever the learner's pack mode, for losses normalized by step-wide constants."""
    batch = make_batch("right", seed=1)
    whole = batch.micro_batches(len(batch))
    for loss, options in (
        ("policy_gradient", dict(PG_OPTIONS, norm_tokens=batch.loss_tokens, norm_seqs=batch.loss_sequences)),
        ("policy_gradient", dict(PG_OPTIONS, agg="seq_mean_token_sum_norm", max_len=200,
                                 norm_seqs=batch.loss_sequences)),
        ("next_token", {"norm_tokens": batch.loss_tokens}),
    ):
        ref_grads, ref_m = grads_and_metrics(learners["lm", "none"], whole, loss, options)
        for size in (1, 3):
            mbs = batch.micro_batches(size, by_length=True)
            lengths = [int(mb.attention_mask.sum(1).max()) for mb in mbs]
            assert lengths == sorted(lengths, reverse=True)
            assert all(mb.input_ids.shape[1] == n for mb, n in zip(mbs, lengths))  # cut to the longest
            grads, m = grads_and_metrics(learners["lm", mode], mbs, loss, options)
            assert abs(sum(v for v, _ in m) - ref_m[0][0]) < TOL
            assert_close_grads(ref_grads, grads)


def test_by_length_token_weighted_scales():
    batch = make_batch("right", seed=2)
    mbs = batch.micro_batches(3, token_weighted=True, by_length=True)
    assert abs(sum(mb.loss_scale for mb in mbs) - 1.0) < 1e-9
    for mb in mbs:
        assert abs(mb.loss_scale - mb.num_tokens / batch.loss_tokens) < 1e-9
    assert sorted(int(n) for mb in mbs for n in mb.attention_mask.sum(1)) == sorted(LENGTHS)


def test_train_step_metrics_match(tiny_model_dir, learners):
    """One real optimizer step per mode from the same weights: every metric within TOL of the padded path."""
    batch = make_batch("right", seed=3)
    options = dict(PG_OPTIONS, norm_tokens=batch.loss_tokens, norm_seqs=batch.loss_sequences)
    outs = {}
    for mode in MODES:
        spec = LearnerSpec(model_dir=str(tiny_model_dir), optim=OptimConfig(lr=1e-3), total_steps=10, seed=0,
                           device="cpu", torch_threads=1, pack=mode)
        lrn = Learner(spec, registry=learners["lm", "none"].registry)
        outs[mode] = lrn.train_step(batch.micro_batches(3), "policy_gradient", options)
    for mode in ("sort", "pack"):
        for k, v in outs["none"].items():
            if k == "learner_seconds":
                continue
            assert abs(outs[mode][k] - v) < TOL * max(1.0, abs(v)), (mode, k, v, outs[mode][k])


def test_unknown_pack_mode(tiny_model_dir):
    spec = LearnerSpec(model_dir=str(tiny_model_dir), optim=OptimConfig(), total_steps=1, seed=0, device="cpu",
                       torch_threads=1, pack="zip")
    with pytest.raises(ValueError, match="pack"):
        Learner(spec)


def test_pack_refused_when_the_model_ignores_sequence_boundaries(learners, monkeypatch):
    """A model whose code does not read restarting position ids as boundaries (here: transformers' detection
    switched off) would attend across packed sequences: the learner's start-up check refuses it."""
    import transformers.masking_utils as mu

    from raylign.engine.errors import ModelError

    learners["lm", "pack"]._check_packing()  # the real model passes
    monkeypatch.setattr(mu, "find_packed_sequence_indices", lambda position_ids: None)
    with pytest.raises(ModelError, match="pack = 'sort'"):
        learners["lm", "pack"]._check_packing()


def test_columns_keeps_per_sequence_extras():
    b = make_batch("right", lengths=(2, 5, 3))
    b.extras["margin"] = torch.tensor([0.5, 1.0, 0.0])  # [B], as the reward_model stage sends
    (mb,) = b.micro_batches(3)
    cut = mb.columns(1, 4)
    assert cut.input_ids.shape == (3, 3) and cut.extras["advantages"].shape == (3, 3)
    assert torch.equal(cut.extras["margin"], b.extras["margin"])
    (sorted_mb,) = b.micro_batches(3, by_length=True)
    assert sorted_mb.extras["margin"].tolist() == [1.0, 0.0, 0.5]  # rows in length order, longest first


# ---------------------------------------------------------------------------------------------- the sft stage

SFT_ROWS = [("What is 12+30?", "42."), ("What is an LLM?", "An LLM is a large language model. " * 3),
            ("Hi?", "The lazy dog sits."), ("What is 12+30? " * 3, "12+30 is 42."),
            ("Say a word.", "Dog."), ("Write code.", "def add(a, b):\n    return a + b\n" * 2), ("Go.", "Go.")]


def test_sft_pack_modes_give_the_padded_step_and_eval(tiny_model_dir):
    """The sft stage's path with pack = sort (micro-batches by length, cut to their real columns) and pack
    (packed rows) against none: one optimizer step's metrics from the same weights, then the held-out eval loss
    (the step moved the model), within TOL-sized tolerances, on chat-encoded examples of very different lengths."""
    from raylign.engine.config import build_config
    from raylign.engine.modeling import load_tokenizer
    from raylign.engine.plugins import build_registry
    from raylign.plugins.sft import collate, encode
    from raylign.plugins.supervised import evaluate

    reg = build_registry()
    tok = load_tokenizer(tiny_model_dir)
    examples = [encode(tok, [{"role": "user", "content": p}, {"role": "assistant", "content": r}], "", 256)
                for p, r in SFT_ROWS]
    threads, out = torch.get_num_threads(), {}
    try:
        for mode in MODES:
            cfg = build_config({"run": {"pipeline": ["sft"], "base_model": str(tiny_model_dir)},
                                "sft": {"data": ["x.jsonl"], "micro_batch_size": 3, "pack": mode}},
                               reg).stages[0].config
            spec = LearnerSpec(model_dir=str(tiny_model_dir), total_steps=10, seed=0, device="cpu", torch_threads=1,
                               pack=mode, optim=OptimConfig(lr=1e-2, warmup_steps=0, schedule="constant"))
            lrn = Learner(spec, registry=reg)
            by_length = cfg.pack == "sort"
            mbs = collate(examples, tok.pad_token_id, cfg.micro_batch_size, by_length)
            assert any(mb.attention_mask.sum() < mb.attention_mask.numel() for mb in mbs)  # real padding
            if by_length:
                lengths = [int(mb.attention_mask.sum(1).max()) for mb in mbs]
                assert lengths == sorted(lengths, reverse=True) and mbs[-1].input_ids.shape[1] == lengths[-1]
            step = lrn.train_step(mbs, "next_token")
            ev = evaluate(lrn, collate(examples, tok.pad_token_id, cfg.micro_batch_size, by_length))
            out[mode] = {"step": step, "eval": ev}
    finally:
        torch.set_num_threads(threads)
    ref = out["none"]
    assert abs(ref["eval"]["eval_loss"] - ref["step"]["loss"]) > 1e-3  # the step moved the model: a real check
    for mode in ("sort", "pack"):
        for part in ("step", "eval"):
            assert out[mode][part].keys() == ref[part].keys()
            for k, v in ref[part].items():
                if k != "learner_seconds":
                    got = out[mode][part][k]
                    assert abs(got - v) < 1e-4 * max(1.0, abs(v)), (mode, part, k, v, got)


@pytest.mark.parametrize("stage,module,cls", [("sft", "sft", "SFTStage"),
                                              ("reward_model", "reward_model", "RewardModelStage")])
def test_bad_pack_is_one_config_error_naming_the_key(tiny_model_dir, stage, module, cls):
    """sft and reward_model check ``pack`` on the driver (dpo in its _check: tests/test_dpo.py)."""
    import importlib

    from raylign.engine.config import build_config
    from raylign.engine.errors import ConfigError
    from raylign.engine.plugins import build_registry

    reg = build_registry()
    data = {"run": {"pipeline": [stage], "base_model": str(tiny_model_dir)}, stage: {"data": ["x.jsonl"]}}
    assert build_config(data, reg).stages[0].config.pack == "none"  # the default: the padded path

    class Ctx:  # the check comes before the tokenizer, the data or any actor
        name = stage
        config = build_config({**data, stage: {"data": ["x.jsonl"], "pack": "zip"}}, reg).stages[0].config

    with pytest.raises(ConfigError) as err:
        getattr(importlib.import_module(f"raylign.plugins.{module}"), cls)().run(Ctx)
    assert str(err.value) == f"{stage}.pack must be one of none, sort, pack, got 'zip'"


@pytest.mark.parametrize("stage,cls,section", [
    ("grpo", "GRPOStage", {"data": ["x.jsonl"], "verifier": "length"}),
    ("ppo", "PPOStage", {"data": ["x.jsonl"], "rewards": [{"name": "length"}]})])
def test_bad_pack_in_an_rl_stage_is_one_config_error_naming_the_key(tiny_model_dir, stage, cls, section):
    """grpo and ppo check ``pack`` in their ``_check``, which runs before the data, the fleet or any learner."""
    import importlib

    from raylign.engine.config import build_config
    from raylign.engine.errors import ConfigError
    from raylign.engine.plugins import build_registry

    reg = build_registry()
    data = {"run": {"pipeline": [stage], "base_model": str(tiny_model_dir)}, stage: section}
    stage_cls = getattr(importlib.import_module(f"raylign.plugins.{stage}"), cls)
    built = build_config(data, reg)
    assert built.stages[0].config.pack == "none"  # the default: the padded path

    class Ctx:
        name, engine, registry = stage, built, reg

    stage_cls._check(Ctx, built.stages[0].config)  # the same job with a good pack passes
    bad = build_config({**data, stage: {**section, "pack": "zip"}}, reg)
    with pytest.raises(ConfigError) as err:
        stage_cls._check(Ctx, bad.stages[0].config)
    assert str(err.value) == f"{stage}.pack must be one of none, sort, pack, got 'zip'"
