"""The trusted harness of raylign's sandbox: a standalone script, started (a few times) per host process as
``python -I -S -B sandbox_harness.py --serve FD`` (no site-packages, no environment; it never imports raylign).

It is a job server (:func:`serve`). The host (:mod:`raylign.verifiers.code.sandbox`) sends it a request per job
with two pipes: the job reads a ``marshal``-encoded spec from one and writes length-prefixed ``marshal``
frames to the other: ``("setup", info)``, ``("run", i, outcome)`` per run, ``("done",)`` or ``("error", msg)``.
Starting jobs by forking a warm server, instead of starting an interpreter per job, is what keeps the per-job
overhead to a few milliseconds.

Process tree of a job with ``iso == "namespaces"``:

    server (host root, single-threaded)
      B: clone(2)d into fresh user+mount+net+PID namespaces; PID 1 and root of its user namespace. It waits
         for the server to write its uid/gid maps, mounts (read-only view, private tmpfs, hidden home dirs,
         fresh /proc), then waits in the server's warm pool until it is handed exactly one job
        R: one per run (one per stdin case, or one for all tests; the first one is forked while B waits):
           drops to uid 65534 (no capabilities), sets rlimits, runs the code

B never runs untrusted code. It times each run with a pidfd, kills everything left in the namespace after it
(``kill(-1)`` from PID 1), reads the run's capped stdout/stderr/result files from its private tmpfs and sends
them to the host. When B exits the kernel kills every process left in its namespace; B dies with the server
(``PR_SET_PDEATHSIG``), and the server kills B at the job's deadline.

With ``iso == "rlimits"`` the server forks a process O that plays B's part without namespaces (a child
subreaper that kills the process tree), in a temp dir the host removes afterwards.

Three files: this one (the server, cloning Bs), :mod:`sandbox_supervisor` (B's mounts and run loop) and
:mod:`sandbox_runner` (R), all loaded by the server once at its start.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # the other halves, next to this file
from sandbox_supervisor import (  # noqa: E402
    CLONE_NEWNET, CLONE_NEWNS, CLONE_NEWPID, CLONE_NEWUSER, MS_NODEV, MS_NOSUID, MS_REMOUNT, PR_SET_CHILD_SUBREAPER,
    PR_SET_DUMPABLE, PR_SET_PDEATHSIG, SIGKILL, _exit, libc, mount, prefork_runner, read_all, send, setup_mounts,
    supervise,
)

del sys.path[0]


def place_fds(spec_fd, chan_fd, keep=None):
    """Put the job's two fds on 3 and 4 (whatever numbers they arrived on) and close every other fd > 2
    but those of the pre-forked runner ``keep``."""
    os.dup2(spec_fd, 1000)
    os.dup2(chan_fd, 1001)
    os.dup2(1000, 3)
    os.dup2(1001, 4)
    keep_fds = sorted({keep[1], keep[2], *keep[4].values()}) if keep else []
    low = 5
    for fd in keep_fds + [1 << 20]:
        if fd >= low:
            os.closerange(low, fd)
            low = fd + 1


def job_main(spec_fd, chan, ready=None, pre=None):
    """One job: read the spec, then run it in namespaces or under rlimits. Never returns.

    ``ready``: this process is B, cloned into fresh namespaces with its mounts done by :func:`ready_main`
    (this dict says how that went); None: this is O, forked by the server (``rlimits``).
    """
    import marshal
    import _signal
    try:
        spec = marshal.loads(read_all(spec_fd))
        os.close(spec_fd)
        spec["chan"] = chan
        if spec["iso"] == "namespaces":
            if ready is None:
                raise OSError("namespaces need clone(2), whose number is not known on this architecture")
            if "error" in ready:
                raise OSError(ready["error"])
            info = ready
            if spec["tmpfs_mb"] != DEFAULT_TMPFS_MB:
                mount(None, "/tmp", None, MS_REMOUNT | MS_NOSUID | MS_NODEV, f"size={spec['tmpfs_mb']}m")
            libc().prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)
            send(chan, ("setup", info))
            supervise(spec, ns=True, pre=pre)
            send(chan, ("done",))  # the host stops reading here; the namespaces' teardown is not its wait
        else:
            libc().prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
            os.chdir(spec["workdir"])
            send(chan, ("setup", {"proc": False}))
            supervise(spec, ns=False)
            send(chan, ("done",))
    except BaseException as exc:  # noqa: BLE001 - infrastructure failure: tell the host, never pass
        try:
            send(chan, ("error", f"sandbox harness: {type(exc).__name__}: {exc}"))
        except OSError:
            pass
        _exit(70)
    _exit(0)


PRELOAD = ("typing", "math", "collections", "itertools", "functools", "heapq", "bisect", "re", "string",
           "random", "copy", "hashlib", "operator", "dataclasses", "fractions", "decimal", "statistics", "json")
SYS_CLONE = {"x86_64": 56, "aarch64": 220, "riscv64": 220, "ppc64le": 120, "s390x": 120}.get(os.uname().machine)
SIGCHLD = 17
DEFAULT_TMPFS_MB = 64


def clone_ready(config, root, uid, gid):
    """Server side: clone(2) a B straight into fresh user+mount+net+PID namespaces (one copy of the server
    instead of fork, unshare, fork), write its uid/gid maps and let it prepare its mounts; it then waits for
    a job (:func:`ready_main`). Returns (pid, the socket to send it the job's fds on)."""
    import ctypes
    import socket
    r, w = os.pipe()
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    # PyDLL: the GIL stays held across the call, so the child resumes with a consistent interpreter
    syscall = ctypes.PyDLL(None, use_errno=True).syscall
    syscall.restype = ctypes.c_long
    pid = syscall(SYS_CLONE, CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWPID | SIGCHLD, 0, 0, 0, 0)
    if pid == 0:  # B: PID 1 of the new namespaces (single-threaded, like its parent)
        try:
            os.close(w)
            ours.close()
            ready_main(r, theirs.detach(), config)  # closes every fd it does not need
        finally:
            _exit(70)
    os.close(r)
    theirs.close()
    if pid < 0:
        os.close(w)
        ours.close()
        err = ctypes.get_errno()
        raise OSError(err, f"clone into namespaces: {os.strerror(err)}")
    try:
        if root:  # inside 0 = host root (B needs it to reach the interpreter's files), 65534 = nobody
            maps = (("uid_map", "0 0 1\n65534 65534 1\n"), ("gid_map", "0 0 1\n65534 65534 1\n"))
        else:  # an unprivileged host user can map only itself
            maps = (("setgroups", "deny"), ("uid_map", f"0 {uid} 1"), ("gid_map", f"0 {gid} 1"))
        for name, text in maps:
            with open(f"/proc/{pid}/{name}", "w") as f:
                f.write(text)
        os.write(w, b"m")
    except OSError:
        os.kill(pid, SIGKILL)
        ours.close()
        raise
    finally:
        os.close(w)
    return pid, ours


def ready_main(sync_fd, sock_fd, config):
    """B of the warm pool: wait for the id maps, mount, then wait for one job's fds. Never returns."""
    import socket
    import _signal
    libc().prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0)  # dies with the server
    if os.read(sync_fd, 1) != b"m":
        _exit(70)
    os.setsid()
    os.dup2(sock_fd, 5)
    os.closerange(6, 1 << 20)  # the control socket, other jobs' pidfds...
    for fd in (3, 4):
        try:
            os.close(fd)
        except OSError:
            pass
    _signal.signal(_signal.SIGINT, _signal.SIG_IGN)
    pre = None
    try:
        ready = setup_mounts({**config, "tmpfs_mb": DEFAULT_TMPFS_MB})
        pre = prefork_runner()
    except BaseException as exc:  # noqa: BLE001 - reported to the job's host
        ready = {"error": f"namespaces: {type(exc).__name__}: {exc}"}
    sock = socket.socket(fileno=5)
    try:
        _, fds, _, _ = socket.recv_fds(sock, 16, 2)
    except OSError:
        _exit(0)
    if len(fds) != 2:
        _exit(0)
    place_fds(*fds, keep=pre)
    job_main(3, 4, ready, pre)


