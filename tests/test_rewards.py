"""The verifier process pool and the reward fleet: real worker processes, real Ray actors, real kills.

The test verifiers live in a plugin *file* that the worker processes load by path (``plugins=[...]``,
``entry_points=False``), so these tests are hermetic: they do not depend on which packages are installed.
"""
from __future__ import annotations

import os
import textwrap
import time
from pathlib import Path

import pytest

from raylign.engine.config import RewardsConfig
from raylign.engine.errors import PluginError
from raylign.engine.rewards.pool import VerifierPool
from raylign.verifiers import Verdict

TIMEOUT = 1.5  # the hard deadline the tests use, seconds (asserted only as a lower bound: no wall-clock ceilings)

PLUGIN_SOURCE = textwrap.dedent('''
    """Verifiers that misbehave in every way a real one can, for the pool, fleet, CLI and service tests."""
    import ctypes
    import os
    import time

    from raylign.engine import hookimpl
    from raylign.verifiers import Verdict


    def echo(completion, task):
        if "answer" not in task:
            return Verdict(status="invalid", error="the row has no answer")
        return float(completion == task["answer"])


    def sleepy(completion, task):
        time.sleep(3600)


    def crash(completion, task):
        os._exit(3)


    def segv(completion, task):
        ctypes.string_at(0)


    def raiser(completion, task):
        raise ValueError("boom")


    def memhog(completion, task):
        return float(len(bytearray(8 << 30)))  # 8 GiB: over the address-space limit


    def noisy(completion, task):
        print("verifiers that print must not break the protocol\\n" * 100)
        return 0.5


    def setsid_child(completion, task):  # a child in its own session, then past the deadline
        import subprocess
        import sys

        p = subprocess.Popen([sys.executable, "-c", "import os, time; os.setsid(); time.sleep(600)"])
        open(task["pid_file"], "w").write(str(p.pid))
        time.sleep(3600)


    def daemon(completion, task):  # a double-forked daemon (its parent exits), then past the deadline
        r, w = os.pipe()
        if os.fork() == 0:
            if os.fork() == 0:
                os.setsid()
                os.write(w, str(os.getpid()).encode())
                time.sleep(600)
                os._exit(0)
            os._exit(0)
        open(task["pid_file"], "w").write(os.read(r, 32).decode())
        time.sleep(3600)


    class Scaled:
        """A class verifier with a constructor option."""

        def __init__(self, scale=1.0):
            self.scale = scale
            self.backend_name = "toy"

        def __call__(self, completion, task):
            return Verdict(reward=self.scale, details={"pid": os.getpid(), "tags": {"b", "a"}})


    @hookimpl
    def raylign_register_verifiers(register):
        for name, fn in [("echo", echo), ("sleepy", sleepy), ("crash", crash), ("segv", segv),
                         ("raiser", raiser), ("memhog", memhog), ("noisy", noisy), ("scaled", Scaled),
                         ("setsid_child", setsid_child), ("daemon", daemon)]:
            register(name, fn)
''')


def write_test_plugin(directory: Path) -> str:
    """Write the misbehaving-verifiers plugin file into ``directory``; returns its path."""
    path = Path(directory) / "raylign_test_verifiers.py"
    path.write_text(PLUGIN_SOURCE)
    return str(path)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie still answers kill(0)
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


@pytest.fixture(scope="module")
def plugin_file(tmp_path_factory) -> str:
    return write_test_plugin(tmp_path_factory.mktemp("verifier_plugin"))


@pytest.fixture(scope="module")
def pool(plugin_file):
    with VerifierPool(workers=2, timeout_s=TIMEOUT, memory_mb=768, plugins=[plugin_file], entry_points=False,
                      verifier_options={"scaled": {"scale": 3.0}}) as p:
        yield p


