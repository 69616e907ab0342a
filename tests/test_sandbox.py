"""The sandbox backends: hostile programs end as fails with the right reason, nothing escapes, and the
sandbox keeps serving. Real processes and namespaces, no mocks.

A backend that does not work on this machine fails its tests (it never skips them silently): a run that knows
the machine lacks one opts out by name, e.g. ``RAYLIGN_TEST_SKIP_SANDBOX=namespaces`` (comma-separated names).
"""
from __future__ import annotations

import math
import os
import resource
import shutil
import socket
import sys
import time
import uuid
from pathlib import Path

import pytest

from raylign.verifiers.code import sandbox as sb
from raylign.verifiers.code.sandbox import Job, Limits, NamespacesBackend, RlimitsBackend

FAST = Limits(timeout_s=1.5, memory_mb=256, max_procs=16, max_output_bytes=64 << 10)
NS_OK = NamespacesBackend.available()
ROOT = os.geteuid() == 0
CPU_CAP_S = math.ceil(FAST.timeout_s) + 1  # the harness's RLIMIT_CPU for a run (see Limits.timeout_s)
SKIP_ENV = "RAYLIGN_TEST_SKIP_SANDBOX"  # backend names whose tests may skip here, set on purpose by the user


def opted_out() -> set[str]:
    return {n.strip() for n in os.environ.get(SKIP_ENV, "").split(",") if n.strip()}


def require_backend(name: str) -> None:
    """Fail (or skip, if the run opted out of ``name`` by name) when backend ``name`` does not work here."""
    works, why = sb.BUILTIN_BACKENDS[name].probe()
    if works:
        return
    if name in opted_out():
        pytest.skip(f"{name} sandbox backend unavailable ({why}); skipped because {SKIP_ENV} names it")
    pytest.fail(f"the {name} sandbox backend does not work on this machine: {why}\n"
                f"Fix the machine, or set {SKIP_ENV}={name} to skip its tests on purpose.", pytrace=False)


def run(backend, code, **kw):
    kw.setdefault("limits", FAST)
    res = backend.run(Job(code, **kw))
    assert res.ok, res.error
    return res


def assert_still_serving(backend):
    res = run(backend, "print(sum(range(10)))")
    assert res.runs[0].reason is None and res.runs[0].stdout == "45\n"


def processes_with(marker: str) -> list[str]:
    found = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if marker in cmd:
                found.append(f"{pid}: {cmd}")
    return found


@pytest.fixture(scope="module")
def ns():
    require_backend("namespaces")
    return NamespacesBackend()


@pytest.fixture(scope="module", params=["namespaces", "rlimits"])
def backend(request):
    require_backend(request.param)
    return sb.BUILTIN_BACKENDS[request.param]()


# -- registration and selection -------------------------------------------------------------------------

def test_hook_registers_both_backends_and_default_is_strongest():
    from raylign.engine.plugins import build_registry

    reg = build_registry(extra_plugins=[sb], entry_points=False)
    assert {"namespaces", "rlimits"} <= set(reg.names("sandboxes"))
    assert NamespacesBackend.strength > RlimitsBackend.strength
    assert RlimitsBackend.available()
    best = sb.default_backend()
    assert (best.name if best else None) == ("namespaces" if NS_OK else None)
    assert sb.get_backend("rlimits").name == "rlimits"
    with pytest.raises(RuntimeError, match="unknown sandbox backend"):
        sb.get_backend("no-such-backend")

    class Broken(sb.SandboxBackend):
        name, strength = "broken", 1000

        @classmethod
        def available(cls):
            return False

    # a weak backend is never the default, even when it is the only one that works
    assert sb.default_backend({"broken": Broken, "rlimits": RlimitsBackend}) is None


def test_rlimits_backend_says_it_is_weaker():
    res = run(RlimitsBackend(), "print(1)")
    assert res.backend == "rlimits" and res.isolation == "weak"


def test_namespaces_backend_says_it_is_strong(ns):
    res = run(ns, "print(1)")
    assert res.backend == "namespaces" and res.isolation == "strong"


