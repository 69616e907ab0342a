"""Advantage estimators for group-sampled policy gradients (GRPO family), registered through a hook.

Each estimator maps the rewards of ``N`` prompts × ``G`` samples per prompt to one advantage per sample:
``fn(rewards: Tensor[N, G], **options) -> Tensor[N, G]``. A group whose rewards are all equal carries no
learning signal and gets advantage 0 everywhere (never NaN). A group of one sample has no baseline to compare
against and also gets 0. Options are keyword-only, so a misspelled option fails with ``TypeError``.

Notation: r_i is the reward of sample i in its group, mean/std are over that group unless said otherwise.

torch is imported where it is called: ``raylign plugins`` registers this module without importing torch.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from raylign.engine import hookimpl

if TYPE_CHECKING:
    import torch


def _as_float(rewards: torch.Tensor) -> torch.Tensor:
    if rewards.dim() != 2:
        raise ValueError(f"rewards must be [N_groups, G], got shape {tuple(rewards.shape)}")
    return rewards.float()


def _centered(r: torch.Tensor) -> torch.Tensor:
    """r_i - mean(r) within each group (row)."""
    return r - r.mean(dim=1, keepdim=True)


def _std(x: torch.Tensor, dim: int | None, unbiased: bool) -> torch.Tensor:
    """Standard deviation that is 0 (not NaN) where the unbiased estimate has a single element."""
    n = x.numel() if dim is None else x.shape[dim]
    correction = 1 if (unbiased and n > 1) else 0
    if dim is None:
        return x.std(correction=correction)
    return x.std(dim=dim, keepdim=True, correction=correction)


def grpo(rewards: torch.Tensor, *, std_normalize: bool = True, unbiased: bool = True,
         eps: float = 1e-6) -> torch.Tensor:
    """GRPO (DeepSeekMath, Shao et al. 2024): A_i = (r_i - mean(r)) / (std(r) + eps).

    :param rewards: [N, G] rewards.
    :param std_normalize: divide by the group std (False gives Dr. GRPO's centering only).
    :param unbiased: std with Bessel's correction (divide by G-1), as ``torch.std`` in veRL and TRL do; False
        divides by G (the population std), which makes ``[[1, 0, 0, 1]]`` map to ``[[1, -1, -1, 1]]``.
    :param eps: added to the std, so a zero-variance group gives 0 / eps = 0.
    """
    r = _as_float(rewards)
    adv = _centered(r)
    if std_normalize:
        adv = adv / (_std(r, dim=1, unbiased=unbiased) + eps)
    return adv


def dr_grpo(rewards: torch.Tensor) -> torch.Tensor:
    """Dr. GRPO (Liu et al. 2025, "Understanding R1-Zero-Like Training"): A_i = r_i - mean(r), no std division
    (the std division up-weights groups that are almost all right or all wrong)."""
    return _centered(_as_float(rewards))


def rloo(rewards: torch.Tensor) -> torch.Tensor:
    """REINFORCE leave-one-out (Kool et al. 2019; Ahmadian et al. 2024): A_i = r_i - mean_{j != i} r_j,
    which equals G / (G - 1) · (r_i - mean(r)). A group of one sample gets 0."""
    import torch

    r = _as_float(rewards)
    g = r.shape[1]
    if g < 2:
        return torch.zeros_like(r)
    others_mean = (r.sum(dim=1, keepdim=True) - r) / (g - 1)
    return r - others_mean


def reinforce_pp(rewards: torch.Tensor, *, unbiased: bool = False, eps: float = 1e-6) -> torch.Tensor:
    """REINFORCE++-baseline (Hu 2025, "REINFORCE++: ... Robust to Both Prompt and Reward Models").

    The paper's group variant subtracts the group mean reward as the baseline (no per-group std, which it
    argues over-fits easy/hard prompts) and then normalizes the advantages over the whole *global batch*:
    ``A_i = r_i - mean_group(r)``, ``A_norm = (A - mean_batch(A)) / (std_batch(A) + eps)``. ``mean_batch(A)``
    is 0 here by construction; it is still subtracted to follow the definition.

    Choices: the batch statistics are over samples (the paper's reference code in OpenRLHF weights them by
    response tokens, which an estimator that only sees rewards cannot do), and the std is the population std
    (divide by N·G) as in that code. A batch whose groups are all zero-variance gives 0.

    :param rewards: [N, G] rewards.
    :param unbiased: use Bessel's correction for the batch std.
    :param eps: added to the batch std.
    """
    adv = _centered(_as_float(rewards))
    adv = adv - adv.mean()
    return adv / (_std(adv, dim=None, unbiased=unbiased) + eps)


@hookimpl
def raylign_register_advantage_estimators(register):
    register("grpo", grpo)
    register("dr_grpo", dr_grpo)
    register("rloo", rloo)
    register("reinforce_pp", reinforce_pp)
