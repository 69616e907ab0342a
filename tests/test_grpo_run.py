"""GRPO end to end through the CLI with the options the shipped configs use all on at once, and ``--resume``
after a SIGKILL reproducing the uninterrupted run.

One config (examples/*.toml's paths, shrunk): ``updates_per_batch = 2`` (the second update's ratio is taken
against the old log-probs), ``dynamic_sampling`` with refills, ``drop_failed``, ``kl_coef > 0`` (a frozen
reference model), a clip that fires and the default truncated-IS cap. The verifier is a third-party plugin
package installed into a throwaway environment (``make_plugin_env``): it scores rows of kind ``flat`` 0.0 (a
zero-variance group that dynamic sampling drops) and, on ``flaky`` rows, raises on some completions (``error``
verdicts) and scores the others 1.0 or 0.0 by their length.

Runs of the same config (only run.name and max_staleness differ):
  A  uninterrupted;
  B  started alongside A and SIGKILLed (its whole process group: driver and local Ray) as soon as it has
     logged step 2, after its step-1 checkpoint (so a logged step usually lies past the last checkpoint);
  B' ``raylign run --resume`` of B, started as soon as B is dead.
  C  ``rollout.max_staleness = 1`` (asynchronous rollouts), after A and B' end;
  D  as C, alongside it, SIGKILLed like B; D' its ``--resume``.
Every assertion reads the run directories (metrics.jsonl, checkpoints, models), never the stage's internals.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from conftest import finish_run, kill_run, make_plugin_env, start_run, write_plugin_project

pytestmark = [pytest.mark.vllm, pytest.mark.slow]

STEPS, PROMPTS, GROUP, UPDATES, MAX_NEW = 3, 4, 8, 2, 8
ASYNC_K = 1  # run C's rollout.max_staleness
PROMPT = "Say anything."  # every row has the same prompt: prompt tokens per sample are one known constant

MODULE = '''
"""Verifier ``flaky``: a zero-variance reward on "flat" rows, and on the others an error on some completions."""
from raylign.engine import hookimpl


def flaky(completion, task):
    if task.get("kind") == "flat":
        return 0.0
    if len(completion) % 3 == 0:
        raise RuntimeError("flaky: a simulated verifier failure")
    return float(len(completion) % 3 == 1)


@hookimpl
def raylign_register_verifiers(register):
    register("flaky", flaky)
'''

CONFIG = f"""
[run]
name = "a"
output_dir = "runs"
seed = 3
pipeline = ["grpo"]
base_model = "{{model}}"
probes = []

[ray]
num_cpus = 8

[rollout]
max_model_len = 256

[rewards]
num_workers = 1
timeout_s = 10.0