# (verifier, completion, task, status, reward, error substring)
CASES = [
    ("echo", "42", {"answer": "42"}, "ok", 1.0, None),
    ("echo", "41", {"answer": "42"}, "ok", 0.0, None),
    ("echo", "42", {}, "invalid", 0.0, "no answer"),
    ("raiser", "x", {}, "error", 0.0, "ValueError: boom"),
    ("crash", "x", {}, "error", 0.0, "exit code 3"),
    ("segv", "x", {}, "error", 0.0, "SIGSEGV"),
    ("memhog", "x", {}, "error", 0.0, "MemoryError"),
    ("noisy", "x", {}, "ok", 0.5, None),
    ("scaled", "x", {}, "ok", 3.0, None),
    ("sleepy", "x", {}, "timeout", 0.0, "deadline"),
]


def test_pool_scores_every_kind_of_verifier(pool):
    assert "sleepy" in pool.names()
    verdicts = pool.verify_many([(name, completion, task) for name, completion, task, *_ in CASES])
    for (name, _, _, status, reward, error), v in zip(CASES, verdicts):
        assert isinstance(v, Verdict)
        assert (v.status, v.reward) == (status, reward), (name, v)
        if error is None:
            assert v.error is None, (name, v)
        else:
            assert error in v.error, (name, v)
    assert verdicts[8].details["tags"] == ["a", "b"]  # details survive the process boundary as JSON


def test_timeout_kills_the_worker_and_the_pool_keeps_serving(pool):
    pids = {pool.verify("scaled", "", {}).details["pid"] for _ in range(4)}
    start = time.monotonic()
    v = pool.verify("sleepy", "x", {})
    elapsed = time.monotonic() - start
    assert v.status == "timeout" and elapsed >= TIMEOUT  # (the sleeper sleeps an hour: the deadline ended it)
    assert [pool.verify("echo", "1", {"answer": "1"}).reward for _ in range(4)] == [1.0] * 4
    time.sleep(0.2)
    new_pids = {pool.verify("scaled", "", {}).details["pid"] for _ in range(4)}
    killed = pids - new_pids
    assert len(killed) == 1 and not any(pid_alive(p) for p in killed)  # replaced, not just abandoned


@pytest.mark.parametrize("name", ["setsid_child", "daemon"])
def test_what_a_killed_worker_started_dies_with_it(pool, tmp_path, name):
    """A grandchild that left the worker's process group (setsid), or a daemon reparented away from it, does not
    outlive the worker's kill at the deadline."""
    pid_file = tmp_path / "pid"
    v = pool.verify(name, "x", {"pid_file": str(pid_file)})
    assert v.status == "timeout"
    pid = int(pid_file.read_text())
    for _ in range(40):  # the kill is synchronous; give the kernel a moment to tear the process down
        if not pid_alive(pid):
            break
        time.sleep(0.05)
    assert not pid_alive(pid)
    assert pool.verify("echo", "1", {"answer": "1"}).reward == 1.0


def test_a_dead_zygote_is_replaced_and_not_blamed_on_the_next_row(plugin_file):
    import signal

    with VerifierPool(workers=1, timeout_s=TIMEOUT, memory_mb=768, plugins=[plugin_file], entry_points=False) as p:
        assert p.verify("echo", "1", {"answer": "1"}).status == "ok"
        old = p._zygote.proc.pid
        os.kill(old, signal.SIGKILL)  # the OOM killer, an operator, ...
        time.sleep(0.6)  # its worker follows it (the worker's watchdog)
        v = p.verify("echo", "2", {"answer": "2"})
        assert (v.status, v.reward) == ("ok", 1.0), v  # the unrelated next row is scored, not an error
        assert p._zygote.proc.pid != old
        crash = p.verify("crash", "x", {})  # a row that kills its own worker is still that row's error
        assert crash.status == "error" and "zygote" not in crash.error


def test_load_fails_fast_and_reports_backend(pool):
    assert pool.load("scaled") == {"backend_name": "toy"}
    with pytest.raises(PluginError, match=r"unknown verifier 'ecoh'.*Did you mean 'echo'.*Known: crash, daemon, echo"):
        pool.load("ecoh")


