"""FSDP2 for data-parallel learners (``[ray] learner_strategy = "fsdp2"``): sharding a learner's model over its
group, and moving whole tensors in and out of the shards.

:func:`shard_model` wraps each decoder layer (the classes an HF model lists in ``_no_split_modules``) and then the
root (embeddings, final norm, head) with ``torch.distributed.fsdp.fully_shard``: every rank keeps 1/N of each
parameter (a DTensor sharded on dim 0), of its gradient and of the AdamW state built on it; a forward gathers a
layer's parameters just before that layer runs and frees them after it. Gradients are *summed* over the ranks
(FSDP's default is the mean): the losses divide by step-wide constants, so the sum is the single learner's
gradient, as with ``ddp``.

What leaves the learner is always whole: :func:`full_tensors` gathers one tensor at a time (every rank takes part
in each gather; the callers keep rank 0's), so a checkpoint, a model directory or a weight sync looks exactly
like one learner's, and a run can resume under the other strategy. :func:`load_full_state` and
:func:`shard_optimizer_state` go the other way: every rank keeps its slice of a whole tensor (no message).
"""
from __future__ import annotations

from typing import Any, Iterator, Mapping

import torch

PARAM_DTYPES = ("auto", "float32", "bfloat16")  # ray.learner_param_dtype


def param_dtype(name: str, device: str) -> torch.dtype:
    """The dtype FSDP gathers parameters in for compute: ``auto`` is bfloat16 on GPUs, float32 on CPUs (the
    shards, the gradients' reduction and the optimizer stay float32 either way)."""
    if name not in PARAM_DTYPES:
        raise ValueError(f"unknown learner_param_dtype {name!r}: expected one of {', '.join(PARAM_DTYPES)}")
    if name == "auto":
        return torch.bfloat16 if device == "cuda" else torch.float32
    return getattr(torch, name)


def layer_modules(model: torch.nn.Module) -> list[torch.nn.Module]:
    """The model's repeated blocks: the modules whose class the model names in ``_no_split_modules`` (HF's list of
    its decoder layers), in module order."""
    names = set(getattr(model, "_no_split_modules", None) or ())
    layers = [m for m in model.modules() if type(m).__name__ in names]
    if not layers:
        raise ValueError(f"{type(model).__name__} names no decoder layer class in _no_split_modules: "
                         f"learner_strategy = 'fsdp2' shards per layer")
    return layers


def shard_model(model: torch.nn.Module, device: str, dtype: str = "auto",
                roots: list[torch.nn.Module] | None = None) -> torch.nn.Module:
    """Shard ``model`` (in place) over the default process group: each decoder layer, then each of ``roots``, the
    modules the learner calls (default: the model; a value learner calls its body and its ``score`` head, each of
    which then gathers its own parameters). Call it on every rank at once, after every rank holds the same
    weights; build the optimizer afterwards (the parameters are replaced by sharded ones)."""
    import torch.distributed as dist
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import FSDPModule, MixedPrecisionPolicy, fully_shard

    mesh = init_device_mesh(device, (dist.get_world_size(),))
    policy = MixedPrecisionPolicy(param_dtype=param_dtype(dtype, device), reduce_dtype=torch.float32)
    for layer in layer_modules(model):
        fully_shard(layer, mesh=mesh, mp_policy=policy)
    for root in roots or [model]:
        fully_shard(root, mesh=mesh, mp_policy=policy)
    for m in model.modules():
        if isinstance(m, FSDPModule):  # sum, not mean (gloo has no PREMUL_SUM, so force a plain SUM)
            m.set_gradient_divide_factor(1.0)
            m.set_force_sum_reduction_for_comms(True)
    return model


def is_sharded(t: Any) -> bool:
    from torch.distributed.tensor import DTensor

    return isinstance(t, DTensor)


def full_tensor(t: torch.Tensor) -> torch.Tensor:
    """The whole tensor of a shard (a collective: every rank calls it for the same tensor), a plain one as it is."""
    return t.full_tensor() if is_sharded(t) else t


def reshard(model: torch.nn.Module) -> torch.nn.Module:
    """Put every FSDP2 module of ``model`` back on its shards. A forward without a backward (a no-grad forward:
    the sync canary's logprobs) leaves the root module's parameters gathered, and reading them then (the weights
    a sync packs) crashed the process (SIGSEGV in the copy) on torch 2.13's CPU build."""
    from torch.distributed.fsdp import FSDPModule

    for m in model.modules():
        if isinstance(m, FSDPModule):
            m.reshard()
    return model


