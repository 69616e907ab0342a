"""The supervising half of raylign's sandbox harness: mounts inside the namespaces, and the loop that runs,
times and cleans up after each run of a job (process B, PID 1 of the namespaces; or O for ``rlimits``).

Loaded by :mod:`.sandbox_harness` (the job server); standalone like it (no raylign imports).
"""
import os
import sys

try:
    from sandbox_runner import runner  # in the harness process (its directory is on sys.path)
except ImportError:  # imported as part of the raylign package
    from raylign.verifiers.code.sandbox_runner import runner

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
# Namespaces (in B)
# --------------------------------------------------------------------------------------------------------

def setup_mounts(spec):
    """Runs in B: a read-only view of the system, private tmpfs on /tmp, hidden home dirs, fresh /proc."""
    import struct
    import ctypes
    mount(None, "/", None, MS_REC | MS_PRIVATE)
    attr = ctypes.create_string_buffer(struct.pack("QQQQ", MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID,
                                                   0, 0, 0), 32)
    rc = libc().syscall(SYS_MOUNT_SETATTR, AT_FDCWD, b"/", AT_RECURSIVE, attr, 32)
    if rc != 0:
        remount_all_readonly()
    mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, f"size={spec['tmpfs_mb']}m,mode=1777")
    # hidden directories: an empty tmpfs over each, then the paths the interpreter needs moved back in
    os.mkdir("/tmp/.stage", 0o700)
    staged = []
    expose = []
    for path in sorted(set(spec["expose"])):  # outermost only
        if not any((path + "/").startswith(e + "/") for e in expose):
            expose.append(path)
    for hide in spec["hide"]:
        if not os.path.isdir(hide):
            continue
        for path in expose:
            if (path + "/").startswith(hide.rstrip("/") + "/") and os.path.isdir(path):
                stage = f"/tmp/.stage/{len(staged)}"
                os.mkdir(stage)
                mount(path, stage, None, MS_BIND | MS_REC)
                staged.append((stage, path))
        mount("tmpfs", hide, "tmpfs", MS_NOSUID | MS_NODEV | MS_RDONLY if not staged else MS_NOSUID | MS_NODEV,
              "size=64k,mode=755")
        for stage, path in staged:
            os.makedirs(path, 0o755, exist_ok=True)
            mount(stage, path, None, MS_MOVE)
            os.rmdir(stage)
        if staged:
            mount(None, hide, None, MS_REMOUNT_RO, None)
        staged = []
    os.rmdir("/tmp/.stage")
    try:
        mount("tmpfs", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, "size=16m,mode=1777")
    except OSError:
        pass
    try:
        mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
        proc = True
    except OSError:
        proc = False
    return {"proc": proc}


MS_REMOUNT = 32
MS_REMOUNT_RO = MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV


def remount_all_readonly():
    """Fallback for kernels without mount_setattr (< 5.12): remount each mount read-only, keeping its flags."""
    with open("/proc/self/mountinfo") as f:
        targets = [line.split()[4] for line in f]
    flags_of = {1: MS_RDONLY, 2: MS_NOSUID, 4: MS_NODEV, 8: MS_NOEXEC, 1024: 1024, 2048: 2048, 4096: 4096}
    for target in targets:
        target = target.replace("\\040", " ")
        try:
            st = os.statvfs(target)
        except OSError:
            continue
        keep = 0
        for bit, flag in flags_of.items():
            if st.f_flag & bit:
                keep |= flag
        try:
            mount(None, target, None, MS_REMOUNT | MS_BIND | MS_RDONLY | keep)
        except OSError:
            if target == "/":
                raise


# --------------------------------------------------------------------------------------------------------
# Supervisor (B, or O for rlimits)
# --------------------------------------------------------------------------------------------------------

def kill_leftovers_ns():
    """PID 1: kill every other process of the namespace. Returns True if any was left."""
    left = False
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            break
        if pid == 0:
            break
    try:
        os.kill(-1, 0)
        left = True
    except ProcessLookupError:
        return False
    except OSError:
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


def open_run_files(io):
    """The files of one run (created by the trusted side; the runner gets them as fds)."""
    paths = {k: f"{io}/{k}" for k in ("in", "out", "err", "res")}
    fds = {k: os.open(paths[k], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644) for k in ("in", "out", "err", "res")}
    os.close(fds["in"])
    fds["in"] = os.open(paths["in"], os.O_RDONLY)
    return paths, fds


