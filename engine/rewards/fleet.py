"""The reward fleet: CPU Ray actors, each owning a :class:`~raylign.engine.rewards.pool.VerifierPool`.

Each sample is routed to its verifier by name: the dataset row's ``verifier`` field, else the stage's default,
so one dataset can mix task types. Verdicts keep their status (``ok | timeout | error | invalid``); the stage
decides what a timeout or an error is worth (e.g. GRPO's ``drop_failed``), never this module.

    fleet = RewardFleet(cfg.rewards, default_verifier="math", verifier_options={"math": {...}})
    verdicts = fleet.score([{"completion": "... 42", "task": {"answer": "42"}}, ...])   # list[Verdict], in order
    metrics.update(RewardFleet.status_counts(verdicts))                                # verdict/ok, ...
    fleet.shutdown()

Actors rebuild their registry from the entry points (inside their worker processes); nothing is pickled but
names and options.

Faults: a verifier worker *process* that dies (a verifier's segfault, the OOM killer, SIGKILL) gives its row an
``error`` verdict naming the signal and is forked again from its actor's zygote; that costs nothing from any budget.
A verifier *actor* that dies gives every row it held an ``error`` verdict ("verifier actor 1 died: ...", never a
0 that looks scored) and is replaced in its placement bundle with the same verifiers loaded, at most
``rewards.max_restarts`` times over the fleet's life; the next death raises :class:`RoleFailed` (one line: actor,
node, cause). See :mod:`raylign.engine.faults`.
"""
from __future__ import annotations

from collections import deque
from typing import Any, Mapping, Sequence

import ray

from raylign.engine.config import RewardsConfig
from raylign.engine.errors import PluginError, RaylignError
from raylign.engine.faults import ActorGroup, death_cause, where_am_i
from raylign.engine.plugins import build_registry
from raylign.engine.rewards.pool import Item, VerifierPool, load_plugin_modules
from raylign.engine.types import STATUSES, Verdict

IN_FLIGHT_PER_ACTOR = 2  # chunks queued per actor, so an actor never idles between chunks


@ray.remote
class VerifierActor:
    """One member of the reward fleet: a pool of killable verifier worker processes."""

    def __init__(self, pool_kwargs: Mapping[str, Any]) -> None:
        self.pool = VerifierPool(**pool_kwargs)

    def ready(self) -> list[str]:
        """Wait until the workers loaded their plugins; the verifier names they know."""
        return self.pool.names()

    def where(self) -> dict[str, Any]:
        """This actor's pid and node (errors name them)."""
        return where_am_i()

    def load(self, names: Sequence[str]) -> None:
        """Construct each verifier in a worker now (a PluginError saying why when one cannot run here)."""
        for name in names:
            self.pool.load(name)

    def score(self, items: Sequence[Item]) -> list[dict]:
        return [v.to_dict() for v in self.pool.verify_many(items)]

    def shutdown(self) -> None:
        self.pool.close()