[grpo]
data = ["tasks.jsonl"]
eval_data = ["tasks.jsonl"]
eval_size = 2
verifier = "flaky"
steps = {STEPS}
prompts_per_step = {PROMPTS}
group_size = {GROUP}
updates_per_batch = {UPDATES}
micro_batch_size = 32
pack = "pack"            # the learner packs each micro-batch's sequences (padding-free); resume stays exact
max_new_tokens = {MAX_NEW}
dynamic_sampling = true
max_refills = 3
drop_failed = true
kl_coef = 0.05
clip_low = 0.2
clip_high = 0.28
checkpoint_every = 1
optim = {{ lr = 5e-3, warmup_steps = 0, schedule = "constant", weight_decay = 0.0 }}
"""


def _metrics(run_dir: Path) -> list[dict]:
    path = run_dir / "metrics.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def _logged_steps(run_dir: Path) -> list[int]:
    """Training steps in metrics.jsonl so far (read while the run writes it: a partial last line is skipped)."""
    path = run_dir / "metrics.jsonl"
    lines = path.read_text().split("\n")[:-1] if path.exists() else []
    return [r["step"] for r in map(json.loads, lines) if "reward_mean" in r]


@pytest.fixture(scope="module")
def runs(tmp_path_factory, tiny_model_dir):
    work = tmp_path_factory.mktemp("grpo_run")
    src = write_plugin_project(work / "src", "raylign-flaky", "flaky", "raylign_flaky", MODULE)
    raylign = str(make_plugin_env(work / "env", src) / "raylign")
    kinds = ["flaky", "flaky", "flat"] * 4
    with open(work / "tasks.jsonl", "w") as fh:
        for i, kind in enumerate(kinds):
            fh.write(json.dumps({"prompt": PROMPT, "kind": kind, "id": i}) + "\n")
    (work / "cfg.toml").write_text(CONFIG.replace("{model}", str(tiny_model_dir)))
    async_k = ["--set", f"rollout.max_staleness={ASYNC_K}"]
    a = start_run(raylign, work, [], "a")
    b = start_run(raylign, work, ["--set", "run.name=b"], "b")
    b2 = c = d = d2 = None
    try:
        killed = kill_after_step_2(work, b, "b")
        b2 = start_run(raylign, work, ["--set", "run.name=b", "--resume"], "b_resume")
        finish_run(a, work, "a", 900)
        finish_run(b2, work, "b_resume", 900)
        c = start_run(raylign, work, ["--set", "run.name=c", *async_k], "c")
        d = start_run(raylign, work, ["--set", "run.name=d", *async_k], "d")
        killed_async = kill_after_step_2(work, d, "d")
        d2 = start_run(raylign, work, ["--set", "run.name=d", *async_k, "--resume"], "d_resume")
        finish_run(c, work, "c", 900)
        finish_run(d2, work, "d_resume", 900)
    finally:
        for p in (a, b, b2, c, d, d2):
            if p is not None and p.poll() is None:
                kill_run(p)
    return {"work": work, "a": work / "runs" / "a", "b": work / "runs" / "b", "c": work / "runs" / "c",
            "d": work / "runs" / "d", "killed": killed, "killed_async": killed_async}


def kill_after_step_2(work: Path, proc, name: str) -> dict:
    """SIGKILL run ``name`` as soon as it has logged step 2 (after its step-1 checkpoint); what it left."""
    deadline = time.monotonic() + 900
    while 2 not in _logged_steps(work / "runs" / name):
        if proc.poll() is not None:
            pytest.fail(f"run {name} ended ({proc.returncode}) before it logged step 2:\n"
                        f"{(work / f'{name}.err').read_text()[-3000:]}")
        if time.monotonic() > deadline:
            pytest.fail(f"run {name} logged no step 2 in time")
        time.sleep(0.005)
    kill_run(proc)  # like a machine crash: driver and its local Ray, no clean-up code runs
    ckpts = work / "runs" / name / "checkpoints" / "grpo"
    return {"steps": _logged_steps(work / "runs" / name),
            "checkpoints": sorted(p.name for p in ckpts.glob("step_*") if (p / "COMPLETE").exists()),
            "model": (work / "runs" / name / "models" / "grpo" / "config.json").exists(),
            "ahead": [p.parent.name for p in ckpts.glob("step_*/rollouts_ahead.pkl")]}


def _steps(run_dir: Path) -> list[dict]:
    return [r for r in _metrics(run_dir) if r["stage"] == "grpo" and "reward_mean" in r]


def _prompt_tokens(model_dir: Path) -> int:
    """Tokens of the rendered prompt (chat template with the generation prompt), as the stage tokenizes it."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(model_dir))
    text = tok.apply_chat_template([{"role": "user", "content": PROMPT}], tokenize=False, add_generation_prompt=True)
    return len(tok(text, add_special_tokens=False)["input_ids"])


# ---------------------------------------------------------------------------------------------- the paths ran


def test_every_step_is_logged_and_the_model_saved(runs):
    rows = _steps(runs["a"])
    assert [r["step"] for r in rows] == list(range(1, STEPS + 1))
    assert (runs["a"] / "models" / "grpo" / "config.json").is_file()


def test_updates_per_batch_takes_the_ratio_against_old_logprobs(runs):
    """Two optimizer steps per rollout batch: the weights version moves by two per step, and the second
    update's ratio (against the log-probs from before the first) is no longer 1, so the clip can fire."""
    rows = _steps(runs["a"])
    assert [r["weights_version"] for r in rows] == [UPDATES * s for s in range(1, STEPS + 1)]
    for r in rows:
        # ratio_mean averages the two updates: the first's is exactly 1.0 (it trains on the policy that
        # sampled), the second's is not; both would be 1.0 if the second took its own logprobs as "old"
        assert abs(r["ratio_mean"] - 1.0) > 1e-4, r
        assert "is_weight_mean" in r  # the default truncated-IS cap is on
    assert any(r["clip_frac"] > 0 for r in rows), [r["clip_frac"] for r in rows]


