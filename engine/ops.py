"""Tensor helpers shared by the learner and stage plugins (no algorithm choices here).

torch is imported inside the functions: plugin modules import this one when they are registered, and
``raylign plugins`` (like ``verify``, ``plan`` and ``doctor``) starts without torch.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch


def token_logprobs(logits: torch.Tensor, input_ids: torch.Tensor) -> torch.Tensor:
    """[B,T,V] logits, [B,T] ids → [B,T] log p(ids[t] | ids[<t]); column 0 is 0 (nothing predicts it)."""
    import torch

    pred = logits[:, :-1].float()  # pred[:, t-1] predicts token t
    picked = pred.gather(-1, input_ids[:, 1:].unsqueeze(-1)).squeeze(-1) - torch.logsumexp(pred, dim=-1)
    return torch.nn.functional.pad(picked, (1, 0), value=0.0)


def pad_sequences(seqs: list[list[int]], pad_id: int, length: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad id lists → (ids [B,T] int64, attention_mask [B,T] int64)."""
    import torch

    T = length or max(len(s) for s in seqs)
    ids = torch.full((len(seqs), T), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), T), dtype=torch.long)
    for i, s in enumerate(seqs):
        s = s[:T]
        ids[i, : len(s)] = torch.tensor(s, dtype=torch.long)
        mask[i, : len(s)] = 1
    return ids, mask


def chunk(items: list, size: int) -> list[list]:
    return [items[i : i + size] for i in range(0, len(items), size)]


# ---------------------------------------------------------------------------------------------- padding-free
# The learner's padding-free forward (``LearnerSpec.pack``): a micro-batch is cut to the columns that hold real
# tokens (``sort``), and its sequences are also packed into rows with position ids restarting per sequence
# (``pack``: transformers then confines attention to each sequence). Outputs come back in the micro-batch's
# [B, T] layout, so losses see the same per-token values as on the padded batch.

PACK_MODES = ("none", "sort", "pack")  # LearnerSpec.pack (stages check their own key with check_pack, no torch)


def check_pack(key: str, value: str) -> None:
    """A stage's ``pack`` key (``key``: its dotted name, e.g. ``sft.pack``) against ``PACK_MODES``: one ConfigError
    line naming the key (no torch needed)."""
    from raylign.engine.errors import ConfigError

    if value not in PACK_MODES:
        raise ConfigError(f"{key} must be one of {', '.join(PACK_MODES)}, got {value!r}")


def real_span(attention_mask: torch.Tensor) -> tuple[int, int]:
    """First and one-past-last column that holds a real token in any row ((0, 0) for an all-pad batch)."""
    import torch

    cols = torch.nonzero(attention_mask.any(0)).flatten()
    return (int(cols[0]), int(cols[-1]) + 1) if len(cols) else (0, 0)


def contiguous(attention_mask: torch.Tensor) -> bool:
    """Every row's real tokens are one run (left, right or no padding): what packing requires."""
    m = attention_mask.bool()
    n = m.sum(1)
    first = m.long().argmax(1)
    last = m.shape[1] - 1 - m.long().flip(1).argmax(1)
    return bool(((n == 0) | (last - first + 1 == n)).all())


class Packing:
    """Where each real token of a [B, T] micro-batch goes in a packed [R, L] layout.

    Sequences (their real tokens only) are placed first-fit by decreasing length into rows of L = the longest
    sequence's length; ``position_ids`` restart at 0 for every sequence (the unused tail of a row is a sequence
    of its own), which transformers reads as packed sequences and confines attention to each one.
    ``src`` (flat indices into the packed [R*L]) and ``rows``/``cols`` (the [B, T] places) list the real tokens in
    the same order: ``padded[rows, cols] = packed.view(-1)[src]``.
    """

    def __init__(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, pad_id: int = 0):
        import torch

        mask = attention_mask.bool()
        lengths = mask.sum(1)
        first = mask.long().argmax(1)
        dev = input_ids.device
        lens = lengths.tolist()  # one device sync, not one per sequence
        L = max([1, *lens])
        fill: list[int] = []  # tokens placed in each row so far
        row, off = [0] * len(lens), [0] * len(lens)
        for b in sorted(range(len(lens)), key=lambda i: -lens[i]):
            n = lens[b]
            r = next((i for i, f in enumerate(fill) if f + n <= L), None)
            if r is None:
                r = len(fill)
                fill.append(0)
            row[b], off[b] = r, fill[r]
            fill[r] += n
        R = max(1, len(fill))
        seq = torch.repeat_interleave(torch.arange(len(lengths), device=dev), lengths)
        k = torch.arange(len(seq), device=dev) - torch.repeat_interleave(lengths.cumsum(0) - lengths, lengths)
        self.rows, self.cols = seq, first[seq] + k
        self.src = (torch.tensor(row, device=dev)[seq] * L + torch.tensor(off, device=dev)[seq] + k)
        self.shape = (R, L)
        # the tail of each row counts 0, 1, ... as a sequence of its own; real tokens overwrite their places
        tail_start = torch.tensor(fill + [0] * (R - len(fill)), device=dev)
        pos = torch.arange(L, device=dev).expand(R, L) - tail_start[:, None]
        self.position_ids = pos.clamp(min=0).reshape(-1).clone()
        self.position_ids[self.src] = k
        self.position_ids = self.position_ids.view(R, L)
        self.input_ids = torch.full((R * L,), pad_id, dtype=input_ids.dtype, device=dev)
        self.input_ids[self.src] = input_ids[self.rows, self.cols]
        self.input_ids = self.input_ids.view(R, L)

    def scatter(self, packed: torch.Tensor, like: tuple[int, int], col0: int = 0) -> torch.Tensor:
        """[R, L, ...] per-token outputs → [B, T, ...] (zeros on padding) for a micro-batch of ``like`` = (B, T)
        whose column ``col0`` is the packed sequences' first (differentiable)."""
        flat = packed.reshape(-1, *packed.shape[2:])[self.src]
        out = flat.new_zeros((*like, *packed.shape[2:]))
        out[self.rows, self.cols - col0] = flat  # in place: no second [B, T, ...] copy (autograd records it)
        return out
