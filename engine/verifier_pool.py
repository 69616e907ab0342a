"""A pool of verifier worker processes with a hard wall-clock deadline per verification. No Ray here.

Used by the reward fleet's actors, by ``raylign verify`` and by the verifier service.

    pool process ──control socket──▶ zygote (loads the plugins once: entry points + extra plugins)
         │                              │ os.fork() on request; the worker's socket is passed back (SCM_RIGHTS)
         └──────one socket each──────▶ worker, worker, ... (own session, address-space rlimit)

A request is one JSON line: ``{"op": "verify", "name", "completion", "task"}`` (or ``"load"``, which
instantiates a verifier with its options). The pool waits up to ``timeout_s`` for the reply; on expiry it
kills the worker's whole process group (SIGKILL), answers ``Verdict(status="timeout")`` and forks a
replacement from the zygote (milliseconds: nothing is imported again). A worker that dies (segfault,
``os._exit``, the OOM killer) yields ``status="error"`` naming the signal or exit code, and is replaced. No
SIGALRM anywhere: it only works on the main thread and cannot stop C code.
"""
from __future__ import annotations

import difflib
import importlib
import importlib.util
import json
import os
import queue
import resource
import signal
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

from raylign.engine.errors import PluginError
from raylign.verifiers import Verdict

Item = tuple[str, Any, Mapping[str, Any]]  # (verifier name, completion, task row)

_SPEC_ENV = "RAYLIGN_VERIFIER_POOL_SPEC"
_FD_ENV = "RAYLIGN_VERIFIER_POOL_FD"
_MB = 1 << 20
_SINGLE_THREAD_ENV = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
                      "TOKENIZERS_PARALLELISM": "false"}


# ------------------------------------------------------------------------------------------------ helpers

def load_plugin_modules(specs: Iterable[str]) -> list[Any]:
    """Import extra plugin modules: dotted module names, or paths of ``.py`` files (loaded by path)."""
    mods = []
    for spec in specs:
        if spec.endswith(".py"):
            path = Path(spec).resolve()
            name = f"raylign_local_plugin_{path.stem}_{abs(hash(str(path))) % 10**8}"
            if name not in sys.modules:
                mod_spec = importlib.util.spec_from_file_location(name, path)
                if mod_spec is None or mod_spec.loader is None:
                    raise PluginError(f"cannot load plugin file {spec!r}")
                module = importlib.util.module_from_spec(mod_spec)
                sys.modules[name] = module
                mod_spec.loader.exec_module(module)
            mods.append(sys.modules[name])
        else:
            mods.append(importlib.import_module(spec))
    return mods


def unknown_verifier(name: str, known: Sequence[str]) -> PluginError:
    """The error for an unknown verifier name (same wording as ``Registry.get``)."""
    close = difflib.get_close_matches(name, list(known), n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    return PluginError(f"unknown verifier {name!r}.{hint} Known: {', '.join(sorted(known)) or '(none)'}")


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, (set, frozenset)):
        return sorted(obj, key=repr)
    if hasattr(obj, "tolist"):  # numpy / torch scalars and arrays
        return obj.tolist()
    return repr(obj)


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, default=_jsonable, ensure_ascii=False).encode() + b"\n"


def _describe_status(status: int) -> str:
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        try:
            return f"killed by signal {signal.Signals(sig).name}"
        except ValueError:
            return f"killed by signal {sig}"
    if os.WIFEXITED(status):
        return f"exit code {os.WEXITSTATUS(status)}"
    return f"status {status}"


def _vm_size_mb() -> float:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmSize:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def _kill_group(pid: int) -> None:
    for kill in (os.killpg, os.kill):  # killpg: the worker and anything it started; kill: before its setsid
        try:
            kill(pid, signal.SIGKILL)
            return
        except (ProcessLookupError, PermissionError):
            continue


# ------------------------------------------------------------------------- inside the worker processes

def _instantiate(obj: Any, options: Mapping[str, Any]) -> Any:
    if isinstance(obj, type):
        return obj(**options)  # a class: one instance per worker, built with the stage's options
    if options:
        return lambda completion, task: obj(completion, task, **options)
    return obj


def _verify(fn: Any, completion: Any, task: Any) -> tuple[dict, bool]:
    """Run one verification; returns (verdict dict, whether the worker must be replaced)."""
    restart = False
    try:
        verdict = Verdict.coerce(fn(completion, task))
    except MemoryError as exc:
        verdict, restart = Verdict(status="error", error=f"MemoryError: {exc}".rstrip(": ")), True
    except BaseException as exc:  # noqa: BLE001 - SystemExit, KeyboardInterrupt from a verifier are its errors
        verdict = Verdict(status="error", error=f"{type(exc).__name__}: {exc}")
    return verdict.to_dict(), restart