class RewardFleet:
    """Driver-side handle on the verifier actors.

    :param cfg: the ``[rewards]`` section (actors, CPUs per actor, deadline, memory limit).
    :param default_verifier: the verifier of rows without a ``verifier`` field (None: every row must name one).
    :param verifier_options: per-verifier constructor kwargs, ``{"math": {...}}``.
    :param procs_per_actor: verifier worker processes per actor.
    :param plugins: extra plugin modules (dotted names or ``.py`` paths) besides the entry points.
    :param entry_points: load the ``raylign`` entry-point group (False: only ``plugins``, for hermetic tests).
    :param registry: the driver's registry, checked for the verifier names (default: built from the entry points
        and ``plugins``). The actors' worker processes always build their own from the same sources.
    :param placement: where actor ``i`` runs (:class:`raylign.engine.placement.Placement`, its bundle ``i``);
        None: wherever Ray puts it.
    """

    def __init__(self, cfg: RewardsConfig, default_verifier: str | None = None,
                 verifier_options: Mapping[str, Mapping[str, Any]] | None = None, procs_per_actor: int = 2,
                 plugins: Sequence[str] = (), entry_points: bool = True, registry: Any = None,
                 placement: Any = None) -> None:
        if registry is None:
            registry = build_registry(load_plugin_modules(plugins), entry_points=entry_points)
        self._registry = registry
        self.default_verifier = default_verifier
        for name in [default_verifier, *(verifier_options or {})]:
            if name is not None:
                self._registry.get("verifiers", name)  # unknown names fail here, listing the known ones
        self.procs_per_actor = max(1, int(procs_per_actor))
        pool_kwargs = {"workers": self.procs_per_actor, "timeout_s": cfg.timeout_s, "memory_mb": cfg.memory_mb,
                       "verifier_options": {k: dict(v) for k, v in (verifier_options or {}).items()},
                       "plugins": [str(p) for p in plugins], "entry_points": entry_points}
        self._loaded: set[str] = set()  # verifiers constructed by load(): a replacement constructs them too

        def spawn(i: int):
            return VerifierActor.options(num_cpus=cfg.num_cpus, **(placement.options(i) if placement else {})) \
                .remote(pool_kwargs)

        def restore(i: int, actor) -> None:
            self._get(lambda refs: ray.get(refs, timeout=300), actor.ready.remote())
            if self._loaded:
                self._get(lambda refs: ray.get(refs, timeout=300), actor.load.remote(sorted(self._loaded)))

        self.actors = ActorGroup("verifier actor", spawn, max(1, cfg.num_workers), cfg.max_restarts,
                                 "rewards.max_restarts", restore)

    def ready(self) -> list[str]:
        """Block until every actor's workers have loaded their plugins (else a PluginError)."""
        return self._get(ray.get, [a.ready.remote() for a in self.actors])[0]

    def load(self, names: Sequence[str]) -> None:
        """Construct the named verifiers in every actor before any row is scored: one that cannot run here (a
        code sandbox this machine lacks, a bad option) stops the stage with its one-line PluginError instead of
        failing row after row."""
        for name in names:
            self._registry.get("verifiers", name)
        self._get(ray.get, [a.load.remote(sorted(set(names))) for a in self.actors])
        self._loaded |= set(names)

    def route(self, samples: Sequence[Mapping[str, Any]]) -> list[Item]:
        """``(verifier name, completion, task)`` per sample; unknown names fail before any work is sent."""
        items = []
        for i, sample in enumerate(samples):
            task = sample.get("task") or {}
            name = task.get("verifier") or self.default_verifier
            if not name:
                raise PluginError(f"sample {i} has no 'verifier' field and the stage sets no default verifier")
            items.append((name, sample.get("completion"), task))
        for name in sorted({it[0] for it in items}):
            self._registry.get("verifiers", name)
        return items

    def score(self, samples: Sequence[Mapping[str, Any]]) -> list[Verdict]:
        """Score samples (``{"completion": str, "task": dict}``) across the actors; verdicts in input order."""
        items = self.route(samples)
        size = self.procs_per_actor * 2
        todo = deque((start, items[start:start + size]) for start in range(0, len(items), size))
        results: list[dict | None] = [None] * len(items)
        pending: dict[Any, tuple[int, int, int, Any]] = {}  # ref -> (actor index, first item, item count, handle)

        def submit(actor: int) -> None:
            start, chunk = todo.popleft()
            handle = self.actors[actor]
            pending[handle.score.remote(chunk)] = (actor, start, len(chunk), handle)

        for actor in range(len(self.actors)):
            for _ in range(IN_FLIGHT_PER_ACTOR):
                if todo:
                    submit(actor)
        while pending:
            [ref], _ = ray.wait(list(pending), num_returns=1)
            actor, start, count, handle = pending.pop(ref)
            try:
                out = self._get(ray.get, ref)
            except ray.exceptions.RayActorError as exc:  # the actor itself died (not a worker): say so per row
                error = f"verifier actor {actor} died while scoring this row: {death_cause(exc)}"
                out = [Verdict(status="error", error=error).to_dict()] * count
                self.actors.replace(actor, handle, exc)  # RoleFailed past rewards.max_restarts
            results[start:start + count] = out
            if todo:
                submit(actor)
        return [Verdict(**d) for d in results]

    @staticmethod
    def status_counts(verdicts: Sequence[Verdict]) -> dict[str, int]:
        """``{"verdict/ok": n, "verdict/timeout": n, "verdict/error": n, "verdict/invalid": n}`` for metrics."""
        counts = {f"verdict/{s}": 0 for s in STATUSES}
        for v in verdicts:
            counts[f"verdict/{v.status}"] += 1
        return counts

    @property
    def restarts(self) -> int:
        """Verifier actors replaced so far (``rewards.max_restarts`` bounds it)."""
        return self.actors.restarts

    def shutdown(self) -> None:
        """Kill the worker processes and the actors."""
        try:
            ray.get([a.shutdown.remote() for a in self.actors], timeout=30)
        except Exception:  # noqa: BLE001 - an actor already gone is fine; kill below regardless
            pass
        self.actors.kill_all()

    @staticmethod
    def _get(get, refs):
        try:
            return get(refs)
        except ray.exceptions.RayTaskError as exc:  # a plugin that fails to load in the actors: its own message
            if isinstance(exc.cause, RaylignError):
                raise exc.cause from None
            raise
