"""Hostile and honest programs against the code sandbox, seventh pass, over the sixth pass's mechanisms: an output
flood that made the judge itself run past the pool's deadline, ``from solution import *`` bringing the solution's
``sorted``, set-up items holding calls, TestCases of any name, in-place changes faking the expected side, an
alias of ``AssertionError``, and correct programs (exception messages, long generators, helpers in earlier
blocks). Each hostile case ends with the harm check of tests/test_hostile_sandbox.py. Real namespaces, cgroups
and processes, no mocks.
"""
from __future__ import annotations

import pytest

# the first pass's module fixtures (``ns``: the namespaces backend, ``verifier``: a CodeVerifier on it)
from test_hostile_sandbox import assert_no_traces, ns, verifier  # noqa: F401

FLOOD = "import sys\nsys.stdout.write('1\\n' * 2_000_000)\n"


@pytest.mark.parametrize("completion,cases", [
    # before: the host's comparison took 3.4 s a case; four cases ran into the pool's 10 s kill
    (FLOOD, 4),
    # before: no ink, so the size check passed, and splitting took 0.7 s a case: 30 cases reached the deadline
    ("import sys\nsys.stdout.write('0' + '\\n' * 4_000_000)\n", 30),
    # before: the blank-line collapse backtracked over the spaces
    ("import sys\nsys.stdout.write('0' + ' ' * 400000 + '\\n')\n", 1),
], ids=["lines", "newlines", "spaces"])
def test_an_output_flood_is_judged_without_running_past_the_pools_deadline(ns, completion, cases):
    """A wrong program's flood of output is its wrong answer (``ok``, 0), never the pool's ``timeout``, which
    drop_failed would leave out of the loss."""
    from raylign.engine.rewards.pool import VerifierPool
    with VerifierPool(workers=1, timeout_s=10.0, memory_mb=2048) as pool:
        v = pool.verify("code", completion, {"inputs": ["1\n"] * cases, "outputs": ["5\n"] * cases})
    assert (v.status, v.reward) == ("ok", 0.0), v
    assert_no_traces()


def test_same_output_is_token_by_token():
    from raylign.verifiers.code.verifier import same_output
    assert same_output("1  2\n\n3\n", "1 2\n3")
    assert not same_output("1 2 3", "1 2\n3") and not same_output("12", "1 2") and not same_output("1\n" * 9, "1")
    assert same_output("1" + " " * 30000 + "\n\n\n2\n", "1\n2")


KIT = ("def sorted(*a, **k):\n    return 0\ndef len(*a):\n    return 3\ndef f(x):\n    return []\n")


@pytest.mark.parametrize("completion,test,reward", [
    # before: 1.0, "import *" brought the solution's sorted and len into the tests
    (KIT, "from solution import *\n\ndef test_f():\n    assert sorted(f([3, 1])) == sorted([1, 3])\n", 0.0),
    (KIT, "from solution import *\n\ndef test_f():\n    r = f(3)\n    assert len(r) == 3\n", 0.0),
    ("def f(xs):\n    return sorted(xs)\n",
     "from solution import *\n\ndef test_f():\n    assert sorted(f([3, 1])) == sorted([1, 3])\n", 1.0),
    # before: 1.0, a TestCase whose name does not start with "test" was never run
    ("def f(x):\n    return 0\n", "import unittest\nfrom solution import f\n\nclass SolutionTests(unittest.TestCase):\n"
                                  "    def test_a(self):\n        self.assertEqual(f(1), 2)\n", 0.0),
    ("def f(x):\n    return 2 * x\n", "import unittest\nfrom solution import f\n\nclass SolutionTests("
                                     "unittest.TestCase):\n    def test_a(self):\n        self.assertEqual(f(1), 2)\n", 1.0),
])
def test_the_solution_module_and_test_collection(verifier, completion, test, reward):
    v = verifier(completion, {"tests": [test]})
    assert (v.status, v.reward) == ("ok", reward), v
    assert_no_traces()


@pytest.mark.parametrize("completion,tests,reward,total", [
    # before: the set-up items held a call, counted as tests that any program passed (0.67 for a wrong one)
    ("def f(xs):\n    return 0\n", ["import random\nrandom.seed(0)", "xs = list(range(10))", "assert f(xs) == 45"],
     0.0, 1),
    ("def f(xs):\n    return sum(xs)\n", ["import random\nrandom.seed(0)", "xs = list(range(10))",
                                       "assert f(xs) == 45"], 1.0, 1),
    ("def add(a, b):\n    return 0\n", ["def check(candidate):\n    assert candidate(1, 2) == 3", "check(add)"], 0.0, 1),
    ("def add(a, b):\n    return a + b\n", ["def check(candidate):\n    assert candidate(1, 2) == 3", "check(add)"],
     1.0, 1),
])
def test_set_up_items_with_calls_are_no_tests(verifier, completion, tests, reward, total):
    """Layer: ``verifier._checks`` (an item checks when it asserts or calls the solution)."""
    v = verifier(completion, {"tests": tests})
    assert (v.status, v.reward, v.details["total"]) == ("ok", reward, total), v


