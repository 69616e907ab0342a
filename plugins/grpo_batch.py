"""Turning scored rollout groups into learner micro-batches (GRPO family). No Ray, no I/O: unit-testable."""
from __future__ import annotations

from dataclasses import dataclass

import torch

from raylign.engine.ops import pad_sequences
from raylign.engine.types import Completion, TrainBatch


@dataclass
class Group:
    """The G samples of one prompt."""

    row: dict  # the task row
    prompt_ids: list[int]  # the rendered prompt's tokens
    completions: list[Completion]
    rewards: list[float]  # one per completion (dropped samples keep their reward but get keep=False)
    statuses: list[str]  # verdict statuses
    keep: list[bool]  # False = excluded from the loss (failed verdict with drop_failed, or truncated+masked)

    @property
    def has_signal(self) -> bool:
        """Rewards of the kept samples differ (a zero-variance group teaches nothing)."""
        kept = [r for r, k in zip(self.rewards, self.keep) if k]
        return len(kept) > 1 and max(kept) - min(kept) > 1e-9


def sequence_batch(groups: list[Group], advantages: torch.Tensor, pad_id: int, mask_truncated: bool):
    """Flatten groups into padded tensors.

    Returns (input_ids [S,T], attention_mask [S,T], loss_mask [S,T], advantages [S,T], sampler_logprobs [S,T]),
    S = number of samples; loss_mask is 1 on kept completion tokens.
    """
    seqs, spans, advs, sampler = [], [], [], []
    for g, group in enumerate(groups):
        for i, c in enumerate(group.completions):
            seqs.append(list(group.prompt_ids) + list(c.token_ids))
            train = group.keep[i] and not (mask_truncated and c.finish_reason == "length")
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
    return ids, attn, loss_mask, adv, slp


def to_micro_batches(ids, attn, loss_mask, extras: dict[str, torch.Tensor], micro: int) -> list[TrainBatch]:
    """Micro-batches with ``loss_scale`` 1: the loss normalizes by the step's token count (``norm_tokens``)."""
    out = []
    for start in range(0, ids.shape[0], micro):
        sl = slice(start, start + micro)
        out.append(TrainBatch(ids[sl], attn[sl], loss_mask[sl], loss_scale=1.0,
                              extras={k: v[sl] for k, v in extras.items()}))
    return out


def pass_rate(rewards: list[float]) -> float:
    return sum(r >= 1.0 - 1e-6 for r in rewards) / max(1, len(rewards))
