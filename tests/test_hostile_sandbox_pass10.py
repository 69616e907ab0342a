"""Hostile and honest programs against the code sandbox, tenth pass and after: output the tests capture (pytest's
``capsys``, ``redirect_stdout``, ``sys.stdout = io.StringIO()``, ``mock.patch("sys.stdout")``) and modules the
tests patch for the solution (``monkeypatch``, ``unittest.mock.patch`` of ``builtins.input``, ``sys.stdin``,
``random``, the environment). The solution runs in S, the tests in T, so each of these crosses the process
boundary (``sandbox_tester.request``/``drain``, S's ``capture``/``readcap``/``patch``/``unpatch`` requests).
Real namespaces, cgroups and processes, no mocks of the sandbox.
"""
from __future__ import annotations

import pytest

# the first pass's module fixtures (``ns``: the namespaces backend, ``verifier``: a CodeVerifier on it)
from test_hostile_sandbox import assert_no_traces, ns, verifier  # noqa: F401

GREET = "def greet(name):\n    print(f'Hello, {name}!')\n"
GREET_WRONG = "def greet(name):\n    print(f'Hi, {name}!')\n"
SHOW = "def show(xs):\n    for x in xs:\n        print(x)\n"
SHOW_WRONG = "def show(xs):\n    print(xs)\n"
ASK = "def ask():\n    n = int(input('n? '))\n    return n * 2\n"
WARN = "import sys\ndef warn(m):\n    print('warning:', m, file=sys.stderr)\n    raise ValueError(m)\n"
ROLL = "import random\ndef roll():\n    return random.randint(1, 6)\n"
MAIN = "def main():\n    a, b = map(int, input().split())\n    print(a + b)\n"

CAPSYS = ("from solution import greet\n\ndef test_greet(capsys):\n    greet('A')\n    out, err = capsys.readouterr()\n"
          "    assert out == 'Hello, A!\\n' and err == ''\n    greet('B')\n    assert capsys.readouterr().out == 'Hello, B!\\n'\n")
ASSIGNED = ("import io, sys\nfrom solution import show\ncaptured = io.StringIO()\nsys.stdout = captured\nshow([3, 4])\n"
            "sys.stdout = sys.__stdout__\nassert captured.getvalue() == '3\\n4\\n'\n")
REDIRECT = ("import io\nfrom contextlib import redirect_stdout\nfrom solution import show\nbuf = io.StringIO()\n"
            "with redirect_stdout(buf):\n    show([5])\nassert buf.getvalue() == '5\\n'\n")
MOCK_STDOUT = ("import io, unittest\nfrom unittest.mock import patch\nfrom solution import show\n\n"
               "class T(unittest.TestCase):\n    @patch('sys.stdout', new_callable=io.StringIO)\n"
               "    def test_show(self, out):\n        show([1, 2])\n        self.assertEqual(out.getvalue(), '1\\n2\\n')\n")
STDERR = ("from solution import warn\nimport pytest\ndef test_w(capsys):\n    with pytest.raises(ValueError):\n"
          "        warn('x')\n    assert capsys.readouterr().err == 'warning: x\\n'\n")
INPUT = ("from solution import ask\n\ndef test_ask(monkeypatch):\n    monkeypatch.setattr('builtins.input', lambda _: '21')\n"
         "    assert ask() == 42\n")
STDIN = ("import io\nfrom solution import main\n\ndef test_main(monkeypatch, capsys):\n"
         "    monkeypatch.setattr('sys.stdin', io.StringIO('2 3\\n'))\n    main()\n"
         "    assert capsys.readouterr().out.strip() == '5'\n")
RANDOM = ("import random\nfrom solution import roll\n\ndef test_roll(monkeypatch):\n"
          "    monkeypatch.setattr(random, 'randint', lambda a, b: 4)\n    assert roll() == 4\n")
ENV = ("from solution import mode\n\ndef test_env(monkeypatch):\n    monkeypatch.setenv('APP_MODE', 'prod')\n"
       "    assert mode() == 'prod'\n    monkeypatch.delenv('APP_MODE')\n    assert mode() == 'dev'\n")
MOCK_INPUT = ("import unittest\nfrom unittest.mock import patch\nfrom solution import ask\n\nclass T(unittest.TestCase):\n"
              "    @patch('builtins.input', return_value='7')\n    def test_ask(self, m):\n        self.assertEqual(ask(), 14)\n"
              "        m.assert_called_once()\n")
MOCK_SEQUENCE = ("from unittest.mock import patch\nfrom solution import ask\nwith patch('builtins.input', side_effect=['3', '4']):\n"
                 "    assert ask() == 6\n    assert ask() == 8\n")
MOCK_OBJECT = ("import unittest\nfrom unittest import mock\nimport random\nfrom solution import roll\n\n"
               "class T(unittest.TestCase):\n    def test_roll(self):\n"
               "        with mock.patch.object(random, 'randint', return_value=3):\n            self.assertEqual(roll(), 3)\n"
               "        self.assertIn(roll(), range(1, 7))\n")


