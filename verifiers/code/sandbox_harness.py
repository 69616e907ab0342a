"""The trusted harness of raylign's sandbox: a standalone script, started (a few times) per host process as
``python -I -S -B sandbox_harness.py --serve FD`` (no site-packages, no environment; it never imports raylign;
the host runs it through a small boot script that compiles these files under their bare names, see
``sandbox_host._BOOT``).

It is a job server (:func:`serve`). The host (:mod:`raylign.verifiers.code.sandbox`) sends it a request per job
with two pipes: the job reads a ``marshal``-encoded spec from one and writes length-prefixed ``marshal``
frames to the other: ``("setup", info)``, ``("run", i, outcome)`` per run, ``("done",)`` or ``("error", msg)``.
Starting jobs by forking a warm server, instead of starting an interpreter per job, is what keeps the per-job
overhead to a few milliseconds.

Process tree of a job with ``iso == "namespaces"``:

    server (host root, single-threaded; makes a memory and a pids cgroup per B where it can)
      B: clone(2)d into fresh user+mount+PID+IPC namespaces and a network namespace no other live B is in
         (NetPool); PID 1 and root of its user namespace. It waits for the server to put it in its cgroups
         and write its uid/gid maps, builds the minimal root (pivot_root), forks its first run's processes,
         then waits in the server's warm pool until it is handed exactly one job
        S: one per run (one per stdin case, or one for all tests; the first one is forked while B waits,
           before any spec exists): drops to uid 65534 (no capabilities), sets rlimits, runs the code
        T: tests mode only, forked beside S: uid 65533, not dumpable; runs the tests against S's values

B never runs untrusted code. It times each run with pidfds, kills everything left in the namespace after it
(``kill(-1)`` from PID 1), reads the run's capped stdout/stderr and T's result file from its private tmpfs
and sends them to the host. When B exits the kernel kills every process left in its namespace; B dies with
the server (``PR_SET_PDEATHSIG``), and the server kills B at the job's deadline.

With ``iso == "rlimits"`` the server forks a process O that plays B's part without namespaces (a child
subreaper that kills the process tree), in a temp dir the host removes afterwards.

Files: this one (the server, cloning Bs, cgroups), :mod:`sandbox_supervisor` (B's root and run loop),
:mod:`sandbox_runner` (S), :mod:`sandbox_tester` (T) and :mod:`sandbox_wire`, all loaded by the server once
at its start.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # the other halves, next to this file
from sandbox_supervisor import (  # noqa: E402
    CLONE_NEWNET, CLONE_NEWNS, CLONE_NEWPID, CLONE_NEWUSER, MS_NODEV, MS_NOSUID, MS_REMOUNT, PR_SET_CHILD_SUBREAPER,
    PR_SET_DUMPABLE, PR_SET_PDEATHSIG, SIGKILL, IO_DIR, Run, _exit, bound_sysv_ipc, check, libc, mount, read_all,
    send, setup_mounts, supervise,
)

del sys.path[0]
CLONE_NEWIPC, CLONE_NEWUTS, CLONE_NEWCGROUP = 0x08000000, 0x04000000, 0x02000000
HOSTNAME = b"sandbox"  # the jobs' host name (their own UTS namespace: never the host's)
TESTER_UID, NOBODY = 65533, 65534


def place_fds(spec_fd, chan_fd, keep=()):
    """Put the job's two fds on 3 and 4 (whatever numbers they arrived on) and close every other fd > 2
    but ``keep`` (the pre-forked run's, the cgroup's)."""
    os.dup2(spec_fd, 1000)
    os.dup2(chan_fd, 1001)
    os.dup2(1000, 3)
    os.dup2(1001, 4)
    low = 5
    for fd in sorted(set(keep)) + [1 << 20]:
        if fd >= low:
            os.closerange(low, fd)
            low = fd + 1


def job_main(spec_fd, chan, ready=None, pre=None, cg_fd=None, bounds=None):
    """One job: read the spec, then run it in namespaces or under rlimits. Never returns.

    ``ready``: this process is B, cloned into fresh namespaces with its mounts done by :func:`ready_main`
    (this dict says how that went) and ``pre`` its first run's processes; None: this is O, forked by the
    server (``rlimits``), which forks its first run's processes here, before it reads the spec (so that S's
    memory never holds the tests). ``bounds``: "cgroup" when the server put the job in its own memory and
    pids cgroups, else why not."""
    import marshal
    io = None
    try:
        if ready is None:
            import tempfile
            libc().prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
            io = tempfile.mkdtemp(prefix="raylign-io-")
            pre = Run(io, False, True)
        spec = marshal.loads(read_all(spec_fd))
        os.close(spec_fd)
        spec["chan"] = chan
        cgroup = bounds == "cgroup"
        if cgroup:
            spec["nproc"] = None  # the pids cgroup bounds the job; RLIMIT_NPROC would count other jobs too
        info = {"bounds": bounds or "rlimits: not in a cgroup"}
        if spec["iso"] == "namespaces":
            if ready is None:
                raise OSError("namespaces need clone(2), whose number is not known on this architecture")
            if "error" in ready:
                raise OSError(ready["error"])
            info.update(ready)
            if spec["tmpfs_mb"] != DEFAULT_TMPFS_MB:
                mount(None, "/tmp", None, MS_REMOUNT | MS_NOSUID | MS_NODEV, f"size={spec['tmpfs_mb']}m")
            libc().prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)
            send(chan, ("setup", info))
            supervise(spec, True, pre, IO_DIR, cg_fd)
            send(chan, ("done",))  # the host stops reading here; the namespaces' teardown is not its wait
        else:
            info["proc"] = False
            os.chdir(spec["workdir"])
            send(chan, ("setup", info))
            supervise(spec, False, pre, io)
            send(chan, ("done",))
    except BaseException as exc:  # noqa: BLE001 - infrastructure failure: tell the host, never pass
        try:
            send(chan, ("error", f"sandbox harness: {type(exc).__name__}: {exc}"))
        except OSError:
            pass
        _exit(70)
    finally:
        if io:
            import shutil
            shutil.rmtree(io, ignore_errors=True)
    _exit(0)


PRELOAD = ("typing", "math", "collections", "itertools", "functools", "heapq", "bisect", "re", "string",
           "random", "copy", "hashlib", "operator", "dataclasses", "fractions", "decimal", "statistics", "json",
           "pickle", "importlib", "importlib.util", "select", "struct", "types", "tempfile", "shutil")
SYS_CLONE = {"x86_64": 56, "aarch64": 220, "riscv64": 220, "ppc64le": 120, "s390x": 120}.get(os.uname().machine)
SIGCHLD = 17
DEFAULT_TMPFS_MB = 64


class NetPool:
    """Network namespaces for Bs, each held by one B at a time (root hosts).

    A network namespace with nothing but a down loopback holds no state an unprivileged process can leave in it
    once every process of its job is gone (abstract UNIX sockets and bound ports die with their processes; the
    loopback, routes, sysctls and filters need CAP_NET_ADMIN over it, which nobody in a job has: the server,
    host root, creates it, so B's user namespace does not own it). So instead of creating one per B (the
    kernel's most expensive namespace: every network subsystem initialises and tears down), the server keeps
    the ones whose B has been reaped and moves into a free one before cloning the next B, which then shares
    it with no other live B, and goes back to its own (:meth:`home`) right after the clone, so that nothing else
    it forks (an ``rlimits`` job's O) is ever in one. Without root the server cannot create them and
    ``CLONE_NEWNET`` gives each B its own, as before. ``self.ok``: whether the pool is in use."""

    def __init__(self, root):
        self.free, self.ok, self.own = [], False, -1
        if root:
            try:
                self.own = os.open("/proc/self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
                self.give(self.take())  # probe: one namespace made and left again
                self.home()
                self.ok = True
            except OSError:
                self.free = []

    def take(self):
        """Move the server into a free namespace (a new one when none is); returns its fd (held for the B)."""
        if self.free:
            fd = self.free.pop()
            check(libc().setns(fd, CLONE_NEWNET), "setns into a network namespace")
            return fd
        check(libc().unshare(CLONE_NEWNET), "unshare a network namespace")
        return os.open("/proc/self/ns/net", os.O_RDONLY | os.O_CLOEXEC)

    def home(self):
        """Back to the server's own network namespace."""
        check(libc().setns(self.own, CLONE_NEWNET), "setns back to the server's network namespace")

    def give(self, fd):
        """The namespace ``fd`` of a B that has been reaped (every process of its job gone) is free again."""
        if fd is not None:
            self.free.append(fd)


def clone_ready(config, root, uid, gid, cgroup=None, sites=(), own_net=True):
    """Server side: clone(2) a B straight into fresh user+mount+PID+IPC namespaces, and a fresh network one
    when ``own_net`` (else the server's, see :class:`NetPool`) (one copy of the server instead of fork,
    unshare, fork), put it in its cgroups, write its uid/gid maps and let it prepare its mounts; it then waits
    for a job (:func:`ready_main`). Returns (pid, the socket to send it the job's fds on). ``cgroup``: a
    :class:`JobCgroup` to put B in (None: no cgroup bounds); ``sites``: site-packages directories to bind into
    its root."""
    import ctypes
    import socket
    r, w = os.pipe()
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    cg_fd = cgroup.oom_fd if cgroup is not None else -1
    # PyDLL: the GIL stays held across the call, so the child resumes with a consistent interpreter
    syscall = ctypes.PyDLL(None, use_errno=True).syscall
    syscall.restype = ctypes.c_long
    flags = CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWUTS | SIGCHLD | \
        (CLONE_NEWNET if own_net else 0)
    pid = syscall(SYS_CLONE, flags, 0, 0, 0, 0)
    if pid == 0:  # B: PID 1 of the new namespaces (single-threaded, like its parent)
        try:
            os.close(w)
            ours.close()
            ready_main(r, theirs.detach(), {**config, "sites": list(sites)}, cg_fd)  # closes every fd it does not need
        finally:
            _exit(70)
    os.close(r)
    theirs.close()
    if pid < 0:
        os.close(w)
        ours.close()
        err = ctypes.get_errno()
        raise OSError(err, f"clone into namespaces: {os.strerror(err)}")
    bounded = b"r"
    try:
        if cgroup is not None:
            try:
                cgroup.add(pid)
                bounded = b"c"
            except OSError:
                pass
        try:  # B and T are never the OOM killer's pick; S raises its own score (children inherit this)
            with open(f"/proc/{pid}/oom_score_adj", "w") as f:
                f.write("-1000")
        except OSError:
            pass
        if root:  # inside 0 = host root (B needs it to reach the interpreter's files), 65533 T, 65534 S
            maps = (("uid_map", f"0 0 1\n{TESTER_UID} {TESTER_UID} 2\n"),
                    ("gid_map", f"0 0 1\n{TESTER_UID} {TESTER_UID} 2\n"))
        else:  # an unprivileged host user can map only itself
            maps = (("setgroups", "deny"), ("uid_map", f"0 {uid} 1"), ("gid_map", f"0 {gid} 1"))
        for name, text in maps:
            with open(f"/proc/{pid}/{name}", "w") as f:
                f.write(text)
        os.write(w, b"m" + bounded)
    except OSError:
        os.kill(pid, SIGKILL)
        ours.close()
        raise
    finally:
        os.close(w)
    return pid, ours


def ready_main(sync_fd, sock_fd, config, cg_fd):
    """B of the warm pool: wait for the id maps, mount, fork the first run's processes, then wait for one
    job's fds. Never returns."""
    import socket
    import _signal
    libc().prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0)  # dies with the server
    sync = os.read(sync_fd, 2)
    if sync[:1] != b"m":
        _exit(70)
    os.setsid()
    if cg_fd >= 0:
        os.dup2(cg_fd, 1010)
    os.dup2(sock_fd, 5)
    keep = [5]
    if cg_fd >= 0:
        os.dup2(1010, 6)
        cg_fd = 6
        keep.append(6)
    else:
        cg_fd = None
    os.closerange(max(keep) + 1, 1 << 20)  # the control socket, other jobs' pidfds...
    for fd in (3, 4):
        try:
            os.close(fd)
        except OSError:
            pass
    _signal.signal(_signal.SIGINT, _signal.SIG_IGN)
    pre = None
    try:
        # no host names in the job: its own host name, and its cgroups seen from their own root (the server
        # put B in them before writing its maps), not the host's cgroup paths
        check(libc().sethostname(HOSTNAME, len(HOSTNAME)), "sethostname")
        check(libc().unshare(CLONE_NEWCGROUP), "unshare(cgroup)")
        ready = setup_mounts({**config, "tmpfs_mb": DEFAULT_TMPFS_MB})
        bound_sysv_ipc()
        pre = Run(IO_DIR, True, True)
    except BaseException as exc:  # noqa: BLE001 - reported to the job's host
        ready = {"error": f"namespaces: {type(exc).__name__}: {exc}"}
    sock = socket.socket(fileno=5)
    try:
        msg, fds, _, _ = socket.recv_fds(sock, 64, 2)
    except OSError:
        _exit(0)
    if len(fds) != 2:
        _exit(0)
    bounds = "cgroup" if sync[1:2] == b"c" and msg[1:2] == b"c" else \
        (msg[2:].decode("utf-8", "replace") or config.get("no_cgroup") or "rlimits: no cgroup")
    place_fds(*fds, keep=(pre.fds() if pre else []) + ([cg_fd] if cg_fd is not None else []))
    job_main(3, 4, ready, pre, cg_fd, bounds)


# --------------------------------------------------------------------------------------------------------
# Per-job cgroups (the server's side)
# --------------------------------------------------------------------------------------------------------

# the job's memory cgroup: what the host asks for (its memory_mb plus what may outlive its processes,
# sandbox_supervisor.outliving_mb) plus this much for B and T
CGROUP_SLACK = 64 << 20


def _controller_dirs():
    """{controller: the server's own cgroup directory} for memory and pids (v1), or {"v2": dir}."""
    dirs = {}
    try:
        with open("/proc/self/cgroup") as f:
            lines = f.read().splitlines()
    except OSError:
        return dirs
    for line in lines:
        _, ctrls, path = line.split(":", 2)
        for ctrl in ctrls.split(","):
            if ctrl in ("memory", "pids") and os.path.isdir(f"/sys/fs/cgroup/{ctrl}"):
                dirs[ctrl] = f"/sys/fs/cgroup/{ctrl}{path}".rstrip("/")
        if ctrls == "" and os.path.exists("/sys/fs/cgroup/cgroup.controllers") and not dirs:
            dirs["v2"] = f"/sys/fs/cgroup{path}".rstrip("/")
    return dirs


class Cgroups:
    """The server's cgroup directories (``raylign-<pid>`` under its own cgroup in each hierarchy), one child
    per B; ``why`` says why there are none."""

    def __init__(self):
        self.bases, self.why, self.n, self.pending = {}, "", 0, []
        dirs = _controller_dirs()
        want = ("v2",) if "v2" in dirs else ("memory", "pids")
        missing = [c for c in want if c not in dirs]
        if missing:
            self.why = f"rlimits: no {'/'.join(missing)} cgroup on this machine"
            return
        try:
            for ctrl in want:
                self.sweep(dirs[ctrl])
                base = f"{dirs[ctrl]}/raylign-{os.getpid()}"
                os.mkdir(base)
                self.bases[ctrl] = base
            if "v2" in self.bases:
                with open(f"{self.bases['v2']}/cgroup.subtree_control", "w") as f:
                    f.write("+memory +pids")
            self.probe()
        except OSError as exc:
            self.close()
            self.bases = {}
            self.why = f"rlimits: cgroups are not writable here ({exc.strerror or exc})"

    @staticmethod
    def sweep(parent):
        """Remove what servers that died left behind (``raylign-<pid>`` of a pid that is gone)."""
        try:
            names = os.listdir(parent)
        except OSError:
            return
        for name in names:
            if name.startswith("raylign-") and name[8:].isdigit() and not os.path.exists(f"/proc/{name[8:]}"):
                for sub in os.listdir(f"{parent}/{name}"):
                    if os.path.isdir(f"{parent}/{name}/{sub}"):
                        try:
                            os.rmdir(f"{parent}/{name}/{sub}")
                        except OSError:
                            pass
                try:
                    os.rmdir(f"{parent}/{name}")
                except OSError:
                    pass

    def probe(self):
        job = self.new()
        try:
            job.limit(256 << 20, 64)
        finally:
            self.pending.append(job)
            self.reap()

    def new(self):
        self.n += 1
        return JobCgroup({c: f"{b}/b{self.n}" for c, b in self.bases.items()})

    def reap(self):
        self.pending = [job for job in self.pending if not job.remove()]

    def close(self):
        import time
        for _ in range(50):
            self.reap()
            if not self.pending:
                break
            time.sleep(0.02)
        for base in self.bases.values():
            try:
                os.rmdir(base)
            except OSError:
                pass


class JobCgroup:
    def __init__(self, dirs):
        self.dirs = dirs
        for d in dirs.values():
            os.mkdir(d)
        mem = dirs.get("memory") or dirs["v2"]
        self.v2 = "v2" in dirs
        self.oom_fd = os.open(f"{mem}/{'memory.events' if self.v2 else 'memory.oom_control'}", os.O_RDONLY)

    def add(self, pid):
        for d in self.dirs.values():
            with open(f"{d}/cgroup.procs", "w") as f:
                f.write(str(pid))

    def limit(self, mem_bytes, pids):
        mem = self.dirs.get("memory") or self.dirs["v2"]
        pid_dir = self.dirs.get("pids") or self.dirs["v2"]
        if self.v2:
            files = [(f"{mem}/memory.max", mem_bytes), (f"{mem}/memory.swap.max", 0), (f"{pid_dir}/pids.max", pids)]
        else:
            files = [(f"{mem}/memory.limit_in_bytes", mem_bytes), (f"{mem}/memory.memsw.limit_in_bytes", mem_bytes),
                     (f"{pid_dir}/pids.max", pids)]
        for path, value in files:
            try:
                with open(path, "w") as f:
                    f.write(str(value))
            except FileNotFoundError:
                if "swap" not in path:  # no swap accounting: nothing to bound there
                    raise

    def remove(self):
        """True once every directory is gone (False while the job's last processes are still exiting)."""
        if self.oom_fd >= 0:
            os.close(self.oom_fd)
            self.oom_fd = -1
        done = True
        for d in list(self.dirs.values()):
            try:
                os.rmdir(d)
            except FileNotFoundError:
                pass
            except OSError:
                done = False
        return done


def serve(ctl_fd):
    """The job server: a single-threaded process that starts one job process per request and enforces each
    job's deadline by killing it (with namespaces, PID 1 dying takes every process of the job with it;
    without, O's process group).

    The first message on the SOCK_SEQPACKET control socket is a marshal-encoded config (the minimal root's
    paths, warm pool size); each later one is b"<deadline s> <iso> <memory bytes> <max procs> <sites 0|1>"
    (with sites 1, then b"\n" and the marshal-encoded site-packages directories to bind) with two fds (the
    spec pipe's read end, the frame pipe's write end). For
    ``namespaces`` jobs the server keeps a warm pool of Bs already cloned into fresh namespaces with their
    mounts done and their first run's processes forked (each serves exactly one job), so a job's latency does
    not include creating them; a job that wants site-packages gets a B cloned for it. Each B has its own
    memory and pids cgroup where the machine lets the server create them, bounded at hand-off to the job's
    memory (plus ``CGROUP_SLACK`` for B and T) and process count. The server never reads a spec, so no job's
    memory holds anything of another's. Exits (killing its jobs) when the host closes the socket."""
    import select
    import socket
    import time
    import gc
    import marshal
    libc()  # load ctypes once here, not in every job
    import resource, stat, struct, traceback, _signal  # noqa: E401,F401 - likewise (forks share them)
    for name in PRELOAD:  # what programs and tests import most: importing it once here, not in every run
        try:
            __import__(name)
        except ImportError:
            pass
    root, uid, gid = os.geteuid() == 0, os.geteuid(), os.getegid()
    ctl = socket.socket(fileno=ctl_fd)
    config = marshal.loads(ctl.recv(1 << 20))
    cgroups = Cgroups()
    config["no_cgroup"] = cgroups.why
    nets = NetPool(root)
    gc.collect()
    gc.freeze()  # fewer copy-on-write faults in the forks
    poller = select.poll()
    poller.register(ctl_fd, select.POLLIN)
    jobs = {}  # pidfd -> [pid, deadline (None: a warm B waiting), killed, JobCgroup or None]
    pool = []  # [(pidfd, socket)] of warm Bs
    failures = [0]
    use_pool = SYS_CLONE is not None and config["pool"] > 0

    def start_b(sites=()):
        cg = cgroups.new() if cgroups.bases else None
        net = None
        try:
            if nets.ok:
                net = nets.take()
                try:
                    pid, sock = clone_ready(config, root, uid, gid, cg, sites, own_net=False)
                finally:
                    nets.home()
            else:
                pid, sock = clone_ready(config, root, uid, gid, cg, sites)
        except OSError:
            nets.give(net)
            if cg is not None:
                cgroups.pending.append(cg)
            raise
        if cg is not None:
            os.close(cg.oom_fd)  # B has its own copy
            cg.oom_fd = -1
        pidfd = os.pidfd_open(pid)
        poller.register(pidfd, select.POLLIN)
        jobs[pidfd] = [pid, None, False, cg, net]
        return pidfd, sock

    def top_up():
        while use_pool and len(pool) < config["pool"] and failures[0] < 3:
            try:
                pool.append(start_b())
            except OSError:
                failures[0] += 1

    def kill_all():
        for job in jobs.values():
            for kill in (os.killpg, os.kill):
                try:
                    kill(job[0], SIGKILL)
                except OSError:
                    pass
        for fd, job in list(jobs.items()):
            try:
                os.waitpid(job[0], 0)
            except ChildProcessError:
                pass
            if job[3] is not None:
                cgroups.pending.append(job[3])
        cgroups.close()

    top_up()
    while True:
        now = time.monotonic()
        timeout = 0.05 if cgroups.pending else None
        for job in jobs.values():
            if job[1] is not None and not job[2]:
                left = max(0.0, job[1] - now)
                timeout = left if timeout is None else min(timeout, left)
        try:
            events = poller.poll(None if timeout is None else int(timeout * 1000) + 1)
        except InterruptedError:
            continue
        if cgroups.pending:
            cgroups.reap()
        for fd, _ in events:
            if fd == ctl_fd:
                try:
                    msg, fds, _, _ = socket.recv_fds(ctl, 1 << 16, 4)
                except InterruptedError:
                    continue
                except OSError:
                    msg, fds = b"", []
                if not msg:  # the host is gone
                    kill_all()
                    _exit(0)
                if len(fds) != 2:
                    for f in fds:
                        os.close(f)
                    continue
                spec_r, chan_w = fds
                head, _, site_list = msg.partition(b"\n")  # site-packages dirs: only with a job that wants them
                limit, iso, mem, nproc, sites = head.decode().split(" ")
                deadline = time.monotonic() + float(limit)
                try:
                    if iso == "namespaces" and SYS_CLONE is not None:
                        if sites == "1":
                            pidfd, sock = start_b(marshal.loads(site_list))
                        else:
                            if not pool:
                                top_up()
                            if not pool:
                                raise OSError("cannot clone into namespaces")
                            pidfd, sock = pool.pop(0)
                        flag, why = b"r", b""
                        cg = jobs[pidfd][3]
                        if cg is not None:
                            try:
                                cg.limit(int(mem) + CGROUP_SLACK, int(nproc) + 2)
                                flag = b"c"
                            except (OSError, ValueError) as exc:
                                why = f"rlimits: cannot bound the job's cgroup: {exc}".encode()
                        socket.send_fds(sock, [b"j" + flag + why], [spec_r, chan_w])
                        sock.close()
                        jobs[pidfd][1] = deadline
                    else:
                        pid = os.fork()
                        if pid == 0:  # O
                            os.setsid()
                            place_fds(spec_r, chan_w)
                            job_main(3, 4, bounds="rlimits: the rlimits backend does not use cgroups")
                        pidfd = os.pidfd_open(pid)
                        poller.register(pidfd, select.POLLIN)
                        jobs[pidfd] = [pid, deadline, False, None, None]
                except OSError as exc:
                    try:
                        send(chan_w, ("error", f"sandbox server: cannot start the job: {exc}"))
                    except OSError:
                        pass
                os.close(spec_r)
                os.close(chan_w)
                top_up()
            elif fd in jobs:
                pid, deadline, _, cg, net = jobs.pop(fd)
                poller.unregister(fd)
                os.close(fd)
                os.waitpid(pid, 0)  # B was PID 1: its whole job is gone once it is reaped
                nets.give(net)
                if cg is not None and not cg.remove():
                    cgroups.pending.append(cg)  # its last processes are still exiting
                if deadline is None:  # a warm B died before getting a job
                    failures[0] += 1
                    for k, (pfd, sock) in enumerate(pool):
                        if pfd == fd:
                            sock.close()
                            del pool[k]
                            break
                    top_up()
                else:
                    failures[0] = 0
        now = time.monotonic()
        for job in jobs.values():
            if job[1] is not None and not job[2] and now >= job[1]:
                job[2] = True
                for kill in (os.killpg, os.kill):  # O's group, or B (PID 1: its namespace dies with it)
                    try:
                        kill(job[0], SIGKILL)  # not reaped yet, so the id is still this job's
                    except OSError:
                        pass


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--serve":
        serve(int(sys.argv[2]))
    else:
        sys.exit("usage: sandbox_harness.py --serve FD")
