"""Host side of the sandbox's transport: the job servers of :mod:`.sandbox_harness` and the frame pipe.

Split from :mod:`.sandbox` (which interprets the frames); no raylign imports, no Ray.
"""
from __future__ import annotations

import atexit
import json
import marshal
import os
import selectors
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Sequence

HARNESS = str(Path(__file__).with_name("sandbox_harness.py"))
# How a job server starts: ``python -I -S -B -c _BOOT DIRFD --serve FD``. It compiles the harness's files, read
# through a descriptor of their directory, under their bare names, so that nothing in the server's memory (its
# command line, sys.orig_argv, its code objects and frames, its modules' __file__), which every job's processes
# inherit by fork, names the host's paths: where the project lives is no job's business.
_MODULES = ("sandbox_wire", "sandbox_pytest", "sandbox_runner", "sandbox_tester", "sandbox_supervisor",
            "sandbox_harness")
_BOOT = f"""
import os, sys, types
d = int(sys.argv[1])
for name in {_MODULES!r}:
    with open(os.open(name + '.py', os.O_RDONLY, dir_fd=d), encoding='utf-8') as f:
        code = compile(f.read(), name + '.py', 'exec')
    module = types.ModuleType('__main__' if name == 'sandbox_harness' else name)
    module.__file__ = name + '.py'
    sys.modules[module.__name__] = module
    if name == 'sandbox_harness':
        os.close(d)
        sys.argv = [name + '.py'] + sys.argv[2:]
    exec(code, module.__dict__)
"""
_ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8", "HOME": "/tmp"}
_LINKING_MODULES = {"_ssl", "_hashlib", "_ctypes", "zlib", "_bz2", "_lzma", "_sqlite3", "_uuid", "_decimal",
                    "pyexpat", "readline", "_curses", "_dbm", "_gdbm", "_tkinter", "nis", "_crypt"}
_SYSTEM_LIB_DIRS = ("/lib", "/lib32", "/lib64", "/usr/lib", "/usr/lib32", "/usr/lib64", "/usr/local/lib")


def interpreter() -> str:
    """The base interpreter's binary (not a virtual environment's link to it): what the harness runs as."""
    base = Path(sys.base_exec_prefix) / "bin" / f"python{sys.version_info[0]}.{sys.version_info[1]}"
    return str(base) if base.is_file() else os.path.realpath(sys.executable)


def _ldd(paths: list[str]) -> list[str]:
    """The shared libraries ``paths`` load (as the dynamic linker resolves them), by ``ldd``; [] without it."""
    try:
        out = subprocess.run(["ldd", *paths], capture_output=True, text=True, timeout=30, env=_ENV).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    libs = []
    for line in out.splitlines():
        parts = line.split()
        if "=>" in parts and len(parts) > parts.index("=>") + 1 and parts[parts.index("=>") + 1].startswith("/"):
            libs.append(parts[parts.index("=>") + 1])
        elif parts and parts[0].startswith("/") and not parts[0].endswith(":"):
            libs.append(parts[0])  # the dynamic linker itself
    return sorted(set(libs))


def minimal_root() -> dict:
    """What the namespaces backend's root holds, all read-only: the interpreter, its standard library (with its
    site-packages masked by an empty tmpfs), the shared libraries they load (system library directories whole,
    any other library as a single file) and /etc/ld.so.cache (which only maps library names to those paths)."""
    import sysconfig
    exe = interpreter()
    stdlib = os.path.realpath(sysconfig.get_paths(vars={"base": sys.base_prefix, "platbase": sys.base_exec_prefix,
                                                       "installed_base": sys.base_prefix,
                                                       "installed_platbase": sys.base_exec_prefix})["stdlib"])
    dynload = os.path.join(stdlib, "lib-dynload")
    # ldd costs a few ms a file: the interpreter and the extension modules that link libraries of their own;
    # the others' libraries sit in the same system directories, which are bound whole
    sos = [exe] + sorted(str(p) for p in Path(dynload).glob("*.so")
                         if p.name.split(".")[0] in _LINKING_MODULES) if os.path.isdir(dynload) else [exe]
    files, dirs = {exe, os.path.realpath(exe)}, {stdlib}
    libs = _ldd(sos)
    if not libs:  # no ldd: the usual system library directories whole
        dirs |= {d for d in _SYSTEM_LIB_DIRS if os.path.isdir(d)}
    for lib in libs:
        parent = os.path.dirname(lib)
        if any(parent == d or parent.startswith(d + "/") for d in _SYSTEM_LIB_DIRS) and "ld-linux" not in lib:
            dirs.add(parent)
        else:
            files |= {lib, os.path.realpath(lib)}
    if os.path.isfile("/etc/ld.so.cache"):
        files.add("/etc/ld.so.cache")
    mask = [os.path.join(stdlib, "site-packages"), os.path.join(stdlib, "dist-packages")]
    outer = sorted(d for d in dirs if not any(d != e and d.startswith(e + "/") for e in dirs))
    files = sorted(f for f in files if not any(f.startswith(d + "/") for d in outer))
    return {"dirs": outer, "files": files, "mask": [m for m in mask if os.path.isdir(m)]}


