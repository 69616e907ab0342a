"""Reward roles that die: a verifier worker process and a verifier actor SIGKILLed while they hold rows, a
reward-provider replica killed mid-batch. Rows in flight come back as ``error`` verdicts (never a 0 that looks
scored), the actor is replaced, and past ``rewards.max_restarts`` the next death stops the run with one line
(:class:`RoleFailed`: actor, node, cause). Real Ray actors and processes, killed as the OOM killer would.
"""
from __future__ import annotations

import json
import os
import signal
import textwrap
import threading
import time
from pathlib import Path

import pytest

from raylign.engine.config import RewardsConfig
from raylign.engine.errors import RoleFailed

PLUGIN = textwrap.dedent('''
    import os
    import time

    from raylign.engine import hookimpl


    def echo(completion, task):
        return float(completion == task.get("answer"))


    def hold(completion, task):
        """Say which process scores the row, then take ``task["s"]`` seconds."""
        open(task["pid_file"] + ".tmp", "w").write(str(os.getpid()))
        os.replace(task["pid_file"] + ".tmp", task["pid_file"])
        time.sleep(task.get("s", 60))
        return 1.0


    @hookimpl
    def raylign_register_verifiers(register):
        register("echo", echo)
        register("hold", hold)
''')


def wait_for(path: Path, timeout: float = 120.0) -> int:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.01)
    return int(path.read_text())


def score_in_thread(fleet, samples):
    out: dict = {}

    def run():
        try:
            out["verdicts"] = fleet.score(samples)
        except BaseException as exc:  # noqa: BLE001 - the test asserts on it
            out["error"] = exc

    thread = threading.Thread(target=run)
    thread.start()
    return thread, out


