"""Hostile and honest programs against the code sandbox, fourth pass: a function under test named like a builtin
(the tests called T's builtin, whatever the solution defined), APPS call-based rows judged as stdin/stdout, a
program choosing status ``timeout`` by running on, the order of an ``OrderedDict`` lost on the wire; and correct
programs that failed: ``exit()``, the solution's functions and classes passed as values (``map(square, xs)``),
numpy scalars and arrays, ``__file__``; host facts a job could print into its verdict.
Each case says what its program achieved before the fix; the hostile ones end with the harm check of
tests/test_hostile_sandbox.py. Real namespaces, cgroups and processes, no mocks.
"""
from __future__ import annotations

import importlib.util
import json

import pytest

from raylign.verifiers.code.sandbox_tester import test_names as names_of_tests

# the first pass's module fixtures (``ns``: the namespaces backend, ``verifier``: a CodeVerifier on it)
from test_hostile_sandbox import assert_no_traces, ns, verifier  # noqa: F401

STDIO_ADD = {"inputs": ["3 4\n"], "outputs": ["7\n"]}


# -- the function under test named like a builtin ----------------------------------------------------------

@pytest.mark.parametrize("completion,tests,reward", [
    # before: 1.0, the tests called T's own sum (any program, even one defining nothing, scored what sum scores)
    ("def sum(xs):\n    return 0\n", ["assert sum([1, 2, 3]) == 6"], 0.0),
    # before: 0.0, the tests called T's round, not the solution's (a correct solution failed)
    ("def round(x):\n    return int(x + 0.5)\n", ["assert round(2.5) == 3", "assert round(0.5) == 1"], 1.0),
    ("def max(a, b):\n    return a if a > b else b\n", ["assert not max(1, 2) == 1", "assert max(3, 2) == 3"], 1.0),
    # a builtin the tests apply to the value of the function under test stays the builtin: the solution's
    # helper named sorted does not decide the comparison
    ("def sorted(x):\n    return 0\ndef f(x):\n    return [3, 1]\n", ["assert sorted(f(1)) == sorted([1, 3])"], 1.0),
    ("def sorted(x):\n    return 0\ndef f(x):\n    return [3, 2]\n", ["assert sorted(f(1)) == sorted([1, 3])"], 0.0),
    ("x = 1\n", ["assert pow(2, 10) == 1024"], 1.0),  # nothing defined: the builtin answers, as in Python
])
def test_a_function_under_test_named_like_a_builtin_is_the_solutions(verifier, completion, tests, reward):
    """Layer: ``sandbox_tester.test_names`` (``under_test``): a builtin's name called at the top of an assert, with
    no call of the tests' own functions in its arguments, is the function under test."""
    v = verifier(completion, {"tests": tests})
    assert (v.status, v.reward) == ("ok", reward), v
    assert_no_traces()


def test_the_names_tests_use():
    called, under, loaded, bases, caught, owned = names_of_tests([
        "assert sum([1, 2]) == 3", "assert sorted(f(x)) == sorted(y)", "assert not max(g(1), 2)",
        "assert list(map(square, [1])) == [1]", "k = 3\nassert h(k, key=keyf)", "from math import pi\nassert pi",
        "assert Calc.add(1, 2) == 3", "def helper(a):\n    return a\nassert helper(z)", "x = (", "c = np"])
    assert called == ["f", "g", "h"]  # (helper is the test's own)
    assert under == []  # the tests call functions of their own: a builtin at an assert's top checks their values
    assert set(loaded) == {"x", "y", "square", "keyf", "Calc", "z", "np"}
    assert {"Calc", "np"} <= set(bases) and not {"square", "keyf", "z"} & set(bases)
    assert caught == []
    assert names_of_tests(["assert sum([1, 2]) == 3", "assert round(-2.5) == -3"])[1] == ["round", "sum"]


# -- the solution's functions and classes passed as values -------------------------------------------------

