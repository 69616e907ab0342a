"""Honest and hostile programs against the code sandbox, sixth pass: the solution's own exception classes, which
a test catches by name (``except InvalidInput:``, ``assertRaises(InvalidInput, ...)``) or through the builtin
exception they derive from (``except ValueError:`` for ``class InvalidInput(ValueError)``): before, T knew the
solution's class only as a handle (``except`` raised TypeError) and its exceptions as T's ``SolutionError``, so a
correct solution failed. Real namespaces, cgroups and processes, no mocks.
"""
from __future__ import annotations

import pytest

from raylign.verifiers.code.sandbox_tester import test_names as names_of_tests

# the first pass's module fixtures (``ns``: the namespaces backend, ``verifier``: a CodeVerifier on it)
from test_hostile_sandbox import assert_no_traces, ns, verifier  # noqa: F401

ERRORS = """
class InvalidInput(ValueError):
    pass
class NegativeInput(InvalidInput):
    pass
class Zero(Exception):
    pass
def f(x):
    if x < 0:
        raise NegativeInput("negative")
    if x == 0:
        raise Zero("zero")
    return 2 * x
"""
NO_RAISE = ERRORS.replace('raise NegativeInput("negative")', "return -1")  # wrong: never raises
RENAMED = ERRORS.replace("Zero", "Nil")  # raises an exception of another name than the tests expect


def expect(name, call="f(-1)"):
    return f"try:\n    {call}\nexcept {name}:\n    pass\nelse:\n    raise AssertionError('no exception')"


UNITTEST = """import unittest
class T(unittest.TestCase):
    def test(self):
        self.assertRaises(NegativeInput, f, -1)
        with self.assertRaisesRegex(InvalidInput, "neg"):
            f(-2)
result = unittest.TextTestRunner(stream=open("/dev/null", "w")).run(
    unittest.defaultTestLoader.loadTestsFromTestCase(T))
assert result.wasSuccessful()"""


@pytest.mark.parametrize("completion,test,reward", [
    (ERRORS, expect("InvalidInput"), 1.0),  # the base class of what f raised
    (ERRORS, "try:\n    f(-1)\nexcept NegativeInput as e:\n    assert str(e) == 'negative'\nelse:\n    assert False", 1.0),
    (ERRORS, expect("ValueError"), 1.0),  # the builtin the solution's class derives from
    (ERRORS, expect("(KeyError, NegativeInput)"), 1.0),
    (ERRORS, expect("Zero", "f(0)"), 1.0),
    (ERRORS, UNITTEST, 1.0),
    (ERRORS, "assert f(2) == 4\n" + expect("InvalidInput", "f(-3)"), 1.0),
    (ERRORS, expect("ValueError", "f(0)"), 0.0),  # Zero is no ValueError
    (ERRORS, expect("NegativeInput", "f(0)"), 0.0),  # nor a NegativeInput: it fails the test with its own name
    (NO_RAISE, expect("InvalidInput"), 0.0),
    (NO_RAISE, UNITTEST, 0.0),
    (RENAMED, expect("Zero", "f(0)"), 0.0),  # the tests' name is not defined by the solution
])
def test_the_solutions_exception_classes_are_caught_by_name(verifier, completion, test, reward):
    """Layers: ``sandbox_tester.test_names`` (``caught``), T's classes for them, and the exception's class chain
    on the wire (``sandbox_wire.Endpoint.answer``)."""
    v = verifier(completion, {"tests": [test]})
    assert (v.status, v.reward) == ("ok", reward), v
    if reward == 0.0 and completion is ERRORS:
        assert v.details["failures"][0]["reason"] in ("Zero", "assertion")
    assert_no_traces()


def test_caught_names_are_the_exception_classes_the_tests_expect_and_do_not_define():
    caught = names_of_tests([
        "try:\n    f(1)\nexcept (A, KeyError):\n    pass", "try:\n    f(1)\nexcept B as e:\n    pass",
        "with pytest.raises(C):\n    f(1)", "self.assertRaises(D, f, 1)", "assertRaisesRegex(E, 'x')",
        "class Own(Exception):\n    pass\ntry:\n    f(1)\nexcept Own:\n    pass", "try:\n    f(1)\nexcept mod.F:\n    pass",
        "try:\n    f(1)\nexcept:\n    pass"])[4]
    assert caught == ["A", "B", "C", "D", "E"]


# -- builtins named like the function under test: only where the tests reach no other name of the solution's ------

