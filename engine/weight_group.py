"""The ``collective`` weight sync's process group: the learner broadcasts its weights to every engine worker.

One choreography, two communicators. The learner's rank 0 (the rank that holds the whole weights: a DDP group's
rank 0, or an FSDP2 group's rank 0 after it gathered them) is rank 0 of a dedicated group; engine e's vLLM worker
with tensor-parallel rank r is rank ``1 + e * tp + r``. The group is none of the process's other groups: not the
torch.distributed world vLLM's worker builds for itself, not the learners' DDP/FSDP2 world.

- ``gloo`` (CPU engines): a ``torch.distributed.ProcessGroupGloo`` built directly on a ``TCPStore`` that rank 0
  hosts (a fresh port and key prefix each time the group forms), so no default group is touched.
- ``nccl`` (GPU engines): vLLM's ``PyNcclCommunicator`` over a ``StatelessProcessGroup`` (UNTESTED here: no GPU
  on the development machine; its test in tests/test_weight_group.py is marked for CUDA).

Per sync the learner packs its weights into one flat buffer per dtype (:func:`~raylign.engine.flat_weights.
pack_weights`, its buffers kept between syncs, cast to ``rollout.sync_dtype``), and broadcasts each buffer in
buckets of :data:`BUCKET_BYTES` (slices of the flat buffer: no copy on the CPU); each worker receives the buckets
into its own flat buffers (kept between syncs) and hands views of them, bucket by bucket, to the engine's
reloader (``RaylignWorkerExtension._raylign_reload``). The learner keeps the packed buffers until the next sync,
so a replaced worker is given the weights the fleet serves by re-forming the group and broadcasting them again.

:class:`WeightGroupSender` is mixed into the learner actor; :class:`WeightGroup` is the driver's handle on one
formed group; the worker's side lives in :mod:`raylign.engine.vllm_ext` and calls :func:`open_group` /
:func:`receive_tensors`. Keep this module free of Ray at import time (vLLM's worker imports it).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any, Iterator, Sequence

import torch

from raylign.engine.errors import WeightSyncError
from raylign.engine.flat_weights import Entry

BUCKET_BYTES = 256 << 20  # one broadcast call carries about this many bytes (a few calls for a 100M model)
BACKENDS = ("gloo", "nccl")


@dataclass(frozen=True)
class CollectivePayload:
    """What the engines need to receive one broadcast: the packed layout (as :class:`FlatWeights` has it), the
    buckets in send order, and the version the learner packed. Small: it travels as a plain Ray argument."""

    entries: tuple[Entry, ...]  # (name, dtype, element offset in its dtype's buffer, shape), state-dict order
    aliases: frozenset[str]  # names whose bytes an earlier entry owns (a tied head)
    sizes: tuple[tuple[str, int], ...]  # (dtype, elements) of each flat buffer
    buckets: tuple[tuple[str, int, int], ...]  # (dtype, first element, end element) per broadcast, in order
    version: int  # the learner's weights version when it packed them
    load_ranks: frozenset[int] | None = None  # group ranks that reload what they receive (None: every one;
    # a replacement's re-broadcast reloads only the new worker's ranks, the others receive and drop it)

    @property
    def nbytes(self) -> int:
        return sum(n * getattr(torch, d).itemsize for d, n in self.sizes)

    def only(self, ranks: Sequence[int]) -> "CollectivePayload":
        return replace(self, load_ranks=frozenset(ranks))


def plan_buckets(sizes: Sequence[tuple[str, int]], entries: Sequence[Entry], aliases: frozenset[str],
                 bucket_bytes: int = BUCKET_BYTES) -> tuple[tuple[str, int, int], ...]:
    """Consecutive spans of each dtype's buffer of about ``bucket_bytes``, cut between tensors (so a tensor is
    whole once its bucket has arrived) unless one tensor alone is larger."""
    out = []
    for dtype, numel in sizes:
        limit = max(1, bucket_bytes // getattr(torch, dtype).itemsize)
        ends = sorted({off + _numel(shape) for n, d, off, shape in entries if d == dtype and n not in aliases})
        lo = 0
        for i, end in enumerate(ends):
            nxt = ends[i + 1] if i + 1 < len(ends) else None
            if nxt is None or nxt - lo > limit:
                out.append((dtype, lo, end))
                lo = end
        if lo < numel:
            out.append((dtype, lo, numel))
    return tuple(out)


def _numel(shape: Sequence[int]) -> int:
    n = 1
    for s in shape:
        n *= int(s)
    return n


# ---------------------------------------------------------------------------------------------- communicators


class _Gloo:
    """rank 0 hosts the TCPStore; the group is a ProcessGroupGloo on it (no default group involved)."""

    def __init__(self, host: str, port: int, rank: int, world: int, timeout_s: float, tag: str):
        import torch.distributed as dist

        timeout = timedelta(seconds=timeout_s)
        self.store = dist.TCPStore(host, port, world, is_master=rank == 0, timeout=timeout, wait_for_workers=False)
        opts = dist.ProcessGroupGloo._Options()
        opts._timeout = timeout
        opts._devices = [_gloo_device(host, port)]
        self.pg = dist.ProcessGroupGloo(dist.PrefixStore(tag, self.store), rank, world, opts)
        self.device = torch.device("cpu")

    def broadcast(self, t: torch.Tensor) -> None:
        import torch.distributed as dist

        opts = dist.BroadcastOptions()
        opts.rootRank = 0
        self.pg.broadcast([t], opts).wait()

    def synchronize(self) -> None:
        pass


def _gloo_device(host: str, port: int):
    """gloo's device: ``GLOO_SOCKET_IFNAME``'s interface when set, else the address this process reaches rank 0's
    store by (gloo's own default resolves the hostname, which may be a loopback address on a cluster node)."""
    import os
    import socket

    import torch.distributed as dist

    if os.environ.get("GLOO_SOCKET_IFNAME"):
        return dist.ProcessGroupGloo.create_default_device()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.connect((host, port))  # UDP: no packet is sent, only the route chosen
        return dist.ProcessGroupGloo.create_device(hostname=s.getsockname()[0])


class _Nccl:  # pragma: no cover - GPU only, UNTESTED on the development machine
    """vLLM's PyNcclCommunicator over a StatelessProcessGroup (rank 0 hosts its store)."""

    def __init__(self, host: str, port: int, rank: int, world: int, timeout_s: float, device: Any):
        from vllm.distributed.device_communicators.pynccl import PyNcclCommunicator
        from vllm.distributed.utils import StatelessProcessGroup

        self.group = StatelessProcessGroup.create(host=host, port=port, rank=rank, world_size=world,
                                                  store_timeout=int(timeout_s))
        self.device = torch.device(device)
        self.comm = PyNcclCommunicator(self.group, device=self.device)

    def broadcast(self, t: torch.Tensor) -> None:
        self.comm.broadcast(t, src=0, stream=torch.cuda.current_stream(self.device))

    def synchronize(self) -> None:
        torch.cuda.synchronize(self.device)


def open_group(backend: str, host: str, port: int, rank: int, world: int, timeout_s: float, tag: str,
               device: Any = "cpu"):
    """Join the weight group as ``rank`` of ``world`` (every rank calls this at once; rank 0 hosts the store at
    ``host:port``). Returns the communicator (``broadcast(tensor)`` from rank 0, ``synchronize()``)."""
    if backend == "gloo":
        return _Gloo(host, port, rank, world, timeout_s, tag)
    if backend == "nccl":
        return _Nccl(host, port, rank, world, timeout_s, device)
    raise ValueError(f"unknown weight group backend {backend!r}: expected one of {', '.join(BACKENDS)}")


def send_buffers(comm, buffers: dict[str, torch.Tensor], payload: CollectivePayload) -> None:
    """Rank 0: broadcast ``payload.buckets`` of the packed flat ``buffers`` (CPU tensors, one per dtype). NCCL:
    each bucket is copied to the device first (the buffers are page-locked for it)."""
    staging: dict[str, torch.Tensor] = {}
    for dtype, lo, hi in payload.buckets:
        span = buffers[dtype][lo:hi]
        if comm.device.type != "cpu":  # pragma: no cover - GPU only
            buf = staging.get(dtype)
            if buf is None or buf.numel() < hi - lo:
                buf = staging[dtype] = torch.empty(hi - lo, dtype=span.dtype, device=comm.device)
            span = buf[: hi - lo].copy_(span, non_blocking=True)
        comm.broadcast(span)
    comm.synchronize()


def receive_tensors(comm, payload: CollectivePayload,
                    cache: dict[str, torch.Tensor]) -> Iterator[tuple[str, torch.Tensor]]:
    """Any rank but 0: receive ``payload``'s buckets into ``cache``'s flat buffers (allocated on the
    communicator's device, kept between syncs) and yield ``(name, view)`` of each tensor as soon as its bucket
    has arrived (tied names last), so the engine loads bucket k while nothing else waits."""
    for dtype, numel in payload.sizes:
        buf = cache.get(dtype)
        if buf is None or buf.numel() != numel or buf.device != comm.device:
            cache[dtype] = torch.empty(numel, dtype=getattr(torch, dtype), device=comm.device)
    for stale in [k for k in cache if k not in dict(payload.sizes)]:
        del cache[stale]
    pending = [e for e in payload.entries if e[0] not in payload.aliases]
    for dtype, lo, hi in payload.buckets:
        comm.broadcast(cache[dtype][lo:hi])
        comm.synchronize()
        ready = [e for e in pending if e[1] == dtype and e[2] + _numel(e[3]) <= hi]
        pending = [e for e in pending if not (e[1] == dtype and e[2] + _numel(e[3]) <= hi)]
        for name, d, off, shape in ready:
            yield name, cache[d][off: off + _numel(shape)].view(shape)
    if pending:
        raise WeightSyncError(f"collective weight sync: no bucket held {pending[0][0]}")
    for name, d, off, shape in payload.entries:
        if name in payload.aliases:
            yield name, cache[d][off: off + _numel(shape)].view(shape)


# ---------------------------------------------------------------------------------------------- learner side


class WeightGroupSender:
    """Mixed into the learner actor: pack, join the group as rank 0, broadcast, leave."""

    _wg_comm: Any = None
    _wg_payload: CollectivePayload | None = None

    def weight_group_pack(self, dtype: str = "auto", bucket_bytes: int = BUCKET_BYTES) -> CollectivePayload | None:
        """Pack the current weights into this learner's sync buffers (kept until the next pack: a replaced
        engine receives them again) and return their layout. A sharded group's every rank calls it (each takes
        part in the gathers); only rank 0 keeps the weights and returns a payload (the others: None)."""
        if not hasattr(self, "_wg_buffers"):
            self._wg_buffers: dict[str, torch.Tensor] = {}
        fw = self._pack_weights(dtype, self._wg_buffers)  # the learner's, shared with the flat sync
        if fw is None:  # a sharded group's rank other than 0: took part in the gathers only
            return None
        sizes = tuple((d, int(self._wg_buffers[d].numel())) for d in fw.buffers)
        self._wg_payload = CollectivePayload(entries=fw.entries, aliases=fw.aliases, sizes=sizes,
                                             buckets=plan_buckets(sizes, fw.entries, fw.aliases, bucket_bytes),
                                             version=self.version)
        return self._wg_payload

    def weight_group_open(self, backend: str, host: str, port: int, world: int, timeout_s: float, tag: str) -> int:
        """Join a fresh weight group as rank 0 (hosting its store on ``port``); a group this learner was in is
        left first. Returns when every rank has joined."""
        self.weight_group_close()
        device = torch.cuda.current_device() if backend == "nccl" else "cpu"
        self._wg_comm = open_group(backend, host, port, 0, world, timeout_s, tag, device)
        return 0

    def weight_group_send(self, version: int) -> float:
        """Broadcast the packed weights (the engines receive them at the same time); ``version``: the version the
        fleet stamps them with, which must be the one packed. Returns seconds."""
        if self._wg_comm is None or self._wg_payload is None:
            raise WeightSyncError("collective weight sync: the learner is in no weight group or packed nothing")
        if self._wg_payload.version != version:
            raise WeightSyncError(f"collective weight sync: the learner's sync buffers hold version "
                                  f"{self._wg_payload.version}, the fleet asked for {version}")
        t0 = time.perf_counter()
        send_buffers(self._wg_comm, self._wg_buffers, self._wg_payload)
        return time.perf_counter() - t0

    def weight_group_close(self) -> None:
        self._wg_comm = None  # dropping the group closes its connections and rank 0's store


# ---------------------------------------------------------------------------------------------- driver side


class WeightGroup:
    """The driver's handle on one formed group: the learner actor (rank 0) and the fleet's workers in rank
    order (engine e's tensor-parallel workers are ranks ``1 + e * tp ..``)."""

    def __init__(self, backend: str, learner_actor: Any, workers: Sequence[Any], tp: int, timeout_s: float,
                 generation: int):
        self.backend, self.learner, self.workers, self.tp = backend, learner_actor, list(workers), tp
        self.world = 1 + tp * len(self.workers)
        self.generation = generation
        self.port = 0
        self._form(timeout_s)

    def _form(self, timeout_s: float) -> None:
        import ray

        host, self.port = ray.get(self.learner.rendezvous_address.remote(), timeout=timeout_s)
        tag = f"raylign-weights-{self.generation}"
        refs = [self.learner.weight_group_open.remote(self.backend, host, self.port, self.world, timeout_s, tag)]
        refs += [w.weight_group.remote("join", self.backend, host, self.port, 1 + i * self.tp, self.world,
                                       timeout_s, tag) for i, w in enumerate(self.workers)]
        try:
            ranks = ray.get(refs, timeout=timeout_s + 30)
        except Exception as exc:
            self.close()
            raise WeightSyncError(f"the collective weight group ({self.backend}, {self.world} ranks, port "
                                  f"{self.port}) could not be formed: {exc}") from exc
        want = [[1 + i * self.tp + r for r in range(self.tp)] for i in range(len(self.workers))]
        if ranks[1:] != want:
            self.close()
            raise WeightSyncError(f"the collective weight group formed with ranks {ranks[1:]}, expected {want}")

    def ranks_of(self, index: int) -> list[int]:
        return [1 + index * self.tp + r for r in range(self.tp)]

    def serves(self, learner_actor: Any, workers: Sequence[Any]) -> bool:
        """Whether this group still holds exactly this learner and these workers (a replaced worker: no)."""
        return learner_actor == self.learner and len(workers) == len(self.workers) and all(
            a == b for a, b in zip(workers, self.workers))

    def close(self) -> None:
        """Every rank leaves (best effort: a dead worker or a learner already killed leaves nothing behind)."""
        import ray

        refs = []
        for actor, call in [(self.learner, lambda a: a.weight_group_close.remote())] + \
                [(w, lambda a: a.weight_group.remote("leave")) for w in self.workers]:
            try:
                refs.append(call(actor))
            except Exception:
                pass
        try:
            ray.wait(refs, num_returns=len(refs), timeout=10.0)
        except Exception:
            pass
