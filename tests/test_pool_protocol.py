"""The verifier pool's reply protocol holds against verifiers that misbehave on it (a verifier plugin's attacker
pass): a line written on the worker's socket never passes for another row's verdict, a malformed or out-of-range
verdict is that row's error, a huge reply is read in linear time and a huge error message is cut. Real worker
processes; the misbehaving verifiers live in a plugin file the workers load by path.
"""
from __future__ import annotations

import json
import textwrap

import pytest

from raylign.engine.rewards.pool import VerifierPool
from raylign.verifiers import Verdict

PLUGIN = textwrap.dedent('''
    import json
    import os
    import socket

    from raylign.engine import hookimpl
    from raylign.verifiers import Verdict

    def _worker_socket():
        for fd in range(3, 64):
            try:
                s = socket.socket(fileno=os.dup(fd))
            except OSError:
                continue
            if s.family == socket.AF_UNIX and s.type == socket.SOCK_STREAM:
                return s
            s.close()

    def extra_line(completion, task):  # a verdict nobody asked for, then its own
        s = _worker_socket()
        s.sendall(json.dumps({"verdict": {"reward": 0.999, "status": "ok", "error": None, "details": {}},
                              "restart": False}).encode() + b"\\n")
        return 0.0

    def garbage(completion, task):
        _worker_socket().sendall(b"this is not json\\n")
        return 0.0

    def value(completion, task):
        return float(task["r"])

    class Lying(Verdict):
        def __post_init__(self):  # skips Verdict's checks
            pass

    def subclass(completion, task):
        return Lying(reward=float("nan"), status="great")

    def huge(completion, task):
        return Verdict(reward=1e39)

    def long_error(completion, task):
        raise ValueError("x" * (5 << 20))

    def big_details(completion, task):
        return Verdict(reward=0.5, details={"blob": "y" * (40 << 20)})

    @hookimpl
    def raylign_register_verifiers(register):
        for fn in (extra_line, garbage, value, subclass, huge, long_error, big_details):
            register(fn.__name__, fn)
''')


@pytest.fixture(scope="module")
def pool(tmp_path_factory):
    path = tmp_path_factory.mktemp("protocol") / "raylign_protocol_verifiers.py"
    path.write_text(PLUGIN)
    with VerifierPool(workers=1, timeout_s=20.0, memory_mb=2048, plugins=[str(path)], entry_points=False) as p:
        yield p


@pytest.mark.parametrize("name", ["extra_line", "garbage"])
def test_a_line_written_on_the_workers_socket_is_never_another_rows_verdict(pool, name):
    """Before: every later row on that worker got the previous row's verdict (0.999 for a row worth 0.1)."""
    assert pool.verify(name, "", {}).reward == 0.0
    got = [pool.verify("value", "", {"r": r}).reward for r in (0.1, 0.2, 0.3)]
    assert got == [0.1, 0.2, 0.3]


@pytest.mark.parametrize("name", ["subclass", "huge"])
def test_a_verdict_out_of_contract_is_that_rows_error(pool, name):
    """Before: a Verdict subclass skipping the checks raised in the pool (the batch failed); 1e39 was ``ok`` and
    made GRPO's float32 advantages NaN."""
    v = pool.verify(name, "", {})
    assert (v.status, v.reward) == ("error", 0.0), v
    assert pool.verify("value", "", {"r": 0.25}).reward == 0.25


def test_reward_bounds_of_the_verdict_itself():
    with pytest.raises(ValueError, match="within"):
        Verdict(reward=1e7)
    assert Verdict(reward=-1e6).reward == -1e6


def test_huge_replies_are_read_and_huge_errors_cut(pool):
    v = pool.verify("big_details", "", {})
    assert (v.status, v.reward, len(v.details["blob"])) == ("ok", 0.5, 40 << 20)
    v = pool.verify("long_error", "", {})
    assert v.status == "error" and len(v.error) < 3000, len(v.error)


def test_verify_writes_rows_holding_a_lone_surrogate(tmp_path):
    """Before: ``raylign verify`` scored every row, then crashed writing the output (no UTF-8 for a surrogate)."""
    from raylign.engine.rewards.verify_cmd import run_verify
    rows = tmp_path / "rows.jsonl"
    rows.write_text('{"completion": "\\ud800 1", "answer": "1"}\n{"completion": "2", "answer": "2"}\n')
    out = tmp_path / "out.jsonl"
    verdicts = run_verify("math", str(rows), str(out), workers=1)
    lines = out.read_text(encoding="utf-8").splitlines()
    assert len(verdicts) == len(lines) == 2
    assert json.loads(lines[0])["completion"] == "\ud800 1"