KIT = """class _M(type):
    def __getattr__(cls, name):
        return lambda *a, **k: 0
class Utils(metaclass=_M):
    pass
def sorted(*a, **k):
    return 0
def float(*a):
    return 0
def tuple(*a):
    return 0
"""
UTILS = """class Utils:
    @staticmethod
    def unique(xs):
        return sorted(set(xs))
    @staticmethod
    def mean(xs):
        return sum(xs) / len(xs)
    @staticmethod
    def pair(x):
        return (x, x)
"""
UTILS_TESTS = ["assert Utils.unique([3, 1, 3]) == sorted([1, 3])", "assert Utils.mean([1, 2]) == float(1.5)",
               "assert Utils.pair(1) == tuple([1, 1])"]


@pytest.mark.parametrize("completion,tests,reward", [
    # before: 1.0, the tests reached the solution through Utils only, so every builtin called with literal
    # arguments (those building the expected side too) was the solution's
    (KIT, UTILS_TESTS, 0.0),
    (UTILS, UTILS_TESTS, 1.0),
    ("def sorted(xs):\n    return [0]\n", ["assert sorted([3, 1]) == list([1, 3])"], 0.0),  # list is not under test
    ("def sorted(xs):\n    return [0]\ndef list(x):\n    return [0]\n", ["assert sorted([3, 1]) == list([1, 3])"], 0.0),
    ("def sorted(xs):\n    out = []\n    for x in xs:\n        i = 0\n        while i < len(out) and out[i] < x:\n"
     "            i += 1\n        out.insert(i, x)\n    return out\n", ["assert sorted([3, 1]) == list([1, 3])"], 1.0),
])
def test_a_builtin_is_under_test_only_where_its_value_is_checked(verifier, completion, tests, reward):
    """Layer: ``sandbox_tester.test_names`` (``under_test``: no other name of the solution's reached, and the call
    on an assert's checked side)."""
    v = verifier(completion, {"tests": tests})
    assert (v.status, v.reward) == ("ok", reward), v
    assert_no_traces()


# -- items of a test list that only set up, and names another item assigns -----------------------------------

@pytest.mark.parametrize("completion,tests,reward", [
    # before: 1.0 (the solution's own "expected" stood in for the test's) and 0.5 (NameError)
    ("expected = 0\ndef f(x):\n    return 0\n", ["expected = 42", "assert f(1) == expected"], 0.0),
    ("def f(x):\n    return x * 2\n", ["nums = [1, 2, 3]", "assert f(nums) == [1, 2, 3, 1, 2, 3]"], 1.0),
    ("def f(x):\n    return 0\n", ["nums = [1, 2, 3]", "assert f(nums) == [1, 2, 3, 1, 2, 3]"], 0.0),  # not 0.5
    ("def f(x):\n    return 0\n", ["# f(1) == 2", "", "assert f(1) == 0"], 1.0),
])
def test_items_that_check_nothing_set_up_the_items_after_them(verifier, completion, tests, reward):
    """Layers: ``verifier._checks`` (set-up items are no tests) and ``test_names`` (``owned``)."""
    v = verifier(completion, {"tests": tests})
    assert (v.status, v.reward) == ("ok", reward), v
    assert v.details["total"] == 1


def test_a_test_list_that_checks_nothing_is_invalid(verifier):
    v = verifier("def f(x):\n    return 0\n", {"tests": ["", "# assert f(1) == 2", "x = 3"]})
    assert v.status == "invalid" and "checks nothing" in v.error


# -- pytest and unittest tests are run, not only defined ------------------------------------------------------

PYTEST_ADD = "def test_add():\n    assert add(1, 2) == 3\n\ndef test_neg():\n    assert add(-1, 1) == 0\n"
UNITTEST_F = ("import unittest\nclass TestF(unittest.TestCase):\n    def test_a(self):\n"
              "        self.assertEqual(f(1), 2)\n")
ADD, WRONG_ADD = "def add(a, b):\n    return a + b\n", "def add(a, b):\n    return 0\n"
F, WRONG_F = "def f(x):\n    return 2 * x\n", "def f(x):\n    return 0\n"


@pytest.mark.parametrize("completion,test,reward", [
    (WRONG_ADD, PYTEST_ADD, 0.0),  # before: 1.0, the test functions were defined and never called
    (ADD, PYTEST_ADD, 1.0),
    (WRONG_F, UNITTEST_F, 0.0),  # before: 1.0
    (F, UNITTEST_F, 1.0),
    (ADD, "from solution import add\n\n" + PYTEST_ADD, 1.0),  # before: 0.0, no module named solution
    (WRONG_ADD, "from solution import add\n\n" + PYTEST_ADD, 0.0),
    (ADD, "import solution\n\ndef test_it():\n    assert solution.add(2, 2) == 4\n", 1.0),
    (F, UNITTEST_F + "\nunittest.main()\n", 1.0),  # before: 0.0, SystemExit(False)
    (WRONG_F, UNITTEST_F + "\nunittest.main()\n", 0.0),
    (F, "import unittest\nunittest.main()\n", 0.0),  # no test ran: unittest's own exit code says so
    (F, "class TestPlain:\n    def test_one(self):\n        assert f(2) == 4\n", 1.0),
    (WRONG_F, "class TestPlain:\n    def test_one(self):\n        assert f(2) == 4\n", 0.0),
    (F, "def test_needs_a_fixture(database):\n    assert f(1) == 2\n", 0.0),  # a fixture no one here gives
])
def test_pytest_and_unittest_tests_are_run(verifier, completion, test, reward):
    """Layer: ``sandbox_tester.run_collected`` and the ``solution`` module of T."""
    v = verifier(completion, {"tests": [test]})
    assert (v.status, v.reward) == ("ok", reward), v
    assert_no_traces()


