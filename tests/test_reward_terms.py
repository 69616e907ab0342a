"""A stage's reward as weighted terms (verifiers and providers), the `length` verifier, and a loss's head
checked against the learner's on the driver."""
from __future__ import annotations

import pytest

from raylign.engine.errors import ConfigError
from raylign.engine.rewards.mix import RewardMix, RewardTerm, combine
from raylign.engine.types import Verdict


def test_combine_is_the_weighted_sum_with_each_term_kept():
    terms = [RewardTerm("reward_model", 1.0), RewardTerm("math", 0.5), RewardTerm("length", 0.1)]
    v = combine(terms, {"reward_model": Verdict(0.8), "math": Verdict(1.0, details={"answer": "4"}),
                        "length": Verdict(-3.0)})
    assert v.reward == pytest.approx(0.8 + 0.5 - 0.3) and v.status == "ok"
    assert v.details["terms"] == {"reward_model": 0.8, "math": 1.0, "length": -3.0}
    assert v.details["answer"] == "4"


def test_combine_hides_no_failure():
    terms = [RewardTerm("a"), RewardTerm("b")]
    v = combine(terms, {"a": Verdict(1.0), "b": Verdict(0.0, status="timeout", error="slow")})
    assert v.status == "timeout" and "b: slow" in v.error
    v = combine(terms, {"a": Verdict(0.0, status="invalid", error="x"), "b": Verdict(0.5)})
    assert v.status == "ok"  # one term judged it
    v = combine(terms, {"a": Verdict(0.0, status="invalid", error="x"), "b": Verdict(0.0, status="invalid", error="y")})
    assert v.status == "invalid"


def test_a_single_weighted_term_is_scaled():
    assert combine([RewardTerm("a", 2.0)], {"a": Verdict(0.25)}).reward == 0.5
    same = Verdict(0.25, details={"k": 1})
    assert combine([RewardTerm("a")], {"a": same}) is same


def test_unknown_term_names_both_kinds():
    from raylign.engine.plugins import build_registry

    with pytest.raises(ConfigError, match=r"ppo.rewards\[0\].name = 'reward_modle' is neither a reward provider "
                                          r"\(reward_model\) nor a verifier"):
        RewardMix.kind_of(RewardTerm("reward_modle"), build_registry(), "ppo.rewards[0]")
    reg = build_registry()
    assert RewardMix.kind_of(RewardTerm("reward_model"), reg, "x") == "provider"
    assert RewardMix.kind_of(RewardTerm("math"), reg, "x") == "verifier"
    assert RewardMix.kind_of(RewardTerm("verifier"), reg, "x") == "verifier"


def test_duplicate_terms_and_model_on_a_verifier_fail_before_anything_starts():
    from raylign.engine.plugins import build_registry

    started = []
    start = lambda *a: started.append(a)  # noqa: E731
    with pytest.raises(ConfigError, match="give one a `label`"):
        RewardMix([RewardTerm("math"), RewardTerm("math")], build_registry(), start, start, owner="grpo.rewards")
    with pytest.raises(ConfigError, match=r"grpo.rewards\[0\].model: 'math' is a verifier"):
        RewardMix([RewardTerm("math", model="x")], build_registry(), start, start, owner="grpo.rewards")
    with pytest.raises(ConfigError, match="grpo.rewards is empty"):
        RewardMix([], build_registry(), start, start, owner="grpo.rewards")
    assert not started


@pytest.mark.parametrize("options, completion, reward", [
    ({}, "one two three", -3.0),
    ({"free": 5}, "one two three", 0.0),
    ({"free": 1, "scale": 2.0}, "one two three", -1.0),
    ({"unit": "chars", "free": 10}, "x" * 14, -4.0),
])
def test_length_verifier(options, completion, reward):
    from raylign.verifiers.length import LengthPenalty

    assert LengthPenalty(**options)(completion, {}).reward == reward


def test_length_verifier_rejects_bad_options():
    from raylign.verifiers.length import LengthPenalty

    with pytest.raises(ValueError, match="unit"):
        LengthPenalty(unit="tokens")


def test_a_loss_for_a_value_head_is_refused_on_an_lm_learner():
    from raylign.engine.learner_handle import LearnerHandle
    from raylign.engine.plugins import build_registry

    reg = build_registry()
    lm = LearnerHandle(None, reg, role="policy", head="lm")
    with pytest.raises(ConfigError, match="loss 'bradley_terry' trains a learner with head='value', but the policy "
                                          "learner has head='lm'"):
        lm.check_loss("bradley_terry")
    critic = LearnerHandle(None, reg, role="critic", head="value")
    with pytest.raises(ConfigError, match="head='lm'"):
        critic.check_loss("policy_gradient")
    assert critic.check_loss("value_clipped", {"clip": 0.1}) == {"clip": 0.1}


def test_reward_model_provider_refuses_a_model_without_stats(tiny_model_dir):
    from raylign.verifiers.reward_model import RewardModelProvider

    with pytest.raises(FileNotFoundError, match="reward_stats.json.*normalize = false"):
        RewardModelProvider(str(tiny_model_dir))
    raw = RewardModelProvider(str(tiny_model_dir), normalize=False, batch_size=2)
    samples = [{"completion": "An LLM is a model.", "task": {"prompt": "What is an LLM?"}},
               {"completion": "42.", "task": {"prompt": [{"role": "user", "content": "What is 12+30?"}]}},
               {"completion": "x", "task": {}},
               {"completion": "The quick brown fox jumps over the lazy dog.", "task": {"prompt": "What is a fox?"}}]
    out = raw.score(samples)
    assert [v.status for v in out] == ["ok", "ok", "invalid", "ok"]
    assert "no prompt" in out[2].error
    # batching does not change a score (padding is never read)
    alone = [raw.score([s])[0].reward for s in samples]
    assert [v.reward for v in out] == pytest.approx(alone, abs=1e-4)
