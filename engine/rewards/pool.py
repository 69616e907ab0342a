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
SIGALRM anywhere: it only works on the main thread and cannot stop C code. The process side (zygote and
workers) is in :mod:`raylign.engine.rewards.worker`.

Work nobody waits for any more (the verifier service's client went away) is cancelled through a :class:`Batch`:
pass one to :meth:`VerifierPool.verify` / :meth:`VerifierPool.verify_many` for every row of a request, and
:meth:`VerifierPool.cancel` it from any thread. Its rows not started are skipped, and the workers running its
rows are killed the way a deadline kills them (and replaced from the zygote on their slot's next row).
"""
from __future__ import annotations

import difflib
import json
import os
import queue
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Mapping, Sequence

from raylign.engine.errors import PluginError
from raylign.engine.rewards.worker import FD_ENV, SPEC_ENV, dumps, kill_tree, load_plugin_modules
from raylign.engine.types import Verdict

__all__ = ["Batch", "Item", "VerifierPool", "cancelled_verdict", "load_plugin_modules", "unknown_verifier"]

Item = tuple[str, Any, Mapping[str, Any]]  # (verifier name, completion, task row)

_SINGLE_THREAD_ENV = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
                      "TOKENIZERS_PARALLELISM": "false"}


def unknown_verifier(name: str, known: Sequence[str]) -> PluginError:
    """The error for an unknown verifier name (same wording as ``Registry.get``)."""
    close = difflib.get_close_matches(name, list(known), n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    return PluginError(f"unknown verifier {name!r}.{hint} Known: {', '.join(sorted(known)) or '(none)'}")


def cancelled_verdict() -> Verdict:
    """What a row of a cancelled :class:`Batch` gets instead of a verdict: an error, marked ``cancelled``."""
    return Verdict(status="error", error="cancelled: the batch was cancelled before this row finished",
                   details={"cancelled": True})


class Batch:
    """Rows that are cancelled together: one request's rows, say (see :meth:`VerifierPool.cancel`).

    Create one per group of rows, pass it with each of them, and read :attr:`started` and :attr:`killed`
    afterwards. A batch belongs to one pool; it is not reusable once cancelled.
    """

    def __init__(self) -> None:
        self.cancelled = False  # set by VerifierPool.cancel; never cleared
        self.started = 0  # rows handed to a worker (the others were skipped, or wait for a worker)
        self.killed = 0  # worker processes killed because the batch was cancelled
        self._lock = threading.Lock()
        self._running: dict[int, tuple[list, "_Worker"]] = {}  # id(slot) -> (slot, worker) while a row runs
        self._killed: list["_Worker"] = []  # the workers killed for this batch (compared by identity)


# ------------------------------------------------------------------ handles on the zygote and the workers

class _Timeout(Exception):
    pass


class _Died(Exception):
    pass


class _Zygote:
    """The process that loaded the plugins and forks workers."""

    def __init__(self, spec: Mapping[str, Any]) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        env = {**os.environ, **_SINGLE_THREAD_ENV, SPEC_ENV: json.dumps(spec), FD_ENV: str(theirs.fileno())}
        code = "from raylign.engine.rewards.worker import zygote_main; zygote_main()"
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
            kill_tree(self.proc.pid)
            self.proc.wait()


class _Worker:
    """The pool's end of one forked worker: a socket speaking JSON lines."""

    def __init__(self, pid: int, sock: socket.socket) -> None:
        self.pid, self.sock = pid, sock
        self.buf = bytearray()
        self.loaded: dict[str, dict] = {}  # verifier name -> the load reply
        self.seq = 0
        self.tainted = False  # it wrote a line nobody asked for: replaced after this reply

    def request(self, msg: dict, timeout: float) -> dict:
        """The reply to ``msg`` (the line that repeats its id; other lines taint the worker)."""
        deadline = time.monotonic() + timeout
        self.seq += 1
        try:
            self.sock.settimeout(timeout)
            self.sock.sendall(dumps({**msg, "id": self.seq}))
            while True:
                start = 0
                while (k := self.buf.find(b"\n", start)) < 0:
                    start = len(self.buf)
                    left = deadline - time.monotonic()
                    if left <= 0:
                        raise _Timeout()
                    self.sock.settimeout(left)
                    chunk = self.sock.recv(1 << 20)
                    if not chunk:
                        raise _Died()
                    self.buf += chunk  # (a bytearray grows in place: a 50 MB reply is read in linear time)
                line = bytes(self.buf[:k])
                del self.buf[: k + 1]
                try:
                    reply = json.loads(line)
                except ValueError:
                    reply = None
                if isinstance(reply, dict) and reply.get("id") == self.seq:
                    return reply
                self.tainted = True
        except socket.timeout:
            raise _Timeout() from None
        except (BrokenPipeError, ConnectionResetError) as exc:
            raise _Died(str(exc)) from None


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

    def verify(self, name: str, completion: Any, task: Mapping[str, Any], batch: Batch | None = None) -> Verdict:
        """Score one sample (blocking).

        :param batch: the :class:`Batch` this row belongs to; once it is cancelled the row is skipped (or its
            worker killed) and the result is :func:`cancelled_verdict`.
        """
        if batch is not None and batch.cancelled:
            return cancelled_verdict()
        slot = self._slots.get()
        try:
            if batch is None:
                return self._run(slot, name, completion, task)
            return self._run_in_batch(batch, slot, name, completion, task)
        finally:
            self._slots.put(slot)

    def verify_many(self, items: Sequence[Item], on_done: Callable[[Verdict], None] | None = None,
                    batch: Batch | None = None) -> list[Verdict]:
        """Score ``(name, completion, task)`` items in parallel; verdicts in input order.

        :param on_done: called with each verdict as it completes (from a pool thread), e.g. a progress bar.
        :param batch: as in :meth:`verify`; cancelling it from another thread makes this return promptly, with
            :func:`cancelled_verdict` for every row that did not finish.
        """
        if self._closed:
            raise RuntimeError("the verifier pool is closed")
        self.names()  # a plugin that fails to load fails the batch once, clearly

        def one(item: Item) -> Verdict:
            verdict = self.verify(*item, batch=batch)
            if on_done is not None:
                on_done(verdict)
            return verdict

        return [f.result() for f in [self._executor.submit(one, item) for item in items]]

    def cancel(self, batch: Batch) -> int:
        """Stop the work of ``batch``: nobody wants its verdicts any more.

        Its rows not yet started are skipped, and every worker process running one of its rows is killed with
        its process group (SIGKILL, as at a deadline); the slot forks a fresh worker from the zygote on its next
        row, so other batches lose only the milliseconds of that fork. Every row of the batch that has not
        returned yet returns :func:`cancelled_verdict` (a row still loading its verifier, once the load ends).
        Safe from any thread and idempotent; returns how many workers this call killed.
        """
        killed = 0
        with batch._lock:
            batch.cancelled = True
            for slot, worker in batch._running.values():
                if slot[0] is worker and not any(w is worker for w in batch._killed):
                    kill_tree(worker.pid)
                    batch._killed.append(worker)
                    killed += 1
            batch.killed += killed
        return killed

    def close(self) -> None:
        """Kill every worker and the zygote."""
        if self._closed:
            return
        self._closed = True
        self._executor.shutdown(wait=True, cancel_futures=True)
        while not self._slots.empty():
            worker = self._slots.get()[0]
            if worker is not None:
                kill_tree(worker.pid)
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
        """Kill the slot's worker (its process group and every descendant), reap it, and say how it ended."""
        worker: _Worker = slot[0]
        slot[0] = None
        kill_tree(worker.pid)
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
                worker.loaded[name] = worker.request({"op": "load", "name": name, "deadline_s": self.timeout_s},
                                                     self.startup_timeout_s)
            except _Timeout:
                self._retire(slot)
                return {"ok": False, "error": f"verifier {name!r} took over {self.startup_timeout_s:g} s to load"}
            except _Died:
                status = self._retire(slot)
                return {"ok": False, "error": f"the worker process died while loading {name!r} ({status})"}
        return worker.loaded[name]

    def _run_in_batch(self, batch: Batch, slot: list, name: str, completion: Any, task: Mapping[str, Any]) -> Verdict:
        """:meth:`_run`, with the row's worker registered in ``batch`` so that :meth:`cancel` can kill it."""
        loaded = self._ensure_loaded(slot, name)  # fork and construct the verifier: not yet this row's work
        with batch._lock:
            if batch.cancelled:  # cancelled while this row waited for a worker
                return cancelled_verdict()
            worker = slot[0]
            if worker is not None and loaded.get("ok"):
                batch._running[id(slot)] = (slot, worker)
            batch.started += 1
        try:
            verdict = self._run(slot, name, completion, task)
        finally:
            with batch._lock:
                batch._running.pop(id(slot), None)
                killed = worker is not None and any(w is worker for w in batch._killed)
            if killed and slot[0] is worker:  # killed after its row returned: never hand a dead worker on
                self._retire(slot)
        return cancelled_verdict() if killed else verdict

    def _run(self, slot: list, name: str, completion: Any, task: Mapping[str, Any], retried: bool = False) -> Verdict:
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
            zygote_gone = not self._zygote.alive()  # the worker follows its zygote: not this row's doing
            status = self._retire(slot)
            if zygote_gone and not retried:  # the next fork starts a fresh zygote; the row runs once more
                return self._run(slot, name, completion, task, retried=True)
            why = "; the verifier zygote had died too" if zygote_gone else ""
            return Verdict(status="error", error=f"the verifier worker process died ({status}){why}")
        if reply.get("restart") or slot[0].tainted:
            self._retire(slot)
        try:
            return Verdict(**reply["verdict"])
        except (KeyError, TypeError, ValueError) as exc:  # (a worker whose verifier wrote on its socket)
            self._retire(slot)
            return Verdict(status="error", error=f"the verifier worker sent a malformed verdict: {exc}"[:500])
