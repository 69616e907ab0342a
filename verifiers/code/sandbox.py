"""Sandboxes that run untrusted Python programs, and the hook that registers them.

Backends (registered through ``raylign_register_sandboxes``). The table to choose from is passed in
(``get_backend(name, backends)``): the engine hands the code verifier its registry's sandboxes; without one,
the built-in ``BUILTIN_BACKENDS``. Nothing here reads the engine's registry. ``"auto"`` is the strongest
available backend of *strong* isolation; the weak ``rlimits`` is used only when a config names it, and when no
strong backend works ``get_backend`` raises RuntimeError with one line saying why (never a silent fallback).

- ``namespaces`` (strength 100, strong): each job gets fresh user, PID, IPC, UTS, cgroup and mount namespaces
  (its host name is ``sandbox``, its cgroups are seen from their own root) and a network
  namespace no other live job shares (on root hosts one the server made for an earlier job that is gone:
  ``sandbox_harness.NetPool``), created with ``clone(2)`` by the trusted harness
  (:mod:`raylign.verifiers.code.sandbox_harness`; nothing to install). Its root is a minimal tree (``sandbox_host.minimal_root``, ``pivot_root``, the host's tree
  detached): the interpreter, its standard library (site-packages masked) and the shared libraries they load,
  all read-only, ``/dev/null|zero|random|urandom``, a fresh ``/proc`` (``hidepid=2``: a process sees only its
  own uid's processes, so S sees neither B nor T; the host kernel's command line, key lists, symbols and
  config masked), a private ``/tmp`` and ``/dev/shm`` capped in size and files (each stdin case gets fresh
  ones); no host data, homes, /etc files (but the linker's cache) or project files. The only network
  device is a down loopback. Programs run as uid 65534 without capabilities under rlimits (CPU time, address
  space, file size, which also caps stdout/stderr, open files, queued signals: they count against the host user
  that made the namespaces) and a seccomp filter
  (``sandbox_runner.seccomp_program``): no kernel keyrings (which no namespace scopes: keys would outlive the
  job and reach other jobs), no POSIX message queues, no inotify or fanotify instances (counted against the host
  user that made the namespaces: a job could use up root's), no io_uring, and no socket of a family other than
  UNIX and NETLINK (no INET/INET6 state, such as IPv6 flow labels, left in a reused network namespace). System V
  IPC is bounded per job (16 MB of shared memory, 16 queues). The job as a whole has its own memory and pids
  cgroups (memory_mb, plus what may outlive its processes: its /tmp, /dev/shm and System V memory, plus 64 MB
  for the harness; max_procs + 2) where the machine lets the harness create
  them (cgroup v1 or v2, under the host process's own cgroup); where not, ``SandboxResult.bounds`` (and the
  verdict's ``details["bounds"]``) says ``rlimits: <why>`` and only the per-process rlimits hold.
  PID 1 of the namespace is the harness's supervisor B: it times each run with pidfds and kills whatever the
  run left behind; the job server kills B at the job's deadline, and when B dies the kernel kills every
  process in the namespace, and the mounts, tmpfs pages and IPC objects go with it.
- ``rlimits`` (strength 10, weak): the same harness without namespaces: rlimits, a private temp dir removed
  afterwards, uid 65534 when the host is root, and a child-subreaper that kills the process tree. No file
  system, network, IPC or process isolation beyond that: results say ``isolation="weak"``.

Files: this module (API, backends, judging what the harness reported), :mod:`.sandbox_host` (the job
servers, the minimal root), and the harness that runs as its own process: :mod:`.sandbox_harness` (job
server, cgroups), :mod:`.sandbox_supervisor` (B: mounts, runs), :mod:`.sandbox_runner` (S, the solution),
:mod:`.sandbox_tester` (T, the tests), :mod:`.sandbox_wire` (plain data between T and S).

Throughput: a host process starts job servers on demand (``python -I -S``, one more only when every running
one is busy, at most 4). Each server keeps two namespaces warm (cloned, mounted, their first run's processes
forked and waiting) and hands each to exactly one job, so a job costs a few forks, not an interpreter start:
:func:`run_many` runs jobs on a thread pool sized to the CPUs.

How a pass is decided (tests mode; stdin/stdout programs are compared by the host and need none of this):
the solution runs in process S; the tests run in process T, a sibling of S under B with another uid (65533),
not dumpable, so S can neither signal, trace nor read it (not its memory, frames, modules or files). T's test
namespace holds T's own builtins and modules (a module the solution imported is imported again in T), the
task's trusted set-up code (``Job.setup``: a HumanEval prompt, whose helpers are thus the task's) and proxies
for the solution's names: a call sends its arguments to S over a pipe and gets the result back as plain data
(:mod:`.sandbox_wire`: builtin types only, rebuilt in T), so every comparison in a test is the builtin
comparison of values the solution cannot fake; an object that is not plain data comes back as a handle whose
``==`` is identity. The table of names S sends is the solution's word, so it never picks an object of T's nor a
module for T to import (``sandbox_tester.binding``): an entry point (the HumanEval function; every function the
tests call; when the tests call no function of their own, a builtin's name called with arguments written out,
``assert sum([1, 2]) == 3``: the function under test named like a builtin) is always the solution's own value or
handle, and an entry point the solution does not define is no builtin either; any other name that is a module's name in T (``math``, ``numpy``) or a usual alias (``np``) is T's
own module, whatever the solution bound to it; a module under another alias is T's own module at that path, reached
by importing only its top-level module (never a submodule the solution chose, whose import could run code; never
the standard library's test-helper packages, which hold objects equal to everything); plain data is bound as it
is; a function or class the tests pass as a value (``map(square, xs)``, ``key=keyf``, ``Calc.add(1, 2)``) is its
handle (under a module's name too when the tests only hand it to a call: ``filter(select, xs)``); any other object of the solution's is left out (a test that used it through its attributes would run the
solution's code where it checks). S sends numpy scalars and arrays as the numbers they hold (``tolist``), an
``OrderedDict`` with its order and a ``Counter`` as a Counter. T has its own ``exit``/``quit`` (it runs without ``site``; S gets ``sys.exit``
as both, and a ``__file__``, ``/tmp/main.py``, that names no file: /tmp stays empty), and a task's set-up code
that does
not compile as it is keeps the helpers before its last function, or fails every test (the solution's names
never stand in for it). T alone writes the result lines (``P i``/``F i reason``/``D``), to a file only B reads. A
test passes when T says so and ended normally, and S ended by itself with exit 0 (no signal, no deadline)
leaving no process behind; S still running GRACE_S after T ended is killed and the run fails as ``killed``
(never a ``timeout``, which only the deadline makes). S never receives the tests: it is forked before the
job's spec is read and gets only its own part (not even the other stdin cases). The only ``timeout`` run reason
is the harness's clock: a signal a program sends itself (SIGXCPU included) ends it as ``killed``, an error of
the program (and the verifier scores a program that ran past the clock as its own failure too: status ``ok``,
reason ``time_limit``). Processes the program leaves have ``LEFTOVER_GRACE_S`` to end by themselves (a helper
whose pipe to the program closed) before they make the run fail as ``daemon``.

A program ends as the interpreter ends one: its non-daemon threads are waited for and its ``atexit`` functions
run before S exits.

Residual risks (documented, not defended): every job's S is host uid 65534, so one job's pipes can use up that
user's pipe buffer quota (``pipe-user-pages-soft``) and shrink other jobs' new pipes; memory a job keeps alive in
an in-flight unix-socket cycle outlives it until the kernel's next unix garbage collection; results cross as plain
data, so a test that needs a returned object's type (``isinstance``, a namedtuple's field names, a dict view) or
that passes the solution an object its set-up code built (not picklable) fails where plain Python would pass; a job that asked for site-packages can read, in
``/proc/self/mountinfo``, the host path of each site-packages directory bound at ``/sites/<i>`` (the files in
them that name host paths, ``*.pth``, editable finders, ``direct_url.json``, are covered, and its import path
holds only the standard library's and ``/sites`` entries); a test that passes the solution's handle objects to its own
truth tests (``assert candidate(x)`` on an object) gets the solution's ``__bool__``, as Python would; arguments
cross by value, so a test that checks an in-place mutation of its argument sees none; on a host that is not
root, T and S share a uid (T is still non-dumpable, so S cannot read it, but S may signal it: a fail, never a
pass); without cgroups a job's total memory and process count are bounded per process only; the S of a
stdin case after the first is forked from B, which keeps the job's inputs (never its expected outputs) in a
memfd, out of S's reach, and the job server is booted so that no object in its memory (which every job
inherits) names a host path beyond the interpreter's and its libraries' (which the root shows anyway), but
raw bytes of memory either freed are not scrubbed: a program that scans its own address space may find them.
"""
from __future__ import annotations