def model_tensors(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The model's state dict names mapped to its own parameter and buffer objects (``state_dict()`` makes a new
    object per name for a shard, so tied weights would no longer show as one tensor; these do, on every rank)."""
    own = {**dict(model.named_buffers(remove_duplicate=False)), **dict(model.named_parameters(remove_duplicate=False))}
    return {name: own.get(name, t) for name, t in model.state_dict().items()}


def full_tensors(state: Mapping[str, torch.Tensor], keep: bool = True,
                 device: str | None = "cpu") -> Iterator[tuple[str, torch.Tensor | None]]:
    """``(name, whole tensor)`` of a state dict whose values may be shards, one gather at a time (every rank
    iterates the same dict at once). ``keep=False`` (ranks other than 0) yields None instead of each tensor, which
    is freed as soon as gathered; ``device``: where a kept tensor goes (None: where it was gathered). An object the
    dict holds under two names (tied embeddings, :func:`model_tensors`) is gathered once and yielded as the same
    tensor for both."""
    seen: dict[int, torch.Tensor | None] = {}
    for name, t in state.items():
        key = id(t)
        if key not in seen:
            whole = full_tensor(t.detach())
            if not keep:
                whole = None
            elif device is not None:
                whole = whole.to(device)
            seen[key] = whole
        yield name, seen[key]


def gather_state(state: Mapping[str, torch.Tensor], keep: bool = True) -> dict[str, torch.Tensor] | None:
    """The whole state dict on CPU (rank 0: ``keep``), None on the others (which still take part)."""
    out = dict(full_tensors(state, keep))
    return out if keep else None


def unsharded_copy(model: torch.nn.Module, state: Mapping[str, torch.Tensor]) -> torch.nn.Module:
    """A plain model of ``model``'s own class and config holding ``state`` (whole tensors, used in place: no
    copy), for writing an HF model dir (a sharded model would save its FSDP class name as the architecture)."""
    from torch.distributed.fsdp import FSDPModule

    cls = next(c for c in type(model).__mro__ if not issubclass(c, FSDPModule))
    with torch.device("meta"):
        plain = cls._from_config(model.config)
    plain.load_state_dict(dict(state), assign=True)
    if getattr(model.config, "tie_word_embeddings", False):
        plain.tie_weights()
    return plain


def clip_grad_norm(params: list[torch.Tensor], max_norm: float) -> torch.Tensor:
    """``torch.nn.utils.clip_grad_norm_`` for sharded gradients: the norm of the whole gradient (each rank's
    shard norms combined, a collective), every shard scaled by the same factor. Returns the norm before clipping."""
    grads = [p.grad for p in params]
    if not grads:
        return torch.tensor(0.0)
    norm = torch.nn.utils.get_total_norm(grads, 2.0)
    norm = full_tensor(norm)
    torch.nn.utils.clip_grads_with_norm_(params, max_norm, norm)
    return norm


def _slice_like(whole: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """This rank's slice of ``whole`` placed as the shard ``like`` (no message: every rank holds ``whole``)."""
    from torch.distributed.tensor import distribute_tensor

    return distribute_tensor(whole.to(like.device, like.dtype), like.device_mesh, like.placements,
                             src_data_rank=None)


@torch.no_grad()
def load_full_state(model: torch.nn.Module, state: Mapping[str, torch.Tensor]) -> None:
    """Copy a whole state dict (every rank holds it) into a sharded ``model``: each shard takes its slice."""
    own = model.state_dict()
    missing = own.keys() - state.keys()
    if missing:
        raise KeyError(f"the state dict lacks {sorted(missing)[:3]} ...")
    for name, t in own.items():
        src = state[name]
        if is_sharded(t):
            t.to_local().copy_(_slice_like(src, t).to_local())
        else:
            t.copy_(src)


def gather_optimizer_state(opt: torch.optim.Optimizer, keep: bool = True) -> dict | None:
    """``opt.state_dict()`` with every shard made whole, on CPU: the format of an optimizer over the unsharded
    model (parameters by index), so a checkpoint loads under either strategy. None on ranks that do not ``keep``."""
    sd = opt.state_dict()
    state = {}
    for idx, entry in sd["state"].items():  # the same order on every rank: gathers match
        state[idx] = {k: (full_tensor(v).cpu() if isinstance(v, torch.Tensor) else v) for k, v in entry.items()}
        if not keep:
            state[idx] = None
    return {"state": state, "param_groups": sd["param_groups"]} if keep else None


def shard_optimizer_state(opt: torch.optim.Optimizer, sd: dict) -> dict:
    """A whole optimizer state dict (:func:`gather_optimizer_state`'s format) cut to this rank's shards, ready for
    ``opt.load_state_dict``."""
    params = [p for g in opt.param_groups for p in g["params"]]
    state = {}
    for idx, entry in sd["state"].items():
        p = params[int(idx)]
        state[idx] = {k: (_slice_like(v, p) if is_sharded(p) and isinstance(v, torch.Tensor)
                          and tuple(v.shape) == tuple(p.shape) else v) for k, v in entry.items()}
    return {"state": state, "param_groups": sd["param_groups"]}