@pytest.mark.parametrize("completion,test", [
    ("def square(x):\n    return x * x\n", "assert list(map(square, [1, 2, 3])) == [1, 4, 9]"),
    ("def keyf(x):\n    return -x\n", "assert sorted([1, 3, 2], key=keyf) == [3, 2, 1]"),
    ("class Calc:\n    @staticmethod\n    def add(a, b):\n        return a + b\n", "assert Calc.add(1, 2) == 3"),
    ("def f(x):\n    return x + 1\n", "g = f\nassert g(1) == 2"),
    ("class Point:\n    pass\nclass Other:\n    pass\ndef make():\n    return Point()\n",
     "assert isinstance(make(), Point) and not isinstance(Other(), Point) and not isinstance(3, Point)"),
])
def test_functions_and_classes_passed_as_values_are_the_solutions(verifier, completion, test):
    """Before: NameError (only the names the tests call were bound). A handle's ``==`` is identity in T, so binding
    them cannot make a comparison pass; module names and the usual aliases are still T's own modules."""
    v = verifier(completion, {"tests": [test]})
    assert (v.status, v.reward) == ("ok", 1.0), v


def test_a_name_the_tests_only_read_is_still_no_module_of_the_solutions(verifier):
    """The pass-3 layer holds for names passed as values: ``np`` is T's numpy (or nothing), never the solution's
    class posing as it."""
    fake = "class np:\n    @staticmethod\n    def allclose(a, b):\n        return True\ndef f():\n    return 1\n"
    v = verifier(fake, {"tests": ["checker = np\nassert checker.allclose(f(), 2)"]})
    assert v.reward == 0.0, v
    assert_no_traces()


# -- APPS call-based rows -----------------------------------------------------------------------------------

APPS_CALL = {"input_output": json.dumps({"fn_name": "add", "inputs": [[1, 2], [3, 4]], "outputs": [[3], [7]]})}


@pytest.mark.parametrize("completion,reward", [
    ("def add(a, b):\n    return a + b\n", 1.0),  # before: 0.0 (judged as stdin/stdout: it printed nothing)
    ("class Solution:\n    def add(self, a, b):\n        return a + b\n", 1.0),  # LeetCode's form
    ("def add(a, b):\n    return (a + b,)\n", 1.0),  # a tuple compares as a list, as APPS' harness compares it
    # before: 1.0, a stdin script that parsed the printed argument lists, ignoring the function asked for
    ("import sys\nprint(sum(int(x) for x in sys.stdin.read().split()))\n", 0.0),
    ("def add(a, b):\n    return a - b\n", 0.0),
])
def test_apps_call_based_rows_call_the_function(verifier, completion, reward):
    v = verifier(completion, APPS_CALL)
    assert (v.status, v.reward, v.details["format"]) == ("ok", reward, "asserts"), v


def test_an_apps_row_naming_no_function_is_invalid(verifier):
    task = {"input_output": json.dumps({"fn_name": "1x", "inputs": [[1]], "outputs": [1]})}
    v = verifier("def f():\n    return 1\n", task)
    assert v.status == "invalid" and "fn_name" in v.error


# -- a program cannot choose status timeout -----------------------------------------------------------------

@pytest.mark.parametrize("completion,task", [
    ("def f(x):\n    while True:\n        pass\n", {"tests": ["assert f(1) == 2"]}),
    ("import time\ntime.sleep(100)\n", STDIO_ADD),
])
def test_running_past_the_time_limit_is_the_programs_failure(ns, completion, task):
    """Before: status ``timeout``, which ``Verdict.failed`` marks and ``[grpo] drop_failed`` leaves out of the loss:
    a policy that could not solve a task could loop instead of taking its 0."""
    from raylign.verifiers.code import CodeVerifier
    v = CodeVerifier(sandbox=ns, timeout_s=1.0)(completion, task)
    assert (v.status, v.reward, v.details["reason"]) == ("ok", 0.0, "time_limit"), v
    assert not v.failed
    assert_no_traces()


