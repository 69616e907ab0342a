"""A model's weights as one flat buffer per dtype, for the ``flat`` weight sync (engine/weight_sync.py).

The learner packs its state dict into :class:`FlatWeights` (:func:`pack_weights`, casting on the way when asked,
its buffers kept between syncs) and returns it, whole or in parts (:meth:`FlatWeights.part`); Ray stores the
numpy buffers out of band, so a rollout worker reads them as views of the object store's shared memory, and
:func:`flat_tensors` turns parts back into ``(name, tensor view)`` pairs for the engine's loader, with no copy.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any, Iterator, Mapping, Sequence

import numpy as np
import torch

from raylign.engine.errors import WeightSyncError

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
            held += [(d, fw.bases.get(d, 0), torch.from_numpy(b).view(getattr(torch, d)))
                     for d, b in fw.buffers.items()]
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
                 cache: dict[str, torch.Tensor] | None = None, whole=None) -> FlatWeights:
    """Pack ``state`` (a state dict, any device) into a :class:`FlatWeights`, casting floating-point tensors to
    ``dtype`` when given (one pass: the cast is the copy). ``cache``: a dict the caller keeps between calls; its
    flat buffers are reused when the layout is unchanged, so a sync does not fault in fresh pages each time.
    The returned arrays are views of those buffers: serialize them (``ray.put``, an actor's return) before the
    next call overwrites them. ``whole``: for a sharded learner, the function that gathers a value of ``state``
    (a shard) whole; it is called once per tensor as that tensor is copied (no second whole copy of the model),
    and tied values are then recognised as the same object."""
    if dtype not in SYNC_DTYPES:
        raise ValueError(f"unknown sync dtype {dtype!r}: expected one of {', '.join(SYNC_DTYPES)}")
    dtype = "" if dtype == "auto" else dtype
    layout: list[tuple[str, torch.Tensor, str]] = []  # the tensors to copy, in order
    first: dict[tuple[int, int, tuple[int, ...]], str] = {}  # storage, offset, shape -> the first name seen there
    alias: dict[str, str] = {}  # name -> the earlier name it shares memory with
    for name, t in state.items():
        key = (id(t),) if whole else (t.untyped_storage().data_ptr(), t.storage_offset(), tuple(t.shape))
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
            cache[out][offset: offset + t.numel()].view(t.shape).copy_((whole(t) if whole else t).detach())
    if any(t.is_cuda for _, t, _ in layout):
        torch.cuda.synchronize()
    buffers = {out: cache[out].view(torch.uint8).numpy() for out in sizes}
    return FlatWeights(buffers=buffers, entries=tuple(entries), aliases=frozenset(alias))