def serve(ctl_fd):
    """The job server: a single-threaded process that starts one job process per request and enforces each
    job's deadline by killing it (with namespaces, PID 1 dying takes every process of the job with it;
    without, O's process group).

    The first message on the SOCK_SEQPACKET control socket is a marshal-encoded config (hidden/exposed
    paths, warm pool size); each later one is b"<deadline s> <iso>" with two fds (the spec pipe's read end,
    the frame pipe's write end). For ``namespaces`` jobs the server keeps a warm pool of Bs already cloned
    into fresh namespaces with their mounts done (each serves exactly one job), so a job's latency does not
    include creating them. The server never reads a spec, so no job's memory holds anything of another's.
    Exits (killing its jobs) when the host closes the socket."""
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
    gc.collect()
    gc.freeze()  # fewer copy-on-write faults in the forks
    poller = select.poll()
    poller.register(ctl_fd, select.POLLIN)
    jobs = {}  # pidfd -> [pid, deadline (None: a warm B waiting), killed]
    pool = []  # [(pidfd, socket)] of warm Bs
    failures = [0]
    use_pool = SYS_CLONE is not None and config["pool"] > 0

    def top_up():
        while use_pool and len(pool) < config["pool"] and failures[0] < 3:
            try:
                pid, sock = clone_ready(config, root, uid, gid)
            except OSError:
                failures[0] += 1
                continue
            pidfd = os.pidfd_open(pid)
            poller.register(pidfd, select.POLLIN)
            jobs[pidfd] = [pid, None, False]
            pool.append((pidfd, sock))

    def kill_all():
        for job in jobs.values():
            for kill in (os.killpg, os.kill):
                try:
                    kill(job[0], SIGKILL)
                except OSError:
                    pass

    top_up()
    while True:
        now = time.monotonic()
        timeout = None
        for job in jobs.values():
            if job[1] is not None and not job[2]:
                left = max(0.0, job[1] - now)
                timeout = left if timeout is None else min(timeout, left)
        try:
            events = poller.poll(None if timeout is None else int(timeout * 1000) + 1)
        except InterruptedError:
            continue
        for fd, _ in events:
            if fd == ctl_fd:
                try:
                    msg, fds, _, _ = socket.recv_fds(ctl, 64, 4)
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
                limit, _, iso = msg.decode().partition(" ")
                deadline = time.monotonic() + float(limit)
                pidfd = None
                try:
                    if iso == "namespaces" and use_pool:
                        if not pool:
                            top_up()
                        if not pool:
                            raise OSError("cannot clone into namespaces")
                        pidfd, sock = pool.pop(0)
                        socket.send_fds(sock, [b"j"], [spec_r, chan_w])
                        sock.close()
                        jobs[pidfd][1] = deadline
                    else:
                        pid = os.fork()
                        if pid == 0:  # O
                            os.setsid()
                            place_fds(spec_r, chan_w)
                            job_main(3, 4)
                        pidfd = os.pidfd_open(pid)
                        poller.register(pidfd, select.POLLIN)
                        jobs[pidfd] = [pid, deadline, False]
                except OSError as exc:
                    try:
                        send(chan_w, ("error", f"sandbox server: cannot start the job: {exc}"))
                    except OSError:
                        pass
                os.close(spec_r)
                os.close(chan_w)
                top_up()
            elif fd in jobs:
                pid, deadline, _ = jobs.pop(fd)
                poller.unregister(fd)
                os.close(fd)
                os.waitpid(pid, 0)
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
