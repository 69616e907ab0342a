"""The rollout log (``rollouts/<stage>.jsonl``): whole steps per write, truncation on resume, bounded sizes, no
duplicates after a resume, and a torn block from a crash dropped. No Ray, no torch."""
from __future__ import annotations

import json
import os

import pytest

from raylign.engine.rollout_log import RolloutLog, bound, group_records, read_records, whole_blocks
from raylign.engine.types import Completion, RolloutGroup, Verdict


def _group(prompt="What is 2+2?", texts=("4", "5"), rewards=(1.0, 0.0), version=3, **task):
    cs = [Completion(prompt_index=0, sample_index=i, prompt_token_ids=[1, 2], token_ids=list(range(len(t))),
                     text=t, logprobs=[-0.1] * len(t), finish_reason="length" if i == 1 else "stop",
                     weights_version=version) for i, t in enumerate(texts)]
    vs = [Verdict(r, details={"extracted": t, "terms": {"math": r, "length": -0.5}}) for r, t in zip(rewards, texts)]
    return RolloutGroup(task={"prompt": prompt, "answer": "4", **task}, prompt_ids=[1, 2], completions=cs,
                        verdicts=vs)


def _lines(log: RolloutLog) -> list[dict]:
    return [json.loads(line) for line in log.path.read_text().splitlines()]


def test_records_carry_the_verdict_terms_advantage_and_lengths():
    recs = group_records([_group()], advantages=[[0.7, -0.7]], extras=[[{"kl": 0.1}, {"kl": 0.2}]], first_group=5)
    a, b = recs
    assert (a["group"], a["sample"], b["sample"]) == (5, 0, 1)
    assert a["prompt"] == "What is 2+2?" and a["completion"] == "4" and a["reward"] == 1.0
    assert a["terms"] == {"math": 1.0, "length": -0.5} and "terms" not in a["details"]  # terms out of details
    assert a["details"] == {"extracted": "4"} and a["status"] == "ok" and a["error"] is None
    assert (a["advantage"], b["advantage"]) == (0.7, -0.7) and (a["kl"], b["kl"]) == (0.1, 0.2)
    assert (a["length"], a["truncated"], b["truncated"]) == (1, False, True) and a["weights_version"] == 3
    assert a["task"] == {"answer": "4"} and a["kept"] is True
    chat = group_records([_group(prompt=[{"role": "system", "content": "Be brief."},
                                         {"role": "user", "content": "Hi"}])])[0]
    assert chat["prompt"] == "system: Be brief.\nuser: Hi"


def test_sizes_are_bounded():
    long = "x" * 10_000
    g = _group(prompt=long, texts=(long, "ok"), tests=[f"assert f({i}) == {i}" for i in range(100)])
    g.verdicts[0] = Verdict(0.0, "error", long, {"trace": long, "deep": {"a": {"b": {"c": {"d": {"e": 1}}}}}})
    rec = group_records([g], max_chars=100)[0]
    assert len(rec["prompt"]) == 100 and rec["prompt_chars"] == 10_000
    assert len(rec["completion"]) == 100 and rec["completion_chars"] == 10_000
    assert len(rec["error"]) < 60 and rec["error"].endswith("more chars]")
    assert len(rec["details"]["trace"]) < 60
    assert len(rec["task"]["tests"]) == 17 and rec["task"]["tests"][-1] == "… 84 more items"
    assert len(json.dumps(rec)) < 1500
    assert bound({"d": {"d": {"d": {"d": {"d": 1}}}}}, 50) == {"d": {"d": {"d": {"d": "{'d': 1}"}}}}
    assert bound(float("nan"), 10) == "nan" and bound((1, 2), 10) == [1, 2]


