"""The supervising half of raylign's sandbox harness: mounts inside the namespaces, and the loop that runs,
times and cleans up after each run of a job (process B, PID 1 of the namespaces; or O for ``rlimits``).

Loaded by :mod:`.sandbox_harness` (the job server); standalone like it (no raylign imports).
"""
import os
import sys

try:
    from sandbox_runner import runner  # in the harness process (its directory is on sys.path)
    from sandbox_tester import tester
except ImportError:  # imported as part of the raylign package
    from raylign.verifiers.code.sandbox_runner import runner
    from raylign.verifiers.code.sandbox_tester import tester

_write = os.write
_exit = os._exit

CLONE_NEWNS, CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET = 0x20000, 0x10000000, 0x20000000, 0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_BIND, MS_MOVE, MS_REC, MS_PRIVATE = 0x1000, 0x2000, 0x4000, 1 << 18
MOUNT_ATTR_RDONLY, MOUNT_ATTR_NOSUID, MOUNT_ATTR_NODEV = 1, 2, 4
AT_RECURSIVE, AT_FDCWD, SYS_MOUNT_SETATTR = 0x8000, -100, 442
PR_SET_PDEATHSIG, PR_SET_DUMPABLE, PR_SET_CHILD_SUBREAPER = 1, 4, 36
SIGKILL = 9

_libc = None


def libc():
    global _libc
    if _libc is None:
        import ctypes
        _libc = ctypes.CDLL(None, use_errno=True)
        _libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_void_p]
    return _libc


def check(rc, what):
    if rc != 0:
        import ctypes
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def mount(src, target, fstype, flags, data=None):
    enc = lambda s: s.encode() if isinstance(s, str) else s  # noqa: E731
    check(libc().mount(enc(src), enc(target), enc(fstype), flags, enc(data)), f"mount {target}")


def send(chan, obj):
    import marshal
    data = marshal.dumps(obj)
    data = len(data).to_bytes(4, "little") + data
    while data:
        n = _write(chan, data)
        data = data[n:]


# --------------------------------------------------------------------------------------------------------
# Namespaces (in B): the minimal root
# --------------------------------------------------------------------------------------------------------

NEW_ROOT = "/tmp"  # where B builds the root (a tmpfs over the host's /tmp, in B's own mount namespace)
SYS_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41, "riscv64": 41, "ppc64le": 203, "s390x": 217}.get(os.uname().machine)
MNT_DETACH = 2
DEVICES = ("/dev/null", "/dev/zero", "/dev/random", "/dev/urandom")


def setattr_readonly(path):
    """Make the mount at ``path`` and every mount below it read-only and nosuid (flags only added)."""
    import struct
    import ctypes
    attr = ctypes.create_string_buffer(struct.pack("QQQQ", MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID, 0, 0, 0), 32)
    rc = libc().syscall(SYS_MOUNT_SETATTR, AT_FDCWD, path.encode(), AT_RECURSIVE, attr, 32)
    if rc != 0:
        remount_all_readonly(path)


def _mountpoint(target, is_dir):
    if is_dir:
        os.makedirs(target, 0o755, exist_ok=True)
    else:
        os.makedirs(os.path.dirname(target), 0o755, exist_ok=True)
        if not os.path.exists(target):
            os.close(os.open(target, os.O_WRONLY | os.O_CREAT, 0o644))


