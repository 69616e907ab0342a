"""Learner objectives: next-token cross-entropy and the GRPO-family clipped policy-gradient surrogate.

The math lives in small pure functions (each unit-tested against hand-computed values); the hook registers
thin wrappers ``loss_fn(logits, batch, **options) -> (loss, metrics)``.

Alignment (see :class:`raylign.engine.types.TrainBatch`): every per-token tensor is [B, T] and position t refers
to token ``input_ids[:, t]``; ``logits[:, t-1]`` predicts ``input_ids[:, t]``, so column 0 of
:func:`token_logprobs` and :func:`token_entropy` is 0 and ``loss_mask[:, 0]`` is always 0.

torch is imported where it is called: ``raylign plugins`` registers this module without importing torch.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from raylign.engine import hookimpl
from raylign.engine.ops import token_logprobs
from raylign.engine.types import TrainBatch

if TYPE_CHECKING:
    import torch

AGG_MODES = ("token_mean", "seq_mean_token_sum", "seq_mean_token_mean", "seq_mean_token_sum_norm")
KL_KINDS = ("k1", "k2", "k3")
LOG_RATIO_CLAMP = 20.0  # |log ratio| is clamped here before exp() so one wild token cannot overflow to inf


# ---------------------------------------------------------------------------------------------------------
# Per-token quantities
# ---------------------------------------------------------------------------------------------------------

def token_entropy(logits: torch.Tensor) -> torch.Tensor:
    """Entropy (nats) of the distribution that predicts token t, as [B, T] float32; position 0 is 0.0."""
    import torch
    import torch.nn.functional as F

    pred = logits[:, :-1].float()
    logp = torch.log_softmax(pred, dim=-1)
    ent = -(logp.exp() * logp).sum(dim=-1)
    return F.pad(ent, (1, 0), value=0.0)


def kl_estimate(logp: torch.Tensor, ref_logp: torch.Tensor, kind: str = "k3") -> torch.Tensor:
    """Per-token estimate of KL(pi || pi_ref) from tokens sampled from pi (Schulman, "Approximating KL
    Divergence", 2020). With log_r = ref_logp - logp:

    - ``k1`` = -log_r (unbiased, high variance, can be negative);
    - ``k2`` = log_r**2 / 2 (biased, low variance, its gradient is that of the true KL on-policy);
    - ``k3`` = exp(log_r) - log_r - 1 (unbiased, low variance, >= 0; GRPO's choice).
    """
    log_r = ref_logp - logp
    if kind == "k1":
        return -log_r
    if kind == "k2":
        return 0.5 * log_r.square()
    if kind == "k3":
        log_r = log_r.clamp(-LOG_RATIO_CLAMP, LOG_RATIO_CLAMP)
        return log_r.exp() - log_r - 1.0
    raise ValueError(f"unknown kl_estimator {kind!r}; expected one of {', '.join(KL_KINDS)}")


def clipped_surrogate(logp: torch.Tensor, old_logp: torch.Tensor, advantages: torch.Tensor,
                      clip_low: float = 0.2, clip_high: float = 0.28):
    """PPO's clipped surrogate as a per-token loss (to minimize), with asymmetric "clip-higher" bounds (DAPO).

    ratio = exp(logp - old_logp); loss = max(-A·ratio, -A·clip(ratio, 1 - clip_low, 1 + clip_high)).

    :returns: ``(loss, ratio, clipped)``, all [B, T]; ``clipped`` is 1.0 where the clipped term is the larger
        (so the token's gradient is zero), 0.0 elsewhere.
    """
    import torch

    log_ratio = (logp - old_logp).clamp(-LOG_RATIO_CLAMP, LOG_RATIO_CLAMP)
    ratio = log_ratio.exp()
    unclipped = -advantages * ratio
    clipped = -advantages * ratio.clamp(1.0 - clip_low, 1.0 + clip_high)
    return torch.maximum(unclipped, clipped), ratio, (clipped > unclipped).float()


def truncated_is_weight(old_logp: torch.Tensor, sampler_logp: torch.Tensor, cap: float) -> torch.Tensor:
    """Truncated importance weight between the learner and the sampler (TIS: Yao et al. 2025, "Your Efficient
    RL Framework Secretly Brings You Off-Policy RL Training"): min(exp(old_logp - sampler_logp), cap), with no
    gradient. vLLM's logprobs differ from the learner's for the same weights (kernels, precision), so the
    surrogate's ratio is taken against the learner's own ``old_logp`` and each token's term is re-weighted by
    how much more likely the learner made it than the sampler that actually drew it.
    """
    log_w = (old_logp - sampler_logp).clamp(-LOG_RATIO_CLAMP, LOG_RATIO_CLAMP)
    return log_w.exp().clamp(max=cap).detach()


# ---------------------------------------------------------------------------------------------------------
# Aggregation
# ---------------------------------------------------------------------------------------------------------

def masked_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """sum(x · mask) / sum(mask), 0 when the mask is empty."""
    return (x * mask).sum() / mask.sum().clamp(min=1.0)


def aggregate(per_token: torch.Tensor, mask: torch.Tensor, mode: str = "token_mean", *,
              norm_tokens: float | None = None, norm_seqs: float | None = None,
              max_len: int | None = None) -> torch.Tensor:
    """Reduce a per-token loss [B, T] to a scalar.

    - ``token_mean``: sum over all masked tokens / their count (every token weighs the same; DAPO).
      With ``norm_tokens`` (the masked tokens of the whole step) the divisor is that constant instead, so the
      micro-batch sums add up to the exact token mean of the step.
    - ``seq_mean_token_sum``: each sequence's token sum, averaged over sequences.
    - ``seq_mean_token_mean``: each sequence's token mean, averaged over sequences (original GRPO).
    - ``seq_mean_token_sum_norm``: each sequence's token sum / ``max_len`` (a constant, e.g. the generation
      limit), averaged over sequences (Dr. GRPO: no length bias).

    The ``seq_*`` modes average over the sequences with at least one masked token, or divide by ``norm_seqs``
    (the sequences of the whole step) when given.
    """
    mask = mask.to(per_token.dtype)
    if mode == "token_mean":
        total = (per_token * mask).sum()
        return total / norm_tokens if norm_tokens is not None else total / mask.sum().clamp(min=1.0)
    if mode not in AGG_MODES:
        raise ValueError(f"unknown agg {mode!r}; expected one of {', '.join(AGG_MODES)}")
    seq_sum = (per_token * mask).sum(dim=-1)
    seq_len = mask.sum(dim=-1)
    if mode == "seq_mean_token_sum":
        per_seq = seq_sum
    elif mode == "seq_mean_token_mean":
        per_seq = seq_sum / seq_len.clamp(min=1.0)
    else:
        if max_len is None:
            raise ValueError("agg 'seq_mean_token_sum_norm' needs the option max_len (a constant such as the "
                             "generation limit)")
        per_seq = seq_sum / float(max_len)
    n_seqs = norm_seqs if norm_seqs is not None else (seq_len > 0).sum().clamp(min=1).to(per_seq.dtype)
    return per_seq.sum() / n_seqs


# ---------------------------------------------------------------------------------------------------------
# Registered objectives
# ---------------------------------------------------------------------------------------------------------

def next_token_loss(logits: torch.Tensor, batch: TrainBatch, *, norm_tokens: float | None = None):
    """Cross-entropy over the ``loss_mask`` tokens (pretraining and SFT).

    loss = sum(mask · nll) / sum(mask) · loss_scale, or / ``norm_tokens`` (the step's loss tokens) when given.
    Metrics: ``loss`` (the micro-batch's mean nll, unscaled), ``tokens``.
    """
    import torch

    mask = batch.loss_mask.float()
    nll = -token_logprobs(logits, batch.input_ids)
    loss = aggregate(nll, mask, "token_mean", norm_tokens=norm_tokens) * batch.loss_scale
    with torch.no_grad():
        metrics = {"loss": masked_mean(nll, mask).item(), "tokens": float(mask.sum().item())}
    return loss, metrics


def policy_gradient_loss(logits: torch.Tensor, batch: TrainBatch, *, clip_low: float = 0.2,
                         clip_high: float = 0.28, kl_coef: float = 0.0, kl_estimator: str = "k3",
                         agg: str = "token_mean", norm_tokens: float | None = None,
                         norm_seqs: float | None = None, max_len: int | None = None,
                         is_cap: float | None = None, entropy_coef: float = 0.0, dual_clip: float | None = None):
    """GRPO-family objective: clipped surrogate (+ kl_coef · KL to the reference, - entropy_coef · entropy).

    ``batch.extras``: ``advantages`` [B, T] (required; the sample's advantage on each of its tokens),
    ``old_logprobs`` [B, T] (the logprobs of the policy that the ratio is taken against; absent means exactly
    on-policy, i.e. the current logprobs detached), ``ref_logprobs`` [B, T] (needed when ``kl_coef`` > 0),
    ``sampler_logprobs`` [B, T] (used when ``is_cap`` is set: the truncated IS weight of
    :func:`truncated_is_weight` multiplies each token's surrogate term; the KL and entropy terms are not
    re-weighted).

    The per-token total is reduced once with :func:`aggregate` (``agg``, ``norm_tokens``, ``norm_seqs``,
    ``max_len``) and multiplied by ``batch.loss_scale``. ``dual_clip`` = c > 1 (dual-clip PPO, Ye et al. 2020)
    caps a negative-advantage token's surrogate at ``-c·A``, so a huge ratio on a bad token cannot dominate. When ``norm_tokens``/``norm_seqs`` already make the
    micro-batch sums the step's mean, the stage leaves ``loss_scale`` at 1.0.

    Metrics (micro-batch means over loss tokens, unscaled): ``loss``, ``pg_loss``, ``kl`` (when
    ``ref_logprobs`` is given), ``clip_frac``, ``entropy``, ``ratio_mean``, ``is_weight_mean`` (when is_cap is
    set), ``tokens``.
    """
    import torch

    ex = batch.extras
    if "advantages" not in ex:
        raise KeyError("policy_gradient needs batch.extras['advantages'] [B, T]")
    mask = batch.loss_mask.float()
    logp = token_logprobs(logits, batch.input_ids)
    old_logp = ex["old_logprobs"].float() if "old_logprobs" in ex else logp.detach()
    adv = ex["advantages"].float()
    pg, ratio, clipped = clipped_surrogate(logp, old_logp, adv, clip_low, clip_high)

    metrics: dict[str, float] = {}
    if dual_clip:
        if dual_clip <= 1.0:
            raise ValueError(f"dual_clip must be > 1 (or unset), got {dual_clip}")
        capped = (adv < 0) & (pg > -dual_clip * adv)
        pg = torch.where(capped, -dual_clip * adv, pg)
        metrics["dual_clip_frac"] = masked_mean(capped.float(), mask).item()
    if is_cap is not None:
        if "sampler_logprobs" not in ex:
            raise KeyError("is_cap is set but batch.extras has no 'sampler_logprobs'")
        w = truncated_is_weight(old_logp, ex["sampler_logprobs"].float(), is_cap)
        pg = pg * w
        metrics["is_weight_mean"] = masked_mean(w, mask).item()
    total = pg

    if "ref_logprobs" in ex:
        kl = kl_estimate(logp, ex["ref_logprobs"].float(), kl_estimator)
        metrics["kl"] = masked_mean(kl.detach(), mask).item()
        if kl_coef:
            total = total + kl_coef * kl
    elif kl_coef:
        raise KeyError("kl_coef > 0 but batch.extras has no 'ref_logprobs'")

    if entropy_coef:
        ent = token_entropy(logits)
        total = total - entropy_coef * ent
        ent_metric = masked_mean(ent.detach(), mask)
    else:
        with torch.no_grad():
            ent_metric = masked_mean(token_entropy(logits), mask)

    agg_opts = dict(norm_tokens=norm_tokens, norm_seqs=norm_seqs, max_len=max_len)
    loss = aggregate(total, mask, agg, **agg_opts) * batch.loss_scale
    with torch.no_grad():
        metrics.update(
            loss=aggregate(total, mask, agg, max_len=max_len).item(),
            pg_loss=aggregate(pg, mask, agg, max_len=max_len).item(),
            clip_frac=masked_mean(clipped, mask).item(),
            entropy=ent_metric.item(),
            ratio_mean=masked_mean(ratio, mask).item(),
            tokens=float(mask.sum().item()),
        )
    return loss, metrics


@hookimpl
def raylign_register_losses(register):
    register("next_token", next_token_loss)
    register("policy_gradient", policy_gradient_loss)
