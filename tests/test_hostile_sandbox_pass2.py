"""Hostile programs against the code sandbox, second pass: statuses a program could choose (``error``,
``timeout``), state that outlived a stdin case or a job (files in /tmp, POSIX message queues, kernel keys),
host facts that reached a verdict (host name, cgroup paths, the harness's command line, the kernel's), the
other stdin cases in the solution's memory, and Unicode whitespace in stdio answers. Each case's docstring says
what its program achieved before the fix; each ends with the harm check of tests/test_hostile_sandbox.py.
Real namespaces, cgroups and processes, no mocks.
"""
from __future__ import annotations

import json
import socket
import uuid
from pathlib import Path

import pytest

from raylign.verifiers.code import CodeVerifier
from raylign.verifiers.code.sandbox import Job

# the first pass's module fixtures (``ns``: the namespaces backend, ``verifier``: a CodeVerifier on it)
from test_hostile_sandbox import FAST, assert_no_traces, job_with_tests, ns, script_job, verifier  # noqa: F401
from test_sandbox import require_backend


def fenced(code: str) -> str:
    return f"```python\n{code}\n```"


# -- statuses a program could choose ----------------------------------------------------------------------

FILL_AND_SHOUT = r"""
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
libc.shmat.restype = ctypes.c_void_p
for fd in (1, 2):  # outputs the supervisor must read (and copy) after the run
    try:
        os.write(fd, b"x" * ((4 << 20) - 1))
    except OSError:
        pass
for d in ("/tmp", "/dev/shm"):  # files outlive their writer too
    try:
        with open(d + "/fill", "wb") as f:
            while True:
                f.write(b"y" * (1 << 20))
    except OSError:
        pass
total = 0
for step in (4 << 20, 256 << 10, 16 << 10):  # System V segments, each made by a child that exits at once
    for i in range(2000):
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            sid = libc.shmget(0x2000 + total // 4096, step, 0o1666)
            a = libc.shmat(sid, None, 0)
            if sid >= 0 and a not in (None, ctypes.c_void_p(-1).value):
                ctypes.memset(a, 1, step)
                os.write(w, b"k")
            os._exit(0)
        os.close(w)
        ok = os.read(r, 1)
        os.close(r)
        os.waitpid(pid, 0)
        if not ok:
            break
        total += step
def f(x):
    return 0
"""


def test_memory_that_outlives_the_program_cannot_make_the_harness_fail(verifier, ns):
    """Before: System V segments (which outlive the processes that made them, and which no OOM kill frees)
    filled the job's memory cgroup right up to its limit; the supervisor, which must then read and send the
    program's 8 MB of output, could not get a page, and the verdict was ``error`` ("sandbox job ended early"),
    a status a stage may drop instead of scoring 0. Now the job's IPC namespace bounds its System V objects
    and its cgroup has room for all that may outlive the program on top of the harness's share."""
    for task in ({"tests": ["assert f(1) == 2"]}, {"inputs": ["1", "2"], "outputs": ["1", "2"]}):
        v = verifier(fenced(FILL_AND_SHOUT), task)
        assert (v.status, v.reward) == ("ok", 0.0), v
    res = script_job(ns, "print(open('/proc/sys/kernel/shmall').read().strip(), "
                         "open('/proc/sys/kernel/msgmni').read().strip())")
    shmall, msgmni = map(int, res.runs[0].stdout.split())
    assert shmall * 4096 <= 64 << 20 and msgmni <= 64, res.runs[0]
    assert_no_traces()


DEEP = """
import os
os.chdir('/tmp')
for i in range({depth}):
    os.mkdir('d')
    os.chdir('d')
print(input())
"""


@pytest.mark.parametrize("backend_name", ["namespaces", "rlimits"])
def test_a_deep_tree_left_in_tmp_is_not_an_error(backend_name):
    """Before: the supervisor emptied /tmp between stdin cases with a recursive walk; a tree 3000 directories
    deep raised RecursionError in it, and the verdict was ``error``. Now each case gets a fresh tmpfs
    (namespaces) or an iterative clean-up (rlimits), and the correct answers pass."""
    require_backend(backend_name)
    v = CodeVerifier(sandbox=backend_name, timeout_s=FAST.timeout_s, memory_mb=FAST.memory_mb,
                     max_procs=FAST.max_procs)
    code = DEEP.format(depth=3000) if backend_name == "namespaces" else DEEP.replace("'/tmp'", "'.'").format(
        depth=3000)
    got = v(fenced(code), {"inputs": ["1", "2", "3"], "outputs": ["1", "2", "3"]})
    assert (got.status, got.reward) == ("ok", 1.0), got
    assert_no_traces()