@pytest.fixture(scope="module")
def plugin_file(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("reward_faults") / "raylign_fault_verifiers.py"
    path.write_text(PLUGIN)
    return str(path)


@pytest.fixture(scope="module")
def fleet(ray_session, plugin_file):
    """One verifier actor with two worker processes, one replacement allowed."""
    from raylign.engine.rewards import RewardFleet

    f = RewardFleet(RewardsConfig(num_workers=1, num_cpus=0.5, timeout_s=120, memory_mb=768, max_restarts=1),
                    default_verifier="echo", procs_per_actor=2, plugins=[plugin_file], entry_points=False)
    f.ready()
    f.load(["echo", "hold"])
    yield f
    f.shutdown()


ECHO = {"completion": "7", "task": {"answer": "7"}}


def test_a_killed_verifier_process_fails_its_row_only(fleet, tmp_path):
    pid_file = tmp_path / "worker.pid"
    thread, out = score_in_thread(fleet, [{"completion": "", "task": {"verifier": "hold", "pid_file": str(pid_file)}},
                                          ECHO, ECHO])
    os.kill(wait_for(pid_file), signal.SIGKILL)
    thread.join(timeout=120)
    held, *rest = out["verdicts"]
    assert held.status == "error" and "killed by signal SIGKILL" in held.error, held
    assert [(v.status, v.reward) for v in rest] == [("ok", 1.0)] * 2
    assert fleet.restarts == 0  # a process is forked again from the actor's zygote; the actor lives on
    assert [v.status for v in fleet.score([ECHO] * 4)] == ["ok"] * 4


def test_a_killed_verifier_actor_errors_its_rows_is_replaced_then_the_budget_stops_the_run(fleet, tmp_path):
    before = fleet.actors.info(0)
    pid_file = tmp_path / "actor.pid"
    rows = [{"completion": "", "task": {"verifier": "hold", "pid_file": str(pid_file)}}] + [ECHO] * 5
    thread, out = score_in_thread(fleet, rows)
    wait_for(pid_file)  # the rows are in the actor
    os.kill(before["pid"], signal.SIGKILL)
    thread.join(timeout=300)
    assert "verdicts" in out, out
    # every row the actor held (two chunks of four and two: all six) is an error saying so, none a silent 0
    assert [v.status for v in out["verdicts"]] == ["error"] * len(rows)
    assert all("verifier actor 0 died while scoring this row" in v.error and "exited" in v.error
               for v in out["verdicts"]), out["verdicts"][0].error
    assert fleet.restarts == 1
    (entry,) = fleet.actors.restart_log
    assert entry["actor"] == "verifier actor 0" and str(before["pid"]) in entry["node"]
    after = fleet.actors.info(0)
    assert after["pid"] != before["pid"]
    # the replacement serves, with the verifiers load() constructed
    assert [(v.status, v.reward) for v in fleet.score([ECHO] * 3 + [dict(ECHO, completion="8")])] == \
           [("ok", 1.0)] * 3 + [("ok", 0.0)]

    # rewards.max_restarts = 1: the next death stops the run with one line naming the actor, its node and cause
    os.kill(after["pid"], signal.SIGKILL)
    with pytest.raises(RoleFailed) as failed:
        fleet.score([ECHO] * 2)
    message = str(failed.value)
    assert "\n" not in message and message.startswith("verifier actor 0 on node "), message
    assert after["node_ip"] in message and after["node_id"] in message and str(after["pid"]) in message
    assert "exited" in message and "rewards.max_restarts=1" in message, message


# ---------------------------------------------------------------------------------------------- reward providers


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@pytest.fixture(scope="module")
def reward_model_dir(tiny_model_dir, tmp_path_factory) -> Path:
    """A one-label sequence-classification model (the tiny model's body, a seeded head) with its stats file."""
    from raylign.engine.modeling import load_tokenizer, load_value_model, save_model_dir

    out = save_model_dir(load_value_model(tiny_model_dir, seed=3), load_tokenizer(tiny_model_dir),
                         tmp_path_factory.mktemp("rm") / "reward_model")
    (out / "reward_stats.json").write_text(json.dumps({"mean": 0.0, "std": 1.0}))
    return out


def test_a_killed_reward_model_replica_errors_its_batch_is_replaced_then_the_budget_stops_the_run(
        ray_session, reward_model_dir):
    from raylign.engine.rewards.providers import ProviderPool

    batch = 4
    samples = [{"completion": f"the quick brown fox {i} " * 8, "task": {"prompt": f"What is {i}?"}} for i in range(400)]
    pool = ProviderPool("reward_model", {"model": str(reward_model_dir)}, replicas=1, num_cpus=0.5, batch_size=batch,
                        torch_threads=1, max_restarts=1)
    try:
        expected = pool.score(samples)
        assert {v.status for v in expected} == {"ok"}
        before = pool.actors.info(0)
        thread, out = score_in_thread(pool, samples)
        start = cpu_seconds(before["pid"])
        while cpu_seconds(before["pid"]) - start < 0.2 and thread.is_alive():  # batches are being scored
            time.sleep(0.005)
        assert thread.is_alive(), "the scoring ended before the kill: give it more samples"
        os.kill(before["pid"], signal.SIGKILL)
        thread.join(timeout=300)
        verdicts = out["verdicts"]
        failed = [i for i, v in enumerate(verdicts) if v.status != "ok"]
        # the batch in flight, and only it, is an error naming the replica; the rest were scored (before the kill
        # by the dead replica, after it by its replacement) with the very same scores
        assert len(failed) == batch and failed[0] % batch == 0 and failed == list(range(failed[0], failed[0] + batch))
        assert 0 < failed[0] < len(samples) - batch, failed  # scored before and after the death
        for i in failed:
            assert verdicts[i].status == "error" and verdicts[i].reward == 0.0
            assert "reward provider 'reward_model' replica 0 died while scoring this row" in verdicts[i].error
        assert [v.reward for i, v in enumerate(verdicts) if i not in failed] == \
               pytest.approx([v.reward for i, v in enumerate(expected) if i not in failed], abs=1e-5)
        assert pool.restarts == 1
        after = pool.actors.info(0)
        assert after["pid"] != before["pid"]

        os.kill(after["pid"], signal.SIGKILL)  # rewards.max_restarts = 1: the next death stops the run
        with pytest.raises(RoleFailed) as failed_run:
            pool.score(samples[:2])
        message = str(failed_run.value)
        assert "\n" not in message and message.startswith("reward provider 'reward_model' replica 0 on node "), message
        assert after["node_id"] in message and str(after["pid"]) in message and "exited" in message
        assert "rewards.max_restarts=1" in message
    finally:
        pool.shutdown()
