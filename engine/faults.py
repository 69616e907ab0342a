"""Actors that die: one-line causes, where they ran, and replacing them within a restart budget.

Every role the driver talks to replaces its dead actors itself (Ray's own actor restarts are off: they retry the
work a dead actor held, hide the death from the role, and never stop): a replacement starts in the dead actor's
placement bundle (Ray re-reserves a lost node's bundles on any live node that has their resources), is brought
to the role's state, and counts against the role's budget. Past it, the next death raises :class:`RoleFailed`
with one line naming the role's actor, its node and the cause.

    actors = ActorGroup("verifier actor", spawn, count=2, budget=cfg.max_restarts, budget_key="rewards.max_restarts",
                        restore=lambda i, actor: ray.get(actor.ready.remote()))
    try:
        ray.get(actors[i].score.remote(rows))
    except ray.exceptions.RayActorError as exc:
        actors.replace(i, handle_that_failed, exc)   # the caller decides what the lost work becomes

The rollout fleet (engine/rollout.py) keeps its own replacement (it also reloads weights and checks the canary)
with the same helpers and budget rule (``rollout.max_restarts``).
"""
from __future__ import annotations

import logging
import os
import re
import threading
import time
from typing import Any, Callable

from raylign.engine.errors import RoleFailed

log = logging.getLogger(__name__)


def where_am_i() -> dict[str, Any]:
    """Inside an actor: its pid and node (an actor's ``where()`` returns this; errors name the node)."""
    import ray

    return {"pid": os.getpid(), "node_id": ray.get_runtime_context().get_node_id(),
            "node_ip": ray.util.get_node_ip_address()}


def node_label(info: dict[str, Any]) -> str:
    """An actor's node as errors name it: IP and Ray node id (from its ``where()``/``ready()`` info)."""
    return f"node {info.get('node_ip', '?')} (id {info.get('node_id', '?')})"


def kill_actor(handle: Any) -> None:
    """``ray.kill``, ignoring an actor that is gone already."""
    import ray

    try:
        ray.kill(handle)
    except Exception:
        pass


def one_line(exc: BaseException, limit: int = 300) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def death_cause(exc: BaseException) -> str:
    """Why an actor died, in one line, from Ray's error (whose message is a page of possible causes)."""
    text = str(exc)
    m = re.search(r"its node has died\. Node Id: (\w+)\s*(.*?)(?:\n|$)", text)
    if m:  # Cluster.remove_node, a machine lost
        return one_line(RuntimeError(f"its node {m.group(1)} died ({m.group(2).strip() or 'no detail'})"))
    m = re.search(r"Worker exit type: (\S+) Worker exit detail: (.*?)(?: Some common causes|\n|$)", text, re.S)
    if m:
        return one_line(RuntimeError(f"its process exited ({m.group(1)}: {m.group(2).strip()})"))
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return one_line(RuntimeError(lines[-1] if lines else type(exc).__name__))