def test_unavailable_backend_fails_unless_opted_out_by_name(monkeypatch):
    """The guard itself: a backend that cannot run here is a failure, a skip only when named in the env var."""
    class Missing(sb.SandboxBackend):
        name = "missing"

        @classmethod
        def probe(cls):
            return False, "no such kernel feature"

    monkeypatch.setitem(sb.BUILTIN_BACKENDS, "missing", Missing)
    for value in ("", "rlimits", "namespaces,missingx"):
        monkeypatch.setenv(SKIP_ENV, value)
        with pytest.raises(pytest.fail.Exception, match=f"(?s)no such kernel feature.*{SKIP_ENV}=missing"):
            require_backend("missing")
    monkeypatch.setenv(SKIP_ENV, "namespaces, missing")
    with pytest.raises(pytest.skip.Exception, match="skipped because"):
        require_backend("missing")


# -- plain behaviour ------------------------------------------------------------------------------------

def test_stdio_cases_and_exit_status(backend):
    res = run(backend, "import sys\ns = input()\nprint(s[::-1])\nsys.exit(3 if s == 'boom' else 0)",
              inputs=("abc", "boom"))
    a, b = res.runs
    assert (a.stdout, a.exit_code, a.reason) == ("cba\n", 0, None)
    assert (b.stdout, b.exit_code, b.reason) == ("moob\n", 3, "exit")
    res = run(backend, "raise KeyError('x')")
    assert res.runs[0].reason == "KeyError" and "KeyError" in res.runs[0].stderr


def test_each_stdin_case_starts_clean(backend):
    code = ("import os\ncase = input()\nprint(case, sorted(f for f in os.listdir('.') if not f.startswith('.')))\n"
            "open('junk-' + case, 'w').write('x')\n"
            "try:\n    open('big-' + case, 'wb').write(b'0' * (200 << 20))\nexcept OSError:\n    pass")
    res = run(backend, code, inputs=("a", "b", "c"))
    assert [r.stdout for r in res.runs] == ["a []\n", "b []\n", "c []\n"]


def test_tests_mode_pass_is_the_test_process_word(backend):
    code = "def f(x):\n    return x * 2\n"
    res = run(backend, code, tests=("assert f(2) == 4", "assert f(2) == 5", "assert g(1)"))
    assert [t.passed for t in res.tests] == [True, False, False]
    assert [t.reason for t in res.tests[1:]] == ["assertion", "NameError"]
    # printing / writing fake result lines anywhere the solution can write cannot pass: the result file is the
    # test process's, out of the solution's reach; what it writes on its pipe to T is a protocol violation
    fake = code + ("import os\nprint('P 0')\nfor fd in range(3, 30):\n    try:\n"
                   "        os.write(fd, b'P 0\\nD\\n')\n"
                   "    except OSError:\n        pass\n")
    res = run(backend, fake, tests=("assert f(2) == 4",))
    assert not res.tests[0].passed and res.tests[0].reason == "protocol", res.tests


# -- hostile programs -----------------------------------------------------------------------------------

