"""VerifierPool.cancel: a batch nobody waits for stops costing workers (no Ray, no HTTP).

The napper verifier notes its start in a log file and then sleeps for an hour, far past the pool's deadline in
these tests, so a worker is free again before that deadline only if cancelling killed it.
"""
from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from test_rewards import pid_alive, write_test_plugin
from test_serve import NAPPER_SOURCE

DEADLINE = 120.0  # the pool's per-row deadline: longer than anything these tests wait for


@pytest.fixture(scope="module")
def pool(tmp_path_factory):
    from raylign.engine.rewards.pool import VerifierPool

    directory = tmp_path_factory.mktemp("cancel_plugin")
    napper = directory / "raylign_test_napper.py"
    napper.write_text(NAPPER_SOURCE)
    with VerifierPool(workers=2, timeout_s=DEADLINE, plugins=[write_test_plugin(directory), str(napper)],
                      entry_points=False) as pool:
        yield pool


def _starts(log: Path, n: int, timeout: float = DEADLINE / 2) -> list[int]:
    """The pids of the first ``n`` napper rows to start (waits for them)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        lines = log.read_text().splitlines()
        if len(lines) >= n:
            return [int(line.split()[1]) for line in lines]
        time.sleep(0.05)
    raise AssertionError(f"{log}: fewer than {n} rows started")


def _gone(pids: list[int], timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while any(pid_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    return not any(pid_alive(p) for p in pids)


def _in_thread(fn, *args):
    out: dict = {}
    thread = threading.Thread(target=lambda: out.update(result=fn(*args)), daemon=True)
    thread.start()
    return thread, out


def test_cancel_skips_rows_not_started_and_kills_the_running_ones(pool, tmp_path):
    from raylign.engine.rewards.pool import Batch

    log = tmp_path / "napper.log"
    log.touch()
    batch = Batch()
    thread, out = _in_thread(pool.verify_many, [("napper", "z", {"log": str(log)})] * 5, None, batch)
    pids = _starts(log, 2)  # both workers now sleep for this batch; three rows wait
    t0 = time.monotonic()
    assert pool.cancel(batch) == 2
    thread.join(DEADLINE / 2)
    assert not thread.is_alive() and time.monotonic() - t0 < DEADLINE / 2  # returned long before the deadline
    verdicts = out["result"]
    assert len(verdicts) == 5
    assert all(v.status == "error" and v.details == {"cancelled": True} for v in verdicts), verdicts
    assert (batch.cancelled, batch.started, batch.killed) == (True, 2, 2)
    assert _gone(pids), "the cancelled batch's workers still run"
    assert len(log.read_text().splitlines()) == 2  # the three rows not started never started
    assert pool.cancel(batch) == 0  # idempotent
    assert pool.verify("napper", "z", {"log": str(log)}, batch=batch).details == {"cancelled": True}
    assert len(log.read_text().splitlines()) == 2  # a cancelled batch starts nothing new
    assert [v.reward for v in pool.verify_many([("echo", "1", {"answer": "1"})] * 4)] == [1.0] * 4  # both slots


def test_cancel_leaves_other_batches_running(pool, tmp_path):
    from raylign.engine.rewards.pool import Batch

    logs = [tmp_path / "a.log", tmp_path / "b.log"]
    batches = [Batch(), Batch()]
    threads = []
    for log, batch in zip(logs, batches):
        log.touch()
        threads.append(_in_thread(pool.verify, "napper", "z", {"log": str(log)}, batch))
    (pid_a,), (pid_b,) = _starts(logs[0], 1), _starts(logs[1], 1)
    assert pool.cancel(batches[0]) == 1
    threads[0][0].join(DEADLINE / 2)
    assert threads[0][1]["result"].details == {"cancelled": True}
    assert _gone([pid_a]) and pid_alive(pid_b)  # only the cancelled batch's worker went
    assert threads[1][0].is_alive()
    assert pool.cancel(batches[1]) == 1
    threads[1][0].join(DEADLINE / 2)
    assert threads[1][1]["result"].details == {"cancelled": True} and _gone([pid_b])


def test_a_row_without_a_batch_is_untouched(pool):
    from raylign.engine.rewards.pool import Batch

    batch = Batch()
    pool.cancel(batch)  # cancelling an empty batch kills nothing
    assert (batch.killed, batch.started) == (0, 0)
    assert pool.verify("echo", "2", {"answer": "2"}).reward == 1.0
