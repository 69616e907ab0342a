"""End to end through the CLI: ``raylign run`` on a tiny scratch → pretrain → sft pipeline, the run directory it
leaves, and ``--resume`` after SIGKILLs (one inside pretrain, one inside sft) reproducing the uninterrupted run's
per-step losses exactly.

Six processes share one module fixture, on the same config (only run.name differs):
  A   uninterrupted;
  B   started alongside A and SIGKILLed (with its whole process group: driver and local Ray) as soon as its
      pretrain checkpoint at step 10 is complete;
  B'  ``raylign run --resume`` of B, SIGKILLed the same way as soon as its sft checkpoint at step 3 is complete;
  B'' ``raylign run --resume`` again, to the end;
  C   whose pretrain learner actor alone is SIGKILLed as soon as that checkpoint is complete: the driver restarts
      the stage from it (``ray.learner_max_restarts``) and the run ends like A;
  D   the same with ``ray.learner_max_restarts = 0``: the run stops with one line naming the learner.
"""
from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys
import time
import tomllib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from conftest import finish_run, kill_run, start_run

DATA = Path(__file__).parent / "data"
RAYLIGN = str(Path(sys.executable).with_name("raylign"))
PRETRAIN_STEPS, SFT_STEPS = 30, 6
TIMING_KEYS = {"learner_seconds", "tokens_per_s", "stage_seconds"}

CONFIG = f"""
[run]
name = "a"
output_dir = "runs"
pipeline = ["scratch", "pretrain", "sft"]
probes = ["What is 3 plus 4?"]
probe_max_tokens = 8

[ray]
num_cpus = 4

[scratch]
corpus = ["pre.jsonl"]
vocab_size = 448
size = {{ hidden_size = 64, num_layers = 2, num_heads = 2, num_kv_heads = 1, intermediate_size = 128 }}

[pretrain]
data = ["pre.jsonl"]
steps = {PRETRAIN_STEPS}
block_size = 64
batch_size = 8
micro_batch_size = 4
eval_every = 10
eval_fraction = 0.05
checkpoint_every = 10
log_every = 1

[pretrain.optim]
lr = 0.003
warmup_steps = 5

[sft]
data = ["sft.jsonl"]
steps = {SFT_STEPS}
batch_size = 8
micro_batch_size = 4
eval_every = 3
checkpoint_every = 3
log_every = 1
format_eval_prompts = 2
max_new_tokens = 6
"""


def _kill_when(proc: subprocess.Popen, marker: Path, workdir: Path, log: str) -> None:
    """SIGKILL ``proc``'s process group as soon as ``marker`` exists (a checkpoint's COMPLETE file)."""
    deadline = time.monotonic() + 400
    while not marker.exists():
        if proc.poll() is not None:
            pytest.fail(f"run {log} ended ({proc.returncode}) before {marker}:\n"
                        f"{(workdir / f'{log}.err').read_text()[-3000:]}")
        if time.monotonic() > deadline:
            pytest.fail(f"run {log} wrote no {marker} in time")
        time.sleep(0.005)
    kill_run(proc)  # like a machine crash: driver and its local Ray, no clean-up code runs


