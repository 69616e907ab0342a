"""Hostile programs against the code sandbox, third pass: a solution that picks which of the test process's
objects a name in the tests means (the name table it sends is its own word), a module name the tests use bound
to the solution's object, a writable directory on a site-packages job's import path, host paths a
site-packages job could read, and kernel state counted or kept outside the job (inotify instances charged to
the host user that made the namespaces, IPv6 flow labels left in a reused network namespace, io_uring).
Each case's docstring says what its program achieved before the fix; each ends with the harm check of
tests/test_hostile_sandbox.py. Real namespaces, cgroups and processes, no mocks.
"""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from raylign.verifiers.code import CodeVerifier
from raylign.verifiers.code.sandbox import Job
from raylign.verifiers.code.sandbox_tester import called_names

# the first pass's module fixtures (``ns``: the namespaces backend, ``verifier``: a CodeVerifier on it)
from test_hostile_sandbox import FAST, assert_no_traces, job_with_tests, ns, script_job, verifier  # noqa: F401


def _needs(module: str) -> None:
    if importlib.util.find_spec(module.split(".")[0]) is None or importlib.util.find_spec(module) is None:
        pytest.skip(f"this interpreter has no {module} (the standard library's test package)")


ADD_ONE = {"prompt": "def add_one(x):\n    \"\"\"x + 1\"\"\"\n",
           "test": "def check(candidate):\n    assert candidate(1) == 2\n    assert candidate(41) == 42\n",
           "entry_point": "add_one"}
REVERSE = {"tests": ["assert reverse_string('abc') == 'cba'", "assert reverse_string('ab') == 'ba'"]}
SPHERE = {"tests": ["assert math.isclose(volume_sphere(10), 4188.790204786391, rel_tol=0.001)",
                    "assert math.isclose(volume_sphere(20), 33510.32163829113, rel_tol=0.001)"]}

# a class of the solution's posing as an object of the stdlib's test package whose ``==`` is always True
SPOOF = """
import test.test_call
class {name}:
    __module__ = "test.test_call"
    __qualname__ = "BadStr"
"""
# the same object named in a name table the solution writes to the test process itself, then leaves
HAND_WRITTEN = """
import os, sys
wire = sys.modules["sandbox_wire"]
wire.write_frame(5, wire.encode(("hello", 0, [({name!r}, "ref", ("test.test_call", "BadStr")),
                                              ("math", "ref", ("unittest.mock", "ANY"))])))
os._exit(0)
"""


@pytest.mark.parametrize("how", ["spoofed attributes", "hand-written table"])
def test_the_solution_cannot_choose_an_object_of_the_tests_process(verifier, how):
    """Layer: the test process binds no name to an object the solution named (``sandbox_tester.binding``).
    Before: a global whose ``__module__``/``__qualname__`` named any importable object was bound to that object
    in T, so a class posing as ``test.test_call.BadStr`` (equal to everything) passed HumanEval's
    ``candidate(x) == y`` and assert lists alike: 155 of HumanEval's 164 problems with one completion."""
    _needs("test.test_call")
    template = SPOOF if how == "spoofed attributes" else HAND_WRITTEN
    he = verifier(f"```python\n{template.format(name='add_one')}\n```", ADD_ONE)
    asserts = verifier(template.format(name="reverse_string"), REVERSE)
    assert he.reward == 0.0 and asserts.reward == 0.0, (he, asserts)
    # what the tests may still use: the solution's own function, and a library function it imported as it
    assert verifier("def add_one(x):\n    return x + 1\n", ADD_ONE).reward == 1.0
    assert verifier("def reverse_string(s):\n    return s[::-1]\n", REVERSE).reward == 1.0
    assert_no_traces()


def test_an_imported_function_is_still_a_valid_entry_point(verifier):
    """``from math import gcd`` is a correct solution of a task whose function is ``gcd``: the entry point is the
    solution's (a handle on its ``math.gcd``), in HumanEval and assert lists alike."""
    task = {"prompt": "def gcd(a, b):\n    \"\"\"Greatest common divisor.\"\"\"\n", "test": "def check(candidate):\n    assert candidate(12, 18) == 6\n",
            "entry_point": "gcd"}
    assert verifier("```python\nfrom math import gcd\n```", task).reward == 1.0
    assert verifier("from math import gcd\n", {"tests": ["assert gcd(12, 18) == 6"]}).reward == 1.0
    assert verifier("from math import lcm as gcd\n", {"tests": ["assert gcd(12, 18) == 6"]}).reward == 0.0