HOSTILE = {
    # name: (code, accepted reasons)
    "infinite_loop": ("while True:\n    pass", {"timeout"}),
    "sleep_forever": ("import time\ntime.sleep(10**6)", {"timeout"}),
    "fork_bomb": ("import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass",
                  {"timeout", "killed"}),
    "memory_bomb": ("x = []\nwhile True:\n    x.append(bytearray(50 << 20))", {"memory"}),
    "recursion_bomb": ("import sys\nsys.setrecursionlimit(10**8)\ndef r(n):\n    return r(n + 1) + 1\nr(0)",
                       {"memory", "killed", "timeout", "RecursionError"}),
    "segfault_ctypes": ("import ctypes\nctypes.string_at(0)", {"killed"}),
    "gigabytes_of_output": ("import sys\nwhile True:\n    sys.stdout.write('x' * 65536)", {"output_limit"}),
    "gigabytes_of_stderr": ("import os\nwhile True:\n    os.write(2, b'e' * 65536)", {"output_limit"}),
    "kill_everything": ("import os, signal\nfor pid in (os.getppid(), 1, -1, os.getpid()):\n"
                        "    try:\n        os.kill(pid, signal.SIGKILL)\n    except OSError:\n        pass",
                        {"killed"}),
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_program_fails_with_the_right_reason(ns, name):
    code, reasons = HOSTILE[name]
    res = run(ns, code)
    run0 = res.runs[0]
    assert run0.reason in reasons, (run0, res)
    assert run0.timed_out or run0.reason != "timeout"  # a timeout is the harness's deadline, not a guess
    assert run0.cpu_s <= CPU_CAP_S + 0.5, run0  # CPU time, not wall time: a loaded machine cannot fail this
    # the same program can never pass as a test run either
    res = run(ns, code + "\n", tests=("pass",))
    assert not res.tests[0].passed
    assert_still_serving(ns)


def test_rlimits_backend_contains_the_basics():
    rb = RlimitsBackend()
    for name in ("infinite_loop", "sleep_forever", "memory_bomb", "gigabytes_of_output", "segfault_ctypes"):
        code, reasons = HOSTILE[name]
        assert run(rb, code).runs[0].reason in reasons, name
    assert_still_serving(rb)


@pytest.fixture
def sentinel_dir():
    """A directory outside the sandbox's temp dir but visible inside it (next to the interpreter)."""
    d = Path(sys.prefix) / f".raylign-sandbox-test-{uuid.uuid4().hex[:8]}"
    d.mkdir()
    (d / "sentinel").write_text("keep me")
    yield d
    shutil.rmtree(d, ignore_errors=True)


def test_cannot_write_or_delete_outside_the_temp_dir(backend, sentinel_dir):
    if backend.name == "rlimits" and not ROOT:
        pytest.skip("the rlimits backend only protects files through uid 65534, which needs root")
    code = f"""
import os, shutil
d = {str(sentinel_dir)!r}
for attempt in (lambda: open(d + '/pwned', 'w').write('x'), lambda: os.remove(d + '/sentinel'),
                lambda: shutil.rmtree(d), lambda: open('/etc/raylign-pwned', 'w'),
                lambda: os.chmod(d + '/sentinel', 0o777)):
    try:
        attempt()
        print('ESCAPED')
    except OSError as e:
        print('denied', e.errno)
open('scratch.txt', 'w').write('a private temp dir is writable')
print(open('scratch.txt').read())
"""
    res = run(backend, code)
    out = res.runs[0].stdout
    assert "ESCAPED" not in out and "a private temp dir is writable" in out, res
    assert (sentinel_dir / "sentinel").read_text() == "keep me"
    assert not (sentinel_dir / "pwned").exists() and not Path("/etc/raylign-pwned").exists()
    assert oct((sentinel_dir / "sentinel").stat().st_mode & 0o777) != oct(0o777)


def test_private_temp_dir_is_removed_and_not_shared(ns):
    res = run(ns, "import os\nopen('/tmp/left-behind', 'w').write('x')\nprint(sorted(os.listdir('/tmp')))")
    assert "left-behind" in res.runs[0].stdout
    res = run(ns, "import os\nprint(os.path.exists('/tmp/left-behind'))")
    assert res.runs[0].stdout == "False\n"
    assert not os.path.exists("/tmp/left-behind")


def test_secrets_stay_secret(backend, tmp_path, monkeypatch):
    secret = f"s3cr3t-{uuid.uuid4().hex}"
    monkeypatch.setenv("RAYLIGN_TEST_SECRET", secret)
    path = tmp_path / "secret.txt"
    path.write_text(secret)
    path.chmod(0o600)
    if backend.name == "rlimits" and not ROOT:
        pytest.skip("the rlimits backend hides nothing from a program running as the same user")
    code = f"""
import os
print(dict(os.environ))
for p in ({str(path)!r}, '/proc/{os.getpid()}/environ', '/proc/1/environ', '/proc/self/environ'):
    try:
        print(open(p, 'rb').read())
    except OSError as e:
        print('denied', p, e.errno)
"""
    res = run(backend, code)
    assert secret not in res.runs[0].stdout + res.runs[0].stderr
    assert "denied" in res.runs[0].stdout


def test_no_network_even_to_loopback(ns):
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    server.settimeout(0.2)
    port = server.getsockname()[1]
    try:
        code = (f"import socket\ntry:\n    socket.create_connection(('127.0.0.1', {port}), timeout=1)\n"
                "    print('CONNECTED')\nexcept OSError as e:\n    print('refused', e.errno)\n"
                "s = socket.socket()\ns.bind(('127.0.0.1', 0))\nprint('bound')")
        res = run(ns, code)
        assert "CONNECTED" not in res.runs[0].stdout and "refused" in res.runs[0].stdout
        with pytest.raises(socket.timeout):
            server.accept()
    finally:
        server.close()


def test_daemon_that_outlives_the_run_is_killed_and_fails(backend):
    marker = f"raylign-daemon-{uuid.uuid4().hex[:10]}"
    code = f"""
import os, sys
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        try:  # the interpreter where the job can run it (the namespaces root), else the host's shell (rlimits:
            # uid 65534 may not reach an interpreter under /root)
            if os.access(sys.executable, os.X_OK):
                os.execv(sys.executable, [sys.executable, '-c', 'import time; time.sleep(60) # {marker}'])
            os.execv('/bin/sh', ['/bin/sh', '-c', 'sleep 60 # {marker}'])
        finally:
            os._exit(1)  # never run the rest of the program as a second copy
    os._exit(0)
print('parent exits')
"""
    res = run(backend, code)
    assert res.runs[0].reason == "daemon"
    res = run(backend, "def f():\n    return 1\n" + code, tests=("assert f() == 1",))
    assert not res.tests[0].passed and res.tests[0].reason == "daemon"
    time.sleep(0.2)
    assert processes_with(marker) == []


def test_exit_before_tests_and_overriding_the_checker_fail(ns):
    tests = ("assert f(1) == 2",)
    programs = {
        "sys.exit(0)": "def f(x):\n    return 0\nimport sys\nsys.exit(0)",
        "os._exit(0)": "def f(x):\n    return 0\nimport os\nos._exit(0)",
        "exit in the call": "def f(x):\n    import os\n    os._exit(0)",
        "SystemExit in the call": "def f(x):\n    raise SystemExit(0)",
        "patched builtins": "import builtins\nbuiltins.AssertionError = type('N', (Exception,), {})\n"
                            "__builtins__['abs'] = lambda x: 0\ndef f(x):\n    return 0",
        "trace jump": "import sys\ndef f(x):\n    return 0\nsys.settrace(lambda *a: None)",
        "frame digging": "import sys\ndef f(x):\n    return 0\nprint(sys._getframe(1).f_locals)",
        "gc digging": "import gc\ndef f(x):\n    return 0\n"
                      "print([o for o in gc.get_objects() if isinstance(o, dict)][:3])",
    }
    for name, code in programs.items():
        res = run(ns, code, tests=tests)
        assert not res.tests[0].passed, name
    res = run(ns, "def f(x):\n    return x + 1", tests=tests)
    assert res.tests[0].passed


# -- throughput -----------------------------------------------------------------------------------------

def tree_cpu_seconds() -> float:
    """CPU seconds (user + system) used so far by this process and every process below it: the live ones (job
    servers, warm namespaces) from /proc, the ended ones through the parents that reaped them."""
    tick = os.sysconf("SC_CLK_TCK")
    parent, cpu = {}, {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                fields = Path(f"/proc/{name}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            parent[int(name)] = int(fields[1])
            cpu[int(name)] = sum(int(x) for x in fields[11:15]) / tick  # utime stime cutime cstime
    me, total = os.getpid(), 0.0
    for pid, seconds in cpu.items():
        p, hops = parent.get(pid), 0
        while p and p != me and hops < 64:
            p, hops = parent.get(p), hops + 1
        if p == me:
            total += seconds
    own, reaped = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return total + own.ru_utime + own.ru_stime + reaped.ru_utime + reaped.ru_stime


def test_pool_and_per_run_overhead(backend):
    """A run costs a couple of forks, not an interpreter start: measured in CPU time of the whole process tree
    (the host, its job servers and every sandbox), which other load on the machine does not inflate."""
    jobs = [Job(f"print({i})", limits=FAST) for i in range(24)]
    c0 = tree_cpu_seconds()
    results = sb.run_many(jobs, backend=backend)
    c1 = tree_cpu_seconds()
    assert [r.runs[0].stdout for r in results] == [f"{i}\n" for i in range(24)]
    for job in jobs[:8]:
        backend.run(job)
    c2 = tree_cpu_seconds()
    pooled, serial = (c1 - c0) / len(jobs), (c2 - c1) / 8
    print(f"\n{backend.name}: {serial * 1000:.1f} ms CPU per run serially, {pooled * 1000:.1f} ms CPU per run "
          f"with {os.cpu_count()} workers")
    assert 0 < serial < 0.25 and pooled < 0.25