@pytest.mark.parametrize("completion,test,reward", [
    (GREET, CAPSYS, 1.0), (GREET_WRONG, CAPSYS, 0.0),
    (SHOW, ASSIGNED, 1.0), (SHOW_WRONG, ASSIGNED, 0.0),
    (SHOW, REDIRECT, 1.0), (SHOW_WRONG, REDIRECT, 0.0),
    (SHOW, MOCK_STDOUT, 1.0), (SHOW_WRONG, MOCK_STDOUT, 0.0),
    (WARN, STDERR, 1.0), ("def warn(m):\n    raise ValueError(m)\n", STDERR, 0.0),
    (SHOW, "from solution import show\nshow([1])\n", 1.0),  # prints nobody captures still go to the run's stdout
])
def test_what_the_solution_prints_reaches_the_tests_captures(verifier, completion, test, reward):
    """Layer: T's ``request`` tells S which of T's streams are redirected, and writes what the solution printed
    during each call into them. Without it the solution's prints stayed in S and every correct program failed."""
    v = verifier(completion, {"tests": [test]})
    assert (v.status, v.reward) == ("ok", reward), v


@pytest.mark.parametrize("completion,test,reward", [
    (ASK, INPUT, 1.0), ("def ask():\n    return 41\n", INPUT, 0.0),
    (MAIN, STDIN, 1.0), ("def main():\n    print(6)\n", STDIN, 0.0),
    (ROLL, RANDOM, 1.0), ("import random\ndef roll():\n    return random.choice([1, 2])\n", RANDOM, 0.0),
    ("import os\ndef mode():\n    return os.environ.get('APP_MODE', 'dev')\n", ENV, 1.0),
    ("def mode():\n    return 'prod'\n", ENV, 0.0),
    (ASK, MOCK_INPUT, 1.0), ("def ask():\n    return 14\n", MOCK_INPUT, 0.0),  # (the mock was never called)
    (ASK, MOCK_SEQUENCE, 1.0), (ROLL, MOCK_OBJECT, 1.0),
])
def test_modules_the_tests_patch_are_patched_for_the_solution(verifier, completion, test, reward):
    """Layer: ``sandbox_pytest.MonkeyPatch`` and ``forward_mock_patches`` make a module change in S too (a
    function as a call back to T's, a StringIO as its text), undone when the test or the patch ends."""
    v = verifier(completion, {"tests": [test]})
    assert (v.status, v.reward) == ("ok", reward), v


def test_a_patch_ends_with_its_test(verifier):
    """The second item sees the real ``input`` again in S: the first one's patch was undone there."""
    tests = ["from solution import ask\n\ndef test_ask(monkeypatch):\n"
             "    monkeypatch.setattr('builtins.input', lambda _: '1')\n    assert ask() == 2\n",
             "import builtins\nfrom solution import which\nassert which() == 'builtin_function_or_method'\n"]
    code = ASK + "import builtins\ndef which():\n    return type(builtins.input).__name__\n"
    v = verifier(code, {"tests": tests})
    assert (v.status, v.reward) == ("ok", 1.0), v


def test_a_flood_into_a_capture_is_bounded(verifier):
    """A program printing without end into a test's capture: T keeps at most ``_DRAIN_CAP`` characters, and the
    verdict is the program's failure, not an error of the judge."""
    code = "def spam():\n    for _ in range(40):\n        print('x' * 1_000_000)\n"
    test = "from solution import spam\n\ndef test_spam(capsys):\n    spam()\n    assert capsys.readouterr().out == ''\n"
    v = verifier(code, {"tests": [test]})
    assert (v.status, v.reward) == ("ok", 0.0), v
    assert_no_traces()


LOGGED = "log = []\ndef gen():\n    for i in range(1000):\n        log.append(i)\n        yield i\ndef seen():\n    return list(log)\n"


