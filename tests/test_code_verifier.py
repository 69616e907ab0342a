"""The ``code`` verifier: task formats, statuses, failure reasons, and hostile completions (real sandbox)."""
from __future__ import annotations

import json
import types

import pytest

from raylign.verifiers import Verdict
from raylign.verifiers.code import CodeVerifier, extract_code, normalize_output, parse_task
from raylign.verifiers.code.sandbox import get_backend

ADD = {"prompt": 'def add(a, b):\n    """Return a + b."""\n', "entry_point": "add",
       "test": "def check(candidate):\n    assert candidate(1, 2) == 3\n    assert candidate(-1, 1) == 0\n"}
MBPP = {"tests": ["assert square(2) == 4", "assert square(3) == 9", "assert square(-1) == 1"]}
STDIO = {"inputs": ["1 2\n", "10 20\n", "5 5\n"], "outputs": ["3\n", "30\n", "10\n"]}


@pytest.fixture(scope="module")
def verifier():
    return CodeVerifier(timeout_s=1.5, memory_mb=256)


def test_registered_through_the_hook_and_reports_its_backend(verifier):
    from raylign.engine.plugins import build_registry
    import raylign.verifiers.code.verifier as code_mod

    reg = build_registry(extra_plugins=[code_mod], entry_points=False)
    assert reg.get("verifiers", "code") is CodeVerifier
    assert verifier.backend_name == get_backend().name
    v = verifier("    return a + b\n", ADD)
    assert v.details["sandbox"] == verifier.backend_name
    assert CodeVerifier(sandbox="rlimits").backend_name == "rlimits"


def test_the_sandbox_table_is_passed_in_never_looked_up():
    """The verifier chooses among the backends it is given; the engine's workers give it their registry's."""
    from raylign.engine import hookimpl
    from raylign.engine.plugins import build_registry
    from raylign.engine.rewards.worker import instantiate_verifier
    import raylign.verifiers.code.sandbox as sandbox_mod
    import raylign.verifiers.code.verifier as code_mod

    class Toy(sandbox_mod.SandboxBackend):
        name, strength = "toy", 1  # weaker than the built-ins: used only when named

        @classmethod
        def available(cls):
            return True

    toy = types.ModuleType("toy_sandbox")
    toy.raylign_register_sandboxes = hookimpl(lambda register: register("toy", Toy))
    assert CodeVerifier(sandbox="toy", sandboxes={"toy": Toy}).backend_name == "toy"
    with pytest.raises(RuntimeError, match="unknown sandbox backend 'toy'"):  # not a built-in
        CodeVerifier(sandbox="toy")
    reg = build_registry(extra_plugins=[code_mod, sandbox_mod, toy], entry_points=False)
    assert instantiate_verifier(CodeVerifier, {"sandbox": "toy"}, reg).backend_name == "toy"
    assert instantiate_verifier(CodeVerifier, {}, reg).backend_name == get_backend().name  # the strongest
    no_sandboxes = build_registry(extra_plugins=[code_mod], entry_points=False)  # nothing registered: built-ins
    assert instantiate_verifier(CodeVerifier, {}, no_sandboxes).backend_name == get_backend().name
    with pytest.raises(RuntimeError, match="unknown sandbox backend 'toy'"):
        instantiate_verifier(CodeVerifier, {"sandbox": "toy"}, no_sandboxes)


def test_humaneval(verifier):
    good = verifier("    return a + b\n", ADD)
    assert (good.reward, good.status, good.details["passed"], good.details["total"]) == (1.0, "ok", 1, 1)
    bad = verifier("    return a - b\n", ADD)
    assert (bad.reward, bad.status) == (0.0, "ok")
    assert bad.details["failures"][0]["reason"] == "assertion"
    fenced = "Sure:\n```python\ndef add(a, b):\n    return a + b\n```\nand a usage example:\n```\n>>> add(1, 2)\n```"
    assert verifier(fenced, ADD).reward == 1.0
    crash = verifier("    return a + undefined_name\n", ADD)
    assert crash.reward == 0.0 and crash.details["failures"][0]["reason"] == "NameError"


def test_assert_list_fraction_and_all_or_nothing(verifier):
    code = "def square(x):\n    return x * x if x > 0 else 0\n"
    v = verifier(code, MBPP)
    assert v.status == "ok" and v.reward == pytest.approx(2 / 3)
    assert [f["test"] for f in v.details["failures"]] == [2]
    strict = CodeVerifier(timeout_s=1.5, all_or_nothing=True)
    assert strict(code, MBPP).reward == 0.0
    assert strict("def square(x):\n    return x * x\n", MBPP).reward == 1.0
    # MBPP's own field names
    assert verifier("def square(x):\n    return x * x\n",
                    {"test_list": MBPP["tests"], "test_imports": ["import math"]}).reward == 1.0