# -- a program of many stdin cases never runs into the verifier pool's deadline ---------------------------------

def test_stdin_cases_share_the_pools_deadline_so_a_looping_program_gets_no_timeout_status(ns):
    """Layers: the pool hands its deadline to the verifier (``worker.instantiate_verifier``'s ``deadline_s``), and
    the job's runs share it (``Limits.total_s``, the supervisor's budget). Before: each of 3 cases had its 5 s, the
    pool's 10 s deadline came first, and the verdict was ``timeout``, which ``drop_failed`` leaves out of the loss."""
    from raylign.engine.rewards.pool import VerifierPool
    loop = {"inputs": ["1\n", "2\n", "3\n"], "outputs": ["1\n", "2\n", "3\n"]}
    echo_then_loop = "n = input()\nprint(n)\nif n == '2':\n    while True:\n        pass\n"
    with VerifierPool(workers=1, timeout_s=4.0, memory_mb=1024) as pool:
        v = pool.verify("code", "while True:\n    pass\n", loop)
        assert (v.status, v.reward, v.details["reason"]) == ("ok", 0.0, "time_limit"), v
        v = pool.verify("code", echo_then_loop, loop)  # one case passes; the loop costs the others
        assert (v.status, v.details["passed"]) == ("ok", 1), v
    assert_no_traces()


# -- exceptions: bases, aliases, arguments and attributes cross; generators, blocks, operators ----------------

BANK = """class InsufficientFunds(ValueError):
    def __init__(self, need):
        super().__init__(f"need {need}")
        self.need = need
Invalid = ValueError
def withdraw(balance, amount):
    if amount < 0:
        raise Invalid("negative  amount:\\n no")
    if amount > balance:
        raise InsufficientFunds(amount - balance)
    return balance - amount
def lookup(d, k):
    return d[k]
"""
FIB = "def fib():\n    a, b = 0, 1\n    while True:\n        yield a\n        a, b = b, a + b\n"
GEN_RAISES = "def gen(n):\n    for i in range(n):\n        yield i\n    raise ValueError('past the end')\n"
VERSION = ("class Version:\n    def __init__(self, v):\n        self.t = tuple(map(int, v.split('.')))\n"
           "    def __lt__(self, other):\n        return self.t < other.t\n")
VEC = ("from dataclasses import dataclass\n@dataclass\nclass V:\n    x: int\n    y: int\n"
       "    def __add__(self, o):\n        return V(self.x + o.x, self.y + o.y)\n")
LIAR = ("class L:\n    def __lt__(s, o):\n        return True\n    def __sub__(s, o):\n        return s\n"
        "    def __rsub__(s, o):\n        return s\n    def __abs__(s):\n        return 0\n"
        "    def __eq__(s, o):\n        return True\ndef f(x):\n    return L()\n")


