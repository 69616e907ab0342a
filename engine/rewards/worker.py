"""The child-process side of the verifier pool: the zygote and the workers it forks. No Ray here.

The zygote (``python -c "...zygote_main()"``, started by :class:`raylign.engine.rewards.pool.VerifierPool`)
loads the plugins once, entry points plus extra plugin modules, then forks a worker per request on its control
socket (SOCK_SEQPACKET) and passes the worker's socket back with SCM_RIGHTS. A worker calls ``os.setsid()`` (so
a timeout kills its whole process group), applies the address-space rlimit, and answers JSON lines:

- ``{"op": "load", "name"}`` → ``{"ok": true, "info": {"backend_name": ...}}`` or ``{"ok": false, "error"}``
  (instantiates a class verifier with its options, once per worker);
- ``{"op": "verify", "name", "completion", "task"}`` → ``{"verdict": {...}, "restart": bool}`` (an exception
  from the verifier is a verdict with status ``error``; after a MemoryError the pool replaces the worker).

Each request carries an ``"id"`` that its reply repeats: a line the pool did not ask for (a verifier writing to
the socket) never passes for the next row's verdict.

The zygote also answers ``{"op": "reap", "pid"}`` with how a killed or crashed worker ended, and when the pool
goes away (EOF on the control socket) it kills every worker and exits. Anything a verifier prints goes to
stderr: the protocol uses sockets only.
"""
from __future__ import annotations

import importlib
import importlib.util
import inspect
import json
import os
import resource
import signal
import socket
import sys
import threading
import time
import zlib
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from raylign.engine.errors import PluginError
from raylign.engine.types import Verdict

SPEC_ENV = "RAYLIGN_VERIFIER_POOL_SPEC"  # the pool's spec (JSON) for the zygote
FD_ENV = "RAYLIGN_VERIFIER_POOL_FD"  # the zygote's end of the control socket
_MB = 1 << 20


# ------------------------------------------------------------------------------------------------ helpers

def load_plugin_modules(specs: Iterable[str]) -> list[Any]:
    """Import extra plugin modules: dotted module names, or paths of ``.py`` files (loaded by path)."""
    mods = []
    for spec in specs:
        if spec.endswith(".py"):
            path = Path(spec).resolve()
            name = f"raylign_local_plugin_{path.stem}_{zlib.crc32(str(path).encode()):08x}"
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


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, (set, frozenset)):
        return sorted(obj, key=repr)
    if hasattr(obj, "tolist"):  # numpy / torch scalars and arrays
        return obj.tolist()
    return repr(obj)


def dumps(obj: Any) -> bytes:
    # ASCII escapes: a lone surrogate ("\ud800", legal in JSON) crosses as its escape, where UTF-8 has no bytes
    # for it (one such row made a whole service request fail)
    return json.dumps(obj, default=_jsonable, ensure_ascii=True).encode() + b"\n"


def describe_status(status: int) -> str:
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


def kill_group(pid: int) -> None:
    for kill in (os.killpg, os.kill):  # killpg: the worker and anything it started; kill: before its setsid
        try:
            kill(pid, signal.SIGKILL)
            return
        except (ProcessLookupError, PermissionError):
            continue