@pytest.mark.parametrize("completion,test,reward", [
    # before: 1.0, clearing the argument made the expected side empty too
    ("def my_sort(a):\n    a.clear()\n    return []\n", "arr = [3, 1, 2]\nassert my_sort(arr) == sorted(arr)", 0.0),
    ("def remove_duplicates(nums):\n    nums[:] = sorted(set(nums))\n    return len(nums)\n",
     "nums = [1, 1, 2]\nk = remove_duplicates(nums)\nassert k == 2 and nums[:k] == [1, 2]", 1.0),
    # before: 1.0, an alias of AssertionError caught the test's own failing assert
    ("InvalidInput = AssertionError\ndef f(x):\n    return x\n",
     "try:\n    f(-1)\n    assert False, 'no raise'\nexcept InvalidInput:\n    pass", 0.0),
    ("InvalidInput = ValueError\ndef f(x):\n    raise ValueError(x)\n",
     "try:\n    f(-1)\n    assert False, 'no raise'\nexcept InvalidInput:\n    pass", 1.0),
])
def test_in_place_changes_and_aliases_cannot_fake_a_check(verifier, completion, test, reward):
    v = verifier(completion, {"tests": [test]})
    assert (v.status, v.reward) == ("ok", reward), v
    assert_no_traces()


NEED = ("class InsufficientFunds(Exception):\n    def __init__(self, need):\n        self.need = need\n"
        "    def __str__(self):\n        return f'need {self.need} more'\n"
        "class NotFound(KeyError):\n    pass\n"
        "def withdraw(balance, amount):\n    if amount > balance:\n        raise InsufficientFunds(amount - balance)\n"
        "    return balance - amount\ndef find(d, k):\n    if k not in d:\n        raise NotFound(k)\n    return d[k]\n")


@pytest.mark.parametrize("completion,test", [
    (NEED, "try:\n    withdraw(1, 51)\nexcept Exception as e:\n    assert str(e) == 'need 50 more'"),
    (NEED, "try:\n    find({}, 'x')\nexcept KeyError as e:\n    assert isinstance(e, NotFound)"),
    (NEED, "assert issubclass(NotFound, KeyError)"),
    # an exception class the tests never name is one class however often it is raised
    (NEED, "kinds = []\nfor k in 'ab':\n    try:\n        find({}, k)\n    except Exception as e:\n"
           "        kinds.append(type(e))\nassert kinds[0] is kinds[1] and kinds[0].__name__ == 'NotFound'"),
    ("def gen(n):\n    for i in range(n):\n        yield i\n", "assert sum(gen(200000)) == 19999900000"),
    ("def gen(n):\n    for i in range(n):\n        yield i\n    raise ValueError('past the end')\n",
     "from itertools import islice\ng = gen(6)\nassert list(islice(g, 3)) == [0, 1, 2]\n"
     "assert list(islice(g, 3)) == [3, 4, 5]"),
    # an iterator is not read far ahead of the test (look-and-say's 80th term for the 40 it takes)
    ("def look_and_say():\n    s = '1'\n    while True:\n        yield s\n        out, i = [], 0\n"
     "        while i < len(s):\n            j = i\n            while j < len(s) and s[j] == s[i]:\n                j += 1\n"
     "            out.append(str(j - i) + s[i])\n            i = j\n        s = ''.join(out)\n",
     "from itertools import islice\nterms = list(islice(look_and_say(), 40))\nassert terms[3] == '1211'"),
    ("def doubling():\n    s = 'a'\n    while True:\n        yield s\n        s = s + s\n",
     "from itertools import islice\nassert len(list(islice(doubling(), 24))[-1]) == 2 ** 23"),
])
def test_correct_programs_that_failed(verifier, completion, test):
    v = verifier(completion, {"tests": [test]})
    assert (v.status, v.reward) == ("ok", 1.0), v


def test_a_helper_in_an_earlier_block_is_kept_and_an_example_is_not(verifier):
    completion = ("First a helper:\n```python\nimport math\ndef sq(x):\n    return x * x\n```\n"
                  "Example:\n```python\nprint(hyp(3, 4))\n```\nThe solution:\n```python\n"
                  "def hyp(a, b):\n    return math.sqrt(sq(a) + sq(b))\n```\n")
    v = verifier(completion, {"tests": ["assert hyp(3, 4) == 5"]})
    assert (v.status, v.reward) == ("ok", 1.0), v


# -- pytest-style rows (KodCode): no pytest installed in the sandbox, and none needed ---------------------------