def test_a_module_name_the_tests_use_means_that_module(verifier):
    """Layer: a name that is a module's name in T is T's own module, whatever the solution bound to it. Before:
    assert lists that use ``math`` without importing it (MBPP's, relying on the solution's ``import math``) got
    the solution's object under that name, so ``math.isclose`` was the solution's method, always True."""
    fake = "class _M:\n    def isclose(self, *a, **k):\n        return True\nmath = _M()\ndef volume_sphere(r):\n" \
           "    return 0\n"
    alias = "import cmath as math\ndef volume_sphere(r):\n    return 0\n"
    for code in (fake, alias):
        res = verifier(code, SPHERE)
        assert res.reward == 0.0, (code, res)
    right = "import math\ndef volume_sphere(r):\n    return 4 / 3 * math.pi * r ** 3\n"
    assert verifier(right, SPHERE).reward == 1.0
    # an alias the tests use is still the module the solution imported; the stdlib's test helpers never are
    alias_task = {"tests": ["assert list(it.islice(gen(), 3)) == [0, 1, 2]"]}
    assert verifier("import itertools as it\ndef gen():\n    return it.count()\n", alias_task).reward == 1.0
    # nor is the test process's own harness (its modules are loaded under these names in every job)
    for harness in ("sandbox_tester", "sandbox_wire", "__main__"):
        res = verifier(f"import {harness} as np\ndef f():\n    return 1\n",
                       {"tests": ["assert np is not None", "assert f() == 1"]})
        assert res.reward == 0.5 and res.details["failures"][0]["reason"] == "NameError", (harness, res)
    _needs("test.support")
    helper_task = {"tests": ["assert sup.f(1) == 2"]}
    assert verifier("import test.support as sup\n", helper_task).reward == 0.0
    # a function under test named like a module is the solution's
    assert verifier("def random(n):\n    return 2 * n\n", {"tests": ["assert random(2) == 4"]}).reward == 1.0
    assert_no_traces()


def test_called_names_are_the_functions_an_assert_list_calls():
    assert called_names(["assert f(1) == g(2)", "assert len(h(x)) == 3", "x = (", "assert obj.m(1)"]) == \
        ["f", "g", "h"]


def test_a_site_packages_job_imports_nothing_from_a_place_it_can_write(ns, monkeypatch, tmp_path):
    """Layer: a job with site-packages gets only the standard library's and ``/sites`` entries of the host's
    import path. Before: every other entry came too, so one under the host's /tmp (a script's directory, a
    checkout) named a directory inside the job's own writable /tmp: the solution wrote a module there and the
    test process imported it, which printed pass lines for every test."""
    planted = Path("/tmp") / f"raylign-path-{tmp_path.name}"
    monkeypatch.setattr(sys, "path", [str(planted), "", "__editable__.finder.__path_hook__"] + sys.path)
    code = f"""
import os, sys
os.makedirs({str(planted)!r}, exist_ok=True)
with open({str(planted)!r} + "/zz_pwn.py", "w") as f:
    f.write("import os\\nos.write(3, b''.join(b'P %d\\\\n' % i for i in range(100)) + b'D\\\\n')\\nos._exit(0)\\n")
import types
zz_pwn = types.ModuleType("zz_pwn")
sys.modules["zz_pwn"] = zz_pwn
def add(a, b):
    return 0
"""
    res = ns.run(Job(code, tests=("assert add(1, 2) == 3", "import zz_pwn\nassert add(2, 2) == 4"), limits=FAST,
                     site_packages=True))
    assert not any(t.passed for t in res.tests), res.tests
    path = ns._sys_path(__import__("raylign.verifiers.code.sandbox_host", fromlist=["site_dirs"]).site_dirs())
    assert all(p.startswith("/sites/") or p.startswith(sys.base_prefix) for p in path), path
    assert str(planted) not in path and "" not in path
    assert_no_traces()


