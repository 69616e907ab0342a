"""The runner (R) of raylign's sandbox: the only process that runs untrusted code.

Loaded by :mod:`.sandbox_harness` (the job server) at its start and used in the processes it forks; a
standalone module like the harness (no raylign imports). ``runner`` does the trusted set-up (file
descriptors, uid 65534, rlimits), reports it on fd 4, then runs the program, or the solution and its tests.
"""
import os
import sys

_write = os.write
_exit = os._exit

CLONE_NEWUSER = 0x10000000
PR_SET_PDEATHSIG = 1
SIGKILL = 9
EFBIG = 27
WORK_DIR = "/tmp"  # the working directory inside the namespaces (the private tmpfs)


def _libc():
    import ctypes
    return ctypes.CDLL(None, use_errno=True)


def _check(rc, what):
    if rc != 0:
        import ctypes
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def runner(spec, fds, ok_w, ns):
    """R: set up (trusted), say so on fd 4, then run the untrusted code. Never returns."""
    try:
        # stdin, stdout, stderr, the result file and the set-up report on 0..4, every other fd closed (the
        # harness's channel, the server's sockets...): via 1000.. first, whatever numbers they arrived on
        for n, fd in enumerate((fds["in"], fds["out"], fds["err"], fds["res"], ok_w)):
            os.dup2(fd, 1000 + n)
        for n in range(5):
            os.dup2(1000 + n, n)
        os.closerange(5, 1 << 20)
    except BaseException:  # noqa: BLE001 - no "+" on the report pipe: the harness reports an error
        _exit(70)
    try:
        main = prepare_runner(spec, ns)
    except BaseException as exc:  # noqa: BLE001 - trusted set-up failed: an infrastructure error, not a fail
        try:
            os.write(4, f"-{type(exc).__name__}: {exc}".encode("utf-8", "replace")[:4000])
        finally:
            _exit(70)
    os.write(4, b"+")
    os.close(4)  # from here on everything this process does may be the untrusted code's doing
    if spec["mode"] == "tests":
        run_tests(spec["code"], spec["tests"], spec["tokens"], 3, main)
    else:
        os.close(3)
        run_program(spec["code"], main)


def prepare_runner(spec, ns):
    import _signal
    import resource
    if not ns:  # die with the harness (with namespaces, the kernel does it when PID 1 dies)
        _libc().prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0)
    os.chdir(WORK_DIR if ns else spec["workdir"])
    _signal.signal(_signal.SIGINT, _signal.default_int_handler)
    for sig in (_signal.SIGTERM, _signal.SIGHUP, _signal.SIGQUIT, _signal.SIGUSR1, _signal.SIGUSR2):
        _signal.signal(sig, _signal.SIG_DFL)
    if spec["nest_userns"]:  # not root on the host: shed our capabilities over the mount namespace
        _check(_libc().unshare(CLONE_NEWUSER), "unshare(user) for the runner")
        for name, text in (("setgroups", "deny"), ("uid_map", "0 0 1"), ("gid_map", "0 0 1")):
            with open(f"/proc/self/{name}", "w") as f:
                f.write(text)
    uid = spec["drop_uid"]
    if spec["sys_path"]:
        sys.path[:] = spec["sys_path"]
    if uid is not None and not ns:
        # Without a mount namespace the interpreter's files may sit under a directory uid 65534 cannot
        # traverse (/root/.pyenv...): keep a handle on each import directory and import through it.
        handles = []
        for path in sys.path:
            try:
                handles.append((path, f"/proc/self/fd/{os.open(path, os.O_PATH | os.O_DIRECTORY)}"))
            except OSError:
                pass

        def remap(p):
            for real, handle in handles:
                if p == real or p.startswith(real + "/"):
                    return handle + p[len(real):]
            return p
        sys.path[:] = [remap(p) for p in sys.path]
        for module in list(sys.modules.values()):  # packages already imported (encodings...)
            if isinstance(getattr(module, "__path__", None), list):
                module.__path__[:] = [remap(p) for p in module.__path__]
        sys.path_importer_cache.clear()
    if uid is not None:
        os.setgroups([])
        os.setresgid(uid, uid, uid)
        os.setresuid(uid, uid, uid)
    limits = [
        (resource.RLIMIT_CPU, spec["cpu"], spec["cpu"] + 1),
        (resource.RLIMIT_AS, spec["mem"], spec["mem"]),
        (resource.RLIMIT_NPROC, spec["nproc"], spec["nproc"]),  # None: left alone (see the host)
        (resource.RLIMIT_FSIZE, spec["fsize"], spec["fsize"]),
        (resource.RLIMIT_NOFILE, spec["nofile"], spec["nofile"]),
        (resource.RLIMIT_CORE, 0, 0),
    ]
    for which, soft, hard in limits:
        if soft is not None:
            resource.setrlimit(which, (soft, hard))
    sys.stdin = open(0, "r", encoding="utf-8", errors="replace", closefd=False)
    sys.stdout = open(1, "w", encoding="utf-8", errors="backslashreplace", closefd=False)
    sys.stderr = open(2, "w", encoding="utf-8", errors="backslashreplace", closefd=False, buffering=1)
    sys.argv = ["main.py"]
    main = type(sys)("__main__")
    sys.modules["__main__"] = main
    sys.modules.pop("sandbox_runner", None)  # the harness's modules are not the program's to import
    return main