def setup_mounts(spec):
    """Runs in B (root of fresh user, mount, PID and IPC namespaces, in a network namespace no other live job
    shares): build a minimal root and move into it. The root is an empty tmpfs holding only the read-only bind
    mounts the host listed in ``spec["root"]`` (the interpreter, its standard library, the shared libraries it
    links, the device files ``DEVICES``), an empty read-only tmpfs over the standard library's site-packages
    (``mask``), a fresh ``/proc`` of the PID namespace, a private size-capped ``/tmp`` and ``/dev/shm``. The
    host's tree is detached after ``pivot_root``: nothing else of the host (its data, homes, /etc, the
    project) is reachable.
    ``spec["sites"]``: site-packages directories bound too (jobs that asked for them get such a B), the i-th at
    ``SITES_AT/i`` (:func:`site_mount`): never at the host's path, which may lie under /tmp (a virtualenv there),
    where the private /tmp would hide it, and which names where the host keeps its environment."""
    root = spec["root"]
    mount(None, "/", None, MS_REC | MS_PRIVATE)
    new = NEW_ROOT
    binds = [(p, p, True) for p in root["dirs"]] + [(p, p, False) for p in root["files"]]
    binds += [(p, site_mount(i), True) for i, p in enumerate(spec.get("sites") or ())]
    binds += [(d, d, False) for d in DEVICES]
    # every source is opened before the root's tmpfs covers NEW_ROOT (the host's /tmp): a source under it (a
    # virtualenv in /tmp) is bound through its descriptor; one that does not exist is left out
    sources = []
    for path, at, is_dir in binds:
        try:
            sources.append((os.open(path, os.O_PATH | os.O_CLOEXEC), at, is_dir))
        except OSError:
            continue
    # (listed now too: a site-packages directory under the host's /tmp is hidden once the root's tmpfs is there)
    host_files = [site_host_files(site) for site in spec.get("sites") or ()]
    mount("tmpfs", new, "tmpfs", MS_NOSUID | MS_NODEV, "size=1m,mode=755")
    for fd, at, is_dir in sources:
        target = new + at
        _mountpoint(target, is_dir)
        mount(f"/proc/self/fd/{fd}", target, None, MS_BIND | MS_REC)
        os.close(fd)
    for i, rels in enumerate(host_files):
        for rel in rels:
            if os.path.isfile(f"{new}{site_mount(i)}/{rel}"):
                mount("/dev/null", f"{new}{site_mount(i)}/{rel}", None, MS_BIND)
    for path in root["mask"]:
        if os.path.isdir(new + path):  # (a job's own site-packages are bound apart, at SITES_AT)
            mount("tmpfs", new + path, "tmpfs", MS_NOSUID | MS_NODEV, "size=4k,mode=755")
    for d in ("proc", "tmp", "dev/shm"):
        os.makedirs(f"{new}/{d}", 0o755, exist_ok=True)
    for name, to in (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"), ("stdout", "/proc/self/fd/1"),
                     ("stderr", "/proc/self/fd/2")):
        os.symlink(to, f"{new}/dev/{name}")
    os.chmod(f"{new}/tmp", 0o1777)
    setattr_readonly(new)  # the root tmpfs and every bind in it
    try:  # the fresh /proc must be mounted while the host's is still in the namespace (mnt_too_revealing)
        # hidepid=2: a process sees only its own uid's processes (S sees neither B, whose command line names
        # the host's paths, nor T)
        mount("proc", f"{new}/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, "hidepid=2")
        proc = True
    except OSError:
        proc = False
    if proc:
        mask_proc(f"{new}/proc")
    fresh_tmpfs(f"{new}/tmp", spec["tmpfs_mb"], mounted=False)
    fresh_tmpfs(f"{new}/dev/shm", SHM_MB, mounted=False)
    if SYS_PIVOT_ROOT is None:
        raise OSError("pivot_root's number is not known on this architecture")
    os.chdir(new)
    check(libc().syscall(SYS_PIVOT_ROOT, b".", b"."), "pivot_root")
    check(libc().umount2(b".", MNT_DETACH), "detach the host's root")
    os.chdir("/")
    return {"proc": proc, "root": "minimal"}


SITES_AT = "/sites"  # where a job that asked for site-packages finds them: SITES_AT/0, SITES_AT/1, ...


def site_mount(i):
    return f"{SITES_AT}/{i}"


def site_host_files(site):
    """Files of a site-packages directory that name places on the host and that no import needs (site-packages
    are bound without the ``site`` module's processing): path configuration files (``*.pth``, where editable
    installs write their project's path), editable installs' finders (``__editable__*``, which map packages to
    the host's project directories), ``*.egg-link`` files and the ``direct_url.json`` of each distribution
    (where it was installed from). Paths relative to ``site``; covered by /dev/null in the job's root."""
    try:
        names = os.listdir(site)
    except OSError:
        return []
    out = [n for n in names if n.startswith("__editable__") or n.endswith((".pth", ".egg-link"))]
    out += [f"{n}/direct_url.json" for n in names
            if n.endswith(".dist-info") and os.path.isfile(f"{site}/{n}/direct_url.json")]
    return out


SHM_MB = 16  # size of the private /dev/shm
TMPFS_INODES = 16384  # files and directories a private tmpfs may hold (each costs kernel memory beyond its size)
SYSV_SHM_MB = 16  # System V shared memory of a job, all segments together
# System V IPC bounds of the job's IPC namespace: its segments, message queues and semaphores outlive the
# processes that made them, so unbounded (the kernel's defaults: shmall ~ 2^64, 32000 queues of 16 KB) they
# could fill the job's memory cgroup with memory no OOM kill frees, and starve B and T
SYSV_LIMITS = {"shmmax": SYSV_SHM_MB << 20, "shmall": (SYSV_SHM_MB << 20) // 4096, "shmmni": 64, "msgmni": 16,
               "msgmnb": 16384, "sem": "250 4096 32 64"}
# memory charged to the job's cgroup that may outlive its processes, on top of its memory_mb: its /tmp and
# /dev/shm, its System V shared memory and the kernel's inodes of its files
KERNEL_MB = 16


def outliving_mb(tmpfs_mb):
    return int(tmpfs_mb) + SHM_MB + SYSV_SHM_MB + KERNEL_MB


def bound_sysv_ipc():
    """In B (root of the job's user namespace, which owns its IPC namespace): set ``SYSV_LIMITS``."""
    for name, value in SYSV_LIMITS.items():
        with open(f"/proc/sys/kernel/{name}", "w") as f:
            f.write(str(value))


# host facts in /proc that are no job's business (the host kernel's command line, kernel symbols and config,
# key names, timers), each covered by /dev/null
PROC_MASKED = ("cmdline", "keys", "key-users", "kallsyms", "config.gz", "timer_list", "sched_debug", "kcore",
               # what names the host to a job that prints it into its verdict: its boot, kernel build, disks,
               # memory map and modules
               "sys/kernel/random/boot_id", "sys/kernel/osrelease", "sys/kernel/version", "version", "partitions",
               "diskstats", "iomem", "ioports", "modules")


def mask_proc(proc):
    for name in PROC_MASKED:
        if os.path.exists(f"{proc}/{name}"):
            mount("/dev/null", f"{proc}/{name}", None, MS_BIND)


def fresh_tmpfs(path, size_mb, mounted=True):
    """Mount an empty private tmpfs at ``path`` (detaching the one there: whatever a run left in it, however
    deep or many, is gone in one step)."""
    if mounted:
        check(libc().umount2(path.encode(), MNT_DETACH), f"detach {path}")
    mount("tmpfs", path, "tmpfs", MS_NOSUID | MS_NODEV, f"size={size_mb}m,nr_inodes={TMPFS_INODES},mode=1777")


MS_REMOUNT = 32
MS_REMOUNT_RO = MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV


def remount_all_readonly(top="/"):
    """Fallback for kernels without mount_setattr (< 5.12): remount each mount under ``top`` read-only,
    keeping its locked flags."""
    with open("/proc/self/mountinfo") as f:
        targets = [line.split()[4].replace("\\040", " ") for line in f]
    targets = [t for t in targets if t == top or t.startswith(top.rstrip("/") + "/")]
    flags_of = {1: MS_RDONLY, 2: MS_NOSUID, 4: MS_NODEV, 8: MS_NOEXEC, 1024: 1024, 2048: 2048, 4096: 4096}
    for target in targets:
        try:
            st = os.statvfs(target)
        except OSError:
            continue
        keep = 0
        for bit, flag in flags_of.items():
            if st.f_flag & bit:
                keep |= flag
        try:
            mount(None, target, None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | keep)
        except OSError:
            if target == top:
                raise


def wipe_ipc():
    """Remove every System V IPC object of the namespace (B is root of its user namespace)."""
    import ctypes
    for name, rm in (("shm", "shmctl"), ("msg", "msgctl"), ("sem", "semctl")):
        try:
            with open(f"/proc/sysvipc/{name}") as f:
                ids = [int(line.split()[1]) for line in f.readlines()[1:] if line.split()]
        except (OSError, ValueError, IndexError):
            continue
        for ipc_id in ids:
            try:
                if rm == "semctl":
                    libc().semctl(ctypes.c_int(ipc_id), 0, 0)  # IPC_RMID = 0
                else:
                    getattr(libc(), rm)(ctypes.c_int(ipc_id), 0, None)
            except (AttributeError, OSError):
                pass


# --------------------------------------------------------------------------------------------------------
# Supervisor (B, or O for rlimits)
# --------------------------------------------------------------------------------------------------------

LEFTOVER_GRACE_S = 0.25  # how long processes the program leaves may take to end on their own (a helper whose pipe to
# the program closed: multiprocessing's resource tracker) before they count as left running


def _reap() -> None:
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def _others_alive() -> bool:
    try:
        os.kill(-1, 0)
        return True
    except ProcessLookupError:
        return False
    except OSError:
        return True


def kill_leftovers_ns():
    """PID 1: kill every other process of the namespace. Returns True if any was left (still running
    ``LEFTOVER_GRACE_S`` after the program ended)."""
    _reap()
    if not _others_alive():
        return False
    end = _monotonic() + LEFTOVER_GRACE_S
    while _monotonic() < end:
        _sleep(0.005)
        _reap()
        if not _others_alive():
            return False
    left = True
    for _ in range(100):
        try:
            os.kill(-1, SIGKILL)
        except ProcessLookupError:
            pass
        try:
            while True:
                os.waitpid(-1, 0)
        except ChildProcessError:
            pass
        try:
            os.kill(-1, 0)
        except ProcessLookupError:
            break
    return left


def _children():
    pids = []
    me = os.getpid()
    try:
        for tid in os.listdir(f"/proc/{me}/task"):
            with open(f"/proc/{me}/task/{tid}/children") as f:
                pids.extend(int(p) for p in f.read().split())
        return pids
    except OSError:
        pass
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open(f"/proc/{name}/stat") as f:
                    if int(f.read().rsplit(")", 1)[1].split()[1]) == me:
                        pids.append(int(name))
            except (OSError, IndexError, ValueError):
                pass
    return pids


def kill_leftovers_tree():
    """Subreaper: kill every descendant (orphans are re-parented to us). Returns True if any was left."""
    left = False
    for _ in range(1000):
        while True:
            try:
                pid, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                pid = 0
            if pid == 0:
                break
        kids = _children()
        if not kids:
            break
        left = True
        for pid in kids:
            try:
                os.kill(pid, 19)  # SIGSTOP first so a fork bomb cannot outrun us, then SIGKILL
                os.kill(pid, SIGKILL)
            except OSError:
                pass
        for pid in kids:
            try:
                os.waitpid(pid, 0)
            except ChildProcessError:
                pass
    return left


def read_capped(path, limit):
    """Read at most ``limit + 1`` bytes of a regular file (never block on a FIFO the program put there)."""
    import stat
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW)
    except OSError:
        return b""
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return b""
        chunks, left = [], limit + 1
        while left > 0:
            chunk = os.read(fd, min(left, 1 << 20))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)
    except OSError:
        return b""
    finally:
        os.close(fd)