# -- the wire keeps what == minds ---------------------------------------------------------------------------

def test_an_ordered_dict_keeps_its_order(verifier):
    """Before: 1.0, an ``OrderedDict`` crossed as a plain dict, whose ``==`` forgets the order Python's minds."""
    make = "from collections import OrderedDict\ndef f():\n    return OrderedDict([{pairs}])\n"
    tests = ["from collections import OrderedDict\nassert f() == OrderedDict([(1, 'a'), (2, 'b')])",
             "assert f() == {2: 'b', 1: 'a'}"]
    wrong = verifier(make.format(pairs="(2, 'b'), (1, 'a')"), {"tests": tests[:1]})
    right = verifier(make.format(pairs="(1, 'a'), (2, 'b')"), {"tests": tests})
    assert (wrong.reward, right.reward) == (0.0, 1.0), (wrong, right)


@pytest.mark.skipif(importlib.util.find_spec("numpy") is None, reason="numpy is not installed")
@pytest.mark.parametrize("body,test,reward", [
    ("return np.sum(np.array(xs))", "assert f([1, 2, 3]) == 6", 1.0),  # before: 0.0 (an int64 handle)
    ("return np.any(np.array(xs) > 0)", "assert f([1, -2]) == True", 1.0),  # np.bool_
    ("return np.array(xs) ** 2", "assert list(f([1, 2])) == [1, 4]", 1.0),
    ("return np.array(xs) ** 2", "import numpy as np\nassert np.array_equal(f([1, 2]), np.array([1, 4]))", 1.0),
    ("return np.sum(np.array(xs))", "assert f([1, 2, 3]) == 7", 0.0),
])
def test_numpy_values_cross_as_the_numbers_they_hold(ns, body, test, reward):
    from raylign.verifiers.code import CodeVerifier
    v = CodeVerifier(sandbox=ns, site_packages=True)(f"import numpy as np\ndef f(xs):\n    {body}\n",
                                                     {"tests": [test]})
    assert (v.status, v.reward) == ("ok", reward), v


# -- correct programs that failed ---------------------------------------------------------------------------

@pytest.mark.parametrize("completion", [
    "a, b = map(int, input().split())\nprint(a + b)\nexit()\n",  # before: NameError (S runs without site)
    "a, b = map(int, input().split())\nprint(a + b)\nquit(0)\n",
    "import os\na, b = map(int, input().split())\nprint(a + b if os.path.basename(__file__) else 0)\n",
])
def test_correct_programs_that_failed(verifier, completion):
    v = verifier(completion, STDIO_ADD)
    assert (v.status, v.reward) == ("ok", 1.0), v
    assert_no_traces()


def test_a_process_left_running_still_fails(verifier):
    v = verifier("import os, time\nif os.fork() == 0:\n    time.sleep(30)\nprint(7)\n", STDIO_ADD)
    assert v.reward == 0.0 and v.details["failures"][0]["reason"] == "daemon", v
    assert_no_traces()


def test_host_facts_read_empty(verifier):
    """Before: the host's boot id, kernel build, disks, memory map and modules, printable into the verdict."""
    code = ("import sys\nfor p in ['sys/kernel/random/boot_id', 'version', 'partitions', 'diskstats', 'iomem', "
            "'modules']:\n    try:\n        n = len(open('/proc/' + p).read())\n    except OSError:\n        n = 0\n"
            "    print(n)\n")
    v = verifier(code, {"inputs": ["\n"], "outputs": ["0\n0\n0\n0\n0\n0\n"]})
    assert v.reward == 1.0, v


# -- the fifth pass: over the fourth pass's rules ------------------------------------------------------------