def test_plugin_that_fails_to_load_is_a_clear_error(tmp_path):
    bad = tmp_path / "broken_plugin.py"
    bad.write_text("import not_a_module_anywhere\n")
    with VerifierPool(workers=1, plugins=[str(bad)], entry_points=False) as p:
        with pytest.raises(PluginError, match="not_a_module_anywhere"):
            p.verify_many([("echo", "", {})])


def test_memory_limit_below_the_workers_own_size_is_a_clear_error(plugin_file):
    with VerifierPool(workers=1, memory_mb=8, plugins=[plugin_file], entry_points=False) as p:
        with pytest.raises(PluginError, match="memory_mb=8 is below"):
            p.names()


# ------------------------------------------------------------------------------------------- the fleet

@pytest.fixture(scope="module")
def fleet(ray_session, plugin_file):
    from raylign.engine.rewards import RewardFleet

    cfg = RewardsConfig(num_workers=2, num_cpus=0.5, timeout_s=TIMEOUT, memory_mb=768)
    f = RewardFleet(cfg, default_verifier="echo", verifier_options={"scaled": {"scale": 2.0}},
                    plugins=[plugin_file], entry_points=False)
    f.ready()
    yield f
    f.shutdown()


def test_fleet_routes_each_row_to_its_verifier(fleet):
    samples = [
        {"completion": "7", "task": {"answer": "7"}},  # default: echo
        {"completion": "7", "task": {"answer": "8"}},
        {"completion": "7", "task": {"verifier": "scaled"}},
        {"completion": "7", "task": {"verifier": "raiser"}},
        {"completion": "7", "task": {}},  # echo without an answer: the verifier says invalid
    ] * 3
    verdicts = fleet.score(samples)
    assert [(v.status, v.reward) for v in verdicts] == [
        ("ok", 1.0), ("ok", 0.0), ("ok", 2.0), ("error", 0.0), ("invalid", 0.0)] * 3
    assert "ValueError: boom" in verdicts[3].error
    assert len({v.details["pid"] for v in verdicts if "pid" in v.details}) >= 1
    assert fleet.status_counts(verdicts) == {"verdict/ok": 9, "verdict/timeout": 0, "verdict/error": 3,
                                             "verdict/invalid": 3}


def test_fleet_timeout_and_crashes_are_reported_and_it_keeps_serving(fleet):
    samples = [{"completion": "", "task": {"verifier": "sleepy"}},
               {"completion": "", "task": {"verifier": "crash"}},
               {"completion": "", "task": {"verifier": "segv"}},
               {"completion": "1", "task": {"answer": "1"}}]
    verdicts = fleet.score(samples)
    assert [v.status for v in verdicts] == ["timeout", "error", "error", "ok"]
    assert "killed by signal SIGSEGV" in verdicts[2].error and "exit code 3" in verdicts[1].error
    assert "deadline" in verdicts[0].error  # the sleeper sleeps an hour: only the deadline ends it
    again = fleet.score([{"completion": "1", "task": {"answer": "1"}}] * 8)
    assert [(v.status, v.reward) for v in again] == [("ok", 1.0)] * 8
    assert fleet.status_counts(verdicts + again) == {"verdict/ok": 9, "verdict/timeout": 1, "verdict/error": 2,
                                                     "verdict/invalid": 0}


def test_fleet_unknown_verifier_fails_in_the_driver_before_any_work(fleet, plugin_file):
    from raylign.engine.rewards import RewardFleet

    with pytest.raises(PluginError, match=r"unknown verifier 'sleppy'.*Did you mean 'sleepy'.*Known:"):
        fleet.score([{"completion": "", "task": {"answer": "1"}}, {"completion": "", "task": {"verifier": "sleppy"}}])
    with pytest.raises(PluginError, match="unknown verifier 'nope'"):
        RewardFleet(RewardsConfig(), default_verifier="nope", plugins=[plugin_file], entry_points=False)
    assert fleet.score([]) == []
