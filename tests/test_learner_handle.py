"""The learner handle a stage holds: loss options checked on the driver, several learners per stage by role,
frozen learners, and checkpoints that hold every learner. Real Ray actors on the session's tiny model."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from raylign.engine import options as declared
from raylign.engine.errors import ConfigError, PluginError
from raylign.engine.plugins import build_registry
from raylign.engine.types import TrainBatch
from raylign.plugins import advantages, policy_losses


# ---------------------------------------------------------------------------------------------- declared options


def test_a_loss_declares_its_options_with_types_and_defaults():
    cls = declared.options_class(policy_losses.policy_gradient_loss)
    opts = cls()
    assert opts.clip_low == 0.2 and opts.agg == "token_mean" and opts.is_cap is None
    assert "entropy_coef" in declared.known(policy_losses.policy_gradient_loss)
    assert declared.validate(policy_losses.policy_gradient_loss, cls(clip_low=0.1), "loss 'pg'")["clip_low"] == 0.1
    assert declared.validate(policy_losses.policy_gradient_loss, {"clip_low": 1, "max_len": 8}, "loss 'pg'") == \
        {"clip_low": 1.0, "max_len": 8}  # an integer where a float is declared is converted
    assert declared.validate(policy_losses.policy_gradient_loss, None, "loss 'pg'") == {}


@pytest.mark.parametrize("options, message", [
    ({"clip_lo": 0.1}, r"loss 'pg': unknown config key options.clip_lo. Did you mean options.clip_low\?"),
    ({"clip_low": "wide"}, r"loss 'pg': options.clip_low: expected a number, got str 'wide'"),
    ({"max_len": 8.5}, r"loss 'pg': options.max_len: expected"),
    (["clip_low"], r"loss 'pg': options must be a table, got list"),
])
def test_a_bad_loss_option_fails_naming_the_loss_and_the_option(options, message):
    with pytest.raises(ConfigError, match=message):
        declared.validate(policy_losses.policy_gradient_loss, options, "loss 'pg'")


def test_the_options_object_of_another_loss_is_refused():
    other = declared.options_class(policy_losses.next_token_loss)()
    with pytest.raises(ConfigError, match="not PolicyGradientLossOptions"):
        declared.validate(policy_losses.policy_gradient_loss, other, "loss 'pg'")


def test_advantage_estimator_options_are_declared_the_same_way():
    assert declared.known(advantages.grpo) == ["std_normalize", "unbiased", "eps"]
    assert declared.known(advantages.dr_grpo) == []
    with pytest.raises(ConfigError, match=r"std_normalise. Did you mean options.std_normalize\?"):
        declared.validate(advantages.grpo, {"std_normalise": False}, "grpo.advantage 'grpo'")


def test_a_required_option_must_be_given():
    def loss(logits, batch, *, beta: float, agg: str = "token_mean"):
        return logits.sum(), {}

    assert [f for f in declared.known(loss)] == ["beta", "agg"]
    with pytest.raises(ConfigError, match="missing config key options.beta"):
        declared.validate(loss, {"agg": "token_mean"}, "loss 'dpo'")
    assert declared.validate(loss, {"beta": 0.5}, "loss 'dpo'") == {"beta": 0.5}


# ---------------------------------------------------------------------------------------------- handles


def _batch(tok) -> list[TrainBatch]:
    ids = tok(["What is an LLM? An LLM is a large language model."] * 2, return_tensors="pt")["input_ids"]
    loss_mask = torch.ones(ids.shape, dtype=torch.float32)
    loss_mask[:, 0] = 0.0
    return [TrainBatch(ids, torch.ones_like(ids), loss_mask)]


@pytest.fixture
def ctx(tmp_path, tiny_model_dir, ray_session):
    from rich.console import Console

    from raylign.engine.checkpoint import CheckpointManager
    from raylign.engine.config import build_config
    from raylign.engine.metrics import MetricsLog
    from raylign.engine.stage import StageContext

    registry = build_registry()
    cfg = build_config({"run": {"name": "h", "output_dir": str(tmp_path), "pipeline": ["pretrain"],
                                "base_model": str(tiny_model_dir), "probes": []},
                        "pretrain": {"data": ["x.txt"]}}, registry)
    metrics = MetricsLog(tmp_path, registry.hook)
    context = StageContext(name="pretrain", config=cfg.stages[0].config, engine=cfg, run_dir=tmp_path,
                           input_model=tiny_model_dir, output_model=tmp_path / "out", base_dir=tmp_path,
                           checkpoints=CheckpointManager(tmp_path / "ck"), metrics=metrics, registry=registry,
                           console=Console(quiet=True))
    yield context
    context.close()
    metrics.close()


def test_a_stage_holds_several_learners_each_with_its_own_model_and_checkpoint(ctx, tiny_model_dir):
    from raylign.engine.modeling import load_tokenizer
    from raylign.engine.optim import OptimConfig

    batch = _batch(load_tokenizer(tiny_model_dir))
    optim = OptimConfig(lr=1e-2, warmup_steps=0)
    policy = ctx.start_learner(tiny_model_dir, optim, total_steps=10)
    critic = ctx.start_learner(tiny_model_dir, optim, total_steps=10, role="critic")
    reference = ctx.start_learner(tiny_model_dir, optim, total_steps=1, trainable=False)
    assert (policy.role, critic.role, reference.role) == ("policy", "critic", "reference")
    with pytest.raises(ValueError, match="already has a 'policy' learner"):
        ctx.start_learner(tiny_model_dir, optim, total_steps=1)

    start = policy.eval_loss(batch, "next_token")["loss"]
    for _ in range(3):
        policy.train_step(batch, "next_token")
    assert policy.version == 3 and critic.version == 0 and reference.version == 0
    assert policy.eval_loss(batch, "next_token")["loss"] < start  # only the policy moved
    assert critic.eval_loss(batch, "next_token")["loss"] == pytest.approx(start)
    assert reference.eval_loss(batch, "next_token")["loss"] == pytest.approx(start)

    # checkpoints hold every learner: the first in the directory, the others in a folder named by role
    path = ctx.save_checkpoint(3, [policy, critic], {"step": 3})
    assert (path / "learner.pt").is_file() and (path / "critic" / "learner.pt").is_file()
    lp_policy = policy.token_logprobs(batch)[0]
    lp_critic = critic.token_logprobs(batch)[0]
    policy.train_step(batch, "next_token")
    critic.train_step(batch, "next_token")
    ctx.restore([policy, critic], _resume(path))
    assert policy.version == 3 and critic.version == 0
    assert torch.equal(policy.token_logprobs(batch)[0], lp_policy)
    assert torch.equal(critic.token_logprobs(batch)[0], lp_critic)


def _resume(path: Path):
    from raylign.engine.stage import Resume

    return Resume(step=3, state={"step": 3}, path=path)


def test_options_are_checked_on_the_driver_and_frozen_learners_refuse_to_train(ctx, tiny_model_dir):
    from raylign.engine.modeling import load_tokenizer
    from raylign.engine.optim import OptimConfig

    batch = _batch(load_tokenizer(tiny_model_dir))
    policy = ctx.start_learner(tiny_model_dir, OptimConfig(lr=1e-3, warmup_steps=0), total_steps=2)
    with pytest.raises(ConfigError, match=r"loss 'next_token': unknown config key options.norm_token\b"):
        policy.train_step(batch, "next_token", {"norm_token": 3.0})
    with pytest.raises(PluginError, match="unknown loss 'next_tokens'"):
        policy.train_step(batch, "next_token" + "s")
    assert policy.version == 0, "nothing reached the actor"
    metrics = policy.train_step(batch, "next_token", {"norm_tokens": 20.0})
    assert policy.version == 1 and metrics["tokens"] > 0 and {"grad_norm", "lr", "learner_seconds"} <= set(metrics)
    reference = ctx.start_learner(tiny_model_dir, OptimConfig(), total_steps=1, trainable=False)
    with pytest.raises(RuntimeError, match="the reference learner is frozen"):
        reference.train_step(batch, "next_token")
    saved = policy.save_model(ctx.output_model)
    assert (saved / "config.json").is_file()