class ActorGroup:
    """A role's actors, ``self[i]`` the current handle of actor ``i``; each replaced when it dies, at most
    ``budget`` times over the group's life.

    :param name: what errors call one actor ("verifier actor", "reward provider 'reward_model' replica").
    :param spawn: ``spawn(i) -> handle`` of a new actor ``i`` (its placement bundle, options); the actor has a
        ``where()`` method (:func:`where_am_i`).
    :param restore: ``restore(i, handle)``: wait for a new actor and bring it to the role's state (plugins
        loaded, ...); raises when it cannot. Called on replacements only.
    :param budget_key: the config key of ``budget``, for the error.
    """

    def __init__(self, name: str, spawn: Callable[[int], Any], count: int, budget: int, budget_key: str,
                 restore: Callable[[int, Any], None] | None = None) -> None:
        self.name, self.spawn, self.restore = name, spawn, restore
        self.budget, self.budget_key = int(budget), budget_key
        self.handles = [spawn(i) for i in range(count)]
        self._where = [h.where.remote() for h in self.handles]  # answered as soon as each actor has started
        self.restarts = 0  # actors replaced so far
        self.restart_log: list[dict[str, Any]] = []  # per replacement: actor, node, cause, seconds, new node
        self._lock = threading.RLock()

    def __getitem__(self, i: int) -> Any:
        return self.handles[i]

    def __len__(self) -> int:
        return len(self.handles)

    def __iter__(self):
        return iter(list(self.handles))

    def info(self, i: int) -> dict[str, Any]:
        """Actor ``i``'s :func:`where_am_i` (waits for it to start; {} when it died before saying)."""
        import ray

        try:
            return dict(ray.get(self._where[i], timeout=300))
        except Exception:
            return {}

    def where(self, i: int) -> str:
        """Actor ``i``'s node and pid, as far as it said before dying."""
        info = self.info(i)
        return f"{node_label(info)}, pid {info.get('pid')}" if info else "a node it never reported"

    def replace(self, i: int, dead: Any, exc: BaseException) -> Any:
        """Replace actor ``i``, whose handle ``dead`` raised ``exc``; returns the new handle (the current one when
        another thread replaced it already). Raises RoleFailed past the budget or when the replacement fails."""
        import ray

        with self._lock:
            if self.handles[i] is not dead:
                return self.handles[i]
            label, where, cause = f"{self.name} {i}", self.where(i), death_cause(exc)
            while True:
                if self.restarts >= self.budget:
                    raise RoleFailed(f"{label} on {where} died: {cause}; {self.budget_key}={self.budget} "
                                     f"replacements already made, so the run stops")
                self.restarts += 1
                t0 = time.perf_counter()
                kill_actor(dead)
                dead = self.spawn(i)
                self.handles[i], self._where[i] = dead, dead.where.remote()
                try:
                    if self.restore is not None:
                        self.restore(i, dead)
                    new_where = self.where(i)
                except ray.exceptions.RayActorError as again:  # the replacement died too: counts as a restart
                    where, cause = "its replacement's node", death_cause(again)
                    continue
                except Exception as other:
                    kill_actor(dead)
                    raise RoleFailed(f"{label} on {where} died ({cause}) and could not be replaced: "
                                     f"{one_line(other)}") from other
                seconds = time.perf_counter() - t0
                self.restart_log.append({"actor": label, "node": where, "cause": cause, "seconds": seconds,
                                         "new_node": new_where})
                log.warning("%s on %s died (%s); replaced on %s in %.1f s (restart %d of %s=%d)", label, where,
                            cause, new_where, seconds, self.restarts, self.budget_key, self.budget)
                return dead

    def kill_all(self) -> None:
        for h in self.handles:
            kill_actor(h)
        self.handles = []


def dead_learner(exc: BaseException, learners) -> str | None:
    """One line naming the learner whose death ``exc`` (or an exception it was raised from) reports: role, rank,
    node, pid and cause; None when ``exc`` is not the death of one of ``learners`` (LearnerHandles).

    Learners are not replaced in place like the other roles' actors: a new one would lack the optimizer state
    and the steps since the last checkpoint. The driver restarts the whole stage from its last checkpoint
    instead (``ray.learner_max_restarts``), which a resume already reproduces exactly."""
    import ray

    ids = {a._actor_id.hex(): (h.role, rank) for h in learners for rank, a in enumerate(h.actors)}
    seen: set[int] = set()
    e: BaseException | None = exc
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        if isinstance(e, ray.exceptions.RayActorError) and getattr(e, "actor_id", None) in ids:
            role, rank = ids[e.actor_id]
            text = str(e)
            ip = re.search(r"^\s*ip: (\S+)", text, re.M)
            pid = re.search(r"^\s*pid: (\d+)", text, re.M)
            return (f"{role} learner{f' rank {rank}' if rank else ''} on node "
                    f"{ip.group(1) if ip else '?'}, pid {pid.group(1) if pid else '?'}, died: {death_cause(e)}")
        e = e.__cause__ or e.__context__
    return None
