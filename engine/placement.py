"""Placement: what each role asks Ray for, as placement groups, and where its actors go.

Every role declares its resources in config; this module turns them into one placement group per role, used by
the engine when it starts the actors and by ``raylign plan`` when it shows where they would land:

==============  ========================================================  ==========  ===========================
role            one bundle per actor                                      strategy    pinned by
==============  ========================================================  ==========  ===========================
rollout         ``rollout.num_cpus``, ``num_gpus`` (all its TP shards)    SPREAD      ``rollout.resources``
learners        ``ray.learner_num_cpus``, ``learner_num_gpus``            PACK        ``ray.learner_resources``
verifiers       ``rewards.num_cpus``                                      SPREAD      ``rewards.resources``
providers       the term's ``num_cpus``, ``num_gpus``                     SPREAD      the term's ``resources``
==============  ========================================================  ==========  ===========================

A rollout replica is one bundle holding all ``tensor_parallel_size`` GPUs of its engine: Ray never splits a bundle
over nodes, so a replica's shards are packed on one node (what STRICT_PACK of per-shard bundles would give) and
vLLM starts its shard workers inside the actor (engine/rollout_worker.py). Replicas spread over the nodes (SPREAD
is soft: a one-node cluster holds them all); learners pack (their all-reduce stays on one node when it can).

Custom resources pin a role: start a node with ``ray start --resources='{"node_b": 100}'`` and set
``[rollout] resources = {node_b = 1}``: every rollout actor asks for one unit of ``node_b``, so they run on the
nodes that offer it (give a node as many units as actors it should hold).

Colocated mode (``[ray] placement = "colocated"``, engine/colocate.py) replaces the rollout group and the policy
learners' group with one PACK group of ``ray.learners`` bundles: bundle ``i`` holds learner rank ``i`` and rollout
replica ``i`` (CPUs, GPUs and custom resources of both, summed), so the two share a node and, on GPUs, a device
(``learner_num_gpus + rollout.num_gpus``, e.g. 0.5 + 0.5). Each actor still asks for its own share
(:class:`Share`), in its bundle. Frozen learners (reference) and critics keep groups of their own.

Ranks are stable: actor ``i`` of a role always runs in bundle ``i`` of the role's group (a replacement too), and
the group is named after the run, stage and role, so a resumed run asks for the same layout in the same order.

Importing this module imports neither Ray nor torch (``raylign plan`` uses it on a described cluster).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from raylign.engine.cluster_view import Bundle, ClusterView, Fit, Node, fit
from raylign.engine.errors import ConfigError

PACK, SPREAD, STRICT_PACK = "PACK", "SPREAD", "STRICT_PACK"


class PlacementError(ConfigError):
    """A role's placement group cannot be reserved on the cluster; one line naming the role and its config key."""


@dataclass(frozen=True)
class Group:
    """The placement of one role: a bundle per actor, in rank order."""

    role: str  # "rollout", "learner policy", "verifiers", "provider reward_model"
    key: str  # the config key that pins it ("rollout.resources"), for messages
    bundles: tuple[Mapping[str, float], ...]  # what each actor asks Ray for (CPU, GPU, custom resources)
    strategy: str  # PACK | SPREAD | STRICT_PACK

    def custom(self, index: int = 0) -> dict[str, float]:
        """The custom resources of actor ``index`` (what ``.options(resources=...)`` takes)."""
        return {k: v for k, v in self.bundles[index].items() if k not in ("CPU", "GPU") and v}


def resources(cpus: float, gpus: float, custom: Mapping[str, float] | None = None) -> dict[str, float]:
    """One actor's request: CPUs, GPUs and the custom resources that pin it."""
    return {"CPU": float(cpus), "GPU": float(gpus), **{k: float(v) for k, v in dict(custom or {}).items()}}


def rollout_group(cfg: Any, count: int | None = None) -> Group:
    """The rollout fleet (``[rollout]``): one bundle per replica with every GPU of its tensor-parallel engine."""
    n = cfg.num_workers if count is None else count
    return Group("rollout", "rollout.resources", (resources(cfg.num_cpus, cfg.num_gpus, cfg.resources),) * n, SPREAD)


def learner_group(ray_cfg: Any, count: int = 1, role: str = "policy") -> Group:
    """``count`` learners of one role (data-parallel ranks), packed (``[ray] learner_*``)."""
    res = resources(ray_cfg.learner_num_cpus, ray_cfg.learner_num_gpus, ray_cfg.learner_resources)
    return Group(f"learner {role}", "ray.learner_resources", (res,) * max(1, count), PACK)


