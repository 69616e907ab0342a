"""RLHF end to end through the CLI on the session's tiny model: ``reward_model`` → ``ppo`` → ``grpo``.

The preference pairs have a ground truth the tiny model can learn (the chosen reply says "dog", the rejected one
never does). The reward model ranks held-out pairs; PPO, rewarded by it through the ``reward_model`` provider,
raises the reward model's score of its greedy answers; the GRPO stage after it scores its samples with the same
provider plus a ``length`` penalty, each term logged. A second run is SIGKILLed right after PPO's step-4
checkpoint and resumed: its PPO steps after the checkpoint match the uninterrupted run's. A third, PPO alone on
the first run's reward model with asynchronous rollouts (``rollout.max_staleness = 1``) and two critic warm-up
steps, checks the stream's schedule inside PPO.
"""
from __future__ import annotations

import json
import random
import shutil
import sys
import time
from pathlib import Path

import pytest

from conftest import finish_run, kill_run, start_run
from raylign.verifiers.length import count_words

pytestmark = [pytest.mark.vllm, pytest.mark.slow]

RAYLIGN = str(Path(sys.executable).with_name("raylign"))
WORDS = "the quick brown fox jumps over lazy an is a large language model that predicts next token what".split()
PROMPTS = ["What is an LLM?", "What is 12+30?", "What is a fox?", "What is a dog?", "What is the next token?"]
PPO_STEPS = 10
WARMUP = 2  # run c's critic warm-up steps

CONFIG = f"""
[run]
name = "a"
base_model = "tiny"
pipeline = ["reward_model", "ppo", "grpo"]
probes = ["What is a dog?"]
probe_max_tokens = 8

[ray]
num_cpus = 8

[rollout]
max_model_len = 256

[reward_model]
data = ["prefs.jsonl"]
eval_fraction = 0.1
steps = 60
batch_size = 16
micro_batch_size = 16
eval_every = 20
checkpoint_every = 0
optim = {{ lr = 1e-3, warmup_steps = 2 }}

[ppo]
data = ["prompts.jsonl"]
eval_size = 16
rewards = [{{ name = "reward_model", model = "reward_model", batch_size = 16 }}]
gold = "length"
steps = {PPO_STEPS}
prompts_per_step = 16
samples_per_prompt = 2
max_new_tokens = 16
eval_every = 5
checkpoint_every = 4
dual_clip = 3.0
kl_target = 1.0
optim = {{ lr = 1e-3, warmup_steps = 0, schedule = "constant", weight_decay = 0.0 }}

[grpo]
data = ["prompts.jsonl"]
eval_size = 8
rewards = [{{ name = "reward_model", model = "reward_model" }}, {{ name = "length", weight = 0.05, options = {{ free = 4 }} }}]
steps = 2
prompts_per_step = 4
group_size = 4
max_new_tokens = 12
checkpoint_every = 0
"""


def _reply(rng: random.Random, dog: bool) -> str:
    words = [rng.choice(WORDS) for _ in range(rng.randint(3, 8))]
    if dog:
        for _ in range(rng.randint(1, 3)):
            words.insert(rng.randrange(len(words) + 1), "dog")
    return " ".join(words)


def _write_data(work: Path) -> None:
    rng = random.Random(0)
    with open(work / "prefs.jsonl", "w") as f:
        for i in range(600):
            prompt = rng.choice(PROMPTS)
            row = {"prompt": prompt, "chosen": _reply(rng, True), "rejected": _reply(rng, False)}
            if i % 5 == 0:  # chat-message form too
                row = {"prompt": [{"role": "user", "content": prompt}],
                       "chosen": [{"role": "assistant", "content": row["chosen"]}],
                       "rejected": [{"role": "assistant", "content": row["rejected"]}]}
            f.write(json.dumps(row) + "\n")
    with open(work / "prompts.jsonl", "w") as f:
        for _ in range(200):
            f.write(json.dumps({"prompt": rng.choice(PROMPTS)}) + "\n")