def _worker_loop(sock: socket.socket, registry: Any, options: Mapping[str, Any], memory_mb: int) -> None:
    os.setsid()  # its own process group: a timeout kills it and everything it started
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    try:
        resource.setrlimit(resource.RLIMIT_AS, (memory_mb * _MB, resource.getrlimit(resource.RLIMIT_AS)[1]))
    except (ValueError, OSError):
        pass
    zygote = os.getppid()

    def watchdog() -> None:  # the zygote died (killed with the pool): do not outlive it
        while os.getppid() == zygote:
            time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=watchdog, daemon=True).start()
    instances: dict[str, Any] = {}
    reader = sock.makefile("rb")
    for line in reader:
        req = json.loads(line)
        name = req["name"]
        if req["op"] == "load":
            try:
                instances[name] = _instantiate(registry.get("verifiers", name), options.get(name, {}))
                info = {k: getattr(instances[name], k) for k in ("backend_name",) if hasattr(instances[name], k)}
                reply = {"ok": True, "info": info}
            except BaseException as exc:  # noqa: BLE001
                msg = str(exc) if isinstance(exc, PluginError) else f"{type(exc).__name__}: {exc}"
                reply = {"ok": False, "error": f"verifier {name!r} could not be loaded: {msg}"}
            sock.sendall(_dumps(reply))
        else:
            verdict, restart = _verify(instances[name], req.get("completion"), req.get("task"))
            sock.sendall(_dumps({"verdict": verdict, "restart": restart}))


def _zygote_main() -> None:
    """Entry of the zygote process: load plugins once, then fork workers on request."""
    os.dup2(2, 1)  # anything printed goes to stderr; the protocol only uses sockets
    spec = json.loads(os.environ.pop(_SPEC_ENV))
    ctl = socket.socket(fileno=int(os.environ.pop(_FD_ENV)))

    def send(obj: Any, fds: Sequence[int] = ()) -> None:
        socket.send_fds(ctl, [_dumps(obj)], list(fds))

    try:
        from raylign.engine.plugins import build_registry

        registry = build_registry(load_plugin_modules(spec["plugins"]), entry_points=spec["entry_points"])
        used = _vm_size_mb()
        if spec["memory_mb"] < used + 64:
            raise PluginError(f"memory_mb={spec['memory_mb']} is below what a verifier worker uses after "
                              f"loading its plugins ({used:.0f} MB); raise [rewards] memory_mb")
    except BaseException as exc:  # noqa: BLE001
        send({"fatal": str(exc) if isinstance(exc, PluginError) else f"{type(exc).__name__}: {exc}"})
        os._exit(1)
    send({"ready": True, "verifiers": registry.names("verifiers"), "vm_mb": round(used)})

    children: set[int] = set()
    while True:
        msg = ctl.recv(65536)
        if not msg:  # the pool went away: take the workers with us
            for pid in children:
                _kill_group(pid)
            os._exit(0)
        req = json.loads(msg)
        if req["op"] == "fork":
            ours, theirs = socket.socketpair()
            pid = os.fork()
            if pid == 0:
                code = 0
                try:
                    ctl.close()
                    ours.close()
                    _worker_loop(theirs, registry, spec["verifier_options"], spec["memory_mb"])
                except BaseException:  # noqa: BLE001
                    code = 1
                os._exit(code)
            theirs.close()
            children.add(pid)
            send({"pid": pid}, [ours.fileno()])
            ours.close()
        elif req["op"] == "reap":
            pid, status = req["pid"], None
            for _ in range(100):  # the pool SIGKILLed it first, so this is quick
                done, st = os.waitpid(pid, os.WNOHANG)
                if done:
                    status = _describe_status(st)
                    break
                time.sleep(0.05)
            children.discard(pid)
            send({"status": status or "did not exit after SIGKILL"})


# ------------------------------------------------------------------------------------ inside the pool

class _Timeout(Exception):
    pass


class _Died(Exception):
    pass