import contextlib
import marshal
import math
import os
import re
import signal
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, ClassVar, Iterable, Mapping

from raylign.engine import hookimpl
from raylign.verifiers.code.sandbox_host import SERVER, _root, collect, site_dirs
from raylign.verifiers.code.sandbox_supervisor import outliving_mb, site_mount, wipe

NOBODY = 65534  # the solution's uid (when the host is root)
TESTER = 65533  # the test process's uid


@dataclass(frozen=True)
class Limits:
    """Resource limits of one program run (one stdin case, or the whole test run)."""

    timeout_s: float = 5.0  # wall-clock seconds per run; CPU time is capped at ceil(timeout_s) + 1
    memory_mb: int = 512  # address space (RLIMIT_AS) of each process
    max_procs: int = 32  # processes + threads the program may have at once (RLIMIT_NPROC)
    max_open_files: int = 64  # RLIMIT_NOFILE
    max_output_bytes: int = 4 << 20  # cap on stdout, on stderr and on any file written (RLIMIT_FSIZE)
    tmpfs_mb: int = 64  # size of the private writable /tmp (namespaces backend)
    total_s: float | None = None  # wall-clock seconds all the runs of a job share (None: timeout_s each)


@dataclass(frozen=True)
class Job:
    """One untrusted program and what to do with it.

    ``tests`` set: run ``code`` once (the solution, process S), then each test snippet in the test process T
    (assert lists, HumanEval), whose namespace holds the solution's names as proxies (see the module docstring),
    then ``setup`` (trusted code run in T before the tests, e.g. a HumanEval prompt: its helpers are T's own),
    then ``entry_points`` rebound to the solution's (the function under test, which ``setup`` may define as a
    stub). ``inputs`` set: run ``code`` once per input, the input on stdin (stdout is returned, not judged
    here). Neither: run ``code`` once with empty stdin.
    """

    code: str
    tests: tuple[str, ...] | None = None
    inputs: tuple[str, ...] | None = None
    limits: Limits = Limits()
    site_packages: bool = False  # let the program import the host interpreter's site-packages
    setup: str | None = None  # tests mode: trusted code run in the test process before the tests
    entry_points: tuple[str, ...] = ()  # tests mode: names always taken from the solution (besides those the
    # tests call, which the test process adds itself: sandbox_tester.test_names)
    helpers: tuple[str, ...] = ()  # tests mode: trusted class definitions of the tests' that S runs before the
    # program (the ListNode its judge defines for a LeetCode solution; verifier._test_classes)

    @property
    def mode(self) -> str:
        return "tests" if self.tests is not None else "stdio" if self.inputs is not None else "script"