@pytest.fixture(scope="module")
def runs(tmp_path_factory, tiny_model_dir):
    work = tmp_path_factory.mktemp("rlhf")
    shutil.copytree(tiny_model_dir, work / "tiny")
    _write_data(work)
    (work / "cfg.toml").write_text(CONFIG)
    a = start_run(RAYLIGN, work, [], "a")
    b_args = ["--set", "run.name=b", "--set", 'run.pipeline=["reward_model", "ppo"]']
    b = start_run(RAYLIGN, work, b_args, "b")
    procs = [a, b]
    try:
        marker = work / "runs" / "b" / "checkpoints" / "ppo" / "step_00000004" / "COMPLETE"
        deadline = time.monotonic() + 600
        while not marker.exists():
            if b.poll() is not None:
                pytest.fail(f"run b ended ({b.returncode}) before {marker}:\n{(work / 'b.err').read_text()[-3000:]}")
            assert time.monotonic() < deadline, "run b wrote no PPO checkpoint in time"
            time.sleep(0.01)
        kill_run(b)
        procs.append(b2 := start_run(RAYLIGN, work, [*b_args, "--resume"], "b_resume"))
        finish_run(a, work, "a", 900)
        finish_run(b2, work, "b_resume", 900)
        rm = work / "runs" / "a" / "models" / "reward_model"
        c_args = ["--set", "run.name=c", "--set", 'run.pipeline=["ppo"]', "--set", "rollout.max_staleness=1",
                  "--set", f"ppo.critic_warmup_steps={WARMUP}", "--set", f'ppo.critic="{rm}"',
                  "--set", f'ppo.rewards=[{{ name = "reward_model", model = "{rm}", batch_size = 16 }}]']
        procs.append(c := start_run(RAYLIGN, work, c_args, "c"))
        finish_run(c, work, "c", 900)
    finally:
        for p in procs:
            if p.poll() is None:
                kill_run(p)
    return {"a": work / "runs" / "a", "b": work / "runs" / "b", "c": work / "runs" / "c"}


def _metrics(run_dir: Path, stage: str) -> list[dict]:
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [r for r in rows if r["stage"] == stage]


def test_reward_model_ranks_held_out_pairs_and_saves_a_normalized_classifier(runs):
    from transformers import AutoModelForSequenceClassification

    summary = json.loads((runs["a"] / "summary.json").read_text())
    rm = summary["stages"]["reward_model"]
    m = rm["metrics"]
    assert m["eval_accuracy"] >= 0.95 > m["eval_accuracy_before"]
    assert m["eval_reward_chosen"] > m["eval_reward_rejected"]
    assert rm["probes"] == []  # a side model: no probes
    stats = json.loads((runs["a"] / "models" / "reward_model" / "reward_stats.json").read_text())
    assert stats["std"] > 0 and stats["pairs"] == 60
    model = AutoModelForSequenceClassification.from_pretrained(str(runs["a"] / "models" / "reward_model"))
    assert model.config.num_labels == 1 and model.config.pad_token_id is not None
    steps = _metrics(runs["a"], "reward_model")
    assert {"loss", "accuracy", "reward_chosen", "reward_rejected", "margin"} <= set(steps[0])