def test_stdio_fraction_whitespace_and_timeouts(verifier):
    v = verifier("a, b = map(int, input().split())\nprint(a + b if a != 5 else 0)", STDIO)
    assert v.status == "ok" and v.reward == pytest.approx(2 / 3)
    assert [(f["test"], f["reason"]) for f in v.details["failures"]] == [(2, "wrong_answer")]
    assert "expected '10', got '0'" in v.details["failures"][0]["message"]
    spaced = verifier("a, b = map(int, input().split())\nprint('  ', a + b, '  ')\nprint()\n", STDIO)
    assert spaced.reward == 1.0
    # one case times out: that case fails, the others still count
    slow = verifier("a, b = map(int, input().split())\nif a == 10:\n    while True: pass\nprint(a + b)", STDIO)
    assert slow.status == "ok" and slow.reward == pytest.approx(2 / 3)
    assert slow.details["failures"][0]["reason"] == "timeout"
    every = verifier("while True: pass", {"inputs": ["1\n", "2\n"], "outputs": ["1\n", "2\n"]})
    assert (every.status, every.reward, every.details["reason"]) == ("ok", 0.0, "time_limit")
    apps = {"input_output": json.dumps({"inputs": ["3\n"], "outputs": ["6\n"]})}
    assert verifier("print(int(input()) * 2)", apps).reward == 1.0
    crash = verifier("print(1 / 0)", {"inputs": ["\n"], "outputs": ["1\n"]})
    assert crash.details["failures"][0]["reason"] == "ZeroDivisionError"


def test_a_program_past_its_time_limit_fails_with_status_ok(verifier):
    """The time limit is part of the task: running past it is the program's failure (reward 0, status ``ok``), never
    the ``timeout`` a stage may drop from its loss (``drop_failed``) instead of scoring 0."""
    v = verifier("    import time\n    time.sleep(100)\n", ADD)
    assert (v.status, v.reward, v.details["reason"]) == ("ok", 0.0, "time_limit")
    assert v.details["failures"][0]["reason"] == "timeout" and not v.failed


def test_invalid_rows_no_code_and_unavailable_sandbox(verifier):
    v = verifier("    return a + b\n", {"prompt": "x", "test": "def check(c): pass"})
    assert v.status == "invalid" and "entry_point" in v.error
    v = verifier("print(1)", {"inputs": ["1"], "outputs": ["1", "2"]})
    assert v.status == "invalid" and "equal length" in v.error
    v = verifier("print(1)", {"inputs": ["1"]})
    assert v.status == "invalid" and "outputs" in v.error
    v = verifier("print(1)", {"answer": "42"})
    assert v.status == "invalid"
    for empty in ("", "   \n", "```python\n```"):
        v = verifier(empty, ADD)
        assert (v.status, v.reward, v.details["reason"]) == ("ok", 0.0, "no code")
    with pytest.raises(RuntimeError, match="no-such-backend"):  # stops the run at its start, one line
        CodeVerifier(sandbox="no-such-backend")


@pytest.mark.parametrize("name,completion", [
    ("exit 0 before the tests", "    return 0\nimport sys\nsys.exit(0)\n"),
    ("os._exit(0) before the tests", "    return 0\nimport os\nos._exit(0)\n"),
    ("os._exit(0) inside the call", "    import os\n    os._exit(0)\n"),
    ("override check", "    return 0\ndef check(candidate):\n    pass\n"),
    ("patch builtins", "    return 0\nimport builtins\nbuiltins.AssertionError = Warning\n"
                       "builtins.abs = lambda x: 0\n"),
    ("kill the parent", "    return 0\nimport os, signal\nfor p in (os.getppid(), 1):\n"
                        "    try:\n        os.kill(p, signal.SIGKILL)\n    except OSError:\n        pass\n"),
    ("print a fake pass", "    return 0\nprint('P 0 ' + '0' * 32)\nprint('PASSED')\n"),
    ("daemon", "    return a + b\nimport os\nif os.fork() == 0:\n    import time\n    time.sleep(30)\n"),
    ("memory bomb", "    return [0] * (10 ** 10)\n"),
    ("recursion bomb", "    import sys\n    sys.setrecursionlimit(10 ** 8)\n    return add(a, b) + 1\n"),
    ("fork bomb", "    import os\n    while True:\n        try:\n            os.fork()\n        except OSError:\n"
                  "            pass\n"),
])
def test_hostile_completions_never_pass(verifier, name, completion):
    v = verifier(completion, ADD)
    assert v.reward == 0.0 and v.status in ("ok", "timeout"), (name, v)
    assert v.details["failures"], v
    # and the verifier keeps serving
    assert verifier("    return a + b\n", ADD).reward == 1.0


def test_verify_many_keeps_order(verifier):
    items = [("    return a + b\n", ADD), ("    return 0\n", ADD), ("print(int(input()) + 1)",
             {"inputs": ["1"], "outputs": ["2"]}), ("", ADD), ("x", {"bad": 1})]
    got = verifier.verify_many(items, workers=2)
    assert [v.reward for v in got] == [1.0, 0.0, 1.0, 0.0, 0.0]
    assert [v.status for v in got] == ["ok", "ok", "ok", "ok", "invalid"]
    assert all(isinstance(v, Verdict) for v in got)


def test_helpers():
    assert extract_code("no fences") == "no fences"
    assert extract_code("a\n```py\nx = 1\n```\nb\n```python\ny = 2\n```\n```text\nout\n```") == "y = 2"
    assert extract_code("start\n```python\nz = 3\n") == "z = 3"  # truncated generation
    assert normalize_output(" 1  2 \n\n3\n") == normalize_output("1 2\n3")
    assert normalize_output("1 2") != normalize_output("12")
    assert parse_task(ADD)[0] == "humaneval" and parse_task(MBPP)[0] == "asserts" and parse_task(STDIO)[0] == "stdio"