def test_a_step_is_one_block_written_once(tmp_path):
    log = RolloutLog(tmp_path, "grpo", groups_per_step=2)
    groups = [_group(prompt=f"p{i}") for i in range(5)]
    assert log.log(1, groups) > 0
    lines = _lines(log)
    assert len(lines) == 4 and {r["of"] for r in lines} == {4}  # 2 groups x 2 samples
    assert [r["prompt"] for r in lines] == ["p0", "p0", "p1", "p1"]  # the first groups (already a seeded shuffle)
    assert log.log(1, groups) == 0.0 and len(_lines(log)) == 4  # the same (step, kind) again: not written
    log.log(1, groups[:3], kind="eval")
    assert len(_lines(log)) == 4 + 6 and log.writes == 2  # evals: every prompt by default
    assert [r["kind"] for r in _lines(log)][-1] == "eval"
    everything = RolloutLog(tmp_path / "all", "grpo", groups_per_step=-1, eval_prompts=1)
    everything.log(1, groups)
    everything.log(1, groups, kind="eval")
    assert [r["kind"] for r in _lines(everything)].count("train") == 10
    assert [r["kind"] for r in _lines(everything)].count("eval") == 2
    off = RolloutLog(tmp_path / "off", "grpo", groups_per_step=0, eval_prompts=0)
    assert off.log(1, groups) == 0.0 and off.log(1, groups, kind="eval") == 0.0 and not off.path.exists()
    with pytest.raises(ValueError, match="kind"):
        log.log(2, groups, kind="test")


def test_resume_truncates_after_the_checkpoint_and_never_duplicates(tmp_path):
    log = RolloutLog(tmp_path, "ppo", groups_per_step=1)
    log.log(0, [_group(prompt="held")], kind="eval")
    for step in range(1, 6):
        log.log(step, [_group(prompt=f"step {step}")])
    # a resumed stage: a new log over the same file, the before-eval repeated, then truncation to checkpoint 3
    again = RolloutLog(tmp_path, "ppo", groups_per_step=1)
    again.log(0, [_group(prompt="held")], kind="eval")  # already there: skipped
    again.truncate_after(3)
    for step in range(4, 7):
        again.log(step, [_group(prompt=f"step {step} again")])
    rows = _lines(again)
    keys = [(r["step"], r["kind"]) for r in rows]
    assert keys == [(0, "eval"), (0, "eval")] + [(s, "train") for s in range(1, 7) for _ in range(2)]
    assert [r["prompt"] for r in rows if r["step"] >= 4][::2] == ["step 4 again", "step 5 again", "step 6 again"]
    assert len(keys) == len(whole_blocks(read_records(again.path)))


def test_a_torn_last_block_is_dropped_when_the_file_is_reopened(tmp_path):
    log = RolloutLog(tmp_path, "grpo", groups_per_step=-1)
    log.log(1, [_group(), _group()])
    whole = log.path.read_bytes()
    log.log(2, [_group(), _group()])
    data = log.path.read_bytes()
    torn = data[: len(whole) + (len(data) - len(whole)) // 2]  # a crash inside step 2's write
    log.path.write_bytes(torn)
    assert [r["step"] for r in read_records(log.path)][-1] == 2  # some whole lines of step 2 survived
    assert {r["step"] for r in whole_blocks(read_records(log.path))} == {1}  # but not its whole block
    again = RolloutLog(tmp_path, "grpo", groups_per_step=-1)
    again.log(2, [_group(), _group()])
    assert [r["step"] for r in _lines(again)] == [1] * 4 + [2] * 4
    assert again.path.read_bytes() == data


def test_the_block_is_a_single_write(tmp_path, monkeypatch):
    """One ``os.write`` per block (appended with O_APPEND), then ``fsync``: a reader never sees half a step
    unless the machine dies inside that one call."""
    calls = []
    real_write, real_fsync = os.write, os.fsync
    monkeypatch.setattr(os, "write", lambda fd, b: calls.append(("write", len(b))) or real_write(fd, b))
    monkeypatch.setattr(os, "fsync", lambda fd: calls.append(("fsync", 0)) or real_fsync(fd))
    log = RolloutLog(tmp_path, "grpo", groups_per_step=-1)
    log.log(1, [_group() for _ in range(8)])
    assert [c[0] for c in calls] == ["write", "fsync"] and calls[0][1] == log.path.stat().st_size