PYTEST_ROW = """import pytest
from solution import add

@pytest.mark.parametrize("a,b,expected", [(1, 2, 3), (2, 2, 4), (0, 5, 5)])
def test_add(a, b, expected):
    assert add(a, b) == expected

@pytest.fixture
def pair():
    yield (3, 4)

def test_fixture(pair, tmp_path):
    (tmp_path / "f").write_text("x")
    assert add(*pair) == 7

def test_raises():
    with pytest.raises(TypeError, match="unsupported"):
        add(1, "x")

def test_approx():
    assert add(0.1, 0.2) == pytest.approx(0.3)

class TestAdd:
    def test_zero(self):
        assert add(0, 0) == 0

class TestData:  # a helper with an __init__: pytest collects no such class
    def __init__(self, a, b):
        self.a, self.b = a, b
"""


@pytest.mark.parametrize("completion,test,reward", [
    ("def add(a, b):\n    return a + b\n", PYTEST_ROW, 1.0),
    ("def add(a, b):\n    return a * b\n", PYTEST_ROW, 0.0),  # (2, 2, 4) passes, the others do not
    ("def add(a, b):\n    return a + b\n",
     "import pytest\nfrom solution import add\n\ndef test_it():\n    with pytest.raises(ValueError):\n        add(1, 2)\n",
     0.0),  # DID NOT RAISE
    ("def add(a, b):\n    return a + b\n",
     "import pytest\n\n@pytest.mark.skip(reason='later')\ndef test_it():\n    assert add(1, 2) == 3\n", 0.0),
])
def test_pytest_rows_run_without_pytest(verifier, completion, test, reward):
    """Layer: ``sandbox_pytest`` as T's ``pytest``. Before: ``No module named 'pytest'`` for every program."""
    v = verifier(completion, {"tests": [test]})
    assert (v.status, v.reward) == ("ok", reward), v


def test_approx_compares_as_pytest_does():
    from raylign.verifiers.code.sandbox_pytest import approx
    assert 0.1 + 0.2 == approx(0.3) and [0.1 + 0.2, 1] == approx([0.3, 1]) and {"a": 1.0000001} == approx({"a": 1})
    assert 0.31 != approx(0.3) and float("nan") != approx(float("nan")) and [1, 2] != approx([1, 2, 3])
    assert 1e-13 == approx(0.0) and 2 != approx(0.0)


LISTNODE_TESTS = """class ListNode:
    def __init__(self, val=0, next=None):
        self.val, self.next = val, next
def build(xs):
    head = None
    for x in reversed(xs):
        head = ListNode(x, head)
    return head
def to_list(node):
    out = []
    while node:
        out.append(node.val)
        node = node.next
    return out
assert to_list(Solution().reverseList(build(list(range(COUNT))))) == list(range(COUNT))[::-1]
"""
REVERSE = ("class Solution:\n    def reverseList(self, head):\n        prev = None\n        while head:\n"
           "            head.next, prev, head = prev, head, head.next\n        return prev\n")  # no ListNode of its own


@pytest.mark.parametrize("n", [5, 3000])
def test_the_tests_own_node_classes_reach_a_solution_without_them(verifier, n):
    """Before: the solution process died unpickling the tests' ListNode (LeetCode solutions leave it commented
    out), and every later test failed; past ~1000 nodes the list could not be pickled."""
    v = verifier(REVERSE, {"tests": [LISTNODE_TESTS.replace("COUNT", str(n))]})
    assert (v.status, v.reward) == ("ok", 1.0), v


# -- the eighth pass: over the seventh's fixes -----------------------------------------------------------------