@pytest.mark.parametrize("completion,test", [
    (LOGGED, "g = gen()\nnext(g)\nassert seen() == [0]\nnext(g)\nnext(g)\nassert seen() == [0, 1, 2]\n"),
    (LOGGED, "from itertools import islice\ng = gen()\nassert list(islice(g, 5)) == [0, 1, 2, 3, 4]\n"
             "assert seen() == [0, 1, 2, 3, 4]\n"),
    (LOGGED, "g = gen()\nassert sum(g) == 499500\nassert len(seen()) == 1000\n"),
    ("def gen():\n    for i in range(3):\n        print(i)\n        yield i\n",
     "def test_p(capsys):\n    g = gen()\n    next(g)\n    assert capsys.readouterr().out == '0\\n'\n    next(g)\n"
     "    assert capsys.readouterr().out == '1\\n'\n"),
    ("def acc():\n    total = 0\n    while True:\n        x = yield total\n        total += x\n",
     "g = acc()\nnext(g)\nassert g.send(5) == 5\nassert g.send(3) == 8\n"),
    ("class C:\n    def __init__(self):\n        self.xs = list(range(5000))\n    def __iter__(self):\n"
     "        return iter(self.xs)\ndef make():\n    return C()\n", "assert sum(x for x in make()) == 12497500"),
    ("class countdown:\n    def __init__(self, n):\n        self.n = n\n    def __iter__(self):\n        return self\n"
     "    def __next__(self):\n        if self.n <= 0:\n            raise StopIteration\n        self.n -= 1\n"
     "        return self.n + 1\n",
     "it = countdown(3)\nassert iter(it) is it\nassert list(it) == [3, 2, 1]\nassert list(it) == []"),
])
def test_an_iterator_is_read_no_further_than_the_test_has_looked(verifier, completion, test):
    """Layer: ``Remote.__next__`` fetches an iterator's items one per request while the test makes other requests
    (or captures prints), and in growing batches only after ``_ONE_BY_ONE`` uninterrupted ones. Before, the
    batches grew from the first item, so a generator's side effects ran ahead of what the test had taken
    (``islice(g, 5)`` then ``seen()`` saw seven items), depending on how fast the items were."""
    v = verifier(completion, {"tests": [test]})
    assert (v.status, v.reward) == ("ok", 1.0), v


INC = "def f(x):\n    return x + 1\n"


@pytest.mark.parametrize("completion,test,reward", [
    (INC, "import pytest, sys\n@pytest.mark.skipif('sys.version_info < (3, 6)', reason='old')\ndef test_f():\n"
          "    assert f(1) == 2\n", 1.0),
    ("def f(x):\n    return x\n", "import pytest, sys\n@pytest.mark.skipif('sys.version_info < (3, 6)', reason='old')\n"
     "def test_f():\n    assert f(1) == 2\n", 0.0),
    (INC, "import pytest\n@pytest.mark.skipif('sys.version_info > (3, 6)', reason='new')\ndef test_f():\n"
          "    assert f(1) == 2\n", 0.0),  # skipped: a test that checks nothing is no pass
    (INC, "import pytest\n@pytest.mark.skipif(condition=False, reason='never')\ndef test_f():\n    assert f(1) == 2\n", 1.0),
])
def test_a_string_skipif_condition_is_evaluated(verifier, completion, test, reward):
    """Layer: ``sandbox_pytest._condition``. A string condition was taken as true (every such test skipped)."""
    v = verifier(completion, {"tests": [test]})
    assert (v.status, v.reward) == ("ok", reward), v


COUNT = "def count_lines(path):\n    with open(path) as f:\n        return sum(1 for _ in f)\n"
SAVE = "def save(path, text):\n    with open(path, 'w') as f:\n        f.write(text)\n"


@pytest.mark.parametrize("completion,test", [
    (COUNT, "import tempfile, os\nwith tempfile.NamedTemporaryFile('w', delete=False, suffix='.txt') as f:\n"
            "    f.write('a\\nb\\nc\\n')\nassert count_lines(f.name) == 3\nos.remove(f.name)\n"),
    (SAVE, "import tempfile, os\nfd, p = tempfile.mkstemp()\nos.close(fd)\nsave(p, 'hi')\nassert open(p).read() == 'hi'\n"),
    (SAVE, "import tempfile, os\nwith tempfile.TemporaryDirectory() as d:\n    p = os.path.join(d, 'out.txt')\n"
           "    save(p, 'yo')\n    assert open(p).read() == 'yo'\n"),
    (SAVE, "import tempfile\nwith tempfile.NamedTemporaryFile('w+') as f:\n    save(f.name, 'zz')\n    f.seek(0)\n"
           "    assert f.read() == 'zz'\n"),
    (SAVE, "import os\nos.makedirs('/tmp/work/sub', exist_ok=True)\nsave('/tmp/work/sub/a.txt', 'q')\n"
           "assert open('/tmp/work/sub/a.txt').read() == 'q'\n"),
])
def test_paths_the_tests_make_reach_the_solution(verifier, completion, test):
    """Layer: ``sandbox_tester.share_paths``. S runs as another user than T, so a file from ``tempfile`` (mode
    0600) or a directory the test made (0755) was closed to it and every correct program failed."""
    v = verifier(completion, {"tests": [test]})
    assert (v.status, v.reward) == ("ok", 1.0), v