def site_dirs() -> list[str]:
    """The host interpreter's site-packages directories (bound for jobs with ``site_packages``)."""
    return sorted({os.path.realpath(p) for p in sys.path
                   if p and os.path.isdir(p) and os.path.basename(p) in ("site-packages", "dist-packages")})


_DONE = marshal.dumps(("done",))
_DONE_FRAME = len(_DONE).to_bytes(4, "little") + _DONE


def _ends_with_done(buf: bytearray) -> bool:
    """The last frame is ``("done",)`` (checked by walking the frames, not by peeking at the tail)."""
    if not buf.endswith(_DONE_FRAME):
        return False
    pos = 0
    while pos + 4 <= len(buf):
        pos += 4 + int.from_bytes(buf[pos:pos + 4], "little")
        if pos == len(buf) - len(_DONE_FRAME):
            return True
    return False


class _Server:
    """The host's handle on the job server (one per process, started on first use, restarted if it died)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.proc: subprocess.Popen | None = None
        self.sock: socket.socket | None = None
        self.pid = -1  # the host process that started it (a forked child starts its own)

    def _start(self) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        code_dir = os.open(os.path.dirname(HARNESS), os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            self.proc = subprocess.Popen(
                [interpreter(), "-I", "-S", "-B", "-c", _BOOT, str(code_dir), "--serve", str(theirs.fileno())],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, pass_fds=(theirs.fileno(), code_dir),
                start_new_session=True, env=_ENV, cwd="/")
        finally:
            theirs.close()
            os.close(code_dir)
        self.sock, self.pid = ours, os.getpid()
        # the site-packages directories travel with the jobs that ask for them (a server's memory, which its
        # jobs inherit, holds no host path that a job was not given)
        config = {"root": _root(), "pool": WARM_PER_SERVER}
        ours.send(marshal.dumps(config))

    def submit(self, limit_s: float, iso: str, spec_r: int, chan_w: int, mem: int = 0, nproc: int = 0,
               sites: Sequence[str] = ()) -> None:
        msg = f"{limit_s:.3f} {iso} {int(mem)} {int(nproc)} {int(bool(sites))}".encode()
        if sites:  # the site-packages directories to bind (site_dirs(), as the job's import path was written)
            msg += b"\n" + marshal.dumps(list(sites))
        with self.lock:
            for attempt in (0, 1):
                if self.pid != os.getpid() or self.proc is None or self.proc.poll() is not None:
                    self.close()
                    self._start()
                try:
                    socket.send_fds(self.sock, [msg], [spec_r, chan_w])
                    return
                except OSError:
                    if attempt:
                        raise
                    self.close()

    def close(self) -> None:
        if self.sock is not None and self.pid == os.getpid():
            self.sock.close()  # the server sees EOF, kills its jobs and exits
            if self.proc is not None:
                try:
                    self.proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
        self.sock = self.proc = None


class _ServerPool:
    """Up to ``SERVERS`` single-threaded job servers. A server spends CPU on every job (cloning the next warm
    namespace), so one server alone would serialise concurrent jobs on a busy machine; a new one starts only
    when every running one has a job in flight (a caller that runs one job at a time keeps one server)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.servers: list[_Server] = []
        self.busy: list[int] = []

    def submit(self, limit_s: float, iso: str, spec_r: int, chan_w: int, mem: int = 0, nproc: int = 0,
               sites: Sequence[str] = ()) -> int:
        """Hand the job to a server; returns its index, to pass to :meth:`done` when the job ended."""
        with self.lock:
            free = [k for k, n in enumerate(self.busy) if n == 0]
            if free:
                k = free[0]
            elif len(self.servers) < SERVERS:
                self.servers.append(_Server())
                self.busy.append(0)
                k = len(self.servers) - 1
            else:
                k = min(range(len(self.busy)), key=self.busy.__getitem__)
            self.busy[k] += 1
            server = self.servers[k]
        try:
            server.submit(limit_s, iso, spec_r, chan_w, mem, nproc, sites)
        except BaseException:
            self.done(k)
            raise
        return k

    def done(self, k: int) -> None:
        with self.lock:
            self.busy[k] -= 1

    def close(self) -> None:
        for server in self.servers:
            server.close()