@dataclass
class RunOutcome:
    """How one run of the program ended, as observed by the trusted harness."""

    exit_code: int | None  # None when killed by a signal
    signal: str | None  # e.g. "SIGSEGV"
    timed_out: bool  # hit the wall-clock deadline
    wall_s: float
    cpu_s: float
    max_rss_mb: float
    stdout: str
    stderr: str
    output_limit: bool  # stdout or stderr reached Limits.max_output_bytes
    leftover: bool  # processes were still alive after the program ended (killed; the run fails)
    # None: ended by itself with exit 0; else timeout|memory|output_limit|killed|daemon|exit|<ExceptionType>
    reason: str | None = None
    message: str = ""
    tester_status: int | None = None  # tests mode: the wait status of the test process T
    tester_stderr: str = ""


@dataclass
class TestOutcome:
    """Whether one test snippet passed, and if not why."""

    __test__ = False  # not a pytest test class

    passed: bool
    # assertion | <ExceptionType> | timeout | memory | output_limit | killed | exit | daemon | gone | protocol
    reason: str | None = None
    message: str = ""


@dataclass
class SandboxResult:
    backend: str
    isolation: str  # "strong" (namespaces) or "weak" (rlimits only)
    error: str | None = None  # infrastructure failure (the program's fault never lands here)
    runs: list[RunOutcome] = field(default_factory=list)
    tests: list[TestOutcome] = field(default_factory=list)  # tests mode only
    wall_s: float = 0.0
    # how the job's total memory and process count were bounded: "cgroup" (its own memory and pids cgroups),
    # else "rlimits: <why not>" (per-process rlimits only)
    bounds: str = ""

    @property
    def ok(self) -> bool:
        return self.error is None