IO_DIR = "/tmp/.io"
TEST_KEYS = ("tests", "setup", "entry_points")  # what only T is given: S's memory never holds the tests


def open_run_files(io, tests):
    """The files of one run, created by the trusted side (mode 0600: the processes get them as fds). S: in,
    out, err; T (tests mode): res (its result lines, read by B only) and terr."""
    names = ("in", "out", "err") + (("res", "terr") if tests else ())
    paths = {k: f"{io}/{k}" for k in names}
    fds = {k: os.open(paths[k], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600) for k in names}
    os.close(fds["in"])
    fds["in"] = os.open(paths["in"], os.O_RDONLY)
    return paths, fds


class Run:
    """The processes of one run, forked before its spec is known: S (the solution, sandbox_runner) and, for
    tests, T (the tests, sandbox_tester). Each waits on its own pipe for its part of the spec."""

    def __init__(self, io, ns, tests, uid_t=None):
        import marshal  # noqa: F401 - loaded before the fork
        _next_high[0] = 900  # the previous run's fds are all closed by now
        self.ns = ns
        os.makedirs(io, 0o700, exist_ok=True)
        self.paths, fds = open_run_files(io, tests)
        fds = {k: high(fd) for k, fd in fds.items()}
        go_s, self.go_s = pipe_high()
        self.ok_s, ok_s_w = pipe_high()
        if tests:
            ts_r, ts_w = pipe_high()  # T -> S: requests and replies
            st_r, st_w = pipe_high()  # S -> T
        self.s_pid = os.fork()
        if self.s_pid == 0:
            try:
                os.close(self.go_s)
                os.close(self.ok_s)
                spec = marshal.loads(read_all(go_s))
                os.close(go_s)
                runner(spec, {k: fds[k] for k in ("in", "out", "err")}, ok_s_w, ns,
                       rpc=(ts_r, st_w) if tests else None)
            finally:
                _exit(70)
        self.s_pidfd = high(os.pidfd_open(self.s_pid))
        os.close(go_s)
        os.close(ok_s_w)
        self.t_pid = self.t_pidfd = self.go_t = self.ok_t = None
        if tests:
            go_t, self.go_t = pipe_high()
            self.ok_t, ok_t_w = pipe_high()
            self.t_pid = os.fork()
            if self.t_pid == 0:
                try:
                    os.close(self.go_t)
                    os.close(self.ok_t)
                    spec = marshal.loads(read_all(go_t))
                    os.close(go_t)
                    tester(spec, {"res": fds["res"], "err": fds["terr"]}, ok_t_w, ns, (st_r, ts_w), self.s_pidfd)
                finally:
                    _exit(70)
            self.t_pidfd = high(os.pidfd_open(self.t_pid))
            for fd in (go_t, ok_t_w, ts_r, ts_w, st_r, st_w):
                os.close(fd)
        for fd in fds.values():
            os.close(fd)

    def fds(self):
        return [fd for fd in (self.go_s, self.ok_s, self.s_pidfd, self.go_t, self.ok_t, self.t_pidfd)
                if fd is not None]

    def drop_tester(self):
        """Not a tests job: T is not needed."""
        if self.t_pid is not None:
            os.kill(self.t_pid, SIGKILL)
            os.waitpid(self.t_pid, 0)
            for fd in (self.go_t, self.ok_t, self.t_pidfd):
                os.close(fd)
            self.t_pid = self.t_pidfd = self.go_t = self.ok_t = None