def _kill_learner_when(proc: subprocess.Popen, marker: Path, workdir: Path, log: str) -> int:
    """SIGKILL the learner actor's process among ``proc``'s descendants (its local Ray's workers) as soon as
    ``marker`` exists; returns its pid."""
    import psutil

    deadline = time.monotonic() + 400
    while True:
        if proc.poll() is not None:
            pytest.fail(f"run {log} ended ({proc.returncode}) before its learner was killed:\n"
                        f"{(workdir / f'{log}.err').read_text()[-3000:]}")
        if time.monotonic() > deadline:
            pytest.fail(f"run {log}: no learner process after {marker}")
        if marker.exists():
            for child in psutil.Process(proc.pid).children(recursive=True):
                try:
                    if " ".join(child.cmdline()).startswith("ray::Learner"):
                        child.kill()
                        return child.pid
                except psutil.NoSuchProcess:
                    pass
        time.sleep(0.005)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    work = tmp_path_factory.mktemp("pipeline")
    shutil.copy(DATA / "engine_pre.jsonl", work / "pre.jsonl")
    shutil.copy(DATA / "engine_sft.jsonl", work / "sft.jsonl")
    (work / "cfg.toml").write_text(CONFIG)
    a = start_run(RAYLIGN, work, [], "a")
    b = start_run(RAYLIGN, work, ["--set", "run.name=b"], "b")
    c = start_run(RAYLIGN, work, ["--set", "run.name=c"], "c")
    d = start_run(RAYLIGN, work, ["--set", "run.name=d", "--set", "ray.learner_max_restarts=0"], "d")
    procs = [a, b, c, d]
    ckpts = work / "runs" / "b" / "checkpoints"
    ckpt10 = Path("checkpoints") / "pretrain" / "step_00000010" / "COMPLETE"
    try:
        with ThreadPoolExecutor(3) as pool:  # the three runs reach their checkpoints at about the same time
            kill_c = pool.submit(_kill_learner_when, c, work / "runs" / "c" / ckpt10, work, "c")
            kill_d = pool.submit(_kill_learner_when, d, work / "runs" / "d" / ckpt10, work, "d")
            pool.submit(_kill_when, b, ckpts / "pretrain" / "step_00000010" / "COMPLETE", work, "b").result()
            killed = {"c": kill_c.result(), "d": kill_d.result()}
        killed_summary = json.loads((work / "runs" / "b" / "summary.json").read_text())
        procs.append(b2 := start_run(RAYLIGN, work, ["--set", "run.name=b", "--resume"], "b_resume"))
        _kill_when(b2, ckpts / "sft" / "step_00000003" / "COMPLETE", work, "b_resume")
        killed_in_sft = {"summary": json.loads((work / "runs" / "b" / "summary.json").read_text()),
                         "sft_model": (work / "runs" / "b" / "models" / "sft" / "config.json").exists()}
        procs.append(b3 := start_run(RAYLIGN, work, ["--set", "run.name=b", "--resume"], "b_resume2"))
        finish_run(a, work, "a", 400)
        finish_run(b3, work, "b_resume2", 400)
        finish_run(c, work, "c", 400)
        d_rc = d.wait(timeout=400)
    finally:
        for p in procs:
            if p.poll() is None:
                kill_run(p)
    return {"work": work, "a": work / "runs" / "a", "b": work / "runs" / "b", "killed_summary": killed_summary,
            "killed_in_sft": killed_in_sft, "c": work / "runs" / "c", "d": work / "runs" / "d", "d_rc": d_rc,
            "killed_learners": killed}