@pytest.mark.parametrize("completion,test,reward", [
    (BANK, "assert issubclass(InsufficientFunds, ValueError)\ntry:\n    withdraw(1, 5)\nexcept InsufficientFunds as e:\n"
           "    assert e.need == 4 and str(e) == 'need 4'\nelse:\n    assert False", 1.0),
    (BANK, "try:\n    raise InsufficientFunds(3)\nexcept ValueError:\n    pass", 1.0),  # a test raising it itself
    (BANK, "try:\n    withdraw(1, -1)\nexcept Invalid as e:\n    assert str(e) == 'negative  amount:\\n no'\nelse:\n"
           "    assert False", 1.0),  # an alias of a builtin exception; the message as it is
    (BANK, "try:\n    lookup({}, 'x')\nexcept KeyError as e:\n    assert e.args[0] == 'x'\nelse:\n    assert False", 1.0),
    (FIB, "g = fib()\nassert next(g) == 0\nassert next(g) == 1\nassert next(g) == 1", 1.0),
    (FIB, "from itertools import islice\ng = fib()\nassert list(islice(g, 3)) == [0, 1, 1]\n"
          "assert list(islice(g, 3)) == [2, 3, 5]", 1.0),  # nothing read ahead and lost
    (GEN_RAISES, "from itertools import islice\nassert list(islice(gen(3), 3)) == [0, 1, 2]", 1.0),
    (VERSION, "assert Version('1.2') < Version('1.10')\nassert not Version('1.10') < Version('1.2')", 1.0),
    (VERSION, "vs = [Version('2.0'), Version('1.10'), Version('1.2')]\nassert sorted(vs)[0].t == (1, 2)", 1.0),
    (VEC, "assert V(1, 2) + V(3, 4) == V(4, 6)\nassert V(1, 2) != V(1, 3)", 1.0),
    # operators with plain data on one side stay the TypeError they were: an object "smaller than everything"
    (LIAR, "assert abs(f(1) - 3.14) < 1e-6", 0.0),
    (LIAR, "assert f(1) < 5", 0.0),
    (LIAR, "assert f(1) == 4", 0.0),
    ("class P:\n    def __init__(s, *a):\n        pass\ndef f():\n    return P()\n", "assert f() == P(1, 2)", 0.0),
])
def test_exceptions_generators_and_operators_of_the_solution(verifier, completion, test, reward):
    """Layers: T's exception classes from S's class names (``mro``), exceptions' args and attributes on the wire,
    ``Remote.__next__`` (one item per step for iterators), ``Remote``'s operators and structural ``==``."""
    v = verifier(completion, {"tests": [test]})
    assert (v.status, v.reward) == ("ok", reward), v
    assert_no_traces()


@pytest.mark.parametrize("fmt", ["asserts", "humaneval"])
def test_a_block_of_example_usage_after_the_solution_is_not_the_solution(verifier, fmt):
    """Layer: ``verifier.extract_code`` with the names the task needs."""
    completion = ("Here is the solution:\n```python\ndef add(a, b):\n    return a + b\n```\nExample usage:\n"
                  "```python\nprint(add(1, 2))  # 3\n```\n")
    task = {"tests": ["assert add(1, 2) == 3"]} if fmt == "asserts" else {
        "prompt": 'def add(a, b):\n    """Add."""\n', "entry_point": "add",
        "test": "def check(candidate):\n    assert candidate(2, 3) == 5\n"}
    v = verifier(completion, task)
    assert (v.status, v.reward) == ("ok", 1.0), v


# -- arguments changed in place, defaultdicts and dict views -------------------------------------------------

ROTATE = "class Solution:\n    def rotate(self, nums, k):\n        k %= len(nums)\n        nums[:] = nums[-k:] + nums[:-k]\n"
ROTATE_COPY = ROTATE.replace("nums[:] = ", "nums = ")  # rebinds its own name: the caller's list is unchanged
TRANSPOSE = ("def transpose(m):\n    n = len(m)\n    for i in range(n):\n        for j in range(i, n):\n"
             "            m[i][j], m[j][i] = m[j][i], m[i][j]\n")


@pytest.mark.parametrize("completion,test,reward", [
    (ROTATE, "nums = [1, 2, 3, 4, 5]\nSolution().rotate(nums, 2)\nassert nums == [4, 5, 1, 2, 3]", 1.0),
    (ROTATE_COPY, "nums = [1, 2, 3, 4, 5]\nSolution().rotate(nums, 2)\nassert nums == [4, 5, 1, 2, 3]", 0.0),
    (TRANSPOSE, "m = [[1, 2], [3, 4]]\ntranspose(m)\nassert m == [[1, 3], [2, 4]]", 1.0),
    ("def tag(d):\n    d['seen'] = True\n", "d = {}\ntag(d)\nassert d == {'seen': True}", 1.0),
    ("def total(xs):\n    return sum(xs)\n", "xs = [1, 2]\nassert total(xs) == 3 and xs == [1, 2]", 1.0),
    ("from collections import defaultdict\ndef count(s):\n    d = defaultdict(int)\n    for c in s:\n"
     "        d[c] += 1\n    return d\n", "d = count('aab')\nassert d['a'] == 2 and d['z'] == 0", 1.0),
    ("def keys():\n    return {1: 'a', 3: 'b'}.keys()\n", "assert keys() == {1, 3} and list(keys()) == [1, 3]", 1.0),
])
def test_in_place_changes_defaultdicts_and_dict_views(verifier, completion, test, reward):
    """Layers: the ``callm`` request (a list, dict, set or bytearray argument's contents after the call come back
    as plain data and are applied to the test's object), the wire's ``X``, ``V`` and ``I`` tags. Before: 0.0 each
    (LeetCode's "modify nums in-place" could not be passed)."""
    v = verifier(completion, {"tests": [test]})
    assert (v.status, v.reward) == ("ok", reward), v
    assert_no_traces()