def test_ppo_raises_the_reward_models_score(runs):
    summary = json.loads((runs["a"] / "summary.json").read_text())
    ppo = summary["stages"]["ppo"]["metrics"]
    assert ppo["eval_rm_score"] > ppo["eval_rm_score_before"] + 0.5, ppo
    steps = [r for r in _metrics(runs["a"], "ppo") if "score_mean" in r]
    assert len(steps) == PPO_STEPS
    first, last = steps[0]["score_mean"], sum(r["score_mean"] for r in steps[-3:]) / 3
    assert last > first, [r["score_mean"] for r in steps]
    for key in ("kl", "kl_coef", "value_loss", "explained_variance", "clip_frac", "value_clip_frac", "entropy",
                "response_length", "canary_max_abs_diff", "weights_version", "dual_clip_frac"):
        assert key in steps[-1], key
    assert steps[-1]["kl_coef"] != steps[0]["kl_coef"]  # adaptive to kl_target
    # the gold judge (here the length verifier) and the comparison with the input model's answers
    assert {"gold_win_rate", "gold_tie_rate", "eval_gold_score", "eval_gold_score_before", "kl"} <= set(ppo)
    assert (runs["a"] / "plots" / "ppo.png").stat().st_size > 0
    # the next stage started from the PPO policy, not from the reward model
    grpo_cfg = json.loads((runs["a"] / "models" / "grpo" / "config.json").read_text())
    assert grpo_cfg["architectures"] == ["Qwen2ForCausalLM"]


def test_reward_model_provider_scores_inside_grpo_with_each_term_logged(runs):
    steps = [r for r in _metrics(runs["a"], "grpo") if "reward_mean" in r]
    assert len(steps) == 2
    for r in steps:
        assert "reward/reward_model" in r and "reward/length" in r
        assert r["reward_mean"] == pytest.approx(r["reward/reward_model"] + 0.05 * r["reward/length"], abs=1e-4)
        assert r.get("verdict/ok") == 16


def test_ppo_resume_after_sigkill_matches_the_uninterrupted_run(runs):
    a = {r["step"]: r for r in _metrics(runs["a"], "ppo") if "score_mean" in r}
    b = {r["step"]: r for r in _metrics(runs["b"], "ppo") if "score_mean" in r}
    assert sorted(b) == list(range(1, PPO_STEPS + 1))  # every step once
    for step in range(5, PPO_STEPS + 1):
        for key in ("score_mean", "reward_mean", "kl", "kl_coef", "value_loss", "policy_loss", "response_length"):
            assert b[step][key] == pytest.approx(a[step][key], rel=1e-4, abs=1e-5), (step, key)


def _rollouts(run_dir: Path, stage: str) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "rollouts" / f"{stage}.jsonl").read_text().splitlines()]


def _blocks(records: list[dict]) -> list[tuple[int, str]]:
    """The (step, kind) of each block, in file order."""
    keys: list[tuple[int, str]] = []
    for r in records:
        if not keys or keys[-1] != (r["step"], r["kind"]):
            keys.append((r["step"], r["kind"]))
    return keys


def test_rollouts_hold_each_step_once_with_ppo_and_grpo_fields_through_the_resume(runs):
    """rollouts/<stage>.jsonl: PPO's sampled replies (reward, mean whitened advantage, KL) and held-out greedy
    answers (reward-model and gold scores, which average to the logged eval metrics); GRPO's with each reward
    term. Run b, SIGKILLed after PPO's step-4 checkpoint and resumed, has every block once and, after the
    checkpoint, the same replies as the uninterrupted run."""
    a = _rollouts(runs["a"], "ppo")
    expected = sorted([(s, "train") for s in range(1, PPO_STEPS + 1)] + [(s, "eval") for s in (0, 5, PPO_STEPS)],
                      key=lambda k: (k[0], k[1] == "train"))
    assert sorted(_blocks(a), key=lambda k: (k[0], k[1] == "train")) == expected
    assert len(set(_blocks(a))) == len(_blocks(a))
    for r in a:
        assert r["of"] == (4 * 2 if r["kind"] == "train" else 10)  # 4 groups x 2 replies; all 10 held-out prompts
        if r["kind"] == "train":
            assert isinstance(r["advantage"], float) and isinstance(r["kl"], float) and r["length"] > 0
        else:
            assert isinstance(r["gold_score"], float) and r["advantage"] is None
    metrics = {r["step"]: r for r in _metrics(runs["a"], "ppo") if "eval_rm_score" in r}
    for step in (0, 5, PPO_STEPS):
        block = [r for r in a if r["kind"] == "eval" and r["step"] == step]
        assert sum(r["reward"] for r in block) / len(block) == pytest.approx(metrics[step]["eval_rm_score"], abs=1e-5)
        assert sum(r["gold_score"] for r in block) / len(block) == pytest.approx(metrics[step]["eval_gold_score"],
                                                                                 abs=1e-5)
    b = _rollouts(runs["b"], "ppo")
    assert _blocks(b) == _blocks(a)  # each block once and in order, though b ran the steps after 4 twice
    late = [(x, y) for x, y in zip(a, b) if x["step"] > 4]
    assert late and all(x["completion"] == y["completion"] and x["prompt"] == y["prompt"] for x, y in late)
    assert all(x["reward"] == pytest.approx(y["reward"], abs=1e-4) for x, y in late)
    grpo = _rollouts(runs["a"], "grpo")
    train = [r for r in grpo if r["kind"] == "train"]
    assert len(train) == 2 * 4 * 4  # 2 steps x 4 groups x 4 samples
    for r in train:
        assert set(r["terms"]) == {"reward_model", "length"} and isinstance(r["advantage"], float)
        assert r["reward"] == pytest.approx(r["terms"]["reward_model"] + 0.05 * r["terms"]["length"], abs=1e-4)
        assert r["details"]["length"] == count_words(r["completion"])  # the length verifier's details