_ROOT: dict | None = None


def _root() -> dict:
    """:func:`minimal_root`, computed once per machine and interpreter (``ldd`` costs a tenth of a second):
    cached in ``~/.cache/raylign`` (mode 0600), keyed by the interpreter, its standard library and the dynamic
    linker's cache; a cached entry is used only while every path in it exists."""
    global _ROOT
    if _ROOT is not None:
        return _ROOT
    import hashlib
    exe = interpreter()
    key = []
    for path in (exe, os.path.join(os.path.dirname(os.__file__), "lib-dynload"), "/etc/ld.so.cache"):
        try:
            st = os.stat(path)
            key.append(f"{path}:{st.st_mtime_ns}:{st.st_size}:{st.st_ino}")
        except OSError:
            key.append(path)
    digest = hashlib.sha256("|".join(key).encode()).hexdigest()[:16]
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "raylign" / f"sandbox-root-{digest}.json"
    try:
        st = cache.stat()
        if st.st_uid == os.geteuid() and not st.st_mode & 0o022:
            root = json.loads(cache.read_text())
            if all(os.path.exists(p) for p in root["dirs"] + root["files"] + root["mask"]):
                _ROOT = root
                return root
    except (OSError, ValueError, KeyError, TypeError):
        pass
    _ROOT = minimal_root()
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_name(f"{cache.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(_ROOT, f)
        os.replace(tmp, cache)
    except OSError:
        pass
    return _ROOT


SERVERS = max(1, min(4, os.cpu_count() or 1))  # job servers per host process (each ~20 MB)
WARM_PER_SERVER = 2  # namespaces each server keeps ready (cloned, mounted, waiting for a job)
SERVER = _ServerPool()
atexit.register(SERVER.close)


def collect(spec_w: int, chan: int, data: bytes, deadline: float):
    """Feed the spec, read frames until EOF (every holder of the frame pipe is gone) or the deadline."""
    sel = selectors.DefaultSelector()
    view, reading, host_timeout = memoryview(data), True, False
    if view:
        os.set_blocking(spec_w, False)
        sel.register(spec_w, selectors.EVENT_WRITE)
    else:
        os.close(spec_w)
        spec_w = -1
    sel.register(chan, selectors.EVENT_READ)
    buf = bytearray()
    try:
        while reading:
            left = deadline - time.monotonic()
            if left <= 0:
                host_timeout = True
                break
            for key, _ in sel.select(left):
                if key.fd == spec_w:
                    try:
                        view = view[os.write(spec_w, view[:1 << 16]):]
                    except BlockingIOError:
                        continue
                    except OSError:  # the job died before reading everything
                        view = view[:0]
                    if not view:
                        sel.unregister(spec_w)
                        os.close(spec_w)
                        spec_w = -1
                    continue
                chunk = os.read(chan, 1 << 20)
                if chunk:
                    buf += chunk
                    reading = not _ends_with_done(buf)
                else:
                    reading = False
    finally:
        sel.close()
        if spec_w >= 0:
            os.close(spec_w)
    frames = []
    pos = 0
    while pos + 4 <= len(buf):
        n = int.from_bytes(buf[pos:pos + 4], "little")
        if pos + 4 + n > len(buf):
            break
        try:
            frames.append(marshal.loads(bytes(buf[pos + 4:pos + 4 + n])))
        except (EOFError, ValueError, TypeError):
            frames.append(("error", "sandbox harness sent a corrupt frame"))
            break
        pos += 4 + n
    return frames, host_timeout
