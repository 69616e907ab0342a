"""Reward providers as Ray actors: a registered provider class (a served reward model, ...) built inside each
actor, scored in batches spread over the replicas.

    pool = ProviderPool("reward_model", {"model": "/runs/x/models/reward_model"}, replicas=2, num_cpus=1.0,
                        batch_size=64)
    verdicts = pool.score([{"completion": "...", "task": row}, ...])   # list[Verdict], in input order
    pool.shutdown()

The actors rebuild their registry from the entry points (only the provider's name and options cross), like
every other role. A replica that dies (SIGKILL, out of memory, its node lost) gives the batch it held ``error``
verdicts naming it (never scores that look real) and is replaced in its placement bundle, at most
``rewards.max_restarts`` times per provider term; the next death raises :class:`RoleFailed` with one line naming the
replica, its node and the cause (:mod:`raylign.engine.faults`). A provider that raises on a batch is that batch's
``error`` verdicts; the replica lives on.

A provider's ``model`` option that names a directory on the driver never reaches the actors as a path: the pool
reads it once into the object store (:mod:`raylign.engine.model_files`) and each actor writes it to a temp dir of
its own node, passes that path as ``model`` to the provider's constructor, then deletes the weight files (the
provider holds them in memory). Reward actors therefore run on nodes that cannot see the driver's disk.
"""
from __future__ import annotations

import shutil
from collections import deque
from typing import Any, Mapping, Sequence

import ray

from raylign.engine.errors import RaylignError
from raylign.engine.faults import ActorGroup, death_cause, where_am_i
from raylign.engine.model_files import drop_weight_files, materialise, ship_model_option
from raylign.engine.types import Verdict


@ray.remote
class ProviderActor:
    """One replica of a reward provider: ``cls(**options)`` from the actor's own registry; a ``model`` option
    given as :func:`~raylign.engine.model_files.put_model_dir`'s files is written to a local temp dir first."""

    def __init__(self, name: str, options: Mapping[str, Any], torch_threads: int = 0) -> None:
        from raylign.engine.cluster import set_torch_threads
        from raylign.engine.plugins import build_registry

        try:
            set_torch_threads(torch_threads)
        except ImportError:  # a provider without torch
            pass
        options = dict(options)
        shipped = isinstance(options.get("model"), Mapping)
        self.model_dir = materialise(options["model"], prefix="raylign-provider-") if shipped else None
        if shipped:
            options["model"] = str(self.model_dir)
        try:
            self.provider = build_registry().get("reward_providers", name)(**options)
        finally:  # loaded (or failed): the weights need not stay on this node's disk
            if self.model_dir is not None:
                drop_weight_files(self.model_dir)

    def close(self) -> None:
        """Remove this actor's copy of the model (the pool calls it before killing the actor)."""
        if self.model_dir is not None:
            shutil.rmtree(self.model_dir, ignore_errors=True)

    def ready(self) -> bool:
        return True

    def where(self) -> dict[str, Any]:
        """This replica's pid and node (errors name them)."""
        return where_am_i()

    def score(self, samples: Sequence[Mapping[str, Any]]) -> list[dict]:
        out = list(self.provider.score(list(samples)))
        if len(out) != len(samples):
            raise RaylignError(f"reward provider returned {len(out)} verdicts for {len(samples)} samples")
        return [Verdict.coerce(v).to_dict() for v in out]


class ProviderPool:
    """Driver-side handle on the replicas of one reward provider.

    :param name: the registered reward provider.
    :param options: keyword arguments of the provider's constructor; a ``model`` that is a directory here is
        shipped to the actors through the object store (see the module docstring).
    :param replicas: actors serving it.
    :param num_cpus: logical CPUs per actor. :param num_gpus: GPUs per actor.
    :param batch_size: samples per call (the provider's own batching works within it).
    :param torch_threads: torch threads per actor (0 = the engine's default).
    :param placement: where replica ``i`` runs (:class:`raylign.engine.placement.Placement`); None: anywhere.
    :param max_restarts: replicas replaced over the pool's life before a death stops the run (``rewards.max_restarts``).
    """

    def __init__(self, name: str, options: Mapping[str, Any], replicas: int = 1, num_cpus: float = 1.0,
                 num_gpus: float = 0.0, batch_size: int = 64, torch_threads: int = 0, placement: Any = None,
                 max_restarts: int = 3) -> None:
        self.name = name
        self.batch_size = max(1, int(batch_size))
        self.options = ship_model_option(options)  # kept: a restarted actor reads the shipped model again

        def spawn(i: int):
            return ProviderActor.options(num_cpus=num_cpus, num_gpus=num_gpus,
                                         **(placement.options(i) if placement else {})) \
                .remote(name, self.options, torch_threads)

        self.actors = ActorGroup(f"reward provider {name!r} replica", spawn, max(1, int(replicas)), max_restarts,
                                 "rewards.max_restarts", lambda i, actor: ray.get(actor.ready.remote(), timeout=600))
        try:
            ray.get([a.ready.remote() for a in self.actors])
        except ray.exceptions.RayActorError as exc:
            cause = getattr(exc, "cause", None) or exc
            self.shutdown()
            raise RaylignError(f"reward provider {name!r} failed to start: {cause}") from None

    def score(self, samples: Sequence[Mapping[str, Any]]) -> list[Verdict]:
        """One Verdict per sample, in order; a replica that fails a batch yields ``error`` verdicts for it."""
        todo = deque(range(0, len(samples), self.batch_size))
        results: list[dict | None] = [None] * len(samples)
        pending: dict[Any, tuple[int, int, int, Any]] = {}  # ref -> (replica, first sample, count, handle)

        def submit(actor: int) -> None:
            start = todo.popleft()
            chunk = [{"completion": s.get("completion"), "task": s.get("task") or {}}
                     for s in samples[start:start + self.batch_size]]
            handle = self.actors[actor]
            pending[handle.score.remote(chunk)] = (actor, start, len(chunk), handle)

        for actor in range(len(self.actors)):
            if todo:
                submit(actor)
        while pending:
            [ref], _ = ray.wait(list(pending), num_returns=1)
            actor, start, count, handle = pending.pop(ref)
            try:
                out = ray.get(ref)
            except ray.exceptions.RayActorError as exc:  # the replica died: its batch is lost, it is replaced
                msg = f"reward provider {self.name!r} replica {actor} died while scoring this row: {death_cause(exc)}"
                out = [Verdict(status="error", error=msg).to_dict()] * count
                self.actors.replace(actor, handle, exc)  # RoleFailed past rewards.max_restarts
            except ray.exceptions.RayTaskError as exc:
                msg = f"reward provider {self.name!r} failed: {getattr(exc, 'cause', None) or exc}"
                out = [Verdict(status="error", error=msg[:500]).to_dict()] * count
            results[start:start + count] = out
            if todo:
                submit(actor)
        return [Verdict(**d) for d in results]

    def shutdown(self) -> None:
        try:  # their model copies first: a killed actor runs no clean-up
            if self.actors:
                ray.wait([a.close.remote() for a in self.actors], num_returns=len(self.actors), timeout=5.0)
        except Exception:  # noqa: BLE001 - Ray already down, or an actor gone
            pass
        self.actors.kill_all()
        self.options = {}

    @property
    def restarts(self) -> int:
        """Replicas replaced so far (``rewards.max_restarts`` bounds it)."""
        return self.actors.restarts