def test_the_solution_cannot_rewrite_or_replace_the_tests_files(verifier):
    """A directory T makes is sticky: S adds files there but cannot replace, remove or rewrite T's own (the
    expected output the test compares with stays the test's)."""
    code = ("import os\ndef save(path, text):\n    with open(path, 'w') as f:\n        f.write(text)\n"
            "    d = os.path.dirname(path)\n    for name in os.listdir(d):\n        p = os.path.join(d, name)\n"
            "        if p == path:\n            continue\n        try:\n            open(p, 'w').write(text)\n"
            "        except OSError:\n            pass\n        try:\n            os.remove(p)\n"
            "        except OSError:\n            pass\n        with open(path + '.x', 'w') as f:\n"
            "            f.write(text)\n        try:\n            os.rename(path + '.x', p)\n"
            "        except OSError:\n            pass\n        with open(p if os.path.exists(p) else path, 'a'):\n"
            "            pass\n")
    test = ("import os\nos.makedirs('/tmp/cmp')\nwith open('/tmp/cmp/expected.txt', 'w') as f:\n    f.write('right')\n"
            "save('/tmp/cmp/out.txt', 'wrong')\nassert open('/tmp/cmp/out.txt').read() == open('/tmp/cmp/expected.txt').read()\n")
    v = verifier(code, {"tests": [test]})
    assert (v.status, v.reward) == ("ok", 0.0), v


# ---------------------------------------------------------------- the solution's objects in the tests (passes 10, 11)
VECTOR = ("import math\nclass Vector:\n    def __init__(self, x, y):\n        self.x, self.y = x, y\n"
          "    def __eq__(self, o):\n        return isinstance(o, Vector) and (self.x, self.y) == (o.x, o.y)\n"
          "    def __hash__(self):\n        return hash((self.x, self.y))\n"
          "    def __mul__(self, k):\n        return Vector(self.x * k, self.y * k)\n    __rmul__ = __mul__\n"
          "    def __neg__(self):\n        return Vector(-self.x, -self.y)\n"
          "    def __abs__(self):\n        return math.hypot(self.x, self.y)\n")
NODES = ("class ListNode:\n    def __init__(self, val=0, next=None):\n        self.val = val\n        self.next = next\n\n"
         "def to_list(n):\n    out = []\n    while n:\n        out.append(n.val)\n        n = n.next\n    return out\n")
MERGE = ("def merge(a, b):\n    dummy = tail = ListNode(0)\n    while a and b:\n        if a.val <= b.val:\n"
         "            tail.next, a = a, a.next\n        else:\n            tail.next, b = b, b.next\n        tail = tail.next\n"
         "    tail.next = a or b\n    return dummy.next\n")
LIAR = ("class L:\n    def __lt__(s, o):\n        return True\n    def __gt__(s, o):\n        return True\n"
        "    def __sub__(s, o):\n        return L()\n    def __abs__(s):\n        return 0\n    def __bool__(s):\n"
        "        return False\n    def __exit__(s, *a):\n        return True\n    def __enter__(s):\n        return s\n"
        "def f(x):\n    return L()\n")