@pytest.mark.parametrize("completion,tests,reward", [
    # before: 1.0, the builtin a test checks a computed value with was taken for the function under test
    ("def f(x):\n    return []\ndef len(x):\n    return 3\n", ["r = f(3)\nassert len(r) == 3"], 0.0),
    ("def f(x):\n    return [1, 2, 3]\n", ["r = f(3)\nassert len(r) == 3"], 1.0),
    ("def f(x):\n    return -5\ndef abs(x):\n    return 0\n", ["assert abs(f(1) - 3) < 1e-9"], 0.0),
    ("def isinstance(a, b):\n    return True\ndef f():\n    return 'x'\n", ["r = f()\nassert isinstance(r, int)"], 0.0),
])
def test_a_builtin_checking_a_computed_value_stays_the_builtin(verifier, completion, tests, reward):
    v = verifier(completion, {"tests": tests})
    assert (v.status, v.reward) == ("ok", reward), v
    assert_no_traces()


@pytest.mark.parametrize("completion,fn_name,inputs,outputs,reward", [
    ("x = 1\n", "max", [[1, 2]], [[2]], 0.0),  # before: 1.0, T's max answered for a solution without one
    ("def filter(s):\n    return s[::-1]\n", "filter", [["ab"]], [["ba"]], 1.0),  # before: 0.0
    ("def array(s):\n    return s + 1\n", "array", [[1]], [[2]], 1.0),  # a function named like a stdlib module
    ("def f(x):\n    return float('inf')\n", "f", [[1]], [[float("inf")]], 1.0),  # before: NameError 'inf'
    ("inf = 5\ndef f(x):\n    return 5\n", "f", [[1]], [[float("inf")]], 0.0),  # before: 1.0
    ("def f():\n    return [(1, 2), (3, 4)]\n", "f", [[]], [[[1, 2], [3, 4]]], 1.0),  # as APPS' harness compares
])
def test_apps_call_rows_name_their_function(verifier, completion, fn_name, inputs, outputs, reward):
    task = {"input_output": json.dumps({"fn_name": fn_name, "inputs": inputs, "outputs": outputs})}
    v = verifier(completion, task)
    assert (v.status, v.reward) == ("ok", reward), v


def test_a_function_passed_under_a_modules_name_is_the_solutions(verifier):
    v = verifier("def select(x):\n    return x > 1\n", {"tests": ["assert list(filter(select, [1, 2, 3])) == [2, 3]"]})
    assert v.reward == 1.0, v


def test_a_counter_keeps_counters_equality(verifier):
    v = verifier("from collections import Counter\ndef f():\n    return Counter(a=1, b=0)\n",
                 {"tests": ["from collections import Counter\nassert f() == Counter(a=1)"]})
    assert v.reward == 1.0, v


def test_no_user_namespace_and_no_netlink_but_routing(verifier):
    """Hardening: in a user namespace of its own, S held capabilities over a network namespace (nf_tables, the
    way in of many kernel privilege bugs). Threads, fork, subprocess, multiprocessing and socketpair still work."""
    code = ("import ctypes, os, socket, subprocess, sys, threading\nlibc = ctypes.CDLL(None, use_errno=True)\n"
            "out = [str(libc.unshare(0x10000000)), str(ctypes.get_errno())]\n"
            "for proto in (12, 0):\n    try:\n        socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, proto)\n"
            "        out.append('ok')\n    except OSError as e:\n        out.append(str(e.errno))\n"
            "t = threading.Thread(target=print, args=('',)); t.start(); t.join()\n"
            "pid = os.fork()\nif pid == 0:\n    os._exit(7)\nout.append(str(os.waitpid(pid, 0)[1] >> 8))\n"
            "out.append(subprocess.run([sys.executable, '-c', 'print(5)'], capture_output=True, text=True)"
            ".stdout.strip())\nsocket.socketpair()\nprint(' '.join(out))\n")
    v = verifier(code, {"inputs": ["\n"], "outputs": ["-1 1 1 ok 7 5\n"]})
    assert v.reward == 1.0, v
    assert_no_traces()