def colocated_group(ray_cfg: Any, rollout_cfg: Any) -> Group:
    """Colocated mode: ``ray.learners`` bundles, each a policy learner rank plus a rollout replica, packed."""
    custom = dict(ray_cfg.learner_resources)
    for k, v in rollout_cfg.resources.items():
        custom[k] = custom.get(k, 0.0) + v
    res = resources(ray_cfg.learner_num_cpus + rollout_cfg.num_cpus, ray_cfg.learner_num_gpus + rollout_cfg.num_gpus,
                    custom)
    return Group("colocated", "ray.placement", (res,) * max(1, ray_cfg.learners), PACK)


def check_colocated(ray_cfg: Any, rollout_cfg: Any) -> None:
    """What colocated mode needs of the config (one-line ConfigError naming the key); nothing in separate mode."""
    if ray_cfg.placement != "colocated":
        return
    if rollout_cfg.max_staleness > 0:
        raise ConfigError(f"ray.placement = \"colocated\" needs rollout.max_staleness = 0 (the engines sleep while "
                          f"the learner trains, so they cannot generate ahead); it is {rollout_cfg.max_staleness}")
    if rollout_cfg.num_workers != ray_cfg.learners:
        raise ConfigError(f"ray.placement = \"colocated\" puts rollout replica i beside learner rank i: set "
                          f"rollout.num_workers = ray.learners (they are {rollout_cfg.num_workers} and "
                          f"{ray_cfg.learners})")
    if rollout_cfg.tensor_parallel_size > 1:
        raise ConfigError(f"ray.placement = \"colocated\" shares one bundle's GPU between a learner rank and one "
                          f"engine: rollout.tensor_parallel_size must be 1, got {rollout_cfg.tensor_parallel_size}")
    gpus = ray_cfg.learner_num_gpus + rollout_cfg.num_gpus
    if gpus > 1 and gpus != int(gpus):
        raise ConfigError(f"ray.placement = \"colocated\": ray.learner_num_gpus + rollout.num_gpus = {gpus:g} is a "
                          f"fraction above 1, which Ray cannot reserve; share one GPU (e.g. 0.5 + 0.5)")


def verifier_group(cfg: Any) -> Group:
    """The verifier actors of the reward fleet (``[rewards]``)."""
    return Group("verifiers", "rewards.resources", (resources(cfg.num_cpus, 0.0, cfg.resources),) *
                 max(1, cfg.num_workers), SPREAD)


def provider_group(term: Any, path: str) -> Group:
    """The replicas of one reward-provider term; ``path`` is the term's config key (``ppo.rewards[0]``)."""
    res = resources(term.num_cpus, term.num_gpus, term.resources)
    return Group(f"provider {term.key}", f"{path}.resources", (res,) * max(1, term.replicas), SPREAD)


# ---------------------------------------------------------------------------------------------- on a cluster view


def bundles(group: Group, owner: str) -> list[Bundle]:
    """The group as :class:`Bundle` rows for :func:`raylign.engine.cluster_view.fit` (one per actor)."""
    many = len(group.bundles) > 1
    return [Bundle(f"{owner}{group.role}" + (f" #{i + 1}" if many else ""), res, group=f"{owner}{group.role}",
                   strategy=group.strategy, key=group.key if group.custom() else "")
            for i, res in enumerate(group.bundles)]


def check(group: Group, view: ClusterView) -> Fit:
    """Where the group's actors would go on an empty ``view``; ``problem`` when no cluster of its nodes could."""
    return fit(bundles(group, ""), view)


def pinned_groups(cfg: Any) -> list[Group]:
    """The roles ``cfg`` pins with custom resources (engine sections and the stages' reward terms), one actor each."""
    groups = [rollout_group(cfg.rollout, 1), learner_group(cfg.ray), verifier_group(cfg.rewards)]
    for spec in cfg.stages:
        for i, term in enumerate(getattr(spec.config, "rewards", ()) or ()):
            groups.append(provider_group(term, f"{spec.name}.rewards[{i}]"))
    return [g for g in groups if g.custom()]


def check_pins(cfg: Any, address: str | None = None) -> None:
    """Stop (PlacementError, one line naming the key) when a role is pinned to a custom resource that no node of
    the cluster the run would use offers, or offers too little of: ``raylign run`` calls it before the run
    directory or any actor exists. Asks the cluster only when something is pinned."""
    groups = pinned_groups(cfg)
    if not groups:
        return
    from raylign.engine.plan import cluster_for

    view = cluster_for(cfg, address)
    for g in groups:
        problem = fit([Bundle(g.role, g.custom(), key=g.key)], view).problem
        if problem:
            raise PlacementError(problem)