def _metrics(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


# ---------------------------------------------------------------------------------------------- run directory


def test_config_toml_is_fully_resolved(runs):
    from raylign.engine.config import build_config, load_config
    from raylign.engine.plugins import build_registry

    saved = tomllib.loads((runs["a"] / "config.toml").read_text())
    assert set(saved) == {"run", "ray", "rollout", "rewards", "scratch", "pretrain", "sft"}
    assert saved["run"]["name"] == "a" and saved["run"]["seed"] == 0  # defaults are written out
    assert saved["pretrain"]["steps"] == PRETRAIN_STEPS and saved["pretrain"]["plugin"] == "pretrain"
    assert saved["pretrain"]["optim"] == {**saved["pretrain"]["optim"], "lr": 0.003, "warmup_steps": 5}
    assert saved["pretrain"]["optim"]["beta2"] == 0.95 and saved["sft"]["optim"]["lr"] == 1e-3
    assert saved["scratch"]["size"]["max_position_embeddings"] == 1024
    registry = build_registry()
    original = load_config(runs["work"] / "cfg.toml", registry)
    assert saved == json.loads(json.dumps(original.resolved))  # tuples → lists
    assert build_config(saved, registry).stages == original.stages  # it runs the same pipeline again


def test_metrics_jsonl(runs):
    rows = _metrics(runs["a"])
    assert all({"stage", "step"} <= set(r) and len(r) > 2 for r in rows)
    assert {r["stage"] for r in rows} == {"pretrain", "sft"}  # scratch trains nothing
    for stage, n in (("pretrain", PRETRAIN_STEPS), ("sft", SFT_STEPS)):
        train = [r for r in rows if r["stage"] == stage and "grad_norm" in r]
        assert [r["step"] for r in train] == list(range(1, n + 1))  # log_every = 1
        assert all(r["loss"] > 0 and math.isfinite(r["loss"]) and r["lr"] > 0 for r in train)
        evals = [r["step"] for r in rows if r["stage"] == stage and "eval_loss" in r]
        every = 10 if stage == "pretrain" else 3
        assert evals == list(range(every, n, every)) + [n]
    pre = [r for r in rows if r["stage"] == "pretrain" and "grad_norm" in r]
    assert pre[-1]["loss"] < pre[0]["loss"] - 1.0


def test_tensorboard_events(runs):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = list((runs["a"] / "tensorboard").glob("events.out.tfevents.*"))
    assert events
    acc = EventAccumulator(str(runs["a"] / "tensorboard"))
    acc.Reload()
    tags = acc.Tags()["scalars"]
    assert {"pretrain/loss", "pretrain/eval_loss", "sft/loss", "sft/grad_norm"} <= set(tags)
    assert [e.step for e in acc.Scalars("pretrain/loss")] == list(range(1, PRETRAIN_STEPS + 1))


def test_checkpoints(runs):
    pre = runs["a"] / "checkpoints" / "pretrain"
    kept = sorted(p.name for p in pre.iterdir())
    assert kept == ["step_00000010", "step_00000020"]  # none at the last step: the model dir is the result
    for name in kept:
        assert (pre / name / "COMPLETE").is_file() and (pre / name / "learner.pt").is_file()
        assert json.loads((pre / name / "state.json").read_text())["step"] == int(name[5:])
    assert not list(runs["a"].rglob("*.tmp"))
    assert [p.name for p in (runs["a"] / "checkpoints" / "sft").iterdir()] == ["step_00000003"]


def test_model_dirs_load_in_transformers(runs):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    for stage in ("scratch", "pretrain", "sft"):
        d = runs["a"] / "models" / stage
        assert (d / "config.json").is_file() and list(d.glob("*.safetensors"))
        tok = AutoTokenizer.from_pretrained(str(d))
        model = AutoModelForCausalLM.from_pretrained(str(d))
        assert model.config.model_type == "qwen2" and model.config.vocab_size == len(tok) <= 448
        assert tok.chat_template
        text = tok.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False, add_generation_prompt=True)
        assert text == "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"
        ids = tok(text, return_tensors="pt")["input_ids"]
        with torch.no_grad():
            assert model(input_ids=ids).logits.shape == (1, ids.shape[1], len(tok))
    a = AutoModelForCausalLM.from_pretrained(str(runs["a"] / "models" / "scratch")).state_dict()
    b = AutoModelForCausalLM.from_pretrained(str(runs["a"] / "models" / "pretrain")).state_dict()
    assert any(not torch.equal(a[k], b[k]) for k in a), "pretraining changed the weights"


def test_summary_json(runs):
    summary = json.loads((runs["a"] / "summary.json").read_text())
    assert list(summary["stages"]) == ["scratch", "pretrain", "sft"]
    # Paths are as the run saw them (run.output_dir is relative here, so relative to the working directory).
    assert runs["work"] / summary["final_model"] == runs["a"] / "models" / "sft"
    for stage, info in summary["stages"].items():
        assert info["plugin"] == stage and runs["work"] / info["model_dir"] == runs["a"] / "models" / stage
        assert info["metrics"]["stage_seconds"] > 0
        (probe,) = info["probes"]
        assert probe["prompt"] == "What is 3 plus 4?" and isinstance(probe["answer"], str)
    pre = summary["stages"]["pretrain"]["metrics"]
    assert pre["eval_ppl"] < pre["eval_ppl_initial"] / 5, pre
    assert pre["eval_loss"] == pytest.approx(math.log(pre["eval_ppl"]))
    sft = summary["stages"]["sft"]["metrics"]
    assert {"eval_loss", "format_rate_before", "format_rate_after"} <= set(sft)
    vocab = json.loads((runs["a"] / "models" / "scratch" / "config.json").read_text())["vocab_size"]
    assert summary["stages"]["scratch"]["metrics"]["vocab_size"] == vocab <= 448


def test_plots(runs):
    pngs = sorted(p.name for p in (runs["a"] / "plots").glob("*.png"))
    assert pngs == ["pretrain.png", "sft.png"]
    for p in (runs["a"] / "plots").glob("*.png"):
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and p.stat().st_size > 2000


# ---------------------------------------------------------------------------------------------- resume


def test_kill_landed_inside_pretrain(runs):
    assert "pretrain" not in runs["killed_summary"]["stages"], "B was killed too late to test a mid-stage resume"
    log = (runs["work"] / "b_resume.out").read_text()
    assert "scratch: done in an earlier attempt, skipped" in log
    assert "resuming pretrain after step" in log


