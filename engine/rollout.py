"""The rollout fleet: N Ray actors, each owning one vLLM engine, that turn prompts into completions.

    fleet = RolloutFleet(model_dir, rollout_cfg, seed)          # starts the engines (Ray must be running)
    groups = fleet.generate(prompts, n=8, temperature=1.0, max_tokens=64, stop_token_ids=stops, seed=step)
    report = fleet.sync_weights(ray.put(state_dict), version=1, canary=(ids, learner_logprobs))
    fleet.restarts                                               # workers replaced after dying (a metric)
    fleet.shutdown()

Prompts are strings or token-id lists (chat prompts are rendered by the caller with the tokenizer's template).
They are split into contiguous, balanced chunks, one per worker, and reassembled in order.

The engines and their sampling live in :mod:`raylign.engine.rollout_worker`; this module is the driver's side:
shipping the model, spreading prompts, weight sync and replacing workers that die (see :class:`RolloutFleet`).
"""
from __future__ import annotations

import json
import logging
import threading
import time
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

from raylign.engine.config import RolloutConfig
from raylign.engine.errors import ModelError, RoleFailed, WeightSyncError
from raylign.engine.faults import death_cause, kill_actor, node_label, one_line  # noqa: F401  (tests import them here)
from raylign.engine.model_files import put_model_dir
from raylign.engine.modeling import check_model_dir, load_tokenizer
from raylign.engine.rollout_worker import (  # noqa: F401  (re-exported: benchmarks import them from here)
    Prompt,
    RolloutWorker,
    engine_env,
    engine_kwargs,
    quiet_thread_warning,
    sampling_params,
)
from raylign.engine.types import Completion
from raylign.engine.weight_sync import (
    SyncReport,
    WeightTransport,
    canary_diffs,
    canary_token_ids,
    check_canary,
    select_transport,
)

log = logging.getLogger(__name__)


# ---------------------------------------------------------------------------------------------- fleet


def check_engine_model(model_dir: str | Path) -> Path:
    """Fail early, with the fix, on a model vLLM's CPU attention cannot run (it would crash mid-generation)."""
    p = check_model_dir(model_dir)
    import torch

    if torch.cuda.is_available():
        return p
    cfg = json.loads((p / "config.json").read_text())
    heads = cfg.get("num_attention_heads") or 1
    head_dim = cfg.get("head_dim") or cfg.get("hidden_size", 0) // heads
    try:
        from vllm.v1.attention.backends.cpu_attn import CPUAttentionBackend

        supported = CPUAttentionBackend.get_supported_head_sizes()
    except Exception:  # another vLLM layout: let the engine decide
        return p
    if head_dim not in supported:
        raise ModelError(f"{p}: head dim {head_dim} (hidden_size / num_attention_heads) is not supported by "
                         f"vLLM's CPU attention (supported: {supported}); use e.g. fewer heads")
    return p


def request_params(n: int, temperature: float, top_p: float, max_tokens: int,
                   stop_token_ids: Sequence[int] | None, seed: int | None) -> dict[str, Any]:
    """One generate call's sampling settings, as the workers' ``sampling_params`` takes them (plain data)."""
    return dict(n=n, temperature=temperature, top_p=top_p, max_tokens=max_tokens,
                stop_token_ids=list(stop_token_ids or []), seed=seed)


def balanced_chunks(count: int, parts: int) -> list[tuple[int, int]]:
    """``(start, stop)`` of ``parts`` contiguous chunks of ``range(count)`` whose sizes differ by at most 1
    (empty chunks dropped)."""
    base, extra = divmod(count, parts)
    bounds, start = [], 0
    for i in range(parts):
        stop = start + base + (1 if i < extra else 0)
        if stop > start:
            bounds.append((start, stop))
        start = stop
    return bounds