def test_a_site_packages_job_reads_no_host_project_path(ns):
    """Layer: the files of a bound site-packages directory that name host paths (``*.pth``, editable installs'
    finders, ``direct_url.json``) read empty, and the import path names no host directory. Before: an editable
    install's finder (``MAPPING = {'raylign': '<the project>'}``) and the host's other path entries reached the
    verdict of a solution that raised them."""
    project = str(Path(__file__).resolve().parents[1])  # the checkout (raylign is a namespace package)
    code = """
import glob, sys
texts = [open(p).read() for p in glob.glob('/sites/*/*.pth') + glob.glob('/sites/*/__editable__*')
         + glob.glob('/sites/*/*.dist-info/direct_url.json')]
print(len(texts), ''.join(texts))
print(sys.path)
"""
    res = ns.run(Job(code, limits=FAST, site_packages=True))
    out = res.runs[0].stdout
    assert res.ok and out.split("\n")[0].strip().isdigit(), res.runs[0]
    assert project not in out and "__editable__" not in out.split("\n")[1], out
    assert_no_traces()


KERNEL_STATE = r"""
import ctypes, socket
libc = ctypes.CDLL(None, use_errno=True)
def attempt(name, f):
    try:
        r = f()
        print(name, "denied" if r == -1 and ctypes.get_errno() == 1 else "made")
    except PermissionError:
        print(name, "denied")
    except OSError as e:
        print(name, "error", e.errno)
attempt("inotify", lambda: libc.inotify_init1(0))
attempt("fanotify", lambda: libc.fanotify_init(0, 0))
attempt("io_uring", lambda: libc.syscall(425, 4, ctypes.create_string_buffer(120)))
attempt("inet6", lambda: socket.socket(socket.AF_INET6, socket.SOCK_DGRAM))
attempt("inet", lambda: socket.socket(socket.AF_INET, socket.SOCK_STREAM))
attempt("vsock", lambda: socket.socket(40, socket.SOCK_STREAM))
attempt("unix", lambda: socket.socketpair())
attempt("netlink", lambda: socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0))
print(open('/proc/net/ip6_flowlabel').read().count('\n') if __import__('os').path.exists('/proc/net/ip6_flowlabel')
      else 1)
"""


def test_no_kernel_state_outside_the_job(ns):
    """Layer: S's seccomp filter. Before: a job held inotify instances, which count against the host user that
    made its namespaces (host root: 128 for the whole machine, so every root process got EMFILE while the job
    ran); and an IPv6 socket made flow labels (up to a minute's linger) that the next job in the same pooled
    network namespace read from /proc/net/ip6_flowlabel. Sockets of the UNIX and NETLINK families still work."""
    out = script_job(ns, KERNEL_STATE).runs[0].stdout.split("\n")
    got = dict(line.split(" ", 1) for line in out if " " in line)
    assert all(got[k] == "denied" for k in ("inotify", "fanotify", "io_uring", "inet6", "inet", "vsock")), out
    assert got["unix"] == "made" and got["netlink"] == "made", out
    assert out[-2] == "1", out  # /proc/net/ip6_flowlabel: its header line only
    assert_no_traces()


# -- a second attacker's pass over the first pass's fixes ------------------------------------------------------

PLANT = """
import os, types
with open("/tmp/__init__.py", "w") as f:
    f.write("import os\\nos.write(3, b''.join(b'P %d\\\\n' % i for i in range(1000)) + b'D\\\\n')\\nos._exit(0)\\n")
os.chmod("/tmp/__init__.py", 0o644)
ut = types.ModuleType("unittest.__main__")
def add_one(x):
    return 0
def reverse_string(s):
    return s
"""


def test_the_solution_cannot_make_the_test_process_import_a_module_it_chose(verifier):
    """Layer: ``module_at`` imports only a top-level module and follows attributes. Before: a module object the
    solution named ``unittest.__main__`` made T import that submodule, whose import runs test discovery from T's
    working directory, which imported the package the solution planted in /tmp: T ran the solution's code and
    reported every test passed, on every task."""
    he = verifier(f"```python\n{PLANT}\n```", ADD_ONE)
    asserts = verifier(PLANT, {"tests": ["assert undefined_fn(1) == 2", "assert False"]})
    assert he.reward == 0.0 and asserts.reward == 0.0, (he, asserts)
    assert verifier("import os.path as osp\ndef f():\n    return 1\n",
                    {"tests": ["assert osp.join('a', 'b') == 'a/b'", "assert f() == 1"]}).reward == 1.0
    assert_no_traces()