def _children_by_parent() -> dict[int, list[int]]:
    out: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        out.setdefault(ppid, []).append(int(entry))
    return out


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` in the process tree (whatever its session or process group)."""
    tree, out, todo = _children_by_parent(), [], [pid]
    while todo:
        for child in tree.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def kill_tree(pid: int) -> None:
    """SIGKILL ``pid``, its process group and every descendant: a grandchild that called ``setsid()`` left the
    group but not the tree. Everything is stopped first (SIGSTOP), so nothing forks while the tree is read."""
    _signal(pid, signal.SIGSTOP)
    stopped: set[int] = set()
    for _ in range(8):  # a process forking as it was stopped adds at most one generation per pass
        new = [p for p in descendants(pid) if p not in stopped]
        if not new:
            break
        for p in new:
            _signal(p, signal.SIGSTOP)
            stopped.add(p)
    for p in stopped:
        _signal(p, signal.SIGKILL)
    kill_group(pid)
    _signal(pid, signal.SIGKILL)


def _set_child_subreaper() -> None:
    """Orphans of the workers (a daemon's double fork) become the zygote's children, not init's, so the zygote
    can kill them when their worker goes."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
    except (OSError, AttributeError):
        pass


def _kill_orphans(workers: set[int]) -> None:
    """Kill and reap the zygote's children that are not workers: processes a worker left behind."""
    for pid in _children_by_parent().get(os.getpid(), []):
        if pid in workers:
            continue
        kill_tree(pid)
        try:
            os.waitpid(pid, 0)
        except ChildProcessError:
            pass


# ------------------------------------------------------------------------------------ processes

def _takes(cls: type, param: str) -> bool:
    """Whether ``cls(...)`` has a parameter called ``param`` (by name, not through ``**kwargs``)."""
    try:
        p = inspect.signature(cls).parameters.get(param)
    except (TypeError, ValueError):  # no introspectable signature (some builtins, C extensions)
        return False
    return p is not None and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)


def instantiate_verifier(obj: Any, options: Mapping[str, Any], registry: Any = None,
                         deadline_s: float | None = None) -> Any:
    """A registered verifier as a callable ``fn(completion, task)`` built with ``options``.

    The registry is passed in, never looked up: a verifier class whose constructor takes ``sandboxes`` (the
    ``code`` verifier) is given ``registry``'s sandbox backends, ``{name: backend class}``, unless its options
    set them or the registry has none (then the class uses its own defaults). One whose constructor takes
    ``deadline_s`` is given the pool's deadline per verification, past which the pool kills the worker (status
    ``timeout``): a verifier that keeps its own time within it never lets a program reach that status.
    """
    if isinstance(obj, type):
        kwargs = dict(options)  # a class: one instance per worker, built with the stage's options
        if registry is not None and "sandboxes" not in kwargs and _takes(obj, "sandboxes"):
            table = {name: registry.get("sandboxes", name) for name in registry.names("sandboxes")}
            if table:
                kwargs["sandboxes"] = table
        if deadline_s is not None and "deadline_s" not in kwargs and _takes(obj, "deadline_s"):
            kwargs["deadline_s"] = float(deadline_s)
        return obj(**kwargs)
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
        verdict = Verdict(status="error", error=f"{type(exc).__name__}: {_short(exc)}")
    out = verdict.to_dict()
    if isinstance(out.get("error"), str) and len(out["error"]) > MAX_ERROR_CHARS:
        out["error"] = out["error"][:MAX_ERROR_CHARS] + " [cut]"
    return out, restart


MAX_ERROR_CHARS = 2000  # of a verdict's error message


def _short(exc: BaseException) -> str:
    try:
        return str(exc)[:MAX_ERROR_CHARS]
    except BaseException:  # noqa: BLE001 - a __str__ that raises
        return "?"


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
                instances[name] = instantiate_verifier(registry.get("verifiers", name), options.get(name, {}),
                                                       registry, req.get("deadline_s"))
                info = {k: getattr(instances[name], k) for k in ("backend_name",) if hasattr(instances[name], k)}
                reply = {"ok": True, "info": info}
            except BaseException as exc:  # noqa: BLE001
                msg = str(exc) if isinstance(exc, PluginError) else f"{type(exc).__name__}: {exc}"
                reply = {"ok": False, "error": f"verifier {name!r} could not be loaded: {msg}"}
            sock.sendall(dumps({**reply, "id": req.get("id")}))
        else:
            verdict, restart = _verify(instances[name], req.get("completion"), req.get("task"))
            sock.sendall(dumps({"verdict": verdict, "restart": restart, "id": req.get("id")}))


def zygote_main() -> None:
    """Entry of the zygote process: load plugins once, then fork workers on request."""
    os.dup2(2, 1)  # anything printed goes to stderr; the protocol only uses sockets
    spec = json.loads(os.environ.pop(SPEC_ENV))
    ctl = socket.socket(fileno=int(os.environ.pop(FD_ENV)))

    def send(obj: Any, fds: Sequence[int] = ()) -> None:
        try:
            socket.send_fds(ctl, [dumps(obj)], list(fds))
        except (BrokenPipeError, ConnectionResetError):  # the pool closed (even before we were ready): go quietly
            os._exit(0)

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

    _set_child_subreaper()
    children: set[int] = set()
    while True:
        msg = ctl.recv(65536)
        if not msg:  # the pool went away: take the workers and whatever they left with us
            for pid in children:
                kill_tree(pid)
            _kill_orphans(set())
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
                    status = describe_status(st)
                    break
                time.sleep(0.05)
            children.discard(pid)
            _kill_orphans(children)  # what the killed worker left behind, reparented here
            send({"status": status or "did not exit after SIGKILL"})
