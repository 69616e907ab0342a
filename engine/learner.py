"""The learner role: a Ray actor that owns the PyTorch model and optimizer.

Stages never call it directly: they hold a :class:`raylign.engine.learner_handle.LearnerHandle` (from
``ctx.start_learner``), which validates the loss options on the driver and sends typed micro-batches
(``TrainBatch``) with the *name* of a registered loss; the actor looks the loss up in its own plugin registry
(rebuilt from the entry points), so no code is pickled across the boundary. One ``train_step`` call does the
whole optimizer step (every micro-batch, clipping, the update), so the Ray round trip is paid once per step.

Data parallelism (``[ray] learners = N``): N identical actors join one torch.distributed group (gloo on CPU,
NCCL on GPU; :mod:`raylign.engine.learner_group` starts them), the handle gives each rank a share of a step's
micro-batches, and ``train_step`` sums the ranks' gradients (all-reduce SUM) before clipping and the update.
The losses divide by step-wide constants (``norm_tokens``/``norm_seqs``, ``loss_scale``), so a step's gradient
is the sum of its micro-batches' gradients wherever they ran: every rank takes the single learner's update.

``strategy = "fsdp2"`` (``[ray] learner_strategy``) shards the group's model instead (:mod:`raylign.engine.fsdp`):
each rank keeps 1/N of the parameters, gradients and optimizer state, and every rank must then take part in each
forward, each backward and each gather of whole tensors. So in a sharded group every call reaches every rank:
a rank with fewer micro-batches than another runs empty passes (:meth:`Learner._lockstep`), every rank generates
the same replies, and what leaves the learner (weights, checkpoints, the
model dir) is gathered whole one tensor at a time and kept by rank 0 alone (the others return None).
"""
from __future__ import annotations

import os
import random
import socket
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import torch

from raylign.engine.ops import PACK_MODES
from raylign.engine.optim import OptimConfig, build_optimizer
from raylign.engine.types import TrainBatch
from raylign.engine.weight_group import WeightGroupSender

LEARNER_FILE = "learner.pt"
GROUP_TIMEOUT_S = 1800  # a collective that waits longer than this (a rank died mid-step) raises on the others
BUCKET_BYTES = 64 << 20  # gradients are all-reduced in flat buckets of about this size (fewer, larger messages)
STRATEGIES = ("ddp", "fsdp2")  # how a data-parallel group holds its model (LearnerSpec.strategy)


def pick_device(requested: str) -> str:
    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if requested == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("run.device = 'cuda' but no CUDA device is visible to the learner")
    return requested


@dataclass(frozen=True)
class LearnerSpec:
    """What a learner is built from (sent to the actor)."""

    model_dir: str  # HF model directory to start from
    optim: OptimConfig  # optimizer and schedule
    total_steps: int  # optimizer steps of the stage (for the schedule)
    seed: int  # torch / numpy / python RNG seed
    device: str = "auto"  # auto | cpu | cuda
    torch_threads: int = 0  # 0 = every core of the node (stages alternate roles, so the learner may use them all)
    trainable: bool = True  # False builds a frozen reference model (no optimizer)
    head: str = "lm"  # lm: a causal LM (losses get logits [B,T,V]); value: a scalar head (losses get values [B,T])
    pack: str = "none"  # padding: none = forward the padded micro-batches; sort = cut each to its real columns
    # (and regroup by length for logprobs/values); pack = also pack its sequences into rows (see engine/ops.py)
    strategy: str = "ddp"  # a data-parallel group (learners > 1): ddp = a whole model per rank, gradients
    # all-reduced; fsdp2 = parameters, gradients and AdamW state sharded over the ranks (engine/fsdp.py)
    param_dtype: str = "auto"  # fsdp2: dtype parameters are gathered and computed in (auto: bfloat16 on GPUs,
    # float32 on CPUs); the shards, the gradient reduction and the optimizer stay float32


