"""PPO's math (no Ray, no I/O; each function unit-tested against hand-computed values).

Alignment (as everywhere, see :class:`raylign.engine.types.TrainBatch`): per-token tensors are [B, T] and
position t refers to token ``input_ids[:, t]``; ``mask[:, t] = 1`` on the reply's tokens (the actions). The critic's
raw head output at position t has seen tokens 0..t, so the value of the state *before* action t is the output
at t-1: :func:`state_values` shifts it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch


def state_values(raw: torch.Tensor) -> torch.Tensor:
    """[B, T] values V(s_t) of the state before token t: the head's output at t-1 (column 0 is 0)."""
    import torch.nn.functional as F

    return F.pad(raw[:, :-1], (1, 0), value=0.0)


def token_rewards(scores: torch.Tensor, kl: torch.Tensor, mask: torch.Tensor, kl_coef: float) -> torch.Tensor:
    """Per-token rewards [B, T]: ``-kl_coef · kl`` on every reply token, plus the sequence's score [B] on its
    last reply token (RLHF's reward shaping: Ziegler et al. 2019, Ouyang et al. 2022)."""
    import torch

    r = -kl_coef * kl * mask
    T = mask.shape[1]
    last = (mask * torch.arange(T, device=mask.device)).argmax(dim=1)  # the last reply position of each row
    has = mask.sum(1) > 0
    r[has, last[has]] += scores[has].to(r.dtype)
    return r


def gae(rewards: torch.Tensor, values: torch.Tensor, mask: torch.Tensor, gamma: float = 1.0,
        lam: float = 0.95) -> tuple[torch.Tensor, torch.Tensor]:
    """Generalized advantage estimation over each row's reply tokens (Schulman et al. 2016).

    ``delta_t = r_t + gamma · V_{t+1} - V_t`` and ``A_t = delta_t + gamma · lam · A_{t+1}``, where t+1 is the next
    reply token of the same row; after the last one the episode ends (V = 0, A = 0). Returns ``(advantages,
    returns = advantages + values)``, both [B, T] and 0 off the mask.
    """
    import torch

    mask = mask.to(values.dtype)
    adv = torch.zeros_like(values)
    next_value = torch.zeros(values.shape[0], dtype=values.dtype, device=values.device)
    next_adv = torch.zeros_like(next_value)
    for t in range(values.shape[1] - 1, -1, -1):
        m = mask[:, t]
        delta = rewards[:, t] + gamma * next_value - values[:, t]
        a = delta + gamma * lam * next_adv
        adv[:, t] = a * m
        # off the mask (prompt, padding) the carry resets, so rows never leak into each other's tokens
        next_value = torch.where(m > 0, values[:, t], torch.zeros_like(next_value))
        next_adv = torch.where(m > 0, a, torch.zeros_like(next_adv))
    return adv, (adv + values) * mask


def whiten(x: torch.Tensor, mask: torch.Tensor, shift_mean: bool = True, eps: float = 1e-8) -> torch.Tensor:
    """(x - mean) / std over the masked entries (``shift_mean=False`` keeps the mean); 0 off the mask."""
    mask = mask.to(x.dtype)
    n = mask.sum().clamp(min=1.0)
    mean = (x * mask).sum() / n
    var = (((x - mean) * mask) ** 2).sum() / n
    out = (x - mean) * (var + eps).rsqrt()
    if not shift_mean:
        out = out + mean
    return out * mask


def clipped_value_loss(values: torch.Tensor, old_values: torch.Tensor, returns: torch.Tensor,
                       clip: float | None = 0.2) -> tuple[torch.Tensor, torch.Tensor]:
    """PPO's clipped value loss per token: ``0.5 · max((V - R)², (clip(V, V_old ± clip) - R)²)``; ``clip`` None
    or 0 is the plain squared error. Returns ``(loss [B, T], clipped [B, T] = 1 where the clipped term won)``."""
    import torch

    plain = (values - returns).square()
    if not clip:
        return 0.5 * plain, torch.zeros_like(plain)
    v_clip = old_values + (values - old_values).clamp(-clip, clip)
    clipped = (v_clip - returns).square()
    return 0.5 * torch.maximum(plain, clipped), (clipped > plain).to(values.dtype)


def explained_variance(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> float:
    """1 - Var(target - pred) / Var(target) over the masked entries (1 = perfect, 0 = a constant, < 0 worse)."""
    mask = mask.to(target.dtype)
    n = mask.sum().clamp(min=1.0)

    def var(x):
        mean = (x * mask).sum() / n
        return (((x - mean) * mask) ** 2).sum() / n

    vt = var(target)
    return float(1.0 - var(target - pred) / vt) if float(vt) > 0 else 0.0


@dataclass
class KLController:
    """The KL coefficient: fixed (``target`` = 0), or adaptive to a target KL per sequence (Ziegler et al. 2019):
    ``coef *= 1 + clip(kl / target - 1, -0.2, 0.2) · n / horizon`` after each batch of n sequences."""

    coef: float
    target: float = 0.0
    horizon: int = 10_000

    def update(self, kl: float, n: int) -> float:
        if self.target > 0:
            error = min(max(kl / self.target - 1.0, -0.2), 0.2)
            self.coef *= 1.0 + error * n / self.horizon
        return self.coef
