"""Policy losses against hand-computed values, gradient sanity, and registration through the hook."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from raylign.engine.plugins import build_registry
from raylign.engine.types import TrainBatch
from raylign.plugins import advantages, policy_losses
from raylign.plugins.policy_losses import (aggregate, clipped_surrogate, kl_estimate, next_token_loss,
                                           policy_gradient_loss, token_entropy, token_logprobs,
                                           truncated_is_weight)

T = torch.tensor
LN2 = math.log(2.0)  # 0.6931472
LN075 = math.log(0.75)  # -0.2876821
H_75_25 = -(0.75 * math.log(0.75) + 0.25 * math.log(0.25))  # 0.5623351: entropy of [0.75, 0.25]


def close(actual, expected, tol=1e-5):
    if isinstance(actual, torch.Tensor):
        torch.testing.assert_close(actual.detach(), T(expected, dtype=torch.float32), atol=tol, rtol=0)
    else:
        assert actual == pytest.approx(expected, abs=tol)


def tiny_logits(requires_grad=False):
    """B=1, T=3, V=2. Row 0 = [0, 0] (p = [.5, .5]); row 1 = [ln 3, 0] (p = [.75, .25]); row 2 is unused
    (nothing after the last token)."""
    return T([[[0.0, 0.0], [math.log(3.0), 0.0], [5.0, -5.0]]], requires_grad=requires_grad)


IDS = T([[0, 1, 0]])  # token 1 (id 1) is predicted by row 0: p = .5; token 2 (id 0) by row 1: p = .75
MASK = T([[0.0, 1.0, 1.0]])


def pg_batch(advs, old=None, ref=None, sampler=None, loss_scale=1.0):
    extras = {"advantages": T([advs])}
    for key, val in (("old_logprobs", old), ("ref_logprobs", ref), ("sampler_logprobs", sampler)):
        if val is not None:
            extras[key] = T([val])
    return TrainBatch(input_ids=IDS, attention_mask=torch.ones_like(IDS), loss_mask=MASK,
                      loss_scale=loss_scale, extras=extras)


# --------------------------------------------------------------------------------------------------------
# Per-token quantities
# --------------------------------------------------------------------------------------------------------

def test_token_logprobs_alignment():
    close(token_logprobs(tiny_logits(), IDS), [[0.0, -LN2, LN075]])


def test_token_logprobs_matches_cross_entropy_and_accepts_bf16():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 5, 7, generator=g)
    ids = torch.randint(0, 7, (2, 5), generator=g)
    ce = F.cross_entropy(logits[:, :-1].reshape(-1, 7), ids[:, 1:].reshape(-1), reduction="none").view(2, 4)
    lp = token_logprobs(logits, ids)
    assert lp.shape == (2, 5)
    torch.testing.assert_close(lp[:, 1:], -ce)
    assert (lp[:, 0] == 0).all()
    lp16 = token_logprobs(logits.bfloat16(), ids)
    assert lp16.dtype == torch.float32
    torch.testing.assert_close(lp16, lp, atol=0.05, rtol=0)


def test_token_entropy_alignment():
    close(token_entropy(tiny_logits()), [[0.0, LN2, H_75_25]])


@pytest.mark.parametrize("logp, ref, kind, expected", [
    # logp = ln .5, ref = ln .25: log_r = ref - logp = -ln 2
    (math.log(0.5), math.log(0.25), "k1", LN2),  # -log_r
    (math.log(0.5), math.log(0.25), "k2", 0.5 * LN2 ** 2),  # 0.2402265
    (math.log(0.5), math.log(0.25), "k3", 0.5 + LN2 - 1),  # e^log_r - log_r - 1 = 0.1931472
    # logp = ln .25, ref = ln .5: log_r = +ln 2
    (math.log(0.25), math.log(0.5), "k1", -LN2),
    (math.log(0.25), math.log(0.5), "k2", 0.5 * LN2 ** 2),
    (math.log(0.25), math.log(0.5), "k3", 2 - LN2 - 1),  # 0.3068528
    (-1.3, -1.3, "k1", 0.0), (-1.3, -1.3, "k2", 0.0), (-1.3, -1.3, "k3", 0.0),
])
def test_kl_estimators(logp, ref, kind, expected):
    close(kl_estimate(T([logp]), T([ref]), kind), [expected])


def test_kl_default_is_k3_and_unknown_kind_fails():
    close(kl_estimate(T([math.log(0.5)]), T([math.log(0.25)])), [0.5 + LN2 - 1])
    with pytest.raises(ValueError, match="k4"):
        kl_estimate(T([0.0]), T([0.0]), "k4")


def test_clipped_surrogate_both_sides():
    # clip_low 0.2, clip_high 0.28: ratio is clipped to [0.8, 1.28]; loss = max(-A·r, -A·clip(r))
    ratio = T([[1.5, 0.5, 0.5, 1.5, 1.1, 1.2]])
    adv = T([[1.0, 1.0, -1.0, -1.0, 1.0, 2.0]])
    logp = ratio.log().requires_grad_(True)
    loss, r, clipped = clipped_surrogate(logp, torch.zeros_like(logp), adv, 0.2, 0.28)
    close(loss, [[
        -1.28,  # A>0, r above 1+clip_high: max(-1.5, -1.28), clip active
        -0.5,  # A>0, r below 1-clip_low: max(-0.5, -0.8), not active (a bad token may still be pushed up)
        0.8,  # A<0, r below 1-clip_low: max(0.5, 0.8), clip active
        1.5,  # A<0, r above 1+clip_high: max(1.5, 1.28), not active
        -1.1,  # inside the range
        -2.4,  # r = 1.2 would be clipped by a symmetric 0.2, but not with clip-higher 0.28
    ]])
    close(r, ratio.tolist())
    close(clipped, [[1, 0, 1, 0, 0, 0]])
    # d loss / d logp = -A·r where unclipped, 0 where clipped
    loss.sum().backward()
    close(logp.grad, [[0.0, -0.5, 0.0, 1.5, -1.1, -2.4]])


def test_truncated_is_weight():
    old = T([math.log(0.5), math.log(0.25), -1.0]).requires_grad_(True)
    sampler = T([math.log(0.25), math.log(0.5), -1.0])
    w = truncated_is_weight(old, sampler, cap=1.5)
    close(w, [1.5, 0.5, 1.0])  # exp(ln 2) = 2 capped at 1.5; exp(-ln 2) = 0.5; equal -> 1
    assert not w.requires_grad


# --------------------------------------------------------------------------------------------------------
# Aggregation
# --------------------------------------------------------------------------------------------------------

PER_TOKEN = T([[1.0, 2.0, 3.0, 9.0], [4.0, 9.0, 9.0, 9.0], [9.0, 9.0, 9.0, 9.0]])
AGG_MASK = T([[1.0, 1.0, 1.0, 0.0], [1.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]])  # row 2: padding only


@pytest.mark.parametrize("mode, options, expected", [
    ("token_mean", {}, (1 + 2 + 3 + 4) / 4),  # 2.5
    ("token_mean", {"norm_tokens": 8}, 10 / 8),  # this micro-batch's share of a step with 8 tokens
    ("seq_mean_token_sum", {}, (6 + 4) / 2),  # 5: the empty row is not a sequence
    ("seq_mean_token_sum", {"norm_seqs": 4}, 10 / 4),
    ("seq_mean_token_mean", {}, (6 / 3 + 4 / 1) / 2),  # 3
    ("seq_mean_token_sum_norm", {"max_len": 4}, (6 / 4 + 4 / 4) / 2),  # 1.25
    ("seq_mean_token_sum_norm", {"max_len": 10, "norm_seqs": 5}, (6 / 10 + 4 / 10) / 5),  # 0.2
])
def test_aggregate(mode, options, expected):
    close(aggregate(PER_TOKEN, AGG_MASK, mode, **options), expected)


def test_aggregate_errors_and_empty_mask():
    with pytest.raises(ValueError, match="max_len"):
        aggregate(PER_TOKEN, AGG_MASK, "seq_mean_token_sum_norm")
    with pytest.raises(ValueError, match="seq_sum"):
        aggregate(PER_TOKEN, AGG_MASK, "seq_sum")
    for mode in ("token_mean", "seq_mean_token_sum", "seq_mean_token_mean"):
        close(aggregate(PER_TOKEN, torch.zeros_like(AGG_MASK), mode), 0.0)


def test_token_mean_over_micro_batches_equals_step_token_mean():
    # two micro-batches of 3 and 1 loss tokens; with norm_tokens=4 their sum is the mean over all 4
    a = aggregate(T([[0.0, 1.0, 2.0, 3.0]]), T([[0.0, 1.0, 1.0, 1.0]]), norm_tokens=4)
    b = aggregate(T([[0.0, 10.0, 0.0, 0.0]]), T([[0.0, 1.0, 0.0, 0.0]]), norm_tokens=4)
    close(a + b, (1 + 2 + 3 + 10) / 4)


# --------------------------------------------------------------------------------------------------------
# Registered losses
# --------------------------------------------------------------------------------------------------------

def test_next_token_loss():
    batch = TrainBatch(input_ids=IDS, attention_mask=torch.ones_like(IDS), loss_mask=MASK, loss_scale=0.5)
    loss, m = next_token_loss(tiny_logits(), batch)
    mean_nll = (LN2 - LN075) / 2  # 0.4904146
    close(loss, mean_nll * 0.5)
    close(m["loss"], mean_nll)
    assert m["tokens"] == 2.0
    # only the first token trained; norm_tokens makes it this micro-batch's share of a 4-token step
    batch.loss_mask = T([[0.0, 1.0, 0.0]])
    batch.loss_scale = 1.0
    close(next_token_loss(tiny_logits(), batch)[0], LN2)
    close(next_token_loss(tiny_logits(), batch, norm_tokens=4)[0], LN2 / 4)


def test_policy_gradient_on_policy():
    # ratio 1 everywhere: per-token pg = -A; entropy of the two predicting rows: ln 2 and H(.75, .25)
    lp = [0.0, -LN2, LN075]
    loss, m = policy_gradient_loss(tiny_logits(), pg_batch([0.0, 1.0, 1.0], old=lp))
    close(loss, -1.0)
    close(m["pg_loss"], -1.0)
    close(m["clip_frac"], 0.0)
    close(m["ratio_mean"], 1.0)
    close(m["entropy"], (LN2 + H_75_25) / 2)  # 0.6277411
    assert m["tokens"] == 2.0 and "kl" not in m and "is_weight_mean" not in m
    # no old_logprobs: exactly on-policy, the same numbers
    close(policy_gradient_loss(tiny_logits(), pg_batch([0.0, 1.0, 1.0]))[0], -1.0)
    # loss_scale and norm_tokens: (-2 / 4) · 0.5
    close(policy_gradient_loss(tiny_logits(), pg_batch([0.0, 1.0, 1.0], old=lp, loss_scale=0.5),
                               norm_tokens=4)[0], -0.25)


def test_policy_gradient_with_clipping():
    # old logprob of token 1 is ln(.5/1.5), so its ratio is 1.5 > 1.28: clipped to -1.28; token 2 ratio 1
    old = [0.0, -LN2 - math.log(1.5), LN075]
    loss, m = policy_gradient_loss(tiny_logits(), pg_batch([0.0, 1.0, 1.0], old=old))
    close(loss, (-1.28 - 1.0) / 2)  # -1.14
    close(m["clip_frac"], 0.5)
    close(m["ratio_mean"], 1.25)
    # the symmetric clip_high=0.2 clips harder
    close(policy_gradient_loss(tiny_logits(), pg_batch([0.0, 1.0, 1.0], old=old), clip_high=0.2)[0], -1.1)


def test_policy_gradient_with_kl():
    # ref of token 1 = ln .25 vs logp ln .5: k3 = 0.1931472; token 2 equal: 0
    lp = [0.0, -LN2, LN075]
    ref = [0.0, math.log(0.25), LN075]
    k3_mean = (0.5 + LN2 - 1) / 2  # 0.0965736
    loss, m = policy_gradient_loss(tiny_logits(), pg_batch([0.0, 1.0, 1.0], old=lp, ref=ref), kl_coef=0.1)
    close(m["kl"], k3_mean)
    close(loss, -1.0 + 0.1 * k3_mean)  # -0.9903426
    close(m["pg_loss"], -1.0)
    _, m1 = policy_gradient_loss(tiny_logits(), pg_batch([0.0, 1.0, 1.0], old=lp, ref=ref), kl_estimator="k1")
    close(m1["kl"], LN2 / 2)  # kl is reported when a reference is given, even with kl_coef 0
    with pytest.raises(KeyError, match="ref_logprobs"):
        policy_gradient_loss(tiny_logits(), pg_batch([0.0, 1.0, 1.0], old=lp), kl_coef=0.1)


def test_policy_gradient_with_truncated_is():
    # learner/sampler ratio: token 1 exp(ln 2) = 2 -> capped 1.5; token 2 exp(-ln 2) = 0.5
    lp = [0.0, -LN2, LN075]
    sampler = [0.0, -2 * LN2, LN075 + LN2]
    loss, m = policy_gradient_loss(tiny_logits(), pg_batch([0.0, 2.0, 1.0], old=lp, sampler=sampler), is_cap=1.5)
    close(loss, (-2.0 * 1.5 - 1.0 * 0.5) / 2)  # -1.75 (without IS: -1.5)
    close(m["is_weight_mean"], 1.0)
    # is_cap None: sampler_logprobs are ignored
    close(policy_gradient_loss(tiny_logits(), pg_batch([0.0, 2.0, 1.0], old=lp, sampler=sampler))[0], -1.5)
    with pytest.raises(KeyError, match="sampler_logprobs"):
        policy_gradient_loss(tiny_logits(), pg_batch([0.0, 2.0, 1.0], old=lp), is_cap=2.0)


def test_truncated_is_weight_scales_only_the_surrogate_not_kl_or_entropy():
    # is_cap 1.5: weights 1.5 on token 1 (exp(ln 2) = 2, capped) and 0.5 on token 2 (exp(-ln 2)).
    # KL (k3) to the reference: 0.1931472 on token 1 (ln .5 vs ln .25), 0 on token 2; entropies ln 2 and H(.75, .25).
    # Every term sits on a token whose IS weight is not 1, so re-weighting KL or entropy changes the loss.
    lp = [0.0, -LN2, LN075]
    sampler = [0.0, -2 * LN2, LN075 + LN2]
    ref = [0.0, math.log(0.25), LN075]
    k3 = 0.5 + LN2 - 1
    batch = pg_batch([0.0, 2.0, 1.0], old=lp, ref=ref, sampler=sampler)
    opts = dict(kl_coef=1.0, entropy_coef=0.5)
    loss, m = policy_gradient_loss(tiny_logits(), batch, is_cap=1.5, **opts)
    pg = (-2.0 * 1.5 - 1.0 * 0.5) / 2  # -1.75: only the surrogate carries the weights
    kl = (k3 + 0.0) / 2  # 0.0965736, unweighted (weighted it would be (1.5 * k3) / 2)
    ent = (LN2 + H_75_25) / 2  # 0.6277411, unweighted (weighted it would be (1.5 ln 2 + 0.5 H) / 2)
    close(loss, pg + 1.0 * kl - 0.5 * ent)  # -1.9672969
    close(m["loss"], pg + kl - 0.5 * ent)
    close(m["pg_loss"], pg)
    close(m["kl"], kl)
    close(m["entropy"], ent)
    close(m["is_weight_mean"], 1.0)
    # The same batch without IS differs by the surrogate's change alone: the KL and entropy parts cancel.
    plain, _ = policy_gradient_loss(tiny_logits(), batch, **opts)
    close(plain, (-2.0 - 1.0) / 2 + kl - 0.5 * ent)
    close(loss - plain, pg - (-2.0 - 1.0) / 2)  # -0.25
    # Gradients too: d(KL + entropy terms)/d logits is the same with and without the IS weights.
    grads = []
    for cap in (1.5, None):
        logits = tiny_logits(requires_grad=True)
        no_pg = pg_batch([0.0, 0.0, 0.0], old=lp, ref=ref, sampler=sampler)  # advantages 0: only KL + entropy
        policy_gradient_loss(logits, no_pg, is_cap=cap, **opts)[0].backward()
        grads.append(logits.grad)
    torch.testing.assert_close(grads[0], grads[1], atol=1e-7, rtol=0)
    assert grads[0].abs().sum() > 0


def test_policy_gradient_entropy_bonus_and_seq_agg():
    lp = [0.0, -LN2, LN075]
    loss, _ = policy_gradient_loss(tiny_logits(), pg_batch([0.0, 1.0, 1.0], old=lp), entropy_coef=0.01)
    close(loss, -1.0 - 0.01 * (LN2 + H_75_25) / 2)
    # one sequence: seq_mean_token_sum = -2, seq_mean_token_sum_norm with max_len 8 = -2/8
    close(policy_gradient_loss(tiny_logits(), pg_batch([0.0, 1.0, 1.0], old=lp), agg="seq_mean_token_sum")[0], -2.0)
    close(policy_gradient_loss(tiny_logits(), pg_batch([0.0, 1.0, 1.0], old=lp), agg="seq_mean_token_sum_norm",
                               max_len=8)[0], -0.25)
    with pytest.raises(TypeError):
        policy_gradient_loss(tiny_logits(), pg_batch([0.0, 1.0, 1.0]), clip_hi=0.3)  # misspelled option


@pytest.mark.parametrize("adv, direction", [(1.0, 1), (-1.0, -1)])
def test_gradient_step_moves_the_token_logprob_with_the_advantage(adv, direction):
    torch.manual_seed(0)
    logits = torch.randn(1, 3, 5, requires_grad=True)
    ids = T([[2, 3, 1]])
    mask = T([[0.0, 1.0, 1.0]])
    before = token_logprobs(logits, ids).detach()
    batch = TrainBatch(input_ids=ids, attention_mask=torch.ones_like(ids), loss_mask=mask,
                       extras={"advantages": torch.full((1, 3), adv), "old_logprobs": before})
    loss, _ = policy_gradient_loss(logits, batch)
    loss.backward()
    with torch.no_grad():
        after = token_logprobs(logits - 0.1 * logits.grad, ids)
    assert (direction * (after - before)[0, 1:] > 0).all()


def test_clipped_token_gets_no_gradient():
    logits = torch.zeros(1, 3, 2, requires_grad=True)  # logp of every token = ln .5
    old = T([[0.0, -LN2 - math.log(2.0), -LN2]])  # token 1 ratio 2 (clipped for A > 0), token 2 ratio 1
    batch = TrainBatch(input_ids=IDS, attention_mask=torch.ones_like(IDS), loss_mask=MASK,
                       extras={"advantages": T([[0.0, 1.0, 1.0]]), "old_logprobs": old})
    loss, _ = policy_gradient_loss(logits, batch)
    loss.backward()
    assert logits.grad[0, 0].abs().sum() == 0  # row 0 predicts the clipped token 1
    assert logits.grad[0, 1].abs().sum() > 0


def test_registered_through_the_hook():
    reg = build_registry(entry_points=False, extra_plugins=[policy_losses])
    assert reg.names("losses") == ["next_token", "policy_gradient"]
    assert reg.get("losses", "policy_gradient") is policy_gradient_loss
    assert reg.get("losses", "next_token") is next_token_loss
    # both math modules register together without clashing
    both = build_registry(entry_points=False, extra_plugins=[policy_losses, advantages])
    assert both.names("losses") == ["next_token", "policy_gradient"]
    assert "grpo" in both.names("advantage_estimators")