class RolloutFleet:
    """Driver-side handle on ``cfg.num_workers`` rollout actors. Ray must already be running (``init_ray``).

    No actor reads ``model_dir``: the driver reads it once into the object store (:mod:`~raylign.engine.model_files`)
    and each worker writes it to a local temp dir, so workers can run on nodes that cannot see the driver's disk.

    A worker that dies (SIGKILL, out of memory, its node lost) is replaced in place: a new actor with the same
    index and seed starts from the shipped model, loads the weights the fleet serves now (the last synced state,
    whose ObjectRef the fleet keeps: one copy of the weights stays in the object store) and passes the last
    canary; the calls it had not finished run again on it. Requests are seeded per (prompt, sample), so a chunk
    generated again equals what the dead worker would have returned. ``rollout.max_restarts`` bounds the
    replacements over the fleet's life; the next death raises :class:`RoleFailed` with one line naming the worker,
    its node and the cause. ``restarts`` and ``restart_log`` say what happened, for the stage to log.

    One thread may generate while another syncs weights: every call is its own set of Ray tasks, an actor serves
    one call at a time, and replacing a worker holds a lock (so it happens once, whoever sees the death first).
    """

    def __init__(self, model_dir: str | Path, cfg: RolloutConfig = RolloutConfig(), seed: int = 0,
                 transport: WeightTransport | None = None, placement: Any = None, wait: bool = True,
                 sleeper: Any = None):
        """``wait=False`` returns as soon as the engines are starting (they start in their actors while the caller
        starts other roles); the first call that needs them waits, or :meth:`wait_ready`. ``sleeper``: colocated
        mode's :class:`~raylign.engine.colocate.Colocation` (the engines sleep while the learner trains)."""
        import ray

        if not ray.is_initialized():
            raise RuntimeError("RolloutFleet needs a running Ray: call raylign.engine.cluster.init_ray first")
        self.model_dir = str(check_engine_model(model_dir))
        self.canary_ids = canary_token_ids(load_tokenizer(self.model_dir))  # what every sync is checked on
        self.cfg = cfg
        self.seed = seed
        self.version = 0
        self.transport = transport or select_transport(cfg)
        self.restarts = 0  # workers replaced so far
        self.restart_log: list[dict[str, Any]] = []  # per replacement: worker, node, cause, seconds, version
        self._lock = threading.RLock()
        self._closed = False
        self._files = put_model_dir(self.model_dir)  # read once, here; workers materialise it locally
        self._current: tuple[Any, int, Any] = (None, 0, None)  # (weights payload, version, canary) a new worker loads
        self.placement = placement  # engine/placement.py's Placement: worker i runs in bundle i (None: anywhere)
        self.sleeper = sleeper  # engine/colocate.py: wakes the engines before a load or a generation
        self._actor_cls = ray.remote(RolloutWorker)
        self.workers = [self._spawn(i) for i in range(cfg.num_workers)]
        self.names = [f"rollout worker {i}" for i in range(cfg.num_workers)]
        self._info: list[dict[str, Any]] | None = None
        if wait:
            self.wait_ready()

    @property
    def info(self) -> list[dict[str, Any]]:
        """Per worker, its ``ready()`` info (pid, node, start seconds, ...); waits for the engines to start."""
        return self.wait_ready()

    def wait_ready(self) -> list[dict[str, Any]]:
        """Block until every engine has started (``rollout.start_timeout_s``); returns :attr:`info`."""
        with self._lock:
            if self._info is None:
                self._info = self._wait_ready()
            return self._info

    def _spawn(self, index: int):
        return self._actor_cls.options(**self.worker_options(index)).remote(self._files, self.cfg, self.seed, index,
                                                                        self.sleeper is not None)

    def worker_options(self, index: int) -> dict[str, Any]:
        """Ray actor options of worker ``index`` (a replacement takes the same: resources and placement bundle)."""
        cfg = self.cfg
        return dict(num_cpus=cfg.num_cpus, num_gpus=cfg.num_gpus, runtime_env={"env_vars": engine_env(cfg)},
                    max_concurrency=1, **(self.placement.options(index) if self.placement else {}))

    def _wait_ready(self) -> list[dict[str, Any]]:
        import ray

        refs = [w.ready.remote() for w in self.workers]
        ready, pending = ray.wait(refs, num_returns=len(refs), timeout=self.cfg.start_timeout_s)
        if pending:
            slow = [self.names[refs.index(r)] for r in pending]
            self.shutdown()
            raise RuntimeError(f"{', '.join(slow)} did not start within rollout.start_timeout_s="
                               f"{self.cfg.start_timeout_s}s")
        try:
            return ray.get(refs)
        except Exception as exc:
            self.shutdown()
            raise RuntimeError(f"a rollout engine failed to start from {self.model_dir}: {exc}") from exc

    # ------------------------------------------------------------------------------------------ generation

    def generate(self, prompts: Sequence[Prompt], n: int = 1, temperature: float = 1.0, top_p: float = 1.0,
                 max_tokens: int = 64, stop_token_ids: Sequence[int] | None = None,
                 seed: int | None = None) -> list[list[Completion]]:
        """``n`` completions per prompt, as ``result[prompt_index][sample_index]``. ``seed`` (e.g. the step)
        makes the samples reproducible whatever the number of workers, and across a worker's replacement."""
        params = request_params(n, temperature, top_p, max_tokens, stop_token_ids, seed)
        prompts = list(prompts)
        self.wait_ready()
        if self.sleeper is not None:
            self.sleeper.use("generate")
        chunks = balanced_chunks(len(prompts), len(self.workers))
        parts = self._call_each("generate", [(prompts[a:b], params, a) for a, b in chunks])
        return [group for part in parts for group in part]

    def generate_stream(self, prompts: Sequence[Prompt], n: int = 1, temperature: float = 1.0, top_p: float = 1.0,
                        max_tokens: int = 64, stop_token_ids: Sequence[int] | None = None,
                        seed: int | None = None) -> Iterator[tuple[int, list[Completion]]]:
        """As :meth:`generate`, but yields ``(prompt_index, group)`` as soon as a prompt's samples are all done, in
        the order they finish (a caller scores a group while the rest are generating); the same completions as
        :meth:`generate`. A worker that dies is replaced and its prompts not yet yielded run again there."""
        import queue

        params = request_params(n, temperature, top_p, max_tokens, stop_token_ids, seed)
        prompts = list(prompts)
        self.wait_ready()
        if self.sleeper is not None:
            self.sleeper.use("generate")
        chunks = balanced_chunks(len(prompts), len(self.workers))
        out: queue.Queue = queue.Queue()
        done = object()
        threads = [threading.Thread(target=self._pump, args=(i, prompts, range(a, b), params, out, done),
                                    name=f"raylign-rollout-stream-{i}", daemon=True) for i, (a, b) in enumerate(chunks)]
        for t in threads:
            t.start()
        finished = 0
        while finished < len(threads):
            item = out.get()
            if item is done:
                finished += 1
            elif isinstance(item, BaseException):
                raise item
            else:
                yield item

    def _pump(self, i: int, prompts: list, indices: range, params: dict, out, done) -> None:
        """Worker ``i``'s share of :meth:`generate_stream`: its groups into ``out`` as they come, then ``done``; a
        death replaces the worker and asks the new one for the prompts not yet received; an error goes into
        ``out`` for the caller to raise."""
        import ray

        left = list(indices)
        try:
            with self._lock:
                worker = self.workers[i]
            while left:
                try:
                    stream = worker.generate_stream.options(num_returns="streaming").remote(
                        [prompts[j] for j in left], params, left)
                    for ref in stream:
                        j, group = ray.get(ref)
                        left.remove(j)
                        out.put((j, group))
                except ray.exceptions.RayActorError as exc:
                    worker = self._replace(i, worker, exc, redo=len(left))
        except BaseException as exc:  # noqa: BLE001 - raised in the caller's thread
            out.put(exc)
        out.put(done)

    def generate_greedy(self, prompts: Sequence[Prompt], max_tokens: int = 64,
                        stop_token_ids: Sequence[int] | None = None) -> list[Completion]:
        """One greedy (temperature 0) completion per prompt, for evaluation."""
        groups = self.generate(prompts, n=1, temperature=0.0, max_tokens=max_tokens, stop_token_ids=stop_token_ids)
        return [g[0] for g in groups]

    def _call_each(self, method: str, calls: Sequence[tuple], timeout_s: float | None = None) -> list[Any]:
        """``workers[i].<method>(*calls[i])`` for every i, results in order. A call whose worker died runs again on
        the worker's replacement. ``timeout_s`` bounds the wait for results (replacements not counted) and raises
        ``GetTimeoutError``."""
        import ray

        with self._lock:
            workers = self.workers[:len(calls)]
        refs = {i: getattr(w, method).remote(*args) for i, (w, args) in enumerate(zip(workers, calls))}
        results: list[Any] = [None] * len(calls)
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while refs:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            done, _ = ray.wait(list(refs.values()), num_returns=1, timeout=left)
            if not done:
                late = ", ".join(self.names[i] for i in refs)
                raise ray.exceptions.GetTimeoutError(f"{method} on {late} did not finish within {timeout_s}s")
            i = next(i for i, ref in refs.items() if ref == done[0])
            try:
                results[i] = ray.get(refs.pop(i))
            except ray.exceptions.RayActorError as exc:
                t0 = time.monotonic()
                redo = len(calls[i][0]) if method == "generate" else 0  # prompts the replacement generates again
                workers[i] = self._replace(i, workers[i], exc, redo=redo)
                deadline = None if deadline is None else deadline + time.monotonic() - t0
                refs[i] = getattr(workers[i], method).remote(*calls[i])
        return results

    def call_workers(self, method: str, args: tuple = ()) -> list[Any]:
        """``method(*args)`` on every worker (e.g. colocated mode's ``sleep``/``wake``), results in worker order; a
        dead worker is replaced (in its bundle, awake, with the current weights) and the call made on it."""
        self.wait_ready()
        return self._call_each(method, [args] * len(self.workers))

    # ------------------------------------------------------------------------------------------ weights

    def sync_weights(self, state: Any, version: int,
                     canary: tuple[Sequence[int], Sequence[float]] | None = None,
                     deadline_s: float | None = None) -> SyncReport:
        """Load new weights into every engine and stamp them ``version``.

        :param state: a state dict of tensors, or an ObjectRef to one (``ray.put`` by the learner); for the
            ``collective`` transport a ``weight_group.CollectivePayload``. The fleet keeps it (a state dict is
            put in the object store first) until the next sync: a worker that replaces a dead one loads it.
        :param canary: ``(token_ids, learner_logprobs)`` checked after the load (see :meth:`canary`).
        :param deadline_s: overrides ``rollout.sync_deadline_s``.
        Raises WeightSyncError when the load fails, misses the deadline or fails the canary.
        """
        import ray

        self.wait_ready()
        deadline = self.cfg.sync_deadline_s if deadline_s is None else deadline_s
        if isinstance(state, Mapping):
            state = ray.put(dict(state))
        t0 = time.perf_counter()
        with self._lock:  # a worker replaced from here on loads this version
            self._current = (state, version, canary)
            workers = list(self.workers)
        if self.sleeper is not None:  # colocated: the weights' memory back first, the KV cache after the load
            self.sleeper.before_load()
        refs = self.transport.start(workers, state, version)
        ready, pending = ray.wait(refs, num_returns=len(refs), timeout=deadline)
        if pending:
            slow = [self.names[refs.index(r)] if refs.index(r) < len(self.names) else "the learner"
                    for r in pending]
            raise WeightSyncError(f"weight sync to version {version} missed its deadline of {deadline}s "
                                  f"(rollout.sync_deadline_s): {', '.join(slow)} still loading")
        for i, ref in enumerate(refs):
            try:
                ray.get(ref)
            except ray.exceptions.RayActorError as exc:
                if i >= len(workers):
                    raise WeightSyncError(f"weight sync to version {version}: the learner died: "
                                          f"{death_cause(exc)}") from exc
                self._replace(i, workers[i], exc)  # the replacement loads this version and checks its canary
            except Exception as exc:
                who = self.names[i] if i < len(self.names) else "the learner"
                raise WeightSyncError(f"weight sync to version {version} failed on {who}: {exc}") from exc
        seconds = time.perf_counter() - t0
        self.version = version
        if self.sleeper is not None:
            self.sleeper.after_load()
        diff = self.canary(*canary, version=version, timeout_s=deadline) if canary is not None else None
        return SyncReport(version=version, seconds=seconds, canary_max_abs_diff=diff, transport=self.transport.name)

    def canary(self, token_ids: Sequence[int], ref_logprobs: Sequence[float], version: int | None = None,
               timeout_s: float | None = None) -> float:
        """Compare every engine's logprobs of ``token_ids[1:]`` with the learner's ``ref_logprobs`` (same length,
        the learner's ``sequence_logprobs``). Returns the largest difference; raises WeightSyncError beyond
        ``rollout.canary_tolerance``, naming the version and the workers."""
        import ray

        self.wait_ready()
        if self.sleeper is not None:
            self.sleeper.use("canary")
        token_ids = [int(t) for t in token_ids]
        if len(ref_logprobs) != len(token_ids) - 1:
            raise ValueError(f"canary: {len(token_ids)} tokens need {len(token_ids) - 1} reference logprobs, "
                             f"got {len(ref_logprobs)}")
        try:
            got = self._call_each("prompt_logprobs", [(token_ids,)] * len(self.workers),
                                  timeout_s=timeout_s or self.cfg.sync_deadline_s)
        except ray.exceptions.GetTimeoutError as exc:
            raise WeightSyncError(f"canary for weights version {version} timed out") from exc
        diffs = canary_diffs(got, ref_logprobs)
        return check_canary(diffs, self.cfg.canary_tolerance, version if version is not None else self.version,
                            self.names)

    # ------------------------------------------------------------------------------------------ replacement

    def _replace(self, i: int, dead: Any, exc: BaseException, redo: int = 0) -> Any:
        """Replace worker ``i``, whose handle ``dead`` raised ``exc``, and return the new handle (the current one if
        another thread replaced it already); ``redo``: the prompts the caller will ask the new worker for again (for
        the log). Raises RoleFailed past ``rollout.max_restarts`` or when the replacement cannot be started and
        given the current weights."""
        import ray

        with self._lock:
            if self.workers[i] is not dead:
                return self.workers[i]
            where, cause = f"{node_label(self.info[i])}, pid {self.info[i].get('pid')}", death_cause(exc)
            while True:
                if self._closed:
                    raise RoleFailed(f"{self.names[i]} on {where} died ({cause}) after the fleet was shut down")
                if self.restarts >= self.cfg.max_restarts:
                    raise RoleFailed(f"{self.names[i]} on {where} died: {cause}; rollout.max_restarts="
                                     f"{self.cfg.max_restarts} replacements already made, so the run stops")
                self.restarts += 1
                t0 = time.perf_counter()
                kill_actor(dead)
                dead = self._spawn(i)
                try:
                    info, diff = self._restore(i, dead)
                except ray.exceptions.RayActorError as again:  # the replacement died too: counts as a restart
                    where, cause = "its replacement's node", death_cause(again)
                    continue
                except Exception as other:
                    kill_actor(dead)
                    raise RoleFailed(f"{self.names[i]} on {where} died ({cause}) and could not be replaced: "
                                     f"{one_line(other)}") from other
                seconds = time.perf_counter() - t0
                self.workers[i], self.info[i] = dead, info
                self.restart_log.append({"worker": self.names[i], "node": where, "cause": cause, "seconds": seconds,
                                         "new_node": node_label(info), "version": info["version"],
                                         "canary_max_abs_diff": diff, "redo": redo})
                log.warning("%s on %s died (%s); replaced on %s in %.1f s with weights version %s (canary max abs "
                            "diff %s), generating its %d unfinished prompts again (restart %d of rollout.max_restarts="
                            "%d)", self.names[i], where, cause, node_label(info), seconds, info["version"],
                            "n/a" if diff is None else f"{diff:.2g}", redo, self.restarts, self.cfg.max_restarts)
                return dead

    def _restore(self, i: int, worker: Any) -> tuple[dict[str, Any], float | None]:
        """Bring a new worker ``i`` to the fleet's current weights: start, load the last synced payload with the
        fleet's transport, check the last canary on it. Returns its ``ready()`` info and the canary difference."""
        import ray

        self._wait_started(i, worker.ready.remote())
        payload, version, canary = self._current
        if payload is None and version != 0:
            raise WeightSyncError(f"weights version {version} came by the {self.transport.name} transport, which a "
                                  "replaced worker cannot receive without the learner")
        if payload is not None:  # collective: every worker joins a fresh group for it (the transport's restore)
            self.transport.restore(self, i, worker, payload, version)
        diff = None
        if canary is not None:
            got = ray.get(worker.prompt_logprobs.remote([int(t) for t in canary[0]]),
                          timeout=self.cfg.sync_deadline_s)
            diff = check_canary(canary_diffs([got], canary[1]), self.cfg.canary_tolerance, version, [self.names[i]])
        return ray.get(worker.ready.remote(), timeout=self.cfg.start_timeout_s), diff

    def _wait_started(self, i: int, ready: Any) -> None:
        """Wait for replacement ``i``'s ``ready`` call (``rollout.start_timeout_s``). Ray re-reserves the bundle of a
        lost node on any live node that has the bundle's resources; when none has (a role pinned to a resource
        that only the lost node offered) the wait stops within seconds, naming the resource and its config key."""
        import ray

        deadline = time.monotonic() + self.cfg.start_timeout_s
        while True:
            done, _ = ray.wait([ready], timeout=min(5.0, max(0.0, deadline - time.monotonic())))
            if done:
                ray.get(ready)
                return
            problem = self._unplaceable(i)
            if problem:
                raise RuntimeError(f"its placement bundle has no node left to go to: {problem}")
            if time.monotonic() >= deadline:
                raise RuntimeError(f"it did not start within rollout.start_timeout_s={self.cfg.start_timeout_s}s")

    def _unplaceable(self, i: int) -> str:
        """Why no live node could hold worker ``i``'s bundle ("" when some node could, or without a placement)."""
        if self.placement is None or not self.placement.group.custom(i):
            return ""
        from raylign.engine.cluster_view import Bundle, fit
        from raylign.engine.placement import live_view

        g = self.placement.group
        return fit([Bundle(g.role, g.custom(i), key=g.key)], live_view()).problem or ""

    # ------------------------------------------------------------------------------------------ lifetime

    def shutdown(self) -> None:
        """Kill the worker actors (each engine lives in its actor's process, so that frees it) and drop the
        model and weights the fleet kept in the object store."""
        import ray

        self._closed = True
        workers = getattr(self, "workers", [])
        try:
            self.transport.close()  # the collective weight group: every rank leaves it
        except Exception:
            pass
        try:  # their model copies first: a killed actor runs no clean-up
            if workers:
                ray.wait([w.close.remote() for w in workers], num_returns=len(workers), timeout=5.0)
        except Exception:  # Ray already down, or an actor gone: nothing left to clean
            pass
        for w in workers:
            kill_actor(w)
        self.workers = []
        self._files, self._current = {}, (None, self.version, None)

    def __enter__(self) -> "RolloutFleet":
        return self

    def __exit__(self, *exc) -> None:
        self.shutdown()