class _Zygote:
    """The process that loaded the plugins and forks workers."""

    def __init__(self, spec: Mapping[str, Any]) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        env = {**os.environ, **_SINGLE_THREAD_ENV, _SPEC_ENV: json.dumps(spec), _FD_ENV: str(theirs.fileno())}
        code = "from raylign.engine.verifier_pool import _zygote_main; _zygote_main()"
        self.proc = subprocess.Popen([sys.executable, "-c", code], env=env, pass_fds=[theirs.fileno()],
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        theirs.close()
        self.sock = ours
        self.lock = threading.Lock()
        self.ready: dict | None = None

    def _recv(self, timeout: float | None) -> tuple[dict, list[int]]:
        self.sock.settimeout(timeout)
        try:
            msg, fds, _, _ = socket.recv_fds(self.sock, 1 << 20, 1)
        except socket.timeout:
            raise _Timeout() from None
        except OSError as exc:
            raise _Died(str(exc)) from None
        if not msg:
            raise _Died("the verifier zygote process exited")
        return json.loads(msg), fds

    def wait_ready(self, timeout: float) -> dict:
        with self.lock:
            if self.ready is None:
                try:
                    reply, _ = self._recv(timeout)
                except _Timeout:
                    raise PluginError(f"verifier workers did not load their plugins within {timeout:g} s") from None
                except _Died as exc:
                    raise PluginError(f"verifier workers failed to start: {exc}") from None
                if "fatal" in reply:
                    raise PluginError(f"verifier workers failed to load plugins: {reply['fatal']}")
                self.ready = reply
            return self.ready

    def request(self, msg: dict) -> tuple[dict, list[int]]:
        with self.lock:
            try:
                self.sock.settimeout(30.0)
                self.sock.sendall(json.dumps(msg).encode())
            except OSError as exc:
                raise _Died(str(exc)) from None
            return self._recv(30.0)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def close(self) -> None:
        self.sock.close()  # the zygote sees EOF and kills its workers
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            _kill_group(self.proc.pid)
            self.proc.wait()


class _Worker:
    """The pool's end of one forked worker: a socket speaking JSON lines."""

    def __init__(self, pid: int, sock: socket.socket) -> None:
        self.pid, self.sock = pid, sock
        self.buf = b""
        self.loaded: dict[str, dict] = {}  # verifier name -> the load reply

    def request(self, msg: dict, timeout: float) -> dict:
        deadline = time.monotonic() + timeout
        try:
            self.sock.settimeout(timeout)
            self.sock.sendall(_dumps(msg))
            while b"\n" not in self.buf:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise _Timeout()
                self.sock.settimeout(left)
                chunk = self.sock.recv(1 << 16)
                if not chunk:
                    raise _Died()
                self.buf += chunk
        except socket.timeout:
            raise _Timeout() from None
        except (BrokenPipeError, ConnectionResetError) as exc:
            raise _Died(str(exc)) from None
        line, _, self.buf = self.buf.partition(b"\n")
        return json.loads(line)


class VerifierPool:
    """Worker processes that run registered verifiers, each call under a hard deadline.

    :param workers: worker processes (verifications run in parallel up to this many).
    :param timeout_s: hard wall-clock deadline per verification; the worker is killed when it passes.
    :param memory_mb: address-space limit (RLIMIT_AS) of each worker process.
    :param verifier_options: per-verifier constructor kwargs, ``{"math": {...}}`` (a function verifier gets
        them as keyword arguments on every call).
    :param plugins: extra plugin modules to register besides the entry points: dotted module names or ``.py``
        paths (tests, local experiments). Workers import them themselves; nothing is pickled.
    :param entry_points: load the ``raylign`` entry-point group (built-ins included) in the workers.
    :param startup_timeout_s: deadline for loading plugins and for instantiating a verifier.
    """

    def __init__(self, workers: int = 2, timeout_s: float = 10.0, memory_mb: int = 2048,
                 verifier_options: Mapping[str, Mapping[str, Any]] | None = None, plugins: Sequence[str] = (),
                 entry_points: bool = True, startup_timeout_s: float = 300.0) -> None:
        if workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        self.timeout_s = float(timeout_s)
        self.startup_timeout_s = float(startup_timeout_s)
        self._spec = {"plugins": [str(p) for p in plugins], "entry_points": bool(entry_points),
                      "memory_mb": int(memory_mb),
                      "verifier_options": {k: dict(v) for k, v in (verifier_options or {}).items()}}
        self._zygote = _Zygote(self._spec)
        self._zygote_lock = threading.Lock()
        self._slots: queue.Queue[list] = queue.Queue()  # each slot: [worker or None]; a worker is forked lazily
        for _ in range(workers):
            self._slots.put([None])
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="verifier")
        self._closed = False

    # ---------------------------------------------------------------------------------------- public
    def names(self) -> list[str]:
        """The registered verifier names (waits until the plugins are loaded; PluginError if they fail)."""
        return list(self._zygote.wait_ready(self.startup_timeout_s)["verifiers"])

    def load(self, name: str) -> dict[str, Any]:
        """Instantiate ``name`` in one worker and return what it exposes (``backend_name``); fail fast.

        Raises PluginError for an unknown name or a verifier whose constructor fails.
        """
        if name not in self.names():
            raise unknown_verifier(name, self.names())
        slot = self._slots.get()
        try:
            reply = self._ensure_loaded(slot, name)
        finally:
            self._slots.put(slot)
        if not reply["ok"]:
            raise PluginError(reply["error"])
        return dict(reply["info"])

    def verify(self, name: str, completion: Any, task: Mapping[str, Any]) -> Verdict:
        """Score one sample (blocking)."""
        slot = self._slots.get()
        try:
            return self._run(slot, name, completion, task)
        finally:
            self._slots.put(slot)

    def verify_many(self, items: Sequence[Item], on_done: Callable[[Verdict], None] | None = None) -> list[Verdict]:
        """Score ``(name, completion, task)`` items in parallel; verdicts in input order.

        :param on_done: called with each verdict as it completes (from a pool thread), e.g. a progress bar.
        """
        if self._closed:
            raise RuntimeError("the verifier pool is closed")
        self.names()  # a plugin that fails to load fails the batch once, clearly

        def one(item: Item) -> Verdict:
            verdict = self.verify(*item)
            if on_done is not None:
                on_done(verdict)
            return verdict

        return [f.result() for f in [self._executor.submit(one, item) for item in items]]

    def close(self) -> None:
        """Kill every worker and the zygote."""
        if self._closed:
            return
        self._closed = True
        self._executor.shutdown(wait=True, cancel_futures=True)
        while not self._slots.empty():
            worker = self._slots.get()[0]
            if worker is not None:
                _kill_group(worker.pid)
                worker.sock.close()
        self._zygote.close()

    def __enter__(self) -> "VerifierPool":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # noqa: BLE001 - best effort at interpreter exit
            pass

    # ---------------------------------------------------------------------------------------- internals
    def _fork(self) -> _Worker:
        with self._zygote_lock:
            self._zygote.wait_ready(self.startup_timeout_s)
            try:
                reply, fds = self._zygote.request({"op": "fork"})
            except (_Died, _Timeout):
                # the zygote died (OOM killer?): start a fresh one once, then give up loudly
                self._zygote.close()
                self._zygote = _Zygote(self._spec)
                self._zygote.wait_ready(self.startup_timeout_s)
                reply, fds = self._zygote.request({"op": "fork"})
        return _Worker(reply["pid"], socket.socket(fileno=fds[0]))

    def _retire(self, slot: list) -> str:
        """Kill the slot's worker (and its process group), reap it, and say how it ended."""
        worker: _Worker = slot[0]
        slot[0] = None
        _kill_group(worker.pid)
        worker.sock.close()
        try:
            with self._zygote_lock:
                reply, _ = self._zygote.request({"op": "reap", "pid": worker.pid})
            return reply["status"]
        except (_Died, _Timeout):
            return "unknown status"

    def _ensure_loaded(self, slot: list, name: str) -> dict:
        if slot[0] is None:
            slot[0] = self._fork()
        worker: _Worker = slot[0]
        if name not in worker.loaded:
            try:
                worker.loaded[name] = worker.request({"op": "load", "name": name}, self.startup_timeout_s)
            except _Timeout:
                self._retire(slot)
                return {"ok": False, "error": f"verifier {name!r} took over {self.startup_timeout_s:g} s to load"}
            except _Died:
                status = self._retire(slot)
                return {"ok": False, "error": f"the worker process died while loading {name!r} ({status})"}
        return worker.loaded[name]

    def _run(self, slot: list, name: str, completion: Any, task: Mapping[str, Any]) -> Verdict:
        loaded = self._ensure_loaded(slot, name)
        if not loaded["ok"]:
            return Verdict(status="error", error=loaded["error"])
        start = time.monotonic()
        try:
            reply = slot[0].request({"op": "verify", "name": name, "completion": completion, "task": task},
                                    self.timeout_s)
        except _Timeout:
            self._retire(slot)
            return Verdict(status="timeout", error=f"verification exceeded the {self.timeout_s:g} s deadline; "
                           "the worker process was killed", details={"elapsed_s": round(time.monotonic() - start, 3)})
        except _Died:
            status = self._retire(slot)
            return Verdict(status="error", error=f"the verifier worker process died ({status})")
        if reply.get("restart"):
            self._retire(slot)
        return Verdict(**reply["verdict"])
