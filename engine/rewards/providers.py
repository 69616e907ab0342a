"""Reward providers as Ray actors: a registered provider class (a served reward model, ...) built inside each
actor, scored in batches spread over the replicas.

    pool = ProviderPool("reward_model", {"model": "/runs/x/models/reward_model"}, replicas=2, num_cpus=1.0,
                        batch_size=64)
    verdicts = pool.score([{"completion": "...", "task": row}, ...])   # list[Verdict], in input order
    pool.shutdown()

The actors rebuild their registry from the entry points (only the provider's name and options cross), like
every other role. A replica that dies is restarted by Ray; the batch it held is retried once.
"""
from __future__ import annotations

from collections import deque
from typing import Any, Mapping, Sequence

import ray

from raylign.engine.errors import RaylignError
from raylign.engine.types import Verdict


@ray.remote
class ProviderActor:
    """One replica of a reward provider: ``cls(**options)`` from the actor's own registry."""

    def __init__(self, name: str, options: Mapping[str, Any], torch_threads: int = 0) -> None:
        from raylign.engine.cluster import set_torch_threads
        from raylign.engine.plugins import build_registry

        try:
            set_torch_threads(torch_threads)
        except ImportError:  # a provider without torch
            pass
        self.provider = build_registry().get("reward_providers", name)(**dict(options))

    def ready(self) -> bool:
        return True

    def score(self, samples: Sequence[Mapping[str, Any]]) -> list[dict]:
        out = list(self.provider.score(list(samples)))
        if len(out) != len(samples):
            raise RaylignError(f"reward provider returned {len(out)} verdicts for {len(samples)} samples")
        return [Verdict.coerce(v).to_dict() for v in out]


class ProviderPool:
    """Driver-side handle on the replicas of one reward provider.

    :param name: the registered reward provider.
    :param options: keyword arguments of the provider's constructor.
    :param replicas: actors serving it.
    :param num_cpus: logical CPUs per actor. :param num_gpus: GPUs per actor.
    :param batch_size: samples per call (the provider's own batching works within it).
    :param torch_threads: torch threads per actor (0 = the engine's default).
    :param placement: where replica ``i`` runs (:class:`raylign.engine.placement.Placement`); None: anywhere.
    """

    def __init__(self, name: str, options: Mapping[str, Any], replicas: int = 1, num_cpus: float = 1.0,
                 num_gpus: float = 0.0, batch_size: int = 64, torch_threads: int = 0, placement: Any = None) -> None:
        self.name = name
        self.batch_size = max(1, int(batch_size))
        self.actors = [ProviderActor.options(num_cpus=num_cpus, num_gpus=num_gpus, max_restarts=1, max_task_retries=1,
                                             **(placement.options(i) if placement else {}))
                       .remote(name, dict(options), torch_threads) for i in range(max(1, int(replicas)))]
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
        pending: dict[Any, tuple[int, int, int]] = {}

        def submit(actor: int) -> None:
            start = todo.popleft()
            chunk = [{"completion": s.get("completion"), "task": s.get("task") or {}}
                     for s in samples[start:start + self.batch_size]]
            pending[self.actors[actor].score.remote(chunk)] = (actor, start, len(chunk))

        for actor in range(len(self.actors)):
            if todo:
                submit(actor)
        while pending:
            [ref], _ = ray.wait(list(pending), num_returns=1)
            actor, start, count = pending.pop(ref)
            try:
                out = ray.get(ref)
            except (ray.exceptions.RayActorError, ray.exceptions.RayTaskError) as exc:
                msg = f"reward provider {self.name!r} failed: {getattr(exc, 'cause', None) or exc}"
                out = [Verdict(status="error", error=msg[:500]).to_dict()] * count
            results[start:start + count] = out
            if todo:
                submit(actor)
        return [Verdict(**d) for d in results]

    def shutdown(self) -> None:
        for a in self.actors:
            try:
                ray.kill(a)
            except Exception:  # noqa: BLE001 - already gone
                pass
        self.actors = []