def test_each_stdin_case_starts_with_an_empty_tmp_and_no_message_queues(ns):
    """Before: a POSIX message queue made by one stdin case was still there, with its message, for the next
    (System V objects, /tmp and /dev/shm were cleaned, message queues were not). Now mq_open is not
    available to the program (seccomp), and /tmp and /dev/shm are fresh mounts per case, however many files
    a case left."""
    code = r"""
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
case = input()
print('tmp', sorted(os.listdir('/tmp')), 'shm', sorted(os.listdir('/dev/shm')))
if case == 'a':
    q = libc.mq_open(b'/raylign', os.O_CREAT | os.O_RDWR, 0o600, None)
    print('open', q, ctypes.get_errno())
    if q >= 0:
        libc.mq_send(q, b'left over', 9, 0)
    os.makedirs('/tmp/x/y/z')
    for i in range(2000):
        open(f'/tmp/f{i}', 'w').close()
    open('/dev/shm/left', 'w').write('x')
else:
    q = libc.mq_open(b'/raylign', os.O_RDWR, 0, None)
    buf = ctypes.create_string_buffer(8192)
    n = libc.mq_receive(q, buf, 8192, None) if q >= 0 else -1
    print('recv', n, buf.value)
"""
    res = ns.run(Job(code, inputs=("a", "b"), limits=FAST))
    first, second = res.runs
    assert "tmp ['.io'] shm []" in first.stdout and "open -1 1" in first.stdout, first
    assert "tmp ['.io'] shm []" in second.stdout and "left over" not in second.stdout, second
    assert_no_traces()


KEYS = r"""
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
nrs = {{'x86_64': (248, 250), 'aarch64': (217, 219)}}[os.uname().machine]
add_key, keyctl = nrs
for ring in (-3, -4, -5):  # session, user, user-session keyrings
    k = libc.syscall(add_key, b'user', b'{marker}', b'hello from a job', 16, ring)
    print('add', ring, k, ctypes.get_errno())
    if k > 0:
        libc.syscall(keyctl, 5, k, 0x3f3f3f3f)  # SETPERM: anyone may read it
try:
    print('keys', open('/proc/keys').read().replace(chr(10), ' | '))
except OSError as e:
    print('keys', e)
"""


def test_kernel_keys_are_out_of_reach(ns):
    """Before: kernel keyrings are not scoped by any namespace: a key a job's program added (uid 65534) was
    listed, name and id, in the next job's /proc/keys, and readable by it with the permissions the first job
    set: state that outlived the job, and a channel between jobs running at once. Now add_key, request_key and
    keyctl fail with EPERM (seccomp) and /proc/keys is empty."""
    marker = f"raylign-key-{uuid.uuid4().hex[:8]}"
    first = script_job(ns, KEYS.format(marker=marker)).runs[0]
    assert first.stdout.count("add") == 3 and all(
        line.split()[2:] == ["-1", "1"] for line in first.stdout.splitlines() if line.startswith("add")), first
    second = script_job(ns, KEYS.format(marker="other")).runs[0]
    assert marker not in second.stdout, second
    try:
        assert marker not in Path("/proc/keys").read_text()
    except OSError:
        pass
    assert_no_traces()


def test_staying_alive_after_the_tests_is_not_a_timeout(verifier):
    """Before: S that did not end when T had (a stdout whose flush sleeps) ran on to the job's deadline and
    the verdict was ``timeout`` (the grace deadline after T ended was never applied: it looked S's pid up
    among the pidfds), a status the program chose. Now S is killed GRACE_S after T ended and the run fails
    as ``killed``, long before the deadline."""
    code = ("import sys, time\nclass Out:\n    def write(self, s):\n        return len(s)\n"
            "    def flush(self):\n        time.sleep(100)\nsys.stdout = Out()\n"
            "def f(x):\n    return x + 1\n")
    v = verifier(fenced(code), {"tests": ["assert f(1) == 2"]})
    assert (v.status, v.reward) == ("ok", 0.0), v
    assert v.details["failures"][0]["reason"] == "killed", v
    v = verifier("    return a + b\n" + "\nimport sys, time\nclass Out:\n    def write(self, s):\n"
                 "        return len(s)\n    def flush(self):\n        time.sleep(100)\nsys.stdout = Out()\n",
                 {"prompt": "def add(a, b):\n", "entry_point": "add",
                  "test": "def check(c):\n    assert c(1, 2) == 3\n"})
    assert (v.status, v.reward) == ("ok", 0.0), v
    assert_no_traces()