def test_the_page_draws_ppos_scores_against_kl(runs, tmp_path):
    from chromium import Chromium, start_view, stop

    rows = [r for r in _metrics(runs["a"], "ppo") if "eval_rm_score" in r and "kl" in r]
    proc, url = start_view(RAYLIGN, runs["a"], tmp_path / "view.log")
    browser = Chromium(tmp_path)
    try:
        browser.goto(f"{url}?cs=ppo&rs=ppo&kind=eval")
        chart = browser.evaluate("(() => { const s = document.querySelector('svg[data-metric=scores_vs_kl]');"
                                 " return [s.dataset.stage, +s.dataset.points, s.querySelectorAll('polyline').length,"
                                 " +s.dataset.last]; })()")
        assert chart == ["ppo", len(rows), 2, rows[-1]["eval_rm_score"]]  # reward model and gold judge
        stages = browser.evaluate("[...document.querySelectorAll('.stage')].map(s => [s.dataset.stage,"
                                  " s.dataset.status])")
        assert stages == [["reward_model", "done"], ["ppo", "done"], ["grpo", "done"]]
        assert int(browser.evaluate("document.getElementById('rollout-count').dataset.total")) == 10
        browser.screenshot(tmp_path / "ppo.png")
    finally:
        browser.close()
        stop(proc)


def test_async_ppo_samples_at_most_one_sync_old(runs):
    """k = 1 with two critic warm-up steps (no push: the starting weights stay current through step 2): batch j
    comes from the weights current after step j - 2, so steps 1-3 are on-policy and later ones one sync old."""
    steps = [r for r in _metrics(runs["c"], "ppo") if "score_mean" in r]
    assert [r["step"] for r in steps] == list(range(1, PPO_STEPS + 1))
    assert [r["staleness_max"] for r in steps] == [0] * (WARMUP + 1) + [1] * (PPO_STEPS - WARMUP - 1)
    assert all(r["stale_dropped"] == 0 for r in steps)
    assert ["weights_version" in r for r in steps] == [False] * WARMUP + [True] * (PPO_STEPS - WARMUP)
    train = [json.loads(line) for line in (runs["c"] / "rollouts" / "ppo.jsonl").read_text().splitlines()]
    versions = {r["step"]: r["weights_version"] for r in train if r["kind"] == "train"}
    pushed = {r["step"]: r["weights_version"] for r in steps if "weights_version" in r}
    for step, version in versions.items():  # sampled with the weights current after step - 2
        assert version == pushed.get(step - 2, 0), (step, version, pushed)
    summary = json.loads((runs["c"] / "summary.json").read_text())["stages"]["ppo"]["metrics"]
    assert summary["eval_rm_score"] > summary["eval_rm_score_before"], summary