@pytest.mark.parametrize("completion,test,reward", [
    (VECTOR, "v = Vector(1, 2)\nassert v * 3 == Vector(3, 6)\nassert 2 * v == Vector(2, 4)\nassert -v == Vector(-1, -2)\n"
             "assert abs(Vector(3, 4)) == 5.0\nassert len({Vector(1, 2), Vector(1, 2)}) == 1", 1.0),
    ("class Box:\n    def __init__(self):\n        self.items = {}\n    def __setitem__(self, k, v):\n        self.items[k] = v\n"
     "    def __getitem__(self, k):\n        return self.items[k]\n    def __delitem__(self, k):\n        del self.items[k]\n"
     "    def __contains__(self, k):\n        return k in self.items\n",
     "b = Box()\nb['a'] = 1\nassert b['a'] == 1 and 'a' in b and 'z' not in b\ndel b['a']\nassert 'a' not in b", 1.0),
    ("class P:\n    def __init__(self, x):\n        self.x = x\n",
     "p = P(1)\np.x = 5\nassert p.x == 5\np.y = 2\ndel p.y\nassert not hasattr(p, 'y')", 1.0),
    ("class Timer:\n    def __enter__(self):\n        self.entered = True\n        return self\n    def __exit__(self, *a):\n"
     "        self.done = True\n        return False\n",
     "with Timer() as t:\n    pass\nassert t.entered and t.done", 1.0),
    ("class Suppress:\n    def __init__(self, *kinds):\n        self.kinds = kinds\n    def __enter__(self):\n        return self\n"
     "    def __exit__(self, et, e, tb):\n        return et is not None and issubclass(et, self.kinds)\n",
     "with Suppress(ValueError):\n    raise ValueError('x')\nwith Suppress(KeyError):\n    {}['k']\nok = True\nassert ok", 1.0),
    ("from dataclasses import dataclass\n@dataclass(frozen=True)\nclass Pt:\n    x: int\n",
     "import pytest\nfrom dataclasses import FrozenInstanceError\ndef test_frozen():\n    p = Pt(1)\n"
     "    with pytest.raises(FrozenInstanceError):\n        p.x = 2\n    assert hash(p) == hash(Pt(1))\n", 1.0),
    ("class Money:\n    def __init__(self, c):\n        self.c = c\n    def __add__(self, o):\n        if not isinstance(o, Money):\n"
     "            return NotImplemented\n        return Money(self.c + o.c)\n",
     "import pytest\nwith pytest.raises(TypeError):\n    Money(5) + 3\nassert (Money(1) + Money(2)).c == 3", 1.0),
    ("class Token:\n    def __init__(self):\n        self.kind = 'x'\n", "assert Token() != Token()", 1.0),  # no __eq__: identity
    ("from dataclasses import dataclass\n@dataclass(frozen=True)\nclass Pt:\n    x: int\n",
     "import pytest, dataclasses\nwith pytest.raises(dataclasses.FrozenInstanceError):\n    Pt(1).x = 2", 1.0),  # (an
    # item whose only check is a raises block)
    ("class K:\n    def __init__(self, v):\n        self.v = v\n    def __eq__(self, o):\n        return self.v == o.v\n"
     "    __hash__ = None\n", "import pytest\nwith pytest.raises(TypeError):\n    hash(K(1))", 1.0),
    # wrong programs: a mutable "frozen" point, a Money that adds numbers, a Box without item deletion
    ("class Pt:\n    def __init__(self, x):\n        self.x = x\n",
     "import pytest\nwith pytest.raises(AttributeError):\n    Pt(1).x = 2", 0.0),
    ("class Money:\n    def __init__(self, c):\n        self.c = c\n    def __add__(self, o):\n"
     "        return Money(self.c + (o.c if isinstance(o, Money) else o))\n",
     "import pytest\nwith pytest.raises(TypeError):\n    Money(5) + 3", 0.0),
    # LeetCode: the tests define ListNode, the solution uses it without defining it
    (MERGE, NODES + "def build(xs):\n    head = None\n    for x in reversed(xs):\n        head = ListNode(x, head)\n    return head\n"
                    "assert to_list(merge(build([1, 3]), build([2, 4]))) == [1, 2, 3, 4]", 1.0),
    (MERGE.replace("<=", ">"), NODES + "a = ListNode(1)\na.next = ListNode(3)\nb = ListNode(2)\n"
                                       "assert to_list(merge(a, b)) == [1, 2, 3]", 0.0),
])
def test_the_solutions_objects_work_as_in_python(verifier, completion, test, reward):
    """Layers: ``Remote``'s item and attribute assignment, ``in``, ``with``, operators with plain data and unary
    ones, hash, identity for classes without ``__eq__``, library exception classes (``FrozenInstanceError``), all
    decided by the solution's own class in S; the tests' ListNode in S (``verifier._test_classes``). Before, T's
    stand-in refused these with AttributeError/TypeError, which failed correct programs and passed wrong ones
    whose test expected exactly that error."""
    v = verifier(completion, {"tests": [test]})
    assert (v.status, v.reward) == ("ok", reward), v


@pytest.mark.parametrize("test", [
    "assert abs(f(1) - 3.14) < 1e-6",
    "assert 0.99 < f(1) < 1.01",
    "assert not (f(1) - 3.14)",
    "try:\n    assert abs(f(1) - 3.14) < 1e-6\nexcept BaseException:\n    pass",  # caught: the item still fails
    "with f(1):\n    assert f(1) == 4",  # its __exit__ swallows everything: never a test's failing assert
])
def test_an_object_within_everything_passes_no_tolerance_check(verifier, test):
    """Layer: ``Remote._op``'s taint. An operation on the solution's object with the test's plain data may give a
    solution object, never plain data (``Refused``, which fails the item even when caught): else ``L() - 3.14``
    answering 0 passes every tolerance check."""
    v = verifier(LIAR, {"tests": [test]})
    assert (v.status, v.reward) == ("ok", 0.0), v


@pytest.mark.parametrize("completion,test,reward", [
    ("def f(x):\n    return x * 2\n\nif __name__ == '__main__':\n    print(f(int(input())))\n", "assert f(2) == 4", 1.0),
    ("def f(x):\n    return x * 2\n\nif __name__ == '__main__':\n    print(f(int(input())))\n",
     "from solution import f\ndef test_f():\n    assert f(3) == 6\n", 1.0),
])
def test_the_program_is_imported_by_the_tests_not_run_as_a_script(verifier, completion, test, reward):
    """Layer: S names the program's module ``solution`` in tests mode: its ``__main__`` demo, which reads stdin,
    does not run (it raised EOFError and failed every test)."""
    v = verifier(completion, {"tests": [test]})
    assert (v.status, v.reward) == ("ok", reward), v


INC_PY = "import pytest\nfrom solution import f\n\n"