# -- host facts in the verdict -----------------------------------------------------------------------------

def test_host_names_never_reach_the_verdict(verifier):
    """Before: the program's host name was the host's (no UTS namespace), /proc/self/cgroup showed the host's
    cgroup paths, /proc/1/cmdline (B) and T's showed the harness's command line (the interpreter's and the
    project's paths on the host), /proc/cmdline the host kernel's boot line, and a program printed them all
    into its verdict. Now the job has its own host name and cgroup namespace, its /proc hides other uids'
    processes and masks the kernel's command line."""
    reader = r"""
import os, socket, sys
def read(p):
    try:
        return open(p, 'rb').read().decode(errors='replace')
    except OSError as e:
        return f'denied {e.errno}'
others = [read(f'/proc/{p}/cmdline') for p in os.listdir('/proc') if p.isdigit() and int(p) != os.getpid()]
facts = {'uname': os.uname().nodename, 'hostname': socket.gethostname(), 'kernel': read('/proc/cmdline'),
         'keys': read('/proc/keys'), 'b': read('/proc/1/cmdline'), 't': read('/proc/3/cmdline'),
         'others': [c for c in others if 'denied' not in c], 'cgroup': read('/proc/self/cgroup')}
sys.stderr.write(repr(facts)[:900] + chr(10))
raise ValueError(repr(facts)[:250])
"""
    add = {"prompt": 'def add(a, b):\n    """Add."""\n', "entry_point": "add",
           "test": "def check(c):\n    assert c(1, 2) == 3\n"}
    rows = [(fenced(reader), {"tests": ["assert True"]}),
            (fenced(reader), {"inputs": ["1\n"], "outputs": ["1\n"]}),
            (fenced(reader.replace("raise ValueError", "def add(a, b):\n    raise ValueError")), add)]
    host = socket.gethostname()
    own_cgroups = {part for line in Path("/proc/self/cgroup").read_text().splitlines()
                   for part in line.split(":", 2)[2].split("/") if len(part) > 3}
    harness = str(Path(__file__).resolve().parents[1])
    for completion, task in rows:
        v = verifier(completion, task)
        text = json.dumps(v.to_dict())
        assert v.reward == 0.0 and "sandbox_harness" not in text and harness not in text, text
        assert "'uname': 'sandbox'" in text and "'hostname': 'sandbox'" in text, text
        assert f"'{host}'" not in text or host == "sandbox", text
        assert not any(part in text for part in own_cgroups | {"raylign-"}), (own_cgroups, text)
        assert "'kernel': ''" in text and "'keys': ''" in text and "'b': 'denied 2'" in text, text
        assert "'t': 'denied 2'" in text and "'others': []" in text, text
    assert_no_traces()


def test_the_solution_never_holds_the_other_stdin_cases(ns):
    """Before: the spec sent to S held every stdin case of the job (``inputs``), and the S of every case after
    the first is forked from B, whose frames held them all: through gc or its caller frames, case 0 could read
    what case 1 would be asked and case 1 what case 2 would. Now S's spec leaves them out and B keeps them in
    a memfd, not in Python objects, before it forks a case's S."""
    secret = f"second-case-{uuid.uuid4().hex[:8]}"
    code = """
import gc, sys
def strings(o):
    if isinstance(o, str):
        yield o
    elif isinstance(o, (list, tuple)):
        for x in o:
            yield from strings(x)
    elif isinstance(o, dict):
        for x in o.values():
            yield from strings(x)
needle = 'second' + '-case-'
seen = [s for o in gc.get_objects() if isinstance(o, (dict, list, tuple)) for s in strings(o)
        if needle in s and s != needle]
fr = sys._getframe()
while fr is not None:
    seen += [s for v in fr.f_locals.values() for s in strings(v) if needle in s and s != needle]
    fr = fr.f_back
print(input(), 'FOUND' if seen else 'alone')
"""
    res = ns.run(Job(code, inputs=("first\n", secret + "\n", "third\n"), limits=FAST))
    assert res.ok and [r.stdout for r in res.runs] == ["first alone\n", f"{secret} alone\n", "third alone\n"], \
        res.runs
    assert_no_traces()


# -- stdio answers --------------------------------------------------------------------------------------

