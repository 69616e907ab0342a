"""Rollout workers lost during a whole GRPO run: one SIGKILLed in the middle of a step, then the node it runs on
removed in the middle of the next. Real Ray, real vLLM, the session's tiny model.

Run C goes through ``raylign run --address`` on a three-node ``ray.cluster_utils.Cluster``: the learner and the
verifiers are pinned to the head (node_a), the rollout role to ``rollout_node``, a resource node_b and node_c both
offer. While step 2 is being generated the test SIGKILLs the rollout worker's process; while step 3 is, it removes
the node the (replaced) worker runs on. Run A is the same job uninterrupted, run meanwhile in this process on the
session's Ray (no pins). C must log every step once, each replacement with the weights of the step before it
(version and canary) and the prompts its predecessor had not finished, the second on the other node, and C's
per-step rewards, completions and final eval must equal A's: samples are seeded per prompt and sample.
"""
from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from pathlib import Path

import pytest

from conftest import finish_run, kill_run, start_run

pytestmark = [pytest.mark.vllm, pytest.mark.slow]

RAYLIGN = str(Path(sys.executable).with_name("raylign"))
STEPS, PROMPTS, GROUP = 3, 8, 4
CPU_BEFORE_KILL = 0.15  # CPU seconds the worker spends on a step's generation before the fault (it needs ~0.5)

CONFIG = """
[run]
name = "{name}"
output_dir = "{out}"
seed = 0
pipeline = ["grpo"]
base_model = "{model}"
probes = []

[rollout]
max_model_len = 256
kv_cache_gb = 1
max_num_seqs = 8          # a step's 32 samples in waves, so its generation lasts long enough to be cut
{rollout_pin}
[rewards]
num_workers = 1
{rewards_pin}
[ray]
{learner_pin}
[grpo]
data = ["tasks.jsonl"]
eval_data = ["tasks.jsonl"]
eval_size = 2
verifier = "length"
check = {{ rows = 0, solve_rows = 0 }}
steps = {steps}
prompts_per_step = {prompts}
group_size = {group}
micro_batch_size = 32
max_new_tokens = 32
checkpoint_every = 0
"""

PINS = {"rollout_pin": "resources = { rollout_node = 1 }", "rewards_pin": "resources = { node_a = 1 }",
        "learner_pin": "learner_resources = { node_a = 1 }"}


def write_job(work: Path, model: Path, name: str, pinned: bool) -> Path:
    with open(work / "tasks.jsonl", "w") as fh:
        for i in range(16):
            fh.write(json.dumps({"prompt": f"Say anything, {i}."}) + "\n")
    pins = PINS if pinned else {k: "" for k in PINS}
    cfg = work / f"{name}.toml"
    cfg.write_text(CONFIG.format(name=name, out=work / "runs", model=model, steps=STEPS, prompts=PROMPTS,
                                 group=GROUP, **pins))  # an absolute output_dir: actors on other nodes write there
    return cfg


def step_rows(run_dir: Path) -> list[dict]:
    """The training steps logged so far (read while the run writes: a partial last line is skipped)."""
    path = run_dir / "metrics.jsonl"
    lines = path.read_text().split("\n")[:-1] if path.exists() else []
    return [r for r in map(json.loads, lines) if r.get("stage") == "grpo" and "reward_mean" in r]


def rollouts(run_dir: Path) -> list[tuple]:
    rows = [json.loads(line) for line in (run_dir / "rollouts" / "grpo.jsonl").read_text().splitlines()]
    return [(r["step"], r["kind"], r["group"], r["sample"], r["completion"], r["reward"], r["status"]) for r in rows]


# ---------------------------------------------------------------------------------------------- processes


def descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    children.setdefault(int(f.read().rsplit(")", 1)[1].split()[1]), []).append(int(entry))
            except (OSError, ValueError, IndexError):
                pass
    out, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def rollout_workers(node) -> list[int]:
    """The rollout worker processes of a ``ray.cluster_utils`` node: below its raylet, named by Ray
    ``ray::RolloutWorker...``."""
    out = []
    for pid in descendants(node.all_processes["raylet"][0].process.pid):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if f.read().startswith(b"ray::RolloutWorker"):
                    out.append(pid)
        except OSError:
            pass
    return out


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Run:
    """Run C's process, watched from the test."""

    def __init__(self, proc, work: Path, run_dir: Path) -> None:
        self.proc, self.work, self.run_dir = proc, work, run_dir

    def wait_for_step(self, step: int) -> None:
        deadline = time.monotonic() + 600
        while len(step_rows(self.run_dir)) < step:
            assert self.proc.poll() is None, (self.work / "c.err").read_text()[-3000:]
            assert time.monotonic() < deadline, f"run C logged no step {step} in time"
            time.sleep(0.01)

    def generating(self, node) -> int:
        """Wait until the rollout worker on ``node`` has spent CPU_BEFORE_KILL on the current step; its pid."""
        (pid,) = rollout_workers(node)
        start, deadline = cpu_seconds(pid), time.monotonic() + 600
        while cpu_seconds(pid) - start < CPU_BEFORE_KILL:
            assert self.proc.poll() is None, (self.work / "c.err").read_text()[-3000:]
            assert time.monotonic() < deadline, "the rollout worker never generated"
            time.sleep(0.005)
        return pid


def run_in_process(cfg: Path) -> None:
    from rich.console import Console

    from raylign.engine.config import load_config
    from raylign.engine.driver import run_pipeline
    from raylign.engine.plugins import build_registry

    reg = build_registry()
    run_pipeline(load_config(cfg, reg), reg, console=Console(quiet=True))