def test_second_kill_landed_inside_sft(runs):
    killed = runs["killed_in_sft"]
    assert "pretrain" in killed["summary"]["stages"] and "sft" not in killed["summary"]["stages"], killed
    assert not killed["sft_model"], "B' was killed too late to test a mid-stage sft resume"
    log = (runs["work"] / "b_resume2.out").read_text()
    assert "scratch: done in an earlier attempt, skipped" in log
    assert "pretrain: done in an earlier attempt, skipped" in log
    assert "resuming sft after step 3" in log


def test_resume_reproduces_the_uninterrupted_run(runs):
    a, b = _metrics(runs["a"]), _metrics(runs["b"])
    # The same lines in the same order: every step once, none lost, none repeated.
    assert [(r["stage"], r["step"], sorted(r)) for r in b] == [(r["stage"], r["step"], sorted(r)) for r in a]
    for ra, rb in zip(a, b):
        for key in set(ra) - TIMING_KEYS - {"stage", "step"}:
            assert rb[key] == pytest.approx(ra[key], rel=1e-5, abs=1e-6), (ra["stage"], ra["step"], key)
    sa = json.loads((runs["a"] / "summary.json").read_text())["stages"]
    sb = json.loads((runs["b"] / "summary.json").read_text())["stages"]
    for stage in ("pretrain", "sft"):
        for key, value in sa[stage]["metrics"].items():
            if key not in TIMING_KEYS:
                assert sb[stage]["metrics"][key] == pytest.approx(value, rel=1e-5, abs=1e-6), (stage, key)
        assert sb[stage]["probes"] == sa[stage]["probes"]


def test_a_dead_learner_restarts_its_stage_from_the_last_checkpoint(runs):
    """C's pretrain learner was SIGKILLed after its step-10 checkpoint: the stage started again from it, and every
    step was logged once with A's values (the restart is a resume inside the same driver)."""
    out = " ".join((runs["work"] / "c.out").read_text().split())  # the console wraps long lines
    assert f"pid {runs['killed_learners']['c']}, died" in out, out[-3000:]
    assert "restarting the stage from its last checkpoint" in out and "resuming pretrain after step 10" in out
    a, c = _metrics(runs["a"]), _metrics(runs["c"])
    assert [(r["stage"], r["step"], sorted(r)) for r in c] == [(r["stage"], r["step"], sorted(r)) for r in a]
    for ra, rc in zip(a, c):
        for key in set(ra) - TIMING_KEYS - {"stage", "step"}:
            assert rc[key] == pytest.approx(ra[key], rel=1e-5, abs=1e-6), (ra["stage"], ra["step"], key)
    sc = json.loads((runs["c"] / "summary.json").read_text())["stages"]
    assert sc["pretrain"]["metrics"]["learner_restarts"] == 1
    assert "learner_restarts" not in sc["sft"]["metrics"]


def test_past_its_restart_budget_a_dead_learner_stops_the_run_with_one_line(runs):
    assert runs["d_rc"] != 0
    err = (runs["work"] / "d.err").read_text()
    assert "Traceback" not in err, err[-3000:]
    line = [ln for ln in err.splitlines() if "learner_max_restarts" in ln]
    assert len(line) == 1, err[-3000:]
    assert "stage 'pretrain': policy learner on node" in line[0]
    assert f"pid {runs['killed_learners']['d']}, died" in line[0]
    assert "ray.learner_max_restarts=0" in line[0] and "--resume" in line[0]
    assert (runs["d"] / "checkpoints" / "pretrain" / "step_00000010" / "COMPLETE").exists()  # nothing lost


def test_resumed_final_weights_match(runs):
    import torch
    from safetensors.torch import load_file

    for stage in ("pretrain", "sft"):
        wa = load_file(str(runs["a"] / "models" / stage / "model.safetensors"))
        wb = load_file(str(runs["b"] / "models" / stage / "model.safetensors"))
        assert wa.keys() == wb.keys()
        for k in wa:
            torch.testing.assert_close(wb[k], wa[k], rtol=1e-5, atol=1e-6)


def test_run_dir_is_not_reused_without_resume(runs):
    out = subprocess.run([RAYLIGN, "run", "cfg.toml"], cwd=runs["work"], capture_output=True, text=True, timeout=120)
    assert out.returncode != 0
    assert "already exists" in out.stderr and "--resume" in out.stderr
    assert "Traceback" not in out.stderr