def test_kl_to_the_reference_model(runs):
    for r in _steps(runs["a"]):
        assert r["kl"] > 0, r  # the policy moved away from the frozen reference within every step


def test_dynamic_sampling_drops_zero_variance_groups_and_refills(runs):
    rows = _steps(runs["a"])
    assert sum(r["groups_dropped"] for r in rows) > 0
    assert any(r["rollout_rounds"] > 1 for r in rows)
    for r in rows:
        scored = sum(v for k, v in r.items() if k.startswith("verdict/"))
        assert scored == GROUP * (PROMPTS + r["groups_dropped"]), r  # each dropped group was replaced by one more
        assert r["rollout_rounds"] == 1 or r["groups_dropped"] > 0, r


def test_failed_verdicts_are_counted_and_left_out_of_the_loss(runs, tiny_model_dir):
    """``step_tokens`` counts every sequence's prompt and completion, ``tokens`` the loss tokens. Without
    drop_failed they differ by exactly the prompt tokens; with it, also by the tokens of the failed samples in
    the batch: between 0 and (error verdicts x max_new_tokens), and above 0 over the run."""
    prompt_tokens = _prompt_tokens(tiny_model_dir)
    rows = _steps(runs["a"])
    assert sum(r.get("verdict/error", 0) for r in rows) > 0
    left_out = []
    for r in rows:
        # token counts are totals over the UPDATES updates of a step, which together train on PROMPTS groups
        dropped_tokens = r["step_tokens"] - r["tokens"] - PROMPTS * GROUP * prompt_tokens
        assert dropped_tokens == pytest.approx(round(dropped_tokens), abs=1e-6), r
        assert 0 <= dropped_tokens <= r.get("verdict/error", 0) * MAX_NEW, (dropped_tokens, r)
        left_out.append(dropped_tokens)
    assert sum(left_out) > 0, left_out


# ---------------------------------------------------------------------------------------------- resume


def test_kill_landed_inside_the_stage(runs):
    killed = runs["killed"]
    assert killed["steps"] == [1, 2] and "step_00000001" in killed["checkpoints"], killed
    assert not killed["model"], "B was killed after the stage ended"
    print(f"\nB killed with steps {killed['steps']} logged and checkpoints {killed['checkpoints']}")


def assert_same_metrics(a: list[dict], b: list[dict]) -> None:
    # The same lines in the same order: every step once, none lost, none repeated.
    assert [(r["stage"], r["step"], sorted(r)) for r in b] == [(r["stage"], r["step"], sorted(r)) for r in a]
    for ra, rb in zip(a, b):
        if "reward_mean" in ra:  # the same prompts, samples and verdicts
            for key in ("reward_mean", "pass_rate", "groups_dropped", "rollout_rounds", "response_length"):
                assert rb[key] == ra[key], (ra["step"], key)
            assert {k: v for k, v in rb.items() if k.startswith("verdict/")} == \
                   {k: v for k, v in ra.items() if k.startswith("verdict/")}
        for key in set(ra) - {"stage", "step"}:
            if not (key.endswith("_seconds") or key.endswith("_per_s")):
                assert rb[key] == pytest.approx(ra[key], rel=1e-4, abs=1e-5), (ra["step"], key)


def test_resume_after_sigkill_reproduces_the_uninterrupted_run(runs):
    assert_same_metrics(_metrics(runs["a"]), _metrics(runs["b"]))


def test_async_resume_after_sigkill_reproduces_the_uninterrupted_async_run(runs):
    """k = 1, killed after step 2 with its step-1 checkpoint: the checkpoint holds batch 2, made before the stop
    from the starting weights; the resume trains on it and samples batch 3 from step 1's (restored) weights, as
    the uninterrupted run C did. Every metric but timings equals C's, staleness included."""
    killed = runs["killed_async"]
    assert killed["steps"] == [1, 2] and "step_00000001" in killed["checkpoints"], killed
    assert "step_00000001" in killed["ahead"], killed
    assert_same_metrics(_metrics(runs["c"]), _metrics(runs["d"]))