def prefork_runner():
    """In a warm B: fork the first run's runner before the job arrives (it waits for the spec on a pipe),
    so starting a job does not wait for a fork. Returns (pid, go_w, ok_r, paths, fds)."""
    os.mkdir(IO_DIR, 0o755)
    paths, fds = open_run_files(IO_DIR)
    go_r, go_w = os.pipe()
    ok_r, ok_w = os.pipe()

    def high(fd, to):  # out of the way of the job's fds, which place_fds puts on 3 and 4
        os.dup2(fd, to)
        os.close(fd)
        return to
    fds = {k: high(fd, 900 + n) for n, (k, fd) in enumerate(sorted(fds.items()))}
    go_r, go_w, ok_r, ok_w = (high(fd, 910 + n) for n, fd in enumerate((go_r, go_w, ok_r, ok_w)))
    pid = os.fork()
    if pid == 0:
        try:
            os.close(go_w)
            os.close(ok_r)
            import marshal
            spec = marshal.loads(read_all(go_r))
            os.close(go_r)
            runner(spec, fds, ok_w, ns=True)
        finally:
            _exit(70)
    os.close(go_r)
    os.close(ok_w)
    return pid, go_w, ok_r, paths, fds


def supervise(spec, ns, pre=None):
    import select
    import marshal
    chan = spec["chan"]
    io = IO_DIR if ns else os.path.join(spec["workdir"], ".io")
    if pre is None:
        os.mkdir(io, 0o755)
    os.chdir(os.path.dirname(io))
    mode = spec["mode"]
    n_runs = len(spec["inputs"]) if mode == "stdio" else 1
    cap = spec["fsize"]
    for i in range(n_runs):
        if i == 0 and pre is not None:
            pid, go_w, ok_r, paths, fds = pre
        else:
            paths, fds = open_run_files(io)
        if mode == "stdio":
            with open(paths["in"], "w", encoding="utf-8") as f:
                f.write(spec["inputs"][i])
        t0 = _monotonic()
        if i == 0 and pre is not None:
            data = marshal.dumps(spec)
            while data:
                data = data[os.write(go_w, data):]
            os.close(go_w)
        else:
            ok_r, ok_w = os.pipe()
            pid = os.fork()
            if pid == 0:
                try:
                    os.close(ok_r)
                    runner(spec, fds, ok_w, ns)
                finally:
                    _exit(70)
            os.close(ok_w)
        for fd in fds.values():
            os.close(fd)
        timed_out = False
        try:
            pidfd = os.pidfd_open(pid)
            poller = select.poll()
            poller.register(pidfd, select.POLLIN)
            if not poller.poll(int(spec["timeout"] * 1000)):
                timed_out = True
                os.kill(pid, SIGKILL)
            os.close(pidfd)
        except (AttributeError, OSError):  # no pidfd (Linux < 5.3): poll with wait4
            while _monotonic() - t0 < spec["timeout"]:
                done, status, ru = os.wait4(pid, os.WNOHANG)
                if done:
                    break
                _sleep(0.002)
            else:
                timed_out = True
                os.kill(pid, SIGKILL)
                done = 0
        else:
            done = 0
        if not done:
            _, status, ru = os.wait4(pid, 0)
        wall = _monotonic() - t0
        prepared = os.read(ok_r, 4096)
        os.close(ok_r)
        if prepared[:1] != b"+":  # the trusted set-up of the runner failed: not the program's doing
            why = prepared[1:].decode("utf-8", "replace") or f"runner ended with status {status}"
            raise OSError(f"runner set-up: {why}")
        left = kill_leftovers_ns() if ns else kill_leftovers_tree()
        outcome = {
            "status": status, "timed_out": timed_out, "wall": wall, "leftover": left,
            "cpu": ru.ru_utime + ru.ru_stime, "maxrss_kb": ru.ru_maxrss,
            "stdout": read_capped(paths["out"], cap), "stderr": read_capped(paths["err"], cap),
            "res": read_capped(paths["res"], 1 << 20) if mode == "tests" else b"",
        }
        send(chan, ("run", i, outcome))
        if i + 1 < n_runs:  # the next run starts from an empty working directory
            wipe(os.path.dirname(io), keep=io)
        for p in paths.values():
            try:
                os.unlink(p)
            except OSError:
                pass


def wipe(top, keep):
    """Delete everything under ``top`` except ``keep`` (never following symlinks)."""
    for root, dirs, files in os.walk(top, topdown=False):
        if root == keep or root.startswith(keep + "/"):
            continue
        for name in files + [d for d in dirs if os.path.islink(os.path.join(root, d))]:
            try:
                os.unlink(os.path.join(root, name))
            except OSError:
                pass
        for name in dirs:
            path = os.path.join(root, name)
            if path != keep and not os.path.islink(path):
                try:
                    os.rmdir(path)
                except OSError:
                    pass


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
