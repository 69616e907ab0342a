"""Turning scored rollout groups into the learner's batch (GRPO family). No Ray, no I/O: unit-testable."""
from __future__ import annotations

from typing import TYPE_CHECKING

from raylign.engine.ops import pad_sequences
from raylign.engine.types import RolloutGroup, SequenceBatch

if TYPE_CHECKING:
    import torch


def has_signal(group: RolloutGroup) -> bool:
    """Rewards of the kept samples differ (a zero-variance group teaches nothing)."""
    kept = [r for r, k in zip(group.rewards, group.keep) if k]
    return len(kept) > 1 and max(kept) - min(kept) > 1e-9


def sequence_batch(groups: list[RolloutGroup], advantages: torch.Tensor, pad_id: int,
                   mask_truncated: bool) -> SequenceBatch:
    """Flatten groups into one padded batch of S = (number of samples) prompt+completion sequences.

    ``loss_mask`` is 1 on kept completion tokens; ``extras``: ``advantages`` [S, T] (the sample's advantage on
    each of its completion tokens) and ``sampler_logprobs`` [S, T] (the rollout engine's token logprobs).
    """
    import torch

    seqs, spans, advs, sampler = [], [], [], []
    for g, group in enumerate(groups):
        for i, c in enumerate(group.completions):
            seqs.append(list(group.prompt_ids) + list(c.token_ids))
            train = group.keep[i] and not (mask_truncated and c.truncated)
            spans.append((len(group.prompt_ids), len(c.token_ids), train))
            advs.append(float(advantages[g, i]))
            sampler.append(list(c.logprobs))
    ids, attn = pad_sequences(seqs, pad_id)
    S, T = ids.shape
    loss_mask = torch.zeros((S, T), dtype=torch.float32)
    adv = torch.zeros((S, T), dtype=torch.float32)
    slp = torch.zeros((S, T), dtype=torch.float32)
    for s, ((start, n, train), a, lp) in enumerate(zip(spans, advs, sampler)):
        if train and n:
            loss_mask[s, start : start + n] = 1.0
        adv[s, start : start + n] = a
        slp[s, start : start + len(lp)] = torch.tensor(lp[:n], dtype=torch.float32)
    return SequenceBatch(ids, attn, loss_mask, {"advantages": adv, "sampler_logprobs": slp})


def pass_rate(rewards: list[float]) -> float:
    return sum(r >= 1.0 - 1e-6 for r in rewards) / max(1, len(rewards))