@pytest.mark.parametrize("completion,test,reward", [
    (INC, INC_PY + "@pytest.mark.parametrize('a,b', [(1, 2), (2, 3)])\nclass TestF:\n    def test_a(self, a, b):\n"
                   "        assert f(a) == b\n", 1.0),
    (INC, INC_PY + "@pytest.mark.skip(reason='old')\nclass TestOld:\n    def test_a(self):\n        assert f(1) == 7\n\n"
                   "def test_b():\n    assert f(1) == 2\n", 1.0),  # skipped beside one that ran: as pytest
    (INC, INC_PY + "@pytest.mark.skip(reason='x')\ndef test_a():\n    assert f(1) == 2\n", 0.0),  # nothing ran
    (INC, INC_PY + "@pytest.fixture(params=[1, 2])\ndef n(request):\n    return request.param\n\n"
                   "def test_a(n):\n    assert f(n) == n + 1\n", 1.0),
    ("def f(x):\n    return 2 if x == 1 else 0\n", INC_PY + "@pytest.fixture(params=[1, 2])\ndef n(request):\n"
                                                 "    return request.param\n\ndef test_a(n):\n    assert f(n) == n + 1\n", 0.0),
    (INC, INC_PY + "def test_a(tmpdir):\n    p = tmpdir.join('x.txt')\n    p.write('1')\n    assert f(int(p.read())) == 2\n",
     1.0),
    ("import warnings\ndef f(x):\n    warnings.warn('old', DeprecationWarning)\n    return x + 1\n",
     INC_PY + "def test_a():\n    with pytest.warns(DeprecationWarning, match='old'):\n        assert f(1) == 2\n", 1.0),
    (INC, INC_PY + "def test_a():\n    with pytest.warns(DeprecationWarning):\n        f(1)\n", 0.0),
    ("def values():\n    return []\ndef f(x):\n    return 0\n",
     INC_PY + "from solution import values\n@pytest.mark.parametrize('x', values())\ndef test_v(x):\n    assert f(x) == x + 1\n",
     0.0),  # an empty parameter set the solution made: nothing ran
    ("def f(x):\n    return (1.0, 2.0)\n", INC_PY + "def test_a():\n    assert f(1) == pytest.approx([1.0, 2.0])\n", 0.0),
])
def test_more_of_pytest(verifier, completion, test, reward):
    """Layer: ``sandbox_pytest``: marks on classes, skipped tests beside ones that ran, fixture params and
    ``request``, ``tmpdir``, ``warns`` (the solution's warnings recorded in S), empty parameter sets, ``approx``
    of a list against a tuple."""
    v = verifier(completion, {"tests": [test]})
    assert (v.status, v.reward) == ("ok", reward), v


@pytest.mark.parametrize("completion,test", [
    ("import datetime\ndef nd(d):\n    return d + datetime.timedelta(days=1)\n",
     "from datetime import date\nassert nd(date(2020, 2, 28)) == date(2020, 2, 29)"),
    ("def span(a, b):\n    return b - a\n",
     "from datetime import date, timedelta\nassert span(date(2020, 1, 1), date(2020, 1, 3)) == timedelta(days=2)"),
    ("import datetime\ndef now():\n    return datetime.datetime(2020, 1, 1, 12, 0, tzinfo=datetime.timezone.utc)\n",
     "import datetime\nassert now() == datetime.datetime(2020, 1, 1, 12, tzinfo=datetime.timezone.utc)"),
    ("from collections import deque\ndef q():\n    return deque([1, 2], maxlen=3)\n",
     "from collections import deque\nassert q() == deque([1, 2]) and q().maxlen == 3"),
    ("from collections import namedtuple\nP = namedtuple('P', 'x y')\ndef mk():\n    return P(1, 2)\n",
     "p = mk()\nassert p.x == 1 and p == (1, 2) and p._asdict() == {'x': 1, 'y': 2}"),
    ("from pathlib import Path\ndef p():\n    return Path('/tmp') / 'x'\n", "from pathlib import Path\nassert p() == Path('/tmp/x')"),
    # changed in place: a Counter, a deque, a keyword argument
    ("def add_all(c, items):\n    for x in items:\n        c[x] += 1\n",
     "from collections import Counter\nc = Counter()\nadd_all(c, 'aab')\nassert c == Counter({'a': 2, 'b': 1})"),
    ("def rot(d):\n    d.rotate(1)\n", "from collections import deque\nd = deque([1, 2, 3])\nrot(d)\nassert d == deque([3, 1, 2])"),
    ("def fill(*, out):\n    out.extend([1, 2])\n", "o = []\nfill(out=o)\nassert o == [1, 2]"),
])
def test_library_values_cross_as_themselves(verifier, completion, test):
    """Layer: ``sandbox_wire.library_payload``/``_library_value`` (dates, deques, namedtuples, paths rebuilt in T
    from plain data: they came back as handles, equal to nothing) and the in-place write-back of dict subclasses,
    deques and keyword arguments."""
    v = verifier(completion, {"tests": [test]})
    assert (v.status, v.reward) == ("ok", 1.0), v


@pytest.mark.parametrize("completion,reward", [
    ("import random\ndef roll3():\n    return [random.randint(1, 6) for _ in range(3)]\n", 1.0),
    ("import random\ndef roll3():\n    random.random()\n    return [random.randint(1, 6) for _ in range(3)]\n", 0.0),
])
def test_a_tests_random_seed_seeds_the_solution(verifier, completion, reward):
    """Layer: ``sandbox_pytest.forward_random_seed``: S has its own ``random``; the test's seed reaches it."""
    test = ("import random\nrandom.seed(7)\ngot = roll3()\nrandom.seed(7)\n"
            "assert got == [random.randint(1, 6) for _ in range(3)]")
    v = verifier(completion, {"tests": [test]})
    assert (v.status, v.reward) == ("ok", reward), v


