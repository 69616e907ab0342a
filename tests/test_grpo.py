"""GRPO: batch building (unit) and a short real run (vLLM fleet + reward fleet + learner) whose reward rises."""
from __future__ import annotations

import json

import pytest
import torch

from raylign.engine.types import Completion, RolloutGroup, SequenceBatch, Verdict
from raylign.plugins.grpo_batch import has_signal, pass_rate, sequence_batch


def _completion(tokens, logprobs, finish="stop"):
    return Completion(prompt_index=0, sample_index=0, prompt_token_ids=[], token_ids=tokens, text="",
                      logprobs=logprobs, finish_reason=finish, weights_version=0)


def test_sequence_batch_masks_completions_and_truncation():
    g = RolloutGroup(task={}, prompt_ids=[5, 6], verdicts=[Verdict(1.0), Verdict(0.0)],
                     completions=[_completion([7, 8, 9], [-0.1, -0.2, -0.3]),
                                  _completion([7, 8], [-1.0, -2.0], "length")])
    assert g.keep == [True, True] and g.rewards == [1.0, 0.0]
    adv = torch.tensor([[0.5, -0.5]])
    b = sequence_batch([g], adv, pad_id=0, mask_truncated=True)
    assert b.input_ids.tolist() == [[5, 6, 7, 8, 9], [5, 6, 7, 8, 0]]
    assert b.attention_mask.tolist() == [[1, 1, 1, 1, 1], [1, 1, 1, 1, 0]]
    assert b.loss_mask.tolist() == [[0, 0, 1, 1, 1], [0, 0, 0, 0, 0]]  # the truncated completion is masked out
    assert b.extras["advantages"][0].tolist() == [0, 0, 0.5, 0.5, 0.5]
    assert b.extras["sampler_logprobs"][0].tolist() == pytest.approx([0, 0, -0.1, -0.2, -0.3])
    assert b.loss_tokens == 3.0 and b.loss_sequences == 1.0
    b2 = sequence_batch([g], adv, pad_id=0, mask_truncated=False)
    assert b2.loss_mask[1].tolist() == [0, 0, 1, 1, 0]


def test_dropped_samples_leave_the_loss_and_groups_without_signal_are_detected():
    g = RolloutGroup(task={}, prompt_ids=[1], verdicts=[Verdict(1.0), Verdict(0.0, status="timeout")],
                     keep=[True, False], completions=[_completion([2], [-0.1]), _completion([3], [-0.1])])
    assert g.statuses == ["ok", "timeout"] and g.verdicts[1].failed
    assert not has_signal(g)  # one kept sample: nothing to compare
    assert sequence_batch([g], torch.zeros(1, 2), 0, True).loss_mask[1].sum() == 0
    batch = SequenceBatch(torch.zeros(5, 3, dtype=torch.long), torch.ones(5, 3, dtype=torch.long),
                          torch.ones(5, 3), {"advantages": torch.zeros(5, 3)})
    mbs = batch.micro_batches(2)
    assert [mb.input_ids.shape[0] for mb in mbs] == [2, 2, 1] and all(mb.loss_scale == 1.0 for mb in mbs)
    assert all(mb.extras["advantages"].shape[0] == mb.input_ids.shape[0] for mb in mbs)
    weighted = batch.micro_batches(2, token_weighted=True)  # each micro-batch's share of the loss tokens
    assert [mb.loss_scale for mb in weighted] == pytest.approx([0.4, 0.4, 0.2])
    assert pass_rate([1.0, 0.5, 0.0, 1.0]) == 0.5


def test_a_group_needs_one_verdict_per_completion():
    with pytest.raises(ValueError, match="2 completions but 1 verdicts"):
        RolloutGroup(task={}, prompt_ids=[1], verdicts=[Verdict(1.0)],
                     completions=[_completion([2], [-0.1]), _completion([3], [-0.1])])


class RecordingLearner:
    """What ``GRPOStage.update`` asks of a policy learner (``LearnerHandle``'s ``token_logprobs`` and
    ``train_step``), recorded; its answers are fixed numbers."""

    def __init__(self):
        self.calls: list[tuple[str, object]] = []

    def token_logprobs(self, micro_batches):
        self.calls.append(("token_logprobs", sum(mb.input_ids.shape[0] for mb in micro_batches)))
        return [torch.full(mb.input_ids.shape, -1.0) for mb in micro_batches]

    def train_step(self, micro_batches, loss, options):
        extras = set().union(*(mb.extras for mb in micro_batches))
        self.calls.append(("train_step", "old_logprobs" in extras))
        return {"loss": 0.5 * len(self.calls), "grad_norm": 1.0, "learner_seconds": 2.0, "tokens": 3.0,
                "step_tokens": 5.0}