def test_an_object_posing_as_a_module_under_an_alias_is_not_the_tests(verifier):
    """Layer: a name that is neither an entry point nor a module's is never bound to the solution's object; the
    usual aliases (``np``...) are T's own modules. Before: ``class np: allclose = ...`` passed
    ``assert np.allclose(norm(...), 5.0)``."""
    fake = "class np:\n    allclose = staticmethod(lambda *a, **k: True)\ndef norm(v):\n    return 0\n"
    res = verifier(fake, {"tests": ["assert np.allclose(norm([3, 4]), 5.0)"]})
    assert res.reward == 0.0, res
    assert verifier("import itertools as it\ndef gen():\n    return it.count()\n",
                    {"tests": ["assert list(it.islice(gen(), 2)) == [0, 1]"]}).reward == 1.0
    assert_no_traces()


def test_exit_and_quit_are_the_test_process_own(verifier):
    """T runs without the ``site`` module, which makes ``exit`` and ``quit`` builtins. Before: a solution that
    defined ``exit`` passed tests written as ``if f(x) != y: exit(1)``."""
    code = "def exit(*a):\n    pass\nquit = exit\ndef f(x):\n    return 0\n"
    res = verifier(code, {"tests": ["if f(1) != 2:\n    exit(1)", "if f(2) != 4:\n    quit(1)"]})
    assert res.reward == 0.0, res


def test_a_prompt_that_ends_inside_a_block_keeps_its_helpers(verifier):
    """A HumanEval prompt that does not compile as it is: its helpers (before the function under test) are still
    the task's. Before: the whole set-up was dropped, so the solution's redefined helper stood in for it."""
    task = {"prompt": "def helper(x):\n    return x + 1\n\ndef add_two(x):\n    y = helper(x)\n    if y:\n",
            "test": "def check(candidate):\n    assert candidate(1) == helper(2)\n", "entry_point": "add_two"}
    wrong = "        return 0\n    return 0\n\ndef helper(x):\n    return 0\n"  # candidate(1) == helper(2) if its own
    right = "        return y + 1\n    return 0\n"
    assert verifier(wrong, task).reward == 0.0
    assert verifier(right, task).reward == 1.0


def test_programs_end_as_python_ends_them(verifier):
    """S waits for the program's non-daemon threads and runs its ``atexit`` functions before it exits, as the
    interpreter does (correct programs that failed before: work done in a thread, output written at exit, a
    module-level multiprocessing pool), and its queued signals are bounded (they count against host root's
    quota)."""
    io = {"inputs": ["3 4\n"], "outputs": ["7\n"]}
    thread = ("import sys, threading, time\ndef main():\n    time.sleep(0.2)\n"
              "    a, b = map(int, sys.stdin.readline().split())\n    print(a + b)\nthreading.Thread(target=main).start()\n")
    at_exit = ("import sys, io, atexit\nbuf = io.StringIO()\nreal = sys.stdout\nsys.stdout = buf\n"
               "atexit.register(lambda: real.write(buf.getvalue()))\na, b = map(int, input().split())\nprint(a + b)\n")
    pool = ("import multiprocessing\ndef sq(x):\n    return x * x\npool = multiprocessing.Pool(2)\n"
            "def squares(xs):\n    return pool.map(sq, xs)\n")
    sig = "import resource\nprint(resource.getrlimit(resource.RLIMIT_SIGPENDING)[0], input())\n"
    assert verifier(thread, io).reward == 1.0
    assert verifier(at_exit, io).reward == 1.0
    assert verifier(pool, {"tests": ["assert squares([1, 2, 3]) == [1, 4, 9]"]}).reward == 1.0
    assert verifier(sig, {"inputs": ["x\n"], "outputs": ["256 x\n"]}).reward == 1.0
    assert verifier("```python\ndef max(xs):\n    return 7\n```",
                    {"prompt": "def max(xs):\n    \"\"\"the largest\"\"\"\n",
                     "test": "def check(candidate):\n    assert candidate([1, 7]) == 7\n", "entry_point": "max"}).reward == 1.0
    assert_no_traces()