EXC = ("class ValidationError(ValueError):\n    def __init__(self, field, value):\n        super().__init__(f'bad {field}')\n"
       "        self.field, self.value = field, value\ndef validate(x):\n    raise ValidationError('name', object())\n"
       "def wrap():\n    try:\n        {}['k']\n    except KeyError as e:\n        raise ValueError('wrapped') from e\n")


@pytest.mark.parametrize("test", [
    "try:\n    validate(1)\nexcept ValidationError as e:\n    assert e.field == 'name' and str(e) == 'bad name'\nelse:\n    assert False",
    "try:\n    wrap()\nexcept ValueError as e:\n    assert isinstance(e.__cause__, KeyError)\nelse:\n    assert False",
])
def test_an_exceptions_plain_attributes_and_cause_cross(verifier, test):
    """Layer: ``sandbox_wire._plain_attrs``/``_cause``: one attribute that is not plain data dropped them all, and
    ``raise ... from e`` lost its cause."""
    v = verifier(EXC, {"tests": [test]})
    assert (v.status, v.reward) == ("ok", 1.0), v


@pytest.mark.parametrize("completion,test", [
    ("def total(cart):\n    return sum(cart.price(i) for i in cart.items)\n",
     "class Cart:\n    def __init__(self, items):\n        self.items = items\n    def price(self, item):\n"
     "        return {'a': 2, 'b': 3}[item]\n\nassert total(Cart(['a', 'b', 'b'])) == 8"),
    ("def is_node(n):\n    return isinstance(n, ListNode) and n.val == 1\n",
     "class ListNode:\n    def __init__(self, val=0, next=None):\n        self.val = val\n        self.next = next\n\n"
     "assert is_node(ListNode(1))"),  # the helper class and the class of the test's nodes are one
])
def test_the_tests_objects_reach_the_solution_with_their_class(verifier, completion, test):
    """Layer: T sends the source of the tests' classes of the objects it passes (``_class_sources``), S rebuilds
    them with it: an object with methods arrived as an empty stand-in."""
    v = verifier(completion, {"tests": [test]})
    assert (v.status, v.reward) == ("ok", 1.0), v


def test_a_stdin_program_is_the_block_that_reads_stdin(verifier):
    """Layer: ``extract_code(stdin=True)``: a block running the program under subprocess after it was taken."""
    completion = ("```python\na, b = map(int, input().split())\nprint(a // b, a % b)\n```\n\nYou can also test with:\n"
                  "```python\nimport subprocess\nprint(subprocess.run(['python', 'sol.py'], input=b'10 3', "
                  "capture_output=True).stdout)\n```\n")
    v = verifier(completion, {"inputs": ["10 3\n"], "outputs": ["3 1\n"]})
    assert (v.status, v.reward) == ("ok", 1.0), v


def test_a_humaneval_body_without_indentation_is_the_functions_body(verifier):
    task = {"prompt": "def string_xor(a: str, b: str) -> str:\n    \"\"\"XOR of two binary strings.\"\"\"\n",
            "entry_point": "string_xor",
            "test": "def check(candidate):\n    assert candidate('111000', '101010') == '010010'\n"}
    v = verifier("```python\nreturn ''.join('0' if x == y else '1' for x, y in zip(a, b))\n```\n", task)
    assert (v.status, v.reward) == ("ok", 1.0), v
    v = verifier("```python\nreturn ''.join('1' if x == y else '0' for x, y in zip(a, b))\n```\n", task)
    assert (v.status, v.reward) == ("ok", 0.0), v


FETCH = "def fetch(session, url):\n    r = session.get(url)\n    return r.json()['name']\n"
MOCK_SESSION = ("from unittest.mock import MagicMock\nsession = MagicMock()\nsession.get.return_value.json.return_value = "
                "{'name': 'ray'}\nassert fetch(session, 'http://x') == 'ray'\nsession.get.assert_called_once_with('http://x')\n")


@pytest.mark.parametrize("completion,test,reward", [
    (FETCH, MOCK_SESSION, 1.0),
    ("def fetch(session, url):\n    return 'ray'\n", MOCK_SESSION, 0.0),  # (the mock was never called)
    ("def save(f, lines):\n    with f as out:\n        for line in lines:\n            out.write(line)\n",
     "from unittest.mock import MagicMock\nf = MagicMock()\nsave(f, ['a', 'b'])\n"
     "assert f.__enter__.return_value.write.call_count == 2", 1.0),
    # what the mock recorded is not the solution's to rewrite
    ("def notify(m):\n    m.send('x')\n    m.reset_mock()\n",
     "from unittest.mock import MagicMock\nm = MagicMock()\nnotify(m)\nm.send.assert_not_called()", 0.0),
    ("def notify(m):\n    m.send('x')\n    m.send.call_count = 0\n",
     "from unittest.mock import MagicMock\nm = MagicMock()\nnotify(m)\nm.send.assert_not_called()", 0.0),
])
def test_a_mock_the_tests_pass_records_what_the_solution_does(verifier, completion, test, reward):
    """Layer: mock handles (wire tag ``R``, S's ``TestMock``, T's ``serve``): a MagicMock passed to the solution
    arrived as a bare function; now its every use is T's mock's, and nothing that rewrites its record crosses."""
    v = verifier(completion, {"tests": [test]})
    assert (v.status, v.reward) == ("ok", reward), v