def _flush():
    rc = 0
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except BaseException:  # noqa: BLE001 - e.g. EFBIG at the output limit
            rc = 120
    return rc


def run_program(code, main):
    g = main.__dict__
    g["__builtins__"] = __builtins__
    try:
        exec(compile(code, "main.py", "exec"), g)
        rc = 0
    except SystemExit as e:
        c = e.code
        if c is None:
            rc = 0
        elif isinstance(c, int):
            rc = c & 0xFF
        else:
            try:
                print(c, file=sys.stderr)
            except BaseException:  # noqa: BLE001
                pass
            rc = 1
    except BaseException:  # noqa: BLE001 - an uncaught exception, as python would print it
        try:
            import traceback
            traceback.print_exc()
        except BaseException:  # noqa: BLE001
            pass
        rc = 1
    rc = _flush() or rc
    _exit(rc)


def _reason(exc):
    if isinstance(exc, AssertionError):
        return "assertion"
    if isinstance(exc, MemoryError):
        return "memory"
    if isinstance(exc, SystemExit):
        return "exit"
    if isinstance(exc, OSError) and exc.errno == EFBIG:
        return "output_limit"
    return type(exc).__name__


def _message(exc):
    try:
        text = str(exc)
    except BaseException:  # noqa: BLE001
        text = "?"
    return " ".join(text.split())[:300]


def install_audit_hook():
    """Deny the cheap ways for the code under test to reach the harness's state (see the host's docstring)."""
    denied = frozenset(("gc.get_objects", "gc.get_referrers", "gc.get_referents", "sys._current_frames",
                        "sys.settrace", "sys.setprofile"))
    frame_attrs = frozenset(("tb_frame", "gi_frame", "cr_frame", "ag_frame"))
    _isinstance, _str, _bytes = isinstance, str, bytes

    def hook(event, args):
        if event in denied or event[:7] == "ctypes.":
            raise RuntimeError(f"sandbox: {event} is not allowed in tests")
        if event == "sys._getframe":
            raise ValueError("sandbox: frame introspection is not allowed in tests")
        if event == "object.__getattr__" and args[1] in frame_attrs:
            raise RuntimeError(f"sandbox: .{args[1]} is not allowed in tests")
        if event == "object.__setattr__" and args[1] == "__code__":
            raise RuntimeError("sandbox: replacing __code__ is not allowed in tests")
        if event == "open" and args:
            path = args[0]
            if _isinstance(path, _bytes):
                path = path.decode("utf-8", "replace")
            if _isinstance(path, _str) and path.startswith("/proc/") and path.rstrip("/").endswith("/mem"):
                raise PermissionError("sandbox: process memory is not readable")

    sys.addaudithook(hook)


def run_tests(code, tests, tokens, res_fd, main):
    """Run the solution, then each test snippet in a copy of its namespace with pristine builtins.

    A test passes only if this function writes ``P <i> <token>`` after the snippet returned; the host also
    requires the ``D <token>`` line written at the end, and that this process exits 0 by itself
    (``os._exit(0)`` below) with nothing left behind.
    """
    import builtins
    # everything used after the solution ran is bound here, before it runs (it may patch builtins, os...)
    _exec, _compile, _dict, _enumerate, _exit_ = exec, compile, dict, enumerate, _exit
    _BaseException, _reason_, _message_, _flush_ = BaseException, _reason, _message, _flush
    pristine = _dict(builtins.__dict__)
    tokens = list(tokens)
    tests = list(tests)

    def emit(text, _w=_write, _fd=res_fd):
        try:
            _w(_fd, text.encode("utf-8", "backslashreplace"))
        except OSError:
            pass

    g = main.__dict__
    g["__builtins__"] = _dict(pristine)
    install_audit_hook()
    try:
        _exec(_compile(code, "solution.py", "exec"), g)
    except _BaseException as exc:  # noqa: BLE001
        emit(f"E {_reason_(exc)} {_message_(exc)}\n")
        _flush_()
        _exit_(0)
    for i, test in _enumerate(tests):
        t = _dict(g)
        t["__builtins__"] = _dict(pristine)
        try:
            _exec(_compile(test, f"test_{i}.py", "exec"), t)
        except _BaseException as exc:  # noqa: BLE001
            emit(f"F {i} {_reason_(exc)} {_message_(exc)}\n")
            continue
        emit(f"P {i} {tokens[i]}\n")
    if _flush_() == 0:
        emit(f"D {tokens[-1]}\n")  # the run reached its end: the host requires this too
    _exit_(0)