# --------------------------------------------------------------------------------------------------------
# Backends
# --------------------------------------------------------------------------------------------------------

class SandboxBackend:
    """A way to run :class:`Job` s. Subclasses set ``name``, ``strength`` and implement ``run``."""

    name: ClassVar[str] = ""
    strength: ClassVar[int] = 0  # higher is stronger; the default backend is the strongest available
    isolation: ClassVar[str] = "weak"

    @classmethod
    def available(cls) -> bool:
        raise NotImplementedError

    def run(self, job: Job) -> SandboxResult:
        raise NotImplementedError

    def run_many(self, jobs: Iterable[Job], workers: int | None = None) -> list[SandboxResult]:
        return run_many(jobs, workers=workers, backend=self)


class HarnessBackend(SandboxBackend):
    """Runs jobs through the job servers of ``sandbox_harness.py`` (see the module docstring)."""

    iso: ClassVar[str] = ""
    _probe: ClassVar[dict[str, tuple[bool, str]]] = {}

    @classmethod
    def available(cls) -> bool:
        return cls.probe()[0]

    @classmethod
    def probe(cls) -> tuple[bool, str]:
        """Run a tiny program once per process; (works, why not)."""
        if cls.name not in HarnessBackend._probe:
            if not sys.platform.startswith("linux"):
                HarnessBackend._probe[cls.name] = (False, "needs Linux")
            else:
                res = cls().run(Job("print(6 * 7)", limits=Limits(timeout_s=10)))
                good = res.ok and res.runs and res.runs[0].stdout == "42\n" and res.runs[0].reason is None
                why = "" if good else (res.error or f"probe run ended badly: {res.runs[:1]}")
                HarnessBackend._probe[cls.name] = (bool(good), why)
        return HarnessBackend._probe[cls.name]

    def _sys_path(self, sites: list[str]) -> list[str]:
        """The import path of a job that asked for site-packages: the host's, but only its absolute entries (no
        relative one, no path hook's name). ``namespaces`` binds the i-th of ``sites`` (``site_dirs()``, the
        list the harness gets with the job) at ``site_mount(i)``, so entries in them are rewritten to that
        place, and keeps only those and the entries under the minimal root's read-only directories (the
        standard library): any other host entry would name a place the job does not have, or one inside its
        own writable /tmp, where the solution could plant a module for the tests to import, and would tell the
        job where the host keeps things. ``rlimits`` jobs see the host's tree as it is."""
        paths = [p for p in sys.path if p and os.path.isabs(p)]
        if self.iso != "namespaces":
            return paths
        dirs = [os.path.realpath(d) for d in _root()["dirs"]]
        masked = [os.path.realpath(m) for m in _root()["mask"]]

        def under(path: str, tops: list[str]) -> bool:
            return any(path == t or path.startswith(t.rstrip("/") + "/") for t in tops)

        kept = []
        for p in paths:
            real = os.path.realpath(p)
            site = next((i for i, s in enumerate(sites) if under(real, [s])), None)
            if site is not None:
                kept.append(site_mount(site) + real[len(sites[site]):])
            elif under(real, dirs) and not under(real, masked):
                kept.append(real)
        return kept

    def _spec(self, job: Job, workdir: str | None, sites: list[str]) -> dict[str, Any]:
        lim = job.limits
        root = os.geteuid() == 0
        nproc: int | None = lim.max_procs
        if self.iso == "rlimits":  # RLIMIT_NPROC counts every process of the uid on the host
            nproc = lim.max_procs * (os.cpu_count() or 1) + 64 if root else None
        return {
            "iso": self.iso, "mode": job.mode, "code": job.code, "helpers": list(job.helpers),
            "tests": list(job.tests or ()), "setup": job.setup or "", "entry_points": list(job.entry_points),
            "inputs": list(job.inputs or ()),
            "timeout": float(lim.timeout_s), "cpu": int(math.ceil(lim.timeout_s)) + 1,
            "total": None if lim.total_s is None else float(lim.total_s),
            "mem": int(lim.memory_mb) << 20, "nproc": nproc, "nofile": int(lim.max_open_files),
            "fsize": int(lim.max_output_bytes), "tmpfs_mb": int(lim.tmpfs_mb),
            "drop_uid": NOBODY if root else None, "tester_uid": TESTER if root else None,
            "nest_userns": not root and self.iso == "namespaces",
            "workdir": workdir,
            "sys_path": self._sys_path(sites) if job.site_packages else None,
        }

    def run(self, job: Job) -> SandboxResult:
        t0 = time.monotonic()
        n_runs = len(job.inputs) if job.mode == "stdio" else 1
        limit = 10.0 + n_runs * (job.limits.timeout_s + 1.0)  # the server kills the job's processes then
        workdir = None
        sites = site_dirs() if job.site_packages else []  # one list for the import path and the binds
        spec_r, spec_w = os.pipe()
        chan_r, chan_w = os.pipe()
        try:
            if self.iso == "rlimits":
                workdir = tempfile.mkdtemp(prefix="raylign-sbx-")
                if os.geteuid() == 0:
                    os.chown(workdir, NOBODY, NOBODY)
            data = marshal.dumps(self._spec(job, workdir, sites))
            os.set_blocking(spec_w, False)
            try:  # most specs fit in the pipe: written before the job starts, the job need not wait for us
                data = data[os.write(spec_w, data):]
            except BlockingIOError:
                pass
            try:
                # the job's cgroup: the program's memory and what may outlive its processes (its tmpfs,
                # IPC...), which must never eat the harness's share
                mem = (job.limits.memory_mb + outliving_mb(job.limits.tmpfs_mb)) << 20
                server = SERVER.submit(limit, self.iso, spec_r, chan_w, mem=mem,
                                       nproc=job.limits.max_procs, sites=sites)
            except OSError as exc:
                return SandboxResult(self.name, self.isolation, error=f"cannot reach the sandbox server: {exc}",
                                     wall_s=time.monotonic() - t0)
            try:
                os.close(spec_r)
                os.close(chan_w)
                spec_r = chan_w = -1
                spec_w, owned = -1, spec_w  # collect() closes it
                frames, host_timeout = collect(owned, chan_r, data, t0 + limit + 5.0)
            finally:
                SERVER.done(server)
        finally:
            for fd in (spec_r, spec_w, chan_r, chan_w):
                if fd >= 0:
                    os.close(fd)
            if workdir:  # whatever the program left there, at any depth (shutil.rmtree recurses)
                wipe(workdir)
                with contextlib.suppress(OSError):
                    os.rmdir(workdir)
        res = _result(self, job, frames, host_timeout, n_runs)
        res.wall_s = time.monotonic() - t0
        return res