_next_high = [900]


def high(fd):
    """Move ``fd`` out of the way of the job's fds (place_fds puts them on 3 and 4)."""
    to = _next_high[0]
    _next_high[0] += 1
    os.dup2(fd, to)
    os.close(fd)
    return to


def pipe_high():
    r, w = os.pipe()
    return high(r), high(w)


def _send_spec(fd, spec):
    import marshal
    data = marshal.dumps(spec)
    while data:
        data = data[os.write(fd, data):]
    os.close(fd)


def _setup_report(fd, status, who):
    prepared = os.read(fd, 4096)
    os.close(fd)
    if prepared[:1] != b"+":  # the trusted set-up failed: not the program's doing
        why = prepared[1:].decode("utf-8", "replace") or f"ended with status {status}"
        raise OSError(f"{who} set-up: {why}")


def oom_kills(fd):
    """The memory cgroup's OOM-kill count (cgroup v1 ``memory.oom_control``, v2 ``memory.events``)."""
    if fd is None:
        return 0
    try:
        text = os.pread(fd, 4096, 0).decode()
    except OSError:
        return 0
    for line in text.splitlines():
        key, _, value = line.partition(" ")
        if key == "oom_kill":
            return int(value)
    return 0


def supervise(spec, ns, pre, io, cg_fd=None):
    """Run a job's runs one after the other (B, or O for rlimits). ``pre``: the first run's processes, forked
    before the spec was read."""
    import select
    chan = spec["chan"]
    mode = spec["mode"]
    tests = mode == "tests"
    n_runs = len(spec["inputs"]) if mode == "stdio" else 1
    cap = spec["fsize"]
    # S gets only its own part: neither the tests nor the other stdin cases (its own arrives on stdin)
    s_spec = {k: v for k, v in spec.items() if k not in TEST_KEYS and k not in ("chan", "inputs")}
    # and since the S of each case after the first is forked from this process, the cases' inputs leave its
    # Python objects before any such fork: they wait in a memfd (closed in S), copied out case by case
    inputs = held_inputs(spec.pop("inputs")) if mode == "stdio" else None
    budget_end = None if spec.get("total") is None else _monotonic() + spec["total"]  # all the runs share it
    for i in range(n_runs):
        if i > 0 and budget_end is not None and _monotonic() >= budget_end:  # the program used the job's time:
            send(chan, ("run", i, _out_of_time()))  # the cases left are its failures, never run
            continue
        run = pre if i == 0 else Run(io, ns, False)
        if not tests:
            run.drop_tester()
        if mode == "stdio":
            copy_input(inputs, i, run.paths["in"])
        ooms = oom_kills(cg_fd)
        t0 = _monotonic()
        _send_spec(run.go_s, s_spec)
        if tests:
            _send_spec(run.go_t, {k: v for k, v in spec.items() if k != "chan"})
        waiting = {run.s_pidfd: run.s_pid}
        if tests:
            waiting[run.t_pidfd] = run.t_pid
        poller = select.poll()
        for fd in waiting:
            poller.register(fd, select.POLLIN)
        deadline = t0 + spec["timeout"] if budget_end is None else min(t0 + spec["timeout"], budget_end)
        timed_out = lingered = graced = False
        statuses = {}
        while waiting:
            left = deadline - _monotonic()
            events = poller.poll(max(0, int(left * 1000) + 1)) if left > 0 else []
            if not events:
                if _monotonic() < deadline:
                    continue
                # the harness's clock, or S still running after T ended (its own doing: never a timeout)
                lingered = graced
                timed_out = not lingered
                for pid in waiting.values():
                    os.kill(pid, SIGKILL)
                for fd, pid in waiting.items():
                    statuses[pid] = os.wait4(pid, 0)[1:]
                break
            for fd, _ in events:
                pid = waiting.pop(fd)
                poller.unregister(fd)
                statuses[pid] = os.wait4(pid, 0)[1:]
                if tests and pid == run.t_pid and run.s_pid in waiting.values():
                    graced = _monotonic() + GRACE_S < deadline  # S ends when T closes its pipe
                    deadline = min(deadline, _monotonic() + GRACE_S)
        wall = _monotonic() - t0
        status, ru = statuses[run.s_pid]
        _setup_report(run.ok_s, status, "runner")
        if tests:
            t_status = statuses[run.t_pid][0]
            _setup_report(run.ok_t, t_status, "tester")
        left = kill_leftovers_ns() if ns else kill_leftovers_tree()
        for fd in (run.s_pidfd, run.t_pidfd):
            if fd is not None:
                os.close(fd)
        outcome = {
            "status": status, "timed_out": timed_out, "lingered": lingered, "wall": wall, "leftover": left,
            "cpu": ru.ru_utime + ru.ru_stime, "maxrss_kb": ru.ru_maxrss,
            "stdout": read_capped(run.paths["out"], cap), "stderr": read_capped(run.paths["err"], cap),
            "oom": oom_kills(cg_fd) > ooms,
        }
        if tests:
            outcome.update(res=read_capped(run.paths["res"], 1 << 20), t_status=t_status,
                           t_err=read_capped(run.paths["terr"], 4096)[-4096:])
        send(chan, ("run", i, outcome))
        for p in run.paths.values():
            try:
                os.unlink(p)
            except OSError:
                pass
        if i + 1 < n_runs:  # the next run starts from an empty working directory, /dev/shm and IPC
            if ns:
                fresh_tmpfs("/tmp", spec["tmpfs_mb"])
                fresh_tmpfs("/dev/shm", SHM_MB)
                wipe_ipc()
            else:
                wipe(spec["workdir"], keep=io)