def test_resume_after_sigkill_writes_each_rollout_step_once(runs):
    """rollouts/grpo.jsonl: B logged step 2's block before the kill, past its step-1 checkpoint; the resume drops
    it and writes it again, so B's file holds A's blocks, once each and in order, with A's samples and verdicts
    (failed verdicts left out of the loss marked ``kept: false``, with advantage 0)."""
    def read(run_dir: Path) -> list[dict]:
        return [json.loads(line) for line in (run_dir / "rollouts" / "grpo.jsonl").read_text().splitlines()]

    a, b = read(runs["a"]), read(runs["b"])
    blocks = [(r["step"], r["kind"]) for i, r in enumerate(a) if i == 0 or (a[i - 1]["step"], a[i - 1]["kind"])
              != (r["step"], r["kind"])]
    assert blocks == [(0, "eval"), *[(s, "train") for s in range(1, STEPS + 1)], (STEPS, "eval")]
    assert [(r["step"], r["kind"], r["group"], r["sample"], r["completion"], r["reward"], r["status"]) for r in b] == \
           [(r["step"], r["kind"], r["group"], r["sample"], r["completion"], r["reward"], r["status"]) for r in a]
    train = [r for r in a if r["kind"] == "train"]
    assert len(train) == STEPS * 4 * GROUP  # the default 4 groups per step, here every group
    dropped = [r for r in train if not r["kept"]]
    assert dropped and all(r["status"] == "error" and r["advantage"] == 0 and r["error"] for r in dropped)


# ---------------------------------------------------------------------------------------------- async rollouts


def _rollouts(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "rollouts" / "grpo.jsonl").read_text().splitlines()]


def test_sync_run_is_on_policy(runs):
    rows = _steps(runs["a"])
    assert [(r["staleness_max"], r["stale_dropped"], r["rollout_ahead"]) for r in rows] == [(0, 0, 0)] * STEPS


def test_async_rollouts_run_ahead_by_at_most_k(runs):
    """k = 1: batch s is sampled with the weights synced after step s - 2 (the starting weights for s <= 2), so
    from step 2 on every sample is exactly one sync old, none older, and the next batch is made before each sync."""
    rows = _steps(runs["c"])
    assert [r["step"] for r in rows] == list(range(1, STEPS + 1))
    assert [r["staleness_max"] for r in rows] == [min(s - 1, ASYNC_K) for s in range(1, STEPS + 1)]
    assert [r["staleness_mean"] for r in rows] == [min(s - 1, ASYNC_K) for s in range(1, STEPS + 1)]
    assert all(r["stale_dropped"] == 0 for r in rows)
    assert [r["rollout_ahead"] for r in rows] == [1] * (STEPS - 1) + [0]
    assert [r["weights_version"] for r in rows] == [UPDATES * s for s in range(1, STEPS + 1)]
    for r in rows:
        assert r["is_weight_mean"] > 0 and r["kl"] > 0, r  # the sampler-mismatch correction ran on stale samples
    train = [r for r in _rollouts(runs["c"]) if r["kind"] == "train"]
    for r in train:  # each logged sample carries the version it was sampled with
        assert r["weights_version"] == UPDATES * max(0, r["step"] - 1 - ASYNC_K), r


def test_async_first_batch_equals_the_sync_runs(runs):
    """Step 1 of both runs samples the same prompts with the same seeds from the starting weights: same
    completions and verdicts; the eval before training is the same too."""
    a = [r for r in _rollouts(runs["a"]) if r["step"] <= 1 and not (r["kind"] == "eval" and r["step"] == 1)]
    c = [r for r in _rollouts(runs["c"]) if r["step"] <= 1 and not (r["kind"] == "eval" and r["step"] == 1)]
    assert a and [(r["kind"], r["completion"], r["reward"], r["status"]) for r in c] == \
           [(r["kind"], r["completion"], r["reward"], r["status"]) for r in a]
    first_a, first_c = _steps(runs["a"])[0], _steps(runs["c"])[0]
    for key in ("reward_mean", "pass_rate", "groups_dropped", "response_length", "loss", "kl"):
        assert first_c[key] == pytest.approx(first_a[key], rel=1e-5, abs=1e-6), key