class NamespacesBackend(HarnessBackend):
    """Fresh user+PID+net+mount namespaces per job, read-only system, private tmpfs, rlimits."""

    name = "namespaces"
    strength = 100
    isolation = "strong"
    iso = "namespaces"


class RlimitsBackend(HarnessBackend):
    """Weaker: a plain subprocess with rlimits and process-tree kill (no file/network isolation)."""

    name = "rlimits"
    strength = 10
    isolation = "weak"
    iso = "rlimits"


BUILTIN_BACKENDS: dict[str, type[SandboxBackend]] = {"namespaces": NamespacesBackend, "rlimits": RlimitsBackend}


@hookimpl
def raylign_register_sandboxes(register):
    for name, cls in BUILTIN_BACKENDS.items():
        register(name, cls)


def default_backend(backends: Mapping[str, type] | None = None) -> SandboxBackend | None:
    """An instance of the strongest available backend of ``strong`` isolation, or None if none works here. A
    weak backend (``rlimits``) is never a default: a run uses it only when its config names it.

    :param backends: the backends to choose from, ``{name: backend class}`` (the engine passes those of its
        plugin registry, see :class:`~raylign.verifiers.code.verifier.CodeVerifier`); None: the built-in ones.
    """
    backends = BUILTIN_BACKENDS if backends is None else backends
    strong = [c for c in backends.values() if getattr(c, "isolation", "weak") == "strong"]
    for cls in sorted(strong, key=lambda c: -int(getattr(c, "strength", 0))):
        try:
            if cls.available():
                return cls()
        except Exception:  # noqa: BLE001 - a broken third-party backend is just unavailable
            continue
    return None


