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