@pytest.mark.parametrize("completion,tests,reward", [
    # before: 1.0, "from solution import *" after "from pytest import approx" brought the solution's approx
    ("def f(x):\n    return 0\ndef approx(*a, **k):\n    return 0\n",
     ["from pytest import approx\nfrom solution import *\n\ndef test_f():\n    assert f(2) == approx(1.414, rel=1e-3)\n"],
     0.0),
    # the solution's exception class imported by name (KodCode)
    ("class InvalidInput(ValueError):\n    pass\ndef f(x):\n    if x < 0:\n        raise InvalidInput('neg')\n    return x\n",
     ["import pytest\nfrom solution import f, InvalidInput\n\ndef test_f():\n    with pytest.raises(InvalidInput):\n"
      "        f(-1)\n"], 1.0),
    # checks made through a helper of an earlier item are checks (they were folded away: a wrong program got 1.0)
    ("def solve(x):\n    return 0\n", ["assert solve(0) == 0", "def run_case(a, b):\n    assert solve(a) == b",
                                      "run_case(1, 2)", "run_case(3, 6)"], 1 / 3),
    # an item binding the solution's object sets up the items after it (before: NameError in those)
    ("class Stack:\n    def __init__(self):\n        self.xs = []\n    def push(self, x):\n        self.xs.append(x)\n"
     "    def pop(self):\n        return self.xs.pop()\n", ["s = Stack()", "s.push(1)", "assert s.pop() == 1"], 1.0),
    # tests nobody collects fail their item (before: any program passed)
    ("def add(a, b):\n    return 0\n", ["def Test_add():\n    assert add(1, 2) == 3\n"], 0.0),
    ("def add(a, b):\n    return 0\n", ["async def test_add():\n    assert add(1, 2) == 3\n"], 0.0),
    ("def add(a, b):\n    return 0\n", ["class testAdd:\n    def test_it(self):\n        assert add(1, 2) == 3\n"], 0.0),
    # pytest's marks, params, fixtures in a class, setup hooks
    ("def add(a, b):\n    return a + b\n",
     ["import pytest\n\n@pytest.mark.slow\n@pytest.mark.parametrize('a,b', [pytest.param(1, 2), (2, 3)])\n"
      "def test_add(a, b):\n    assert add(a, b) == a + b\n\n@pytest.mark.skipif(False, reason='no')\ndef test_two():\n"
      "    assert add(1, 1) == 2\n\nclass TestAdd:\n    def setup_method(self):\n        self.base = 10\n\n"
      "    @pytest.fixture\n    def one(self):\n        return 1\n\n    def test_one(self, one):\n"
      "        assert add(self.base, one) == 11\n\nif __name__ == '__main__':\n    pytest.main()\n"], 1.0),
    # LeetCode's annotations the judge would define
    ("class Solution:\n    def middleNode(self, head: Optional[ListNode]) -> Optional[ListNode]:\n"
     "        slow = fast = head\n        while fast and fast.next:\n            slow, fast = slow.next, fast.next.next\n"
     "        return slow\n    def twoSum(self, nums: List[int], target: int) -> List[int]:\n        return [0, 1]\n",
     ["assert Solution().twoSum([2, 7], 9) == [0, 1]"], 1.0),
])
def test_eighth_pass(verifier, completion, tests, reward):
    v = verifier(completion, {"tests": tests})
    assert (v.status, v.reward) == ("ok", pytest.approx(reward)), v
    assert_no_traces()


def test_a_helper_block_after_the_solution_is_kept(verifier):
    completion = ("```python\ndef area(r):\n    return helper(r) * r\n```\nwhere\n```python\nimport math\n"
                  "def helper(r):\n    return math.pi * r\n```\n")
    v = verifier(completion, {"tests": ["assert abs(area(1) - 3.14159) < 1e-4"]})
    assert (v.status, v.reward) == ("ok", 1.0), v


# -- the ninth pass: over the eighth's fixes -------------------------------------------------------------------

@pytest.mark.parametrize("completion,tests,reward", [
    # a block of tests after the solution's is no helper of it (before: ModuleNotFoundError: pytest / solution)
    ("```python\ndef add(a, b):\n    return a + b\n```\nTests:\n```python\nimport pytest\nfrom solution import add\n\n"
     "def test_add():\n    assert add(1, 2) == 3\n```\n", ["assert add(2, 2) == 4"], 1.0),
    # checks the folding rule does not see are never dropped: they run with the last check
    ("def f(x):\n    return 0\n", ["assert f(0) == 0", "import unittest\nunittest.TestCase().assertEqual(f(1), 2)"],
     0.5),
    ("def f(x):\n    return 0\n", ["def run_case(a, b):\n    assert f(a) == b", "assert f(0) == 0",
                                  "[run_case(a, b) for a, b in [(1, 2), (3, 6)]]"], 0.5),
    # a TestCase whose tests were all skipped checks nothing; an xfail test neither
    ("def f(x):\n    return 0\n", ["import unittest\nclass TestF(unittest.TestCase):\n"
                                  "    @unittest.skip('later')\n    def test_f(self):\n        self.assertEqual(f(1), 2)\n"],
     0.0),
    ("def f(x):\n    return 0\n", ["import pytest\n\n@pytest.mark.xfail(reason='known')\ndef test_f():\n"
                                  "    assert f(1) == 2\n"], 0.0),
    # unittest.main() runs the TestCases; the pytest-style tests beside them run too
    ("def f(x):\n    return 0\n", ["import unittest\nclass TestA(unittest.TestCase):\n    def test_a(self):\n"
                                  "        self.assertEqual(f(0), 0)\n\ndef test_b():\n    assert f(1) == 2\n\n"
                                  "if __name__ == '__main__':\n    unittest.main()\n"], 0.0),
])
def test_ninth_pass(verifier, completion, tests, reward):
    v = verifier(completion, {"tests": tests})
    assert (v.status, v.reward) == ("ok", pytest.approx(reward)), v