def _why_unavailable(name: str, cls: type) -> str:
    try:
        why = cls.probe()[1] if hasattr(cls, "probe") else ""
    except Exception as exc:  # noqa: BLE001
        why = f"{type(exc).__name__}: {exc}"
    return " ".join(str(why or "its probe failed").split())[:400]


def get_backend(name: str = "auto", backends: Mapping[str, type] | None = None) -> SandboxBackend:
    """The backend called ``name`` (``"auto"``: the strongest available of strong isolation). Raises
    RuntimeError, one line saying why, when it cannot be used here: "auto" never falls back to a weak backend.

    :param backends: the backends to choose from, ``{name: backend class}``; None: the built-in ones.
    """
    backends = dict(BUILTIN_BACKENDS if backends is None else backends)
    if name == "auto":
        backend = default_backend(backends)
        if backend is None:
            strong = {n: c for n, c in backends.items() if getattr(c, "isolation", "weak") == "strong"}
            weak = sorted(n for n in backends if n not in strong)
            why = "; ".join(f"{n}: {_why_unavailable(n, c)}" for n, c in strong.items()) or "none is registered"
            hint = f" (to run with the weaker {weak[0]!r} backend anyway, name it: sandbox = \"{weak[0]}\")" \
                if weak else ""
            raise RuntimeError(f"no strong sandbox backend works on this machine: {why}{hint}")
        return backend
    if name not in backends:
        raise RuntimeError(f"unknown sandbox backend {name!r}; known: {', '.join(sorted(backends))}")
    cls = backends[name]
    if not cls.available():
        raise RuntimeError(f"sandbox backend {name!r} is not available on this machine: {_why_unavailable(name, cls)}")
    return cls()