class Learner(WeightGroupSender):  # WeightGroupSender: the collective weight sync's rank 0
    """The learner's state and operations. Wrapped as a Ray actor by :func:`start_learner`; usable in-process.

    :param registry: where losses are looked up; None (every actor) builds one from the entry points.
    """

    def __init__(self, spec: LearnerSpec, registry: Any = None):
        from raylign.engine.cluster import set_torch_threads
        from raylign.engine.modeling import load_model, load_tokenizer, load_value_model
        from raylign.engine.plugins import build_registry

        set_torch_threads(spec.torch_threads)
        self.spec = spec
        self.registry = registry if registry is not None else build_registry()
        self.device = pick_device(spec.device)
        _seed_all(spec.seed)
        if spec.strategy not in STRATEGIES:
            raise ValueError(f"unknown learner strategy {spec.strategy!r}: expected one of {', '.join(STRATEGIES)}")
        if spec.pack not in PACK_MODES:
            raise ValueError(f"unknown learner pack {spec.pack!r}: expected one of {', '.join(PACK_MODES)}")
        if spec.head == "value":
            self.model = load_value_model(spec.model_dir, self.device, spec.seed)
        elif spec.head == "lm":
            self.model = load_model(spec.model_dir, self.device)
        else:
            raise ValueError(f"unknown learner head {spec.head!r}: expected 'lm' or 'value'")
        self.tokenizer = load_tokenizer(spec.model_dir)
        self.autocast = self.device == "cuda"  # bf16 autocast on GPUs, fp32 on CPUs
        if spec.pack == "pack":
            self._check_packing()
        self.version = 0  # bumped by every optimizer step; stamps weight syncs
        if spec.trainable:
            self.model.train()
            self.opt, self.sched = build_optimizer(self.model, spec.optim, spec.total_steps)
        else:
            self.model.eval()
            self.model.requires_grad_(False)
            self.opt = self.sched = None
        self.rank, self.world_size = 0, 1  # set by join_group (data-parallel learners)
        self.sharded = False  # set by join_group: this rank holds a shard of the model (strategy fsdp2)

    # ------------------------------------------------------------------------------------------ data parallel
    def rendezvous_address(self) -> tuple[str, int]:
        """Rank 0's side of the rendezvous: this node's IP and a port free on it (the group's TCP store)."""
        import ray

        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("", 0))
            port = s.getsockname()[1]
        return ray.util.get_node_ip_address(), port

    def node_id(self) -> str:
        import ray

        return ray.get_runtime_context().get_node_id()

    def join_group(self, address: str, port: int, rank: int, world_size: int, local_ranks: int = 1) -> int:
        """Join the data-parallel group (every rank calls this at once; it returns when all have joined) and take
        rank 0's weights, so every rank starts from the same model whatever its loading did. ``local_ranks``:
        the ranks on this node, which share its cores when ``learner_threads`` is 0 (every core)."""
        import torch.distributed as dist

        backend = "nccl" if self.device == "cuda" else "gloo"
        dist.init_process_group(backend, init_method=f"tcp://{address}:{port}", rank=rank, world_size=world_size,
                                timeout=timedelta(seconds=GROUP_TIMEOUT_S))
        self.rank, self.world_size = rank, world_size
        if not self.spec.torch_threads and local_ranks > 1:
            torch.set_num_threads(max(1, (os.cpu_count() or 1) // local_ranks))
        with torch.no_grad():
            for t in self.model.state_dict().values():
                dist.broadcast(t, src=0)
        if self.spec.strategy == "fsdp2" and self.opt is not None:
            self._shard()
        return rank

    def _shard(self) -> None:
        """Shard the model over the group (FSDP2) and build the optimizer again on the shards (no step was taken)."""
        from raylign.engine.fsdp import shard_model

        if self.spec.head == "value":  # value_forward calls the body and the head, never the model's own forward
            roots = [getattr(self.model, self.model.base_model_prefix), self.model.score]
        else:
            roots = [self.model]
        shard_model(self.model, self.device, self.spec.param_dtype, roots)
        self.opt, self.sched = build_optimizer(self.model, self.spec.optim, self.spec.total_steps)
        self.sharded = True

    def is_sharded(self) -> bool:
        return self.sharded

    def _lockstep(self, passes: int) -> int:
        """How many empty passes this rank adds to its ``passes`` forwards (or forward + backward) so that every
        rank of a sharded group runs as many (each one gathers every layer with the others); 0 when not sharded."""
        if not self.sharded:
            return 0
        import torch.distributed as dist

        most = torch.tensor([passes], device=self.device)
        dist.all_reduce(most, op=dist.ReduceOp.MAX)
        return int(most.item()) - passes

    def _empty_pass(self, backward: bool) -> None:
        """A forward of one pad token (and a backward of zero times it: every gradient it adds is 0), so this rank
        takes part in the gathers and reductions of a pass another rank runs on real data."""
        ids = torch.zeros(1, 1, dtype=torch.long)
        out, _ = self._forward(TrainBatch(ids, torch.ones_like(ids), torch.zeros(1, 1)), pack="none")
        if backward:
            (out.float().sum() * 0.0).backward()

    def _all_reduce_grads(self) -> None:
        """Sum every trainable parameter's gradient over the ranks. A parameter no rank computed a gradient for
        keeps none (as on one learner, AdamW then skips it); one that only some ranks reached counts zeros on the
        others."""
        import torch.distributed as dist

        params = [p for p in self.model.parameters() if p.requires_grad]
        has = torch.tensor([float(p.grad is not None) for p in params], device=self.device)
        dist.all_reduce(has, op=dist.ReduceOp.MAX)
        grads = []
        for p, h in zip(params, has.tolist()):
            if h:
                if p.grad is None:
                    p.grad = torch.zeros_like(p)
                grads.append(p.grad)
        for bucket in _buckets(grads, BUCKET_BYTES):
            flat = torch.cat([g.reshape(-1) for g in bucket])
            dist.all_reduce(flat, op=dist.ReduceOp.SUM)
            for g, part in zip(bucket, flat.split([g.numel() for g in bucket])):
                g.copy_(part.view_as(g))

    def leave_group(self) -> None:
        import torch.distributed as dist

        if dist.is_initialized():
            dist.destroy_process_group()
        self.rank, self.world_size = 0, 1

    # ------------------------------------------------------------------------------------------ compute
    def _forward(self, mb: TrainBatch, pack: str | None = None) -> tuple[torch.Tensor, TrainBatch]:
        """Logits [B,T,V] of an lm learner, values [B,T] (float32) of a value learner, and the batch they are
        aligned with: ``mb`` itself (pack = none), or ``mb`` cut to the columns that hold real tokens (sort, pack;
        the cut columns hold no loss token, so a loss over the cut batch is the same)."""
        from raylign.engine.modeling import value_forward
        from raylign.engine.ops import Packing, contiguous, real_span

        pack = pack or self.spec.pack
        mb = mb.to(self.device)
        if pack != "none":
            lo, hi = real_span(mb.attention_mask)
            if hi > lo and (lo, hi) != (0, mb.input_ids.shape[1]):
                mb = mb.columns(lo, hi)
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=self.autocast):
            if pack == "pack" and contiguous(mb.attention_mask):
                p = Packing(mb.input_ids, mb.attention_mask)
                if self.spec.head == "value":
                    out = value_forward(self.model, p.input_ids, None, p.position_ids).float()
                else:
                    out = self.model(input_ids=p.input_ids, position_ids=p.position_ids, use_cache=False).logits
                return p.scatter(out, tuple(mb.input_ids.shape)), mb
            if self.spec.head == "value":
                return value_forward(self.model, mb.input_ids, mb.attention_mask).float(), mb
            return self.model(input_ids=mb.input_ids, attention_mask=mb.attention_mask).logits, mb

    @torch.no_grad()
    def _check_packing(self) -> None:
        """Refuse pack = "pack" for a model that would let packed sequences attend to each other (one whose
        transformers code does not read restarting position ids as sequence boundaries)."""
        from raylign.engine.errors import ModelError

        was_training = self.model.training
        self.model.eval()
        vocab = self.model.get_input_embeddings().num_embeddings
        ids = (torch.arange(18, device=self.device) * 7 + 3).remainder(vocab).view(3, 6)
        mask = torch.tensor([[1] * 6, [1] * 3 + [0] * 3, [1] * 3 + [0] * 3], device=self.device)  # rows [6], [3, 3]
        mb = TrainBatch(ids, mask, mask.float())
        padded, _ = self._forward(mb, pack="none")
        packed, _ = self._forward(mb)
        self.model.train(was_training)
        real = mask.bool()
        err = float((padded - packed)[real].abs().max())
        scale = float(padded[real].abs().max())
        if not err <= 1e-2 * max(scale, 1.0):
            raise ModelError(f"learner pack = 'pack': {type(self.model).__name__} does not keep packed sequences "
                             f"apart (outputs differ from the padded batch by {err:.3g}); use pack = 'sort'")

    def _per_token(self, microbatches: list[TrainBatch], fn) -> list[torch.Tensor]:
        """``fn(out, batch)`` → [b, t] per micro-batch, on CPU, in the micro-batches' own [B, T] layout (0 on
        padding, except with pack = none, which leaves what the pad tokens produced). With pack != none the
        sequences are regrouped by length first, at most the largest micro-batch's count at a time (no loss here:
        a forward-only result does not depend on which sequences share a batch)."""
        from raylign.engine.ops import real_span

        if self.spec.pack == "none" or not microbatches:
            empty = self._lockstep(len(microbatches))
            out = [fn(*self._forward(mb)).float().cpu() for mb in microbatches]
            for _ in range(empty):
                self._empty_pass(backward=False)
            return out
        T = max(mb.input_ids.shape[1] for mb in microbatches)
        size = max(len(mb.input_ids) for mb in microbatches)
        ids = torch.cat([torch.nn.functional.pad(mb.input_ids, (0, T - mb.input_ids.shape[1])) for mb in microbatches])
        mask = torch.cat([torch.nn.functional.pad(mb.attention_mask, (0, T - mb.input_ids.shape[1]))
                          for mb in microbatches])
        out = torch.zeros(ids.shape, dtype=torch.float32)
        order = torch.argsort(mask.sum(1), descending=True, stable=True)
        chunks = [(order[s : s + size], *real_span(mask[order[s : s + size]])) for s in range(0, len(order), size)]
        chunks = [(idx, lo, hi) for idx, lo, hi in chunks if hi > lo]  # only padding: its values stay 0
        empty = self._lockstep(len(chunks))
        for idx, lo, hi in chunks:
            sub = TrainBatch(ids[idx, lo:hi], mask[idx, lo:hi], torch.zeros(len(idx), hi - lo))
            res, used = self._forward(sub)
            out[idx, lo:hi] = fn(res, used).float().cpu() * sub.attention_mask
        for _ in range(empty):
            self._empty_pass(backward=False)
        parts = out.split([len(mb.input_ids) for mb in microbatches])
        return [p[:, : mb.input_ids.shape[1]] for p, mb in zip(parts, microbatches)]

    def train_step(self, microbatches: list[TrainBatch], loss: str, options: dict[str, Any] | None = None) -> dict:
        """One optimizer step over ``microbatches`` (gradient accumulation); returns averaged metrics.
        ``options`` were validated against the loss's declared options by the driver-side handle. In a
        data-parallel group every rank calls it at once with its share (possibly none) of the step's
        micro-batches; the metrics are this rank's (the handle reduces them), ``grad_norm`` the whole step's."""
        assert self.opt is not None, "a frozen learner cannot train"
        loss_fn = self.registry.get("losses", loss)
        t0 = time.perf_counter()
        self.opt.zero_grad(set_to_none=True)
        sums: dict[str, float] = {}
        tokens, weight = 0, 0.0
        empty = self._lockstep(len(microbatches))
        for mb in microbatches:
            logits, mb = self._forward(mb)
            value, metrics = loss_fn(logits, mb, **(options or {}))
            value.backward()  # sharded: FSDP sums this pass's gradients into every rank's shards here
            tokens += int(mb.attention_mask.sum())
            w = float(mb.loss_mask.sum())  # metrics are token-weighted means over the step
            weight += w
            for k, v in metrics.items():
                sums[k] = sums.get(k, 0.0) + float(v) * w
        for _ in range(empty):
            self._empty_pass(backward=True)
        if self.world_size > 1 and not self.sharded:
            self._all_reduce_grads()
        clip = self.spec.optim.grad_clip
        params = [p for p in self.model.parameters() if p.grad is not None]
        if self.sharded:
            from raylign.engine.fsdp import clip_grad_norm

            grad_norm = clip_grad_norm(params, clip if clip > 0 else float("inf"))
        else:
            grad_norm = torch.nn.utils.clip_grad_norm_(params, clip if clip > 0 else float("inf"))
        lr = self.opt.param_groups[0]["lr"]
        self.opt.step()
        self.sched.step()
        self.version += 1
        out = {k: v / max(weight, 1.0) for k, v in sums.items()}
        out.update(grad_norm=float(grad_norm), lr=lr, step_tokens=tokens, tokens=weight,
                   learner_seconds=time.perf_counter() - t0)
        return out

    @torch.no_grad()
    def eval_loss(self, microbatches: list[TrainBatch], loss: str, options: dict[str, Any] | None = None) -> dict:
        """Token-weighted means of every metric the loss reports over ``microbatches`` (no update), and
        ``tokens``: the loss tokens counted."""
        loss_fn = self.registry.get("losses", loss)
        was_training = self.model.training
        self.model.eval()
        sums: dict[str, float] = {}
        n = 0
        empty = self._lockstep(len(microbatches))
        for mb in microbatches:
            _, metrics = loss_fn(*self._forward(mb), **(options or {}))
            k = mb.num_tokens
            for name, v in metrics.items():
                sums[name] = sums.get(name, 0.0) + float(v) * k
            n += k
        for _ in range(empty):
            self._empty_pass(backward=False)
        self.model.train(was_training)
        out = {name: v / max(1, n) for name, v in sums.items()}
        out["tokens"] = n
        return out

    @torch.no_grad()
    def values(self, microbatches: list[TrainBatch]) -> list[torch.Tensor]:
        """The scalar head's value at every position [B,T] of each micro-batch (a value learner only)."""
        if self.spec.head != "value":
            raise RuntimeError("values() needs a learner with head='value'")
        was_training = self.model.training
        self.model.eval()
        out = self._per_token(microbatches, lambda values, _: values)
        self.model.train(was_training)
        return out

    @torch.no_grad()
    def token_logprobs(self, microbatches: list[TrainBatch]) -> list[torch.Tensor]:
        """Per-token logprobs [B,T] of each micro-batch under the current weights (column 0 is 0)."""
        from raylign.engine.ops import token_logprobs

        if self.spec.head != "lm":
            raise RuntimeError("token_logprobs() needs a learner with head='lm'")

        was_training = self.model.training
        self.model.eval()
        out = self._per_token(microbatches, lambda logits, mb: token_logprobs(logits, mb.input_ids))
        self.model.train(was_training)
        return out

    @torch.no_grad()
    def sequence_logprobs(self, token_ids: list[int]) -> list[float]:
        """Logprob of each token of one sequence given the ones before (the weight-sync canary's reference)."""
        ids = torch.tensor([token_ids], dtype=torch.long)
        mb = TrainBatch(ids, torch.ones_like(ids), torch.ones_like(ids, dtype=torch.float32))
        return self.token_logprobs([mb])[0][0, 1:].tolist()

    @torch.no_grad()
    def generate(self, prompts: list[str], max_new_tokens: int, batch_size: int = 32) -> list[dict]:
        """Greedy HF generation (probes and small evals; rollouts use the vLLM fleet).

        Returns one ``{"text": str, "finished": bool}`` per prompt; finished = it ended with a stop token.
        """
        from raylign.engine.modeling import generate_greedy

        # Sharded: every rank generates the same replies, each forward gathering layer by layer with the others
        # (transformers keeps the ranks of an FSDP model stepping together until the last is done: synced_gpus).
        was_training = self.model.training
        self.model.eval()
        out = generate_greedy(self.model, self.tokenizer, prompts, max_new_tokens, batch_size, self.device)
        self.model.train(was_training)
        return out

    # ------------------------------------------------------------------------------------------ weights
    def weights(self, dtype: str = "auto") -> dict[str, torch.Tensor]:
        """The current weights as CPU tensors in the HF checkpoint's names (what the rollout fleet loads), floating
        point ones cast to ``dtype`` unless it is ``auto`` (``rollout.sync_dtype``)."""
        from raylign.engine.fsdp import full_tensors, model_tensors, reshard

        if self.sharded:
            reshard(self.model)  # a no-grad forward (the canary's) leaves the root gathered
        cast = None if dtype == "auto" else getattr(torch, dtype)
        keep = self.rank == 0 or not self.sharded  # sharded: every rank gathers, rank 0 keeps (the others: None)
        out = {k: v.detach().to("cpu", dtype=cast if v.is_floating_point() else None, copy=True).contiguous()
               for k, v in full_tensors(model_tensors(self.model), keep, device=None) if v is not None}
        return out if keep else None

    def weights_flat(self, dtype: str = "auto", part: int = 0, parts: int = 1):
        """The current weights packed for the ``flat`` weight sync: a ``weight_sync.FlatWeights``, one buffer per
        dtype, cast to ``dtype`` unless it is ``auto``; its part ``part`` of ``parts`` (call them in order: part
        0 takes the snapshot the others slice, so the engines can load part 0 while this stores part 1). The
        buffers are kept between syncs (no fresh pages each time); Ray copies a part into the object store as
        this call returns."""
        if part == 0:
            if not hasattr(self, "_sync_buffers"):
                self._sync_buffers: dict[str, torch.Tensor] = {}
            self._sync_snapshot = self._pack_weights(dtype, self._sync_buffers)
        if self._sync_snapshot is None:  # a sharded group's rank other than 0: took part in the gathers only
            return None
        return self._sync_snapshot.part(part, parts)

    def _pack_weights(self, dtype: str, cache: dict[str, torch.Tensor]):
        """The current weights packed into ``cache``'s flat buffers (``flat_weights.pack_weights``, cast to ``dtype``
        unless ``auto``), for the ``flat`` and ``collective`` syncs. A sharded group's every rank calls it (each takes
        part in the gathers); rank 0 packs, gathering one tensor at a time straight into the buffers (no second whole
        copy), and the others return None."""
        from raylign.engine.flat_weights import pack_weights
        from raylign.engine.fsdp import full_tensor, full_tensors, model_tensors, reshard

        if not self.sharded:
            return pack_weights(self.model.state_dict(), dtype, cache=cache)
        reshard(self.model)  # a no-grad forward (the canary's) leaves the root gathered
        if self.rank != 0:
            for _ in full_tensors(model_tensors(self.model), keep=False):
                pass
            return None
        return pack_weights(model_tensors(self.model), dtype, cache=cache, whole=full_tensor)

    def get_version(self) -> int:
        return self.version

    def save_model(self, directory: str) -> str:
        from raylign.engine.fsdp import gather_state, unsharded_copy
        from raylign.engine.modeling import save_model_dir

        if not self.sharded:
            return str(save_model_dir(self.model, self.tokenizer, directory))
        state = gather_state(self.model.state_dict(), keep=self.rank == 0)  # every rank gathers, rank 0 writes
        if self.rank == 0:
            save_model_dir(unsharded_copy(self.model, state), self.tokenizer, directory)
        return str(directory)

    def save_state(self, directory: str) -> None:
        """Model, optimizer, scheduler, RNG and version into ``directory/learner.pt`` (inside a .tmp checkpoint).
        Sharded: every rank gathers the whole tensors, rank 0 writes them (the file is a single learner's)."""
        from raylign.engine.fsdp import gather_optimizer_state, gather_state

        if self.sharded:
            keep = self.rank == 0
            model, optim = gather_state(self.model.state_dict(), keep), gather_optimizer_state(self.opt, keep)
            if not keep:
                return
        else:
            model, optim = self.model.state_dict(), self.opt.state_dict() if self.opt else None
        state = {
            "model": model,
            "optimizer": optim,
            "scheduler": self.sched.state_dict() if self.sched else None,
            "rng": {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate(),
                    "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None},
            "version": self.version,
        }
        path = Path(directory) / LEARNER_FILE
        torch.save(state, path)
        with open(path, "rb") as fh:
            os.fsync(fh.fileno())

    def load_state(self, directory: str) -> int:
        # CPU first: RNG states must stay CPU ByteTensors; load_state_dict moves weights and optimizer state.
        # Sharded: every rank reads the whole state and keeps its slices (the file does not say which strategy
        # wrote it: a run may resume under the other one).
        from raylign.engine.fsdp import load_full_state, shard_optimizer_state

        state = torch.load(Path(directory) / LEARNER_FILE, map_location="cpu", weights_only=False)
        if self.sharded:
            load_full_state(self.model, state["model"])
        else:
            self.model.load_state_dict(state["model"])
        if self.opt and state["optimizer"]:
            optim = shard_optimizer_state(self.opt, state["optimizer"]) if self.sharded else state["optimizer"]
            self.opt.load_state_dict(optim)
            self.sched.load_state_dict(state["scheduler"])
        rng = state["rng"]
        torch.set_rng_state(rng["torch"])
        np.random.set_state(rng["numpy"])
        random.setstate(rng["python"])
        if rng.get("cuda") is not None and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(rng["cuda"])
        self.version = state["version"]
        return self.version

    def ping(self) -> bool:
        return True


def _buckets(tensors: list[torch.Tensor], limit: int) -> list[list[torch.Tensor]]:
    """Consecutive groups of same-dtype tensors of about ``limit`` bytes each (one flat all-reduce per group)."""
    out: list[list[torch.Tensor]] = []
    size = 0
    for t in tensors:
        nbytes = t.numel() * t.element_size()
        if not out or out[-1][0].dtype != t.dtype or size + nbytes > limit:
            out.append([])
            size = 0
        out[-1].append(t)
        size += nbytes
    return out


def _seed_all(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def start_learner(spec: LearnerSpec, num_cpus: float = 1.0, num_gpus: float = 0.0, name: str | None = None,
                  wait: bool = True, **options: Any):
    """The learner as a Ray actor (its methods are called with ``.remote``). ``options``: more Ray actor options
    (resources, scheduling strategy), passed through. ``wait=False`` returns before the model is loaded (the
    data-parallel group starts its ranks side by side and waits for all of them)."""
    import ray

    actor_cls = ray.remote(Learner)
    opts: dict[str, Any] = {"num_cpus": num_cpus, "num_gpus": num_gpus, **options}
    if name:
        opts["name"] = name
    handle = actor_cls.options(**opts).remote(spec)
    if wait:
        ray.get(handle.ping.remote())
    return handle