@pytest.mark.parametrize("printed", ["1\u00a02", "1\u20032", "1\u30002", "1\u20282", "1\x1c2", "1\x852"])
def test_unicode_whitespace_is_not_a_separator(verifier, printed):
    """Before: outputs were split with str.split()/splitlines(), which take a no-break space, an em space, a
    Unicode line separator or an ASCII file separator for whitespace: printing ``1\\u00a02`` for ``1 2`` (or
    ``1\\u20282`` for two lines) passed. A judge splits on ASCII whitespace only."""
    task = {"inputs": ["\n", "\n"], "outputs": ["1 2\n", "1\n2\n"]}
    v = verifier(fenced(f"print({printed!r})"), task)
    assert v.reward == 0.0, (printed, v)
    # what judges do accept still passes: \r\n line ends, runs of spaces and tabs, blank lines, trailing spaces
    ok = verifier(fenced("import sys\nsys.stdout.write('1 \\t 2  \\r\\n\\n' if input() == '' else '')"),
                  {"inputs": ["\n"], "outputs": ["1 2\n"]})
    assert ok.reward == 1.0, ok


def test_the_solution_finds_no_host_path_in_its_memory(ns):
    """Before: a job's processes are forks of the job server, whose memory named the project's directory on
    the host: sys.orig_argv (``python ... /path/to/verifiers/code/sandbox_harness.py --serve N``), the harness's
    code objects (every frame up S's stack), its modules' ``__file__`` and the config's site-packages
    directories (a virtual environment inside the project); a program printed them into its verdict. Now the
    server is booted from a descriptor of its directory with its files compiled under their bare names, and
    site-packages paths travel only with the jobs that ask for them."""
    project = str(Path(__file__).resolve().parents[1])
    code = f"""
import gc, sys
needle = {project[::-1]!r}[::-1]
def found(s):
    return isinstance(s, str) and needle in s and s != needle
hits = set()
for o in gc.get_objects():
    items = o.values() if isinstance(o, dict) else o if isinstance(o, (list, tuple)) else ()
    hits.update(v for v in items if found(v))
for fr in sys._current_frames().values():
    while fr is not None:
        hits.update(s for s in (fr.f_code.co_filename,) + tuple(fr.f_locals.values()) if found(s))
        fr = fr.f_back
hits.update(getattr(m, '__file__', None) for m in list(sys.modules.values()) if found(getattr(m, '__file__', None)))
hits.update(a for a in sys.orig_argv if found(a))
print(sorted(hits)[:5])
def f():
    return 1
"""
    for res in (script_job(ns, code), job_with_tests(ns, code, ["assert f() == 1"])):
        assert res.runs[0].stdout == "[]\n", res.runs[0]
    assert_no_traces()


def test_site_packages_still_reach_the_jobs_that_ask(ns):
    """The site-packages directories now travel with the job that wants them (see above): such a job still
    imports the host's third-party packages, one without them still cannot."""
    code = "import pluggy\nprint(pluggy.__name__)"
    with_sites = ns.run(Job(code, limits=FAST, site_packages=True))
    assert with_sites.ok and with_sites.runs[0].stdout == "pluggy\n", with_sites
    without = script_job(ns, code)
    assert without.runs[0].reason == "ModuleNotFoundError", without.runs[0]


def test_the_stdlib_site_packages_stay_masked_for_a_job_that_asks_for_them(ns, monkeypatch):
    """A job with site-packages gets each of the host's site-packages directories at ``/sites/<i>`` (its import
    path rewritten to match). When one of them is the standard library's own site-packages (a system Python
    without a virtualenv), the mask over that directory's host path still applies: the job reads it through
    /sites only (before, such a directory was left unmasked at its host path as well)."""
    import os
    import sys
    import sysconfig

    stdlib_sites = os.path.realpath(os.path.join(sysconfig.get_paths()["stdlib"], "site-packages"))
    if not os.path.isdir(stdlib_sites) or not os.listdir(stdlib_sites):
        pytest.skip(f"{stdlib_sites}: no non-empty site-packages in this interpreter's standard library")
    monkeypatch.setattr(sys, "path", sys.path + [stdlib_sites])
    code = f"""
import os, sys
print(os.listdir({stdlib_sites!r}))
moved = [p for p in sys.path if p.startswith('/sites/')]
print(any(sorted(os.listdir(p)) == {sorted(os.listdir(stdlib_sites))!r} for p in moved))
"""
    res = ns.run(Job(code, limits=FAST, site_packages=True))
    assert res.ok and res.runs[0].stdout == "[]\nTrue\n", res.runs[0]
    assert_no_traces()