def run_many(jobs: Iterable[Job], workers: int | None = None,
             backend: SandboxBackend | None = None) -> list[SandboxResult]:
    """Run jobs concurrently (a thread per worker, each job its own sandbox); results in job order."""
    backend = backend or get_backend()
    jobs = list(jobs)
    workers = max(1, min(workers or os.cpu_count() or 1, len(jobs) or 1))
    if workers == 1:
        return [backend.run(j) for j in jobs]
    with ThreadPoolExecutor(workers) as pool:
        return list(pool.map(backend.run, jobs))


# --------------------------------------------------------------------------------------------------------
# Interpreting what the harness reported
# --------------------------------------------------------------------------------------------------------

_EXC_LINE = re.compile(r"^([A-Za-z_][\w.]*(?:Error|Exception|Exit|Interrupt|Warning|Iteration))\b")


def _last_exception(stderr: str) -> str | None:
    for line in reversed(stderr.strip().splitlines()[-5:]):
        m = _EXC_LINE.match(line.strip())
        if m:
            return m.group(1).rsplit(".", 1)[-1]
    return None


def _outcome(o: dict[str, Any], lim: Limits) -> RunOutcome:
    """How a run ended. Only the harness's clock makes a ``timeout``: a program that sends itself a signal
    (SIGXCPU, SIGKILL...) ends as ``killed``, an error of the program, never as a timeout it chose."""
    status = o["status"]
    sig = None
    code: int | None = None
    if os.WIFSIGNALED(status):
        try:
            sig = signal.Signals(os.WTERMSIG(status)).name
        except ValueError:
            sig = f"signal {os.WTERMSIG(status)}"
    else:
        code = os.WEXITSTATUS(status)
    cap = lim.max_output_bytes
    out, err = o["stdout"][:cap], o["stderr"][:cap]
    run = RunOutcome(exit_code=code, signal=sig, timed_out=bool(o["timed_out"]), wall_s=o["wall"], cpu_s=o["cpu"],
                     max_rss_mb=o["maxrss_kb"] / 1024, stdout=out.decode("utf-8", "replace"),
                     stderr=err.decode("utf-8", "replace"),
                     output_limit=len(o["stdout"]) >= cap or len(o["stderr"]) >= cap, leftover=bool(o["leftover"]),
                     tester_status=o.get("t_status"),
                     tester_stderr=o.get("t_err", b"").decode("utf-8", "replace"))
    cpu_limit = math.ceil(lim.timeout_s) + 1
    exc = _last_exception(run.stderr) if code else None
    if run.timed_out and o.get("not_run"):
        run.reason, run.message = "timeout", f"not run: the job's {lim.total_s:g}s for all its cases were spent"
    elif run.timed_out:
        run.reason, run.message = "timeout", f"wall-clock limit of {lim.timeout_s:g}s"
    elif o.get("lingered"):  # killed GRACE_S after the tests ended, long before the deadline: not a timeout
        run.reason, run.message = "killed", "the solution process was still running after the tests ended"
    elif run.output_limit:
        run.reason, run.message = "output_limit", f"output reached {cap} bytes"
    elif exc == "MemoryError" or (sig and o.get("oom")) or (sig == "SIGKILL" and run.max_rss_mb >= 0.8 * lim.memory_mb):
        run.reason, run.message = "memory", f"memory limit of {lim.memory_mb} MB"
    elif sig == "SIGKILL" and run.cpu_s >= cpu_limit - 0.5:
        run.reason, run.message = "killed", f"killed at its CPU-time limit of {cpu_limit}s"
    elif sig:
        run.reason, run.message = "killed", f"killed by {sig}"
    elif code:
        run.reason = exc or "exit"
        tail = run.stderr.strip().splitlines()
        run.message = tail[-1][:300] if exc and tail else f"exit status {code}"
    elif run.leftover:
        run.reason, run.message = "daemon", "processes were still running after the program ended"
    return run