def _out_of_time():
    """The outcome of a stdin case the job's shared time ran out before (``Limits.total_s``)."""
    return {"status": 0, "timed_out": True, "lingered": False, "wall": 0.0, "leftover": False, "cpu": 0.0,
            "maxrss_kb": 0, "stdout": b"", "stderr": b"", "oom": False, "not_run": True}


GRACE_S = 1.0  # how long S may take to end after T did


def held_inputs(texts):
    """The stdin cases in one memfd: (fd, [(offset, size)])."""
    fd = os.memfd_create("inputs", os.MFD_CLOEXEC)
    spans, pos = [], 0
    for text in texts:
        data = text.encode("utf-8")
        spans.append((pos, len(data)))
        pos += len(data)
        while data:
            data = data[os.write(fd, data):]
    return fd, spans


def copy_input(inputs, i, path):
    fd, spans = inputs
    offset, size = spans[i]
    out = os.open(path, os.O_WRONLY | os.O_TRUNC)
    try:
        while size:
            n = os.sendfile(out, fd, offset, size)
            if not n:
                raise OSError("the inputs' memfd ended early")
            offset, size = offset + n, size - n
    finally:
        os.close(out)


_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW


def wipe(top, keep=None):
    """Delete everything under the directory ``top`` but ``keep`` (a path right under it), at any depth and
    never following symlinks: one directory fd at a time, climbing back through ``..`` (no recursion, no path
    length limit).
    Run only when no process of the job is left to move things around."""
    try:
        fd = os.open(top, _DIR)
    except OSError:
        return
    names, skip = [], [set()]  # the path from top to fd; per level, names that could not be removed
    try:
        while True:
            child = None
            try:
                with os.scandir(fd) as entries:
                    for e in entries:
                        if e.name in skip[-1] or (keep and not names and os.path.join(top, e.name) == keep):
                            continue
                        if e.is_dir(follow_symlinks=False):
                            child = e.name
                            break
                        try:
                            os.unlink(e.name, dir_fd=fd)
                        except OSError:
                            skip[-1].add(e.name)
            except OSError:
                pass
            if child is not None:
                try:
                    sub = os.open(child, _DIR, dir_fd=fd)
                except OSError:
                    skip[-1].add(child)
                    continue
                os.close(fd)
                fd = sub
                names.append(child)
                skip.append(set())
                continue
            if not names:
                return
            parent = os.open("..", _DIR, dir_fd=fd)
            os.close(fd)
            fd = parent
            name = names.pop()
            skip.pop()
            try:
                os.rmdir(name, dir_fd=fd)
            except OSError:
                skip[-1].add(name)
    finally:
        os.close(fd)


def _monotonic():
    import time
    return time.monotonic()


def _sleep(s):
    import time
    time.sleep(s)


def read_all(fd):
    chunks = []
    while True:
        chunk = os.read(fd, 1 << 20)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