# ---------------------------------------------------------------------------------------------- on Ray


class Placement:
    """A reserved placement group for one role (made by :func:`reserve`); ``options(i)`` places actor ``i``."""

    def __init__(self, group: Group, pg: Any) -> None:
        self.group, self.pg = group, pg

    def options(self, index: int) -> dict[str, Any]:
        """Keyword arguments for ``ActorClass.options(...)`` beside num_cpus/num_gpus: the custom resources and
        the scheduling strategy that put actor ``index`` into bundle ``index``."""
        from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

        out: dict[str, Any] = {"scheduling_strategy": PlacementGroupSchedulingStrategy(
            placement_group=self.pg, placement_group_bundle_index=index % len(self.group.bundles))}
        if self.group.custom(index):
            out["resources"] = self.group.custom(index)
        return out

    def nodes(self) -> list[str]:
        """The node id of each bundle, in rank order (from Ray's placement-group table)."""
        from ray.util import placement_group_table

        table = placement_group_table(self.pg)
        where = table.get("bundles_to_node_id", {})
        return [where.get(i, "") for i in range(len(self.group.bundles))]

    def remove(self) -> None:
        """Release the group (actors still in it are killed by Ray)."""
        from ray.util import remove_placement_group

        try:
            remove_placement_group(self.pg)
        except Exception:  # noqa: BLE001 - already removed, or Ray gone at exit
            pass


class Share:
    """One role's actors in a shared (colocated) placement: actor ``i`` goes into bundle ``i`` of ``placement`` and
    asks for its own custom resources (``group``: the role's own group, as in separate mode)."""

    def __init__(self, placement: Placement, group: Group) -> None:
        self.placement, self.group, self.pg = placement, group, placement.pg

    def options(self, index: int) -> dict[str, Any]:
        out = self.placement.options(index)
        out.pop("resources", None)
        if self.group.custom(index):
            out["resources"] = self.group.custom(index)
        return out

    def nodes(self) -> list[str]:
        return self.placement.nodes()[:len(self.group.bundles)]

    def remove(self) -> None:
        """Nothing: the shared group is released by its owner (the stage)."""


def _ray_bundle(res: Mapping[str, float]) -> dict[str, float]:
    out = {k: float(v) for k, v in res.items() if v}
    return out or {"CPU": 0.001}  # Ray refuses an empty bundle; an actor asking for nothing fits this one


def live_view() -> ClusterView:
    """The nodes of the Ray this process is connected to (totals), for :func:`check`."""
    import ray

    nodes = tuple(Node(f"{n.get('NodeManagerAddress', '?')} {n['NodeID'][:8]}",
                       {k: float(v) for k, v in n.get("Resources", {}).items()
                        if k not in ("memory", "object_store_memory")})
                  for n in ray.nodes() if n.get("Alive"))
    return ClusterView("the running cluster", nodes)


def reserve(group: Group, name: str, timeout_s: float = 120.0) -> Placement:
    """Reserve ``group``'s bundles on the running Ray (in order: bundle ``i`` is rank ``i``).

    A bundle no node could hold (a custom resource no node offers, more GPUs than a node has) fails at once; one
    the cluster cannot hold now fails after ``timeout_s`` (``ray.placement_timeout_s``), naming what is free.
    """
    import ray
    from ray.util import placement_group

    problem = check(group, live_view()).problem
    if problem:
        raise PlacementError(problem)
    pg = placement_group([_ray_bundle(b) for b in group.bundles], strategy=group.strategy, name=name)
    ready, _ = ray.wait([pg.ready()], timeout=timeout_s)
    if not ready:
        from ray.util import remove_placement_group

        remove_placement_group(pg)
        free = ray.available_resources()
        shown = ", ".join(f"{k} {v:g}" for k, v in sorted(free.items()) if not k.startswith("node:")
                          and k not in ("memory", "object_store_memory"))
        raise PlacementError(f"cannot place {group.role}: Ray did not reserve {len(group.bundles)} x "
                             f"[{', '.join(f'{k} {v:g}' for k, v in group.bundles[0].items() if v)}] within "
                             f"ray.placement_timeout_s = {timeout_s:g} s (free now: {shown or 'nothing'})")
    return Placement(group, pg)