def _tests_outcome(run: RunOutcome, res: bytes, n: int) -> list[TestOutcome]:
    """Judge tests mode from the result lines of the test process T (a file only T writes and only the
    supervisor reads). A test passes when T says so (``P i``), T reached its end (``D``) and exited 0, and the
    solution process ended by itself with exit 0 (no signal, no deadline) with nothing left behind."""
    passed: set[int] = set()
    failed: dict[int, tuple[str, str]] = {}
    solution_error: tuple[str, str] | None = None
    reached_end = False
    for line in res.decode("utf-8", "replace").splitlines():
        kind, _, rest = line.partition(" ")
        if kind == "P" and rest.isdigit():
            passed.add(int(rest))
        elif kind == "D":
            reached_end = True
        elif kind == "F":
            idx, _, rest2 = rest.partition(" ")
            reason, _, msg = rest2.partition(" ")
            if idx.isdigit():
                failed.setdefault(int(idx), (reason[:40], msg[:300]))
        elif kind == "E" and solution_error is None:
            reason, _, msg = rest.partition(" ")
            solution_error = (reason[:40], msg[:300])
    tester_ok = reached_end and run.tester_status == 0
    ended_ok = run.reason is None and run.exit_code == 0 and tester_ok
    tester_why = (run.tester_stderr.strip().splitlines() or [f"wait status {run.tester_status}"])[-1][:300]
    out = []
    for i in range(n):
        if i in passed and ended_ok:
            out.append(TestOutcome(True))
        elif i in failed and failed[i][0] in ("gone", "protocol") and run.reason:
            out.append(TestOutcome(False, run.reason, run.message))  # why the solution process went away
        elif i in failed:
            out.append(TestOutcome(False, *failed[i]))
        elif solution_error:
            out.append(TestOutcome(False, solution_error[0], f"the solution raised: {solution_error[1]}"))
        elif run.reason:
            out.append(TestOutcome(False, run.reason, run.message))
        elif not tester_ok:
            out.append(TestOutcome(False, "tester", f"the test process failed: {tester_why}"))
        else:
            out.append(TestOutcome(False, "exit", "the program ended before the tests completed"))
    return out


def _result(backend: HarnessBackend, job: Job, frames, host_timeout, n_runs) -> SandboxResult:
    res = SandboxResult(backend.name, backend.isolation)
    raw: dict[int, dict] = {}
    setup = False
    for frame in frames:
        if not isinstance(frame, tuple) or not frame:
            continue
        if frame[0] == "error":
            res.error = str(frame[1])
            return res
        if frame[0] == "setup":
            setup = True
            if isinstance(frame[1], dict):
                res.bounds = str(frame[1].get("bounds", ""))
        elif frame[0] == "run":
            raw[int(frame[1])] = frame[2]
    if not setup:
        why = "did not finish setting up before the deadline" if host_timeout else "ended without a word"
        res.error = f"sandbox job {why}"
        return res
    for i in range(n_runs):
        if i in raw:
            res.runs.append(_outcome(raw[i], job.limits))
        elif host_timeout:  # the harness itself was stuck: count what is missing as timed out
            res.runs.append(RunOutcome(None, None, True, job.limits.timeout_s, 0.0, 0.0, "", "", False, False,
                                       "timeout", "host deadline"))
        else:
            res.error = "sandbox job ended early without reporting every run"
            return res
    if job.mode == "tests":
        res.tests = _tests_outcome(res.runs[0], (raw.get(0) or {}).get("res", b""), len(job.tests or ()))
    return res


__all__ = ["Limits", "Job", "RunOutcome", "TestOutcome", "SandboxResult", "SandboxBackend", "HarnessBackend",
           "NamespacesBackend", "RlimitsBackend", "BUILTIN_BACKENDS", "default_backend", "get_backend",
           "run_many", "raylign_register_sandboxes"]
