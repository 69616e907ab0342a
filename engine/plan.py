"""``raylign plan CONFIG``: what a run would ask of the cluster, found without starting any actor.

For each stage: its roles (rollout replicas, learners, verifier actors, reward providers) with the resources each
actor asks Ray for (the same ``[ray]``, ``[rollout]``, ``[rewards]`` and reward-term values that
``StageContext.start_*`` pass to ``.options(...)``), where they would land on the cluster it sees, the batch
arithmetic of RL stages, and a memory estimate per actor. Stages run one after another and stop their actors
when they end, so each stage must fit the cluster on its own; the first that does not stops the plan with one
line (:class:`PlanError`).

The engine does not know what a stage does; the roles are read from what a stage's config declares:
every stage that starts from a model trains it in a ``policy`` learner; ``kl_coef > 0``, a ``reference`` key or a
``critic`` key add a frozen reference learner; a ``critic`` key adds a critic learner; ``prompts_per_step`` with
``group_size`` or ``samples_per_prompt`` makes it an RL stage with a rollout fleet and a reward (its ``rewards``
terms, else each row's verifier); a ``gold`` judge gets its own reward terms. A stage that builds its model
(``needs_input_model = False``) runs in the driver.

Memory: learners hold float32 weights; a trained one also float32 gradients and AdamW's two moments (16 bytes per
parameter), a frozen one the weights (4); activations are not counted; with ``learner_strategy = "fsdp2"`` each
of the N ranks of a trained learner holds 1/N of that. A rollout engine holds the weights in the checkpoint's
dtype plus its KV cache (``kv_cache_gb`` on CPUs; on GPUs vLLM takes ``gpu_memory_utilization`` of each GPU,
weights included). In colocated mode (``[ray] placement = "colocated"``) an RL stage's rollout replicas and policy
learner ranks are one role, a bundle each pair (engine/colocate.py): on GPUs its memory per device is the learner's
(it stays while the engine generates) plus the engine's ``gpu_memory_utilization`` share, and the two must fit
one GPU; the engine sleeps while the learner trains, so the learner's activations (not counted) get the engine's
share then. Parameter counts come from the model directory (safetensors headers, else
config.json), or from a ``size`` table for a model built from scratch.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from raylign.engine.cluster_view import Bundle, ClusterView, Fit, fit, local_cluster, remote_cluster
from raylign.engine.config import Config
from raylign.engine.errors import ConfigError
from raylign.engine.param_count import ModelInfo, human, human_bytes, model_info, size_params
from raylign.engine.placement import (
    Group,
    colocated_group,
    learner_group,
    provider_group,
    rollout_group,
    verifier_group,
)

GIB = 1 << 30


class PlanError(ConfigError):
    """The cluster cannot hold what the config asks for; the message is one line naming the stage and role."""


@dataclass(frozen=True)
class Role:
    name: str  # "rollout", "learner policy", "verifiers", "provider reward_model", ...
    actors: int  # how many actors of it run at once
    resources: dict[str, float]  # what each actor asks Ray for
    memory: float | None  # bytes per actor (None: unknown)
    memory_note: str  # how the estimate is made
    gpu_memory: float | None = None  # bytes per GPU it needs at least (None: runs on CPU, or unknown)
    gpu_fraction: float = 0.0  # the share of a GPU's memory it may use (0: its GPU resource share)
    gpu_what: str = ""  # what ``gpu_memory`` holds ("" = memory_note)
    strategy: str = ""  # its placement group's strategy (engine/placement.py)
    key: str = ""  # the config key that pins it with custom resources


@dataclass
class StagePlan:
    name: str
    plugin: str
    model: ModelInfo | None  # the model the stage trains (or builds)
    roles: list[Role] = field(default_factory=list)
    batch: list[str] = field(default_factory=list)  # batch arithmetic, one line each
    warnings: list[str] = field(default_factory=list)
    blockers: list[str] = field(default_factory=list)  # what a run would fail on, besides placement
    placement: Fit | None = None
    driver_only: str = ""  # set for a stage that starts no actor
    unknown: str = "model size unknown"  # said when ``model`` is None


# ---------------------------------------------------------------------------------------------- models


def _find_model(ref: str, base_dir: Path) -> Path | None:
    for p in (Path(ref), base_dir / ref):
        if (p / "config.json").is_file():
            return p
    return None


def _built_model(cfg: Any) -> ModelInfo | None:
    size = getattr(cfg, "size", None)
    if size is None or not hasattr(size, "hidden_size"):
        return None
    vocab = int(getattr(cfg, "vocab_size", 0) or 0)
    return ModelInfo(size_params(size, vocab), "float32", f"built from its `size` (vocabulary <= {vocab})")


# ---------------------------------------------------------------------------------------------- roles


def _role(group: Group, actors: int, memory: float | None, note: str, **kw: Any) -> Role:
    """A role whose resources, strategy and pinning key come from its placement group (engine/placement.py)."""
    return Role(kw.pop("name", group.role), actors, dict(group.bundles[0]), memory, note, strategy=group.strategy,
                key=group.key if group.custom() else "", **kw)


def _learners(spec_cfg: Any, cfg: Config, model: ModelInfo | None) -> list[Role]:
    ray = cfg.ray
    n = max(1, int(getattr(ray, "learners", 1) or 1))  # data-parallel learners, when configured
    names = ["trained"]
    if hasattr(spec_cfg, "critic"):
        names += ["critic", "reference"]
    elif getattr(spec_cfg, "kl_coef", 0) > 0 or hasattr(spec_cfg, "reference"):
        names.append("reference")
    roles = []
    for name in names:
        trained = name != "reference"
        per_param = 16 if trained else 4
        shards = n if trained and n > 1 and getattr(ray, "learner_strategy", "ddp") == "fsdp2" else 1
        mem = model.params * per_param / shards if model else None  # per rank (ddp: a full copy each)
        note = ("fp32 weights + grads + AdamW moments, 16 B/param" if trained else "fp32 weights, 4 B/param")
        if shards > 1:
            note += f", sharded over the {n} fsdp2 ranks (1/{n} each; the layer being gathered is not counted)"
        elif trained and n > 1:
            note += f", each of the {n} data-parallel ranks holding a full copy"
        label = "learner" if name == "trained" else f"learner {name}"
        group = learner_group(ray, n if trained else 1, name if name != "trained" else "policy")
        roles.append(_role(group, n if trained else 1, mem, note, name=label,
                           gpu_memory=mem if ray.learner_num_gpus else None))
    return roles


def _rollout(cfg: Config, model: ModelInfo | None, gpus_mem: float | None) -> Role:
    r = cfg.rollout
    group = rollout_group(r)
    weights = model.params * model.dtype_bytes if model else None
    tp = max(1, r.tensor_parallel_size)
    if r.num_gpus > 0:
        per_gpu = r.gpu_memory_utilization * gpus_mem if gpus_mem else None
        mem = per_gpu * tp if per_gpu else None
        shown = human_bytes(weights) if weights else "?"
        note = (f"vLLM takes gpu_memory_utilization {r.gpu_memory_utilization:g} of each of its {tp} GPU(s) "
                f"(weights {shown} / {tp} + KV cache)")
        return _role(group, r.num_workers, mem, note, gpu_memory=weights / tp if weights else None,
                     gpu_fraction=r.gpu_memory_utilization,
                    gpu_what=f"{model.dtype if model else ''} weights over tensor_parallel_size {tp}")
    mem = (weights or 0) + r.kv_cache_gb * GIB
    shown = f"{human_bytes(weights)} ({model.dtype})" if model else "? (model size unknown)"
    note = f"weights {shown} + KV cache kv_cache_gb {r.kv_cache_gb}"
    return _role(group, r.num_workers, mem if weights is not None else None, note)


def _colocate(roles: list[Role], cfg: Config, gpu_mem: float | None) -> tuple[list[Role], list[str]]:
    """Colocated mode: the rollout role and the policy learner role become one role of shared bundles. Returns the
    roles and the blockers (a pair that does not fit one GPU's memory)."""
    rollout = next(r for r in roles if r.name == "rollout")
    learner = next(r for r in roles if r.name == "learner")
    ray, r = cfg.ray, cfg.rollout
    group = colocated_group(ray, r)
    blockers = []
    if r.num_gpus > 0 and gpu_mem:
        engine = r.gpu_memory_utilization * gpu_mem
        learned = learner.memory or 0.0
        mem = learned + engine
        note = (f"per GPU: learner {human_bytes(learned)} ({learner.memory_note}; it stays while the engine "
                f"generates) + vLLM gpu_memory_utilization {r.gpu_memory_utilization:g} x {human_bytes(gpu_mem)} = "
                f"{human_bytes(engine)} (weights + KV cache; asleep at rollout.sleep_level {r.sleep_level} while the "
                f"learner trains) = {human_bytes(mem)} of {human_bytes(gpu_mem)}")
        if mem > gpu_mem:
            blockers.append(f"colocated learner {human_bytes(learned)} + vLLM {human_bytes(engine)} "
                            f"(gpu_memory_utilization {r.gpu_memory_utilization:g}) need {human_bytes(mem)} per GPU, "
                            f"it has {human_bytes(gpu_mem)}: lower rollout.gpu_memory_utilization or add learners")
        if rollout.gpu_memory and rollout.gpu_memory > engine:
            blockers.append(f"colocated rollout needs >= {human_bytes(rollout.gpu_memory)} per GPU "
                            f"({rollout.gpu_what}), it gets {human_bytes(engine)} (gpu_memory_utilization "
                            f"{r.gpu_memory_utilization:g} of {human_bytes(gpu_mem)})")
    else:
        mem = (learner.memory or 0.0) + (rollout.memory or 0.0) if learner.memory and rollout.memory else None
        note = (f"learner ({learner.memory_note}) + engine ({rollout.memory_note}) in one bundle; the engine sleeps "
                f"while the learner trains (on CPU it frees nothing)")
    role = Role(f"rollout + learner (colocated, bundle i = replica i + rank i)", len(group.bundles),
                dict(group.bundles[0]), mem, note, strategy=group.strategy, key=group.key if group.custom() else "")
    return [role] + [x for x in roles if x is not rollout and x is not learner], blockers


def _reward_roles(terms: list, registry: Any, cfg: Config, where: str, models: dict[str, ModelInfo | None],
                  base_dir: Path, label: str) -> list[Role]:
    from raylign.engine.rewards.mix import ROUTED, RewardMix

    roles, verifiers = [], []
    for i, t in enumerate(terms):
        kind = RewardMix.kind_of(t, registry, f"{where}[{i}]")
        if kind == "verifier":
            verifiers.append("each row's verifier" if t.name == ROUTED else t.name)
            continue
        info = None
        if t.model:
            info = models.get(t.model) if t.model in models else (
                model_info(p) if (p := _find_model(t.model, base_dir)) else None)
        mem = info.params * 4 if info else None
        roles.append(_role(provider_group(t, f"{where}[{i}]"), max(1, t.replicas), mem,
                           f"fp32 weights of {t.model or 'its model'}, 4 B/param" if info else "unknown (no model)",
                           name=f"{label}provider {t.key}", gpu_memory=mem if t.num_gpus else None))
    if verifiers:
        rw = cfg.rewards
        group = verifier_group(rw)
        res = {k: v for k, v in group.bundles[0].items() if k != "GPU"}
        roles.insert(0, Role(f"{label}verifiers ({', '.join(verifiers)})", max(1, rw.num_workers), res, None,
                             f"{rw.procs_per_worker} processes, each capped at memory_mb {rw.memory_mb} of "
                             f"address space", strategy=group.strategy, key=group.key if group.custom() else ""))
    return roles


def _terms(spec_cfg: Any) -> list:
    from raylign.engine.rewards.mix import ROUTED, RewardTerm

    terms = list(getattr(spec_cfg, "rewards", ()) or ())
    return terms or [RewardTerm(name=ROUTED)]


def _is_rl(c: Any) -> bool:
    return hasattr(c, "prompts_per_step") and (hasattr(c, "group_size") or hasattr(c, "samples_per_prompt"))


# ---------------------------------------------------------------------------------------------- batches


def batch_lines(c: Any, rollout_max_len: int) -> tuple[list[str], list[str]]:
    """(lines, warnings): the batch arithmetic a stage's config implies, in prompts x samples."""
    lines: list[str] = []
    warns: list[str] = []
    steps = getattr(c, "steps", None)
    if _is_rl(c):
        p = c.prompts_per_step
        g = getattr(c, "group_size", None) or getattr(c, "samples_per_prompt", 1)
        n = p * g
        mbs = max(1, getattr(c, "micro_batch_size", n))
        if hasattr(c, "epochs"):
            mini = max(1, getattr(c, "mini_batches", 1))
            updates, per = c.epochs * mini, n / mini
            how = f"{c.epochs} epochs x {mini} mini-batches of {per:g}"
        else:
            updates = max(1, getattr(c, "updates_per_batch", 1))
            per = n / updates
            how = f"the batch split into {updates} part(s) of {per:g}"
        prompt_len = getattr(c, "max_prompt_tokens", 0)
        new = getattr(c, "max_new_tokens", 0)
        lines.append(f"{p} prompts x {g} samples = {n} completions per step"
                     + (f", {steps} steps" if steps else ""))
        lines.append(f"{updates} optimizer update(s) per batch ({how}), {math.ceil(per / mbs)} micro-batch(es) of "
                     f"<= {mbs} sequences each")
        lines.append(f"tokens per step <= {n} x ({prompt_len} prompt + {new} new) = {n * (prompt_len + new):,}")
        if getattr(c, "dynamic_sampling", False):
            lines.append(f"dynamic sampling: up to {1 + getattr(c, 'max_refills', 0)} rollout rounds per step")
        if per != int(per):
            warns.append(f"{n} completions do not split evenly into {updates} update(s)")
        if prompt_len + new > rollout_max_len:
            warns.append(f"max_prompt_tokens {prompt_len} + max_new_tokens {new} > rollout.max_model_len "
                         f"{rollout_max_len}: long prompts get cut completions")
    elif hasattr(c, "batch_size"):
        bs, mbs = c.batch_size, max(1, getattr(c, "micro_batch_size", c.batch_size))
        length = getattr(c, "max_len", None) or getattr(c, "block_size", None)
        unit = "pairs (2 sequences each)" if hasattr(c, "beta") or hasattr(c, "center_coef") else "sequences"
        lines.append(f"{bs} {unit} per optimizer step, {math.ceil(bs / mbs)} micro-batch(es) of <= {mbs}"
                     + (f", {steps} steps" if steps else ""))
        if length:
            seqs = bs * (2 if unit.startswith("pairs") else 1)
            lines.append(f"tokens per step <= {seqs} x {length} = {seqs * length:,}")
    return lines, warns


# ---------------------------------------------------------------------------------------------- the plan


def plan_stages(cfg: Config, registry: Any, view: ClusterView) -> list[StagePlan]:
    base_dir = cfg.base_dir
    model: ModelInfo | None = None
    unknown = "model size unknown"
    if cfg.run.base_model:
        found = _find_model(cfg.run.base_model, base_dir)
        model = model_info(found) if found else None
        if model is None:
            unknown = f"model size unknown: run.base_model {cfg.run.base_model!r} has no readable config.json yet"
    gpu_mem = max((g.memory_gb for n in view.nodes for g in n.gpus), default=0.0) * GIB or None
    models: dict[str, ModelInfo | None] = {}
    plans = []
    for spec in cfg.stages:
        stage_cls = registry.get("stages", spec.plugin)
        c = spec.config
        built = _built_model(c) if not getattr(stage_cls, "needs_input_model", True) else None
        sp = StagePlan(spec.name, spec.plugin, built or model, unknown=unknown)
        if built is not None or not getattr(stage_cls, "needs_input_model", True):
            sp.driver_only = "builds its model in the driver process; no actors"
        else:
            sp.roles += _learners(c, cfg, model)
            if _is_rl(c):
                sp.roles.insert(0, _rollout(cfg, model, gpu_mem))
                if cfg.ray.placement == "colocated":
                    sp.roles, blockers = _colocate(sp.roles, cfg, gpu_mem)
                    sp.blockers += blockers
                sp.roles += _reward_roles(_terms(c), registry, cfg, f"{spec.name}.rewards", models, base_dir, "")
            if getattr(c, "gold", ""):
                from raylign.engine.rewards.mix import RewardTerm

                sp.roles += _reward_roles([RewardTerm(name=c.gold)], registry, cfg, f"{spec.name}.gold", models,
                                          base_dir, "gold ")
        sp.batch, sp.warnings = batch_lines(c, cfg.rollout.max_model_len)
        r = cfg.rollout
        if _is_rl(c) and r.tensor_parallel_size > 1 and r.num_gpus < r.tensor_parallel_size:
            sp.blockers.append(f"rollout.tensor_parallel_size {r.tensor_parallel_size} needs rollout.num_gpus = "
                               f"{r.tensor_parallel_size} (one GPU per shard, on one node); it is {r.num_gpus:g}")
        bundles = [Bundle(f"stage {spec.name}: {role.name}" + (f" #{i + 1}" if role.actors > 1 else ""),
                          role.resources, group=f"stage {spec.name}: {role.name}", strategy=role.strategy,
                          key=role.key) for role in sp.roles for i in range(role.actors)]
        sp.placement = fit(bundles, view)
        _memory_checks(sp, view, gpu_mem)
        models[spec.name] = sp.model
        if not getattr(stage_cls, "side_model", False) and sp.model is not None:
            model = ModelInfo(sp.model.params, sp.model.dtype, f"the model stage {spec.name} leaves")
        plans.append(sp)
    return plans


def _memory_checks(sp: StagePlan, view: ClusterView, gpu_mem: float | None) -> None:
    if gpu_mem:
        for role in sp.roles:
            share = role.resources.get("GPU", 0.0)
            budget = gpu_mem * (role.gpu_fraction or min(1.0, share))
            if role.gpu_memory and share and role.gpu_memory > budget:
                how = (f"gpu_memory_utilization {role.gpu_fraction:g} of {human_bytes(gpu_mem)}"
                       if role.gpu_fraction else f"{min(1.0, share):g} of a {human_bytes(gpu_mem)} GPU")
                sp.blockers.append(f"{role.name} needs >= {human_bytes(role.gpu_memory)} per GPU "
                                   f"({role.gpu_what or role.memory_note}), "
                                   f"it gets {human_bytes(budget)} ({how})")
    if sp.placement is None or sp.placement.problem:
        return
    per_node: dict[str, float] = {}
    roles = {f"stage {sp.name}: {r.name}": r for r in sp.roles}
    for bundle, node in sp.placement.placed:
        role = roles.get(bundle.owner.rsplit(" #", 1)[0])
        if role and role.memory and not role.resources.get("GPU"):
            per_node[node] = per_node.get(node, 0.0) + role.memory
    for node in view.nodes:
        if node.memory_gb and per_node.get(node.name, 0.0) > node.memory_gb * GIB:
            sp.warnings.append(f"its CPU actors on node {node.name} need about {human_bytes(per_node[node.name])}, "
                               f"the node has {node.memory_gb:g} GiB of RAM")


def problems(plans: list[StagePlan]) -> list[str]:
    """The lines that stop the plan: a stage whose actors do not fit, a TP size without its GPUs, a role whose
    memory (a lower bound) exceeds its GPU share."""
    out = [p.placement.problem for p in plans if p.placement and p.placement.problem]
    return out + [f"stage {p.name}: {b}" for p in plans for b in p.blockers]


# ---------------------------------------------------------------------------------------------- printing


def render(plans: list[StagePlan], view: ClusterView) -> str:
    out = [f"cluster: {view.source}"]
    for n in view.nodes:
        keys = [k for k in ("CPU", "GPU") if k in n.resources] + sorted(n.custom)
        res = ", ".join(f"{k} {n.resources[k]:g}" for k in keys)
        extra = (f", {'RAM' if n.available is None else 'Ray memory'} {n.memory_gb:g} GiB" if n.memory_gb else "")
        gpus = f", {len(n.gpus)} x {n.gpus[0].name} {n.gpus[0].memory_gb:g} GiB" if n.gpus else ""
        free = ""
        if n.available is not None:
            free = "; free now: " + ", ".join(f"{k} {n.available.get(k, 0):g}" for k in ("CPU", "GPU")
                                              if n.resources.get(k))
        out.append(f"  node {n.name}: {res}{extra}{gpus}{free}")
    for sp in plans:
        size = f", model {human(sp.model.params)} params ({sp.model.source})" if sp.model else f", {sp.unknown}"
        out.append(f"\nstage {sp.name} ({sp.plugin}){size}")
        if sp.driver_only:
            out.append(f"  {sp.driver_only}")
        placed: dict[str, list[str]] = {}
        for bundle, node in (sp.placement.placed if sp.placement else []):
            placed.setdefault(bundle.owner.rsplit(" #", 1)[0], []).append(node)
        for role in sp.roles:
            res = ", ".join(f"{k} {v:g}" for k, v in role.resources.items() if v) or "no resources"
            nodes = placed.get(f"stage {sp.name}: {role.name}", [])
            where = ("on " + ", ".join(sorted(set(nodes)))) if nodes else "not placed"
            if nodes and role.actors > 1:
                where += f" ({role.strategy} group)"  # engine/placement.py: how Ray spreads the role's bundles
            mem = f"memory ~{human_bytes(role.memory)} each ({role.memory_note})" if role.memory else \
                f"memory: {role.memory_note}"
            out.append(f"  {role.name}: {role.actors} x [{res}] {where}; {mem}")
        for line in sp.batch:
            out.append(f"  batch: {line}")
        for w in sp.warnings:
            out.append(f"  warning: {w}")
        for b in sp.blockers:
            out.append(f"  problem: {b}")
    return "\n".join(out)


def cluster_for(cfg: Config, address: str | None) -> ClusterView:
    """The cluster a run of ``cfg`` would use: --address, else ``[ray] address``, else $RAY_ADDRESS, else local."""
    addr = address or cfg.ray.address or os.environ.get("RAY_ADDRESS", "")
    if addr:
        return remote_cluster(addr)
    return local_cluster(cfg.ray.num_cpus, cfg.ray.num_gpus)


def plan_command(args) -> int:
    from raylign.engine.config import load_config
    from raylign.engine.plugins import get_registry

    registry = get_registry()
    cfg = load_config(args.config, registry, args.overrides)
    view = cluster_for(cfg, args.address)
    plans = plan_stages(cfg, registry, view)
    print(render(plans, view), flush=True)
    stop = problems(plans)
    if stop:
        raise PlanError(f"the cluster cannot hold this plan: {stop[0]}")
    widest = max(plans, key=lambda p: len(p.placement.placed) if p.placement else 0)
    n = len(widest.placement.placed) if widest.placement else 0
    print(f"\nplan fits: the largest stage ({widest.name}) runs {n} actor(s) at once")
    return 0