def test_grpo_update_skips_the_first_updates_old_logprobs_and_adds_up_its_totals():
    from raylign.plugins.grpo import GRPOConfig, GRPOStage

    groups = [RolloutGroup(task={}, prompt_ids=[5, 6], verdicts=[Verdict(1.0), Verdict(0.0)],
                           completions=[_completion([7, 8], [-0.1, -0.2]), _completion([9], [-0.3])])
              for _ in range(4)]
    adv = torch.tensor([[0.5, -0.5]] * 4)
    learner = RecordingLearner()
    cfg = GRPOConfig(updates_per_batch=2, micro_batch_size=2)
    metrics = GRPOStage().update(learner, None, groups, adv, cfg, pad_id=0)
    # the first update trains on the policy that sampled (its own detached logprobs are "old"); the second
    # needs the old logprobs of its 4 sequences, taken before the first update
    assert learner.calls == [("token_logprobs", 4), ("train_step", False), ("train_step", True)]
    assert metrics["learner_seconds"] == 4.0 and metrics["tokens"] == 6.0 and metrics["step_tokens"] == 10.0
    assert metrics["loss"] == pytest.approx((1.0 + 1.5) / 2) and metrics["grad_norm"] == 1.0  # the rest: means

    one = RecordingLearner()
    GRPOStage().update(one, None, groups, adv, GRPOConfig(updates_per_batch=1, micro_batch_size=2), pad_id=0)
    assert one.calls == [("train_step", False)]


GRPO_CONFIG = """
[run]
name = "grpo"
output_dir = "{out}"
seed = 1
pipeline = ["grpo"]
base_model = "{model}"
probes = []

[ray]
num_cpus = 8

[rollout]
max_model_len = 256

[rewards]
num_workers = 1
timeout_s = 10.0

[grpo]
data = ["{data}"]
eval_data = ["{data}"]
fields = {{ prompt = "text" }}    # the rows' prompt field is named text
eval_size = 8
verifier = "format"
steps = {steps}
prompts_per_step = 4
group_size = 8
micro_batch_size = 32
max_new_tokens = 6
checkpoint_every = 0
optim = {{ lr = 3e-3, warmup_steps = 0, schedule = "constant", weight_decay = 0.0 }}
"""


@pytest.mark.vllm
@pytest.mark.slow
def test_short_grpo_run_raises_reward(tmp_path, tiny_model_dir, ray_session):
    """An easy verifiable task from random weights: replies must not contain the letter 'e'."""
    from raylign.engine.config import load_config
    from raylign.engine.driver import run_pipeline
    from raylign.engine.metrics import read_metrics
    from raylign.engine.plugins import build_registry

    data = tmp_path / "tasks.jsonl"
    with open(data, "w") as fh:
        for i in range(32):
            fh.write(json.dumps({"text": f"Say anything {i}", "format": r"[^e]*", "verifier": "format"}) + "\n")
    cfg_path = tmp_path / "grpo.toml"
    cfg_path.write_text(GRPO_CONFIG.format(out=tmp_path / "runs", model=tiny_model_dir, data=data, steps=16))
    synced = _SyncObserver()
    reg = build_registry(extra_plugins=[synced])
    summary = run_pipeline(load_config(cfg_path, reg), reg)
    rows = [r for r in read_metrics(tmp_path / "runs" / "grpo") if r["stage"] == "grpo" and "reward_mean" in r]
    assert [r["step"] for r in rows] == list(range(1, 17))
    first = sum(r["reward_mean"] for r in rows[:4]) / 4
    last = sum(r["reward_mean"] for r in rows[-4:]) / 4
    assert last > first + 0.1, (first, last)
    for r in rows:  # every step synced versioned weights that passed the canary
        assert r["weights_version"] == r["step"] and r["canary_max_abs_diff"] < 0.05
        assert r["verdict/ok"] == 32
    # the engine fired raylign_weights_synced once per sync, with what the step logged
    assert [(c["stage"], c["version"]) for c in synced.calls] == [("grpo", r["step"]) for r in rows]
    for c, r in zip(synced.calls, rows):
        assert c["seconds"] == r["weight_sync_seconds"] > 0
        assert c["canary_max_abs_diff"] == r["canary_max_abs_diff"]
    metrics = summary["stages"]["grpo"]["metrics"]
    assert {"eval_accuracy_before", "eval_accuracy", "eval_accuracy_gain", "train_accuracy_before",
            "train_accuracy"} <= set(metrics)
    # the starting model's solve rates were measured before training (format has no reference: no reference check)
    assert 0.0 <= metrics["check_solve_greedy"] <= metrics["check_solve_at_k"] <= 1.0
    assert "check_reference_pass" not in metrics
    assert 0.0 <= metrics["train_accuracy"] <= 1.0
    assert (tmp_path / "runs" / "grpo" / "models" / "grpo" / "config.json").exists()


class _SyncObserver:
    """Records ``raylign_weights_synced`` calls."""

    from raylign.engine import hookimpl

    def __init__(self):
        self.calls: list[dict] = []

    @hookimpl
    def raylign_weights_synced(self, stage, version, seconds, canary_max_abs_diff):
        self.calls.append(dict(stage=stage, version=version, seconds=seconds,
                               canary_max_abs_diff=canary_max_abs_diff))