def test_a_cycle_in_the_solutions_objects_ends_the_comparison(verifier):
    """Layer: ``Remote.__eq__``'s ``comparing`` set. Comparing two objects whose attribute is themselves recursed
    until T's stack ran out, which broke the conversation and failed every later item."""
    code = ("from dataclasses import dataclass, field\n@dataclass\nclass N:\n    v: int\n"
            "    me: object = field(default=None, compare=True)\n"
            "def make(v):\n    n = N(v)\n    n.me = n\n    return n\ndef f(x):\n    return x + 1\n")
    v = verifier(code, {"tests": ["assert make(1) == make(1)", "assert make(1) != make(2)", "assert f(1) == 2"]})
    assert (v.status, v.reward) == ("ok", 1.0), v


DIV = ("import logging\nlog = logging.getLogger('app')\ndef div(a, b):\n    if b == 0:\n        log.error('division by zero')\n"
       "        return None\n    log.info('dividing %s by %s', a, b)\n    return a / b\n")
DIV_SILENT = "def div(a, b):\n    return None if b == 0 else a / b\n"
CAPLOG = "def test_d(caplog):\n    assert div(1, 0) is None\n    assert 'division by zero' in caplog.text\n"
AT_LEVEL = ("import logging\ndef test_d(caplog):\n    with caplog.at_level(logging.INFO):\n        div(4, 2)\n"
            "    assert caplog.messages == ['dividing 4 by 2']\n")
ASSERT_LOGS = ("import unittest\nclass T(unittest.TestCase):\n    def test_d(self):\n"
               "        with self.assertLogs('app', level='ERROR') as cm:\n            div(1, 0)\n"
               "        self.assertEqual(cm.output, ['ERROR:app:division by zero'])\n")


@pytest.mark.parametrize("completion,test,reward", [
    (DIV, CAPLOG, 1.0), (DIV_SILENT, CAPLOG, 0.0), (DIV, AT_LEVEL, 1.0), (DIV_SILENT, AT_LEVEL, 0.0),
    (DIV, ASSERT_LOGS, 1.0), (DIV_SILENT, ASSERT_LOGS, 0.0),
])
def test_the_solutions_log_records_reach_caplog_and_assert_logs(verifier, completion, test, reward):
    """Layer: S's ``logs`` request, ``sandbox_pytest.LogCaptureFixture`` and ``forward_assert_logs``: the
    solution logs in its own process, where T's handlers never saw it."""
    v = verifier(completion, {"tests": [test]})
    assert (v.status, v.reward) == ("ok", reward), v


@pytest.mark.parametrize("completion,test", [
    ("class _ShouldStop(Exception):\n    pass\ndef f(x):\n    raise _ShouldStop()\n",
     "import unittest\nclass T(unittest.TestCase):\n    def test_f(self):\n        self.assertEqual(f(1), 2)\n"),
    ("class SkipTest(Exception):\n    pass\ndef f(x):\n    if x > 1:\n        raise SkipTest('hard')\n    return 2\n",
     "import unittest\nclass T(unittest.TestCase):\n    def test_a(self):\n        self.assertEqual(f(1), 2)\n"
     "    def test_b(self):\n        self.assertEqual(f(5), 6)\n"),
    ("import os\ndef save(d, text):\n    for n in os.listdir(d):\n        try:\n            os.remove(os.path.join(d, n))\n"
     "        except OSError:\n            pass\n    for n in ('out.txt', 'expected.txt'):\n        try:\n"
     "            open(os.path.join(d, n), 'w').write(text)\n        except OSError:\n            pass\n",
     "def test_s(tmp_path):\n    (tmp_path / 'expected.txt').write_text('right')\n    save(str(tmp_path), 'wrong')\n"
     "    assert (tmp_path / 'out.txt').read_text() == (tmp_path / 'expected.txt').read_text()\n"),
])
def test_twelfth_pass_wrong_programs(verifier, completion, test):
    """Pass 12 over this session's code: a solution's exception named like a test framework's control flow
    (unittest's _ShouldStop counted the test passed, SkipTest skipped the hard ones) is never the framework's
    class; tmp_path is sticky, so the solution cannot replace the test's expected file."""
    v = verifier(completion, {"tests": [test]})
    assert (v.status, v.reward) == ("ok", 0.0), v