@pytest.fixture(scope="module")
def runs(ray_session, tiny_model_dir, tmp_path_factory):
    from ray.cluster_utils import Cluster

    work_a, work_c = tmp_path_factory.mktemp("run_a"), tmp_path_factory.mktemp("run_c")
    a_done: dict = {}

    def run_a():
        t0 = time.perf_counter()
        try:
            run_in_process(write_job(work_a, tiny_model_dir, "a", pinned=False))
        except BaseException as exc:  # noqa: BLE001 - raised in the test's thread
            a_done["error"] = exc
        a_done["seconds"] = time.perf_counter() - t0

    thread_a = threading.Thread(target=run_a, name="run-a")
    thread_a.start()
    t0 = time.perf_counter()
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 2, "resources": {"node_a": 100}})
    events: dict = {}
    try:
        nodes = [cluster.add_node(num_cpus=2, resources={name: 100, "rollout_node": 100})
                 for name in ("node_b", "node_c")]
        cluster.wait_for_nodes()
        (work_c / "cfg.toml").write_text(write_job(work_c, tiny_model_dir, "c", pinned=True).read_text())
        c = Run(start_run(RAYLIGN, work_c, ["--address", cluster.address], "c"), work_c, work_c / "runs" / "c")
        try:
            # step 2: SIGKILL the rollout worker's process mid-generation
            c.wait_for_step(1)
            (node,) = [n for n in nodes if rollout_workers(n)]
            pid = c.generating(node)
            os.kill(pid, signal.SIGKILL)
            events["killed"] = {"pid": pid, "node": node.node_id, "ip": node.node_ip_address}  # comes back there
            # step 3: remove the node the (replaced) worker runs on, mid-generation
            c.wait_for_step(2)
            (node,) = [n for n in nodes if rollout_workers(n)]
            (other,) = [n for n in nodes if n is not node]
            c.generating(node)
            cluster.remove_node(node)
            removed = time.monotonic()
            while not rollout_workers(other) and c.proc.poll() is None and time.monotonic() < removed + 600:
                time.sleep(0.05)
            events["removed"] = {"node": node.node_id, "other": other.node_id, "other_ip": other.node_ip_address,
                                 "moved": bool(rollout_workers(other)), "seconds": time.monotonic() - removed}
            finish_run(c.proc, work_c, "c", timeout=600)
        finally:
            if c.proc.poll() is None:
                kill_run(c.proc)
        c_seconds = time.perf_counter() - t0
    finally:
        cluster.shutdown()
        thread_a.join(timeout=900)
    if "error" in a_done:
        raise a_done["error"]
    print(f"\nrun a (in this process, meanwhile) {a_done['seconds']:.1f} s; run c (cluster, two faults) "
          f"{c_seconds:.1f} s")
    log = (work_c / "c.err").read_text().splitlines()
    return {"a": work_a / "runs" / "a", "c": work_c / "runs" / "c", "events": events,
            "restarts": [ln for ln in log if ln.startswith("rollout worker 0 on node") and " died " in ln]}


def replaced(line: str) -> dict:
    """The numbers of the fleet's restart line (engine/rollout.py ``_replace``)."""
    return {"seconds": float(line.split(" in ", 1)[1].split(" s ", 1)[0]),
            "version": int(line.split("with weights version ", 1)[1].split()[0]),
            "canary": line.split("canary max abs diff ", 1)[1].split(")", 1)[0],
            "redo": int(line.split("generating its ", 1)[1].split()[0])}


# ---------------------------------------------------------------------------------------------- tests


def test_a_worker_killed_mid_step_is_replaced_with_the_current_weights(runs):
    killed, (line, _) = runs["events"]["killed"], runs["restarts"]
    print(f"\n{line}")
    assert f"pid {killed['pid']} died (its process exited" in line, line
    assert f"(id {killed['node']}), pid" in line and f"replaced on node {killed['ip']} (id {killed['node']})" in line
    got = replaced(line)
    assert got["version"] == 1 and got["canary"] != "n/a", line  # step 1's weights, checked by the canary
    assert 1 <= got["redo"] <= PROMPTS, line  # the kill cut step 2: its unfinished prompts were asked again


def test_a_node_removed_mid_step_brings_the_worker_back_on_another_node(runs):
    removed, (_, line) = runs["events"]["removed"], runs["restarts"]
    print(f"\n{line}\nits process on the other node {removed['seconds']:.1f} s after the removal")
    assert removed["moved"], "no rollout worker came up on the remaining node"
    assert f"died (its node {removed['node']} died" in line, line
    assert f"replaced on node {removed['other_ip']} (id {removed['other']})" in line, line
    got = replaced(line)
    assert got["version"] == 2 and got["canary"] != "n/a" and 1 <= got["redo"] <= PROMPTS, line


def test_the_run_logs_every_step_once_with_the_uninterrupted_runs_rewards(runs):
    a, c = step_rows(runs["a"]), step_rows(runs["c"])
    assert [r["step"] for r in c] == list(range(1, STEPS + 1))  # every step logged once
    assert [r["rollout_restarts"] for r in c] == [0, 1, 2]
    assert [r["rollout_restarts"] for r in a] == [0, 0, 0]
    for ra, rc in zip(a, c):
        for key in ("reward_mean", "pass_rate", "response_length", "verdict/ok", "weights_version"):
            assert rc[key] == ra[key], (ra["step"], key)
        for key in ("loss", "kl", "ratio_mean"):
            if key in ra:
                assert rc[key] == pytest.approx(ra[key], rel=1e-4, abs=1e-5), (ra["step"], key)
    # the same samples and verdicts in every step, and the same greedy answers in the evals before and after
    assert rollouts(runs["c"]) == rollouts(runs["a"])
    assert (runs["c"] / "models" / "grpo" / "config.json").is_file()
