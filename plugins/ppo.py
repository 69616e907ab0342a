"""Stage ``ppo``: RLHF with a learned reward, a critic and a KL leash to the starting policy.

One step: sample replies to ``prompts_per_step`` prompts on the vLLM rollout fleet (``samples_per_prompt``
each); score them with the stage's reward terms (typically the ``reward_model`` provider, optionally plus
verifiers and a length penalty); on the learners compute the policy's and the frozen reference's token logprobs
and the critic's values; shape per-token rewards (``-kl_coef · KL`` on every token, the clipped score on the
last); GAE (``gamma``, ``lam``), whitened advantages; ``epochs`` passes of ``mini_batches`` optimizer steps each
for the policy (clipped surrogate, optional dual clip, KL as a loss term instead when ``kl_in = "loss"``) and
the critic (clipped value loss); then the engine's weight sync (version, canary). The KL coefficient is fixed,
or adaptive to ``kl_target``.

Over-optimisation made visible: at ``eval_every`` steps and at the end, the greedy answers on held-out prompts
are scored by the reward (``eval_rm_score``) and, when ``gold`` names a verifier (a program the reward model
never saw), by it (``eval_gold_score``), beside ``kl``; at the end the gold judge compares every held-out answer
with the input model's (``gold_win_rate``, ``gold_tie_rate``).

Rollouts: each step writes a sample of its replies to ``rollouts/<stage>.jsonl`` with the reward (the terms'
weighted score, before ``reward_clip`` and ``missing_eos_penalty``), ``advantage`` = the mean over the reply's
tokens of its GAE advantages as the loss sees them (whitened when ``whiten_advantages``; per-token advantages
vary along a reply, the mean is their per-sequence summary) and ``kl`` = the reply's summed k1 KL to the reference; each eval writes its greedy
held-out answers (kind "eval", step 0 = the input model) with ``reward`` = the reward's score and
``gold_score`` = the gold judge's.
"""
from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from typing import Any

from raylign.engine import hookimpl
from raylign.engine.data import indices_at
from raylign.engine.errors import ConfigError
from raylign.engine.modeling import load_tokenizer, stop_token_ids
from raylign.engine.ops import check_pack
from raylign.engine.optim import OptimConfig
from raylign.engine.rewards.mix import RewardMix, RewardTerm
from raylign.engine.tasks.spec import PromptDataConfig
from raylign.engine.types import RolloutGroup, SequenceBatch, TrainBatch
from raylign.plugins import ppo_math
from raylign.plugins.grpo_batch import sequence_batch
from raylign.plugins.judge import gold_comparison


@dataclass(frozen=True)
class PPOConfig(PromptDataConfig):
    # data, eval_data, eval_size, task, fields, template, system, few_shot, max_prompt_tokens, check: the prompt
    # rows (PromptDataConfig, raylign.engine.tasks.spec): prompt (string or chat messages) plus what the reward
    # terms read, other field names mapped in `fields`, or a registered task
    eval_every: int = 0  # steps between evals (0 = before and after only)
    rewards: tuple[RewardTerm, ...] = ()  # the reward: a weighted sum of providers and verifiers (required)
    gold: str = ""  # a verifier used only to evaluate (a gold judge the reward model never saw; "" = none)
    gold_options: dict[str, Any] = field(default_factory=dict)  # its options
    steps: int = 40  # rollout batches
    prompts_per_step: int = 32  # prompts per rollout batch
    samples_per_prompt: int = 1  # replies sampled per prompt
    max_new_tokens: int = 48  # reply length limit
    temperature: float = 1.0  # sampling temperature (top-p 1, no top-k: true sampler logprobs)
    epochs: int = 2  # passes over each rollout batch
    mini_batches: int = 1  # optimizer steps per pass (the batch is shuffled and split)
    micro_batch_size: int = 32  # sequences per learner forward/backward
    pack: str = "none"  # learner compute on padding: none | sort (micro-batches cut to their real columns) |
    # pack (each micro-batch's sequences packed into rows, attention kept within each; the fastest)
    gamma: float = 1.0  # discount
    lam: float = 0.95  # GAE lambda
    whiten_advantages: bool = True  # normalize advantages over the batch's reply tokens
    clip_low: float = 0.2  # policy ratio clip below 1
    clip_high: float = 0.2  # policy ratio clip above 1
    dual_clip: float = 0.0  # dual-clip constant c > 1 for negative advantages (0 = off)
    value_clip: float = 0.2  # value clip around the old values (0 = plain squared error)
    kl_coef: float = 0.05  # KL coefficient (the starting one when kl_target > 0)
    kl_estimator: str = "k1"  # per-token KL estimate: k1 | k2 | k3
    kl_in: str = "reward"  # reward: -kl_coef * KL per token in the reward; loss: a KL term in the policy loss
    kl_target: float = 0.0  # adaptive KL: the per-sequence KL to hold (0 = fixed kl_coef)
    kl_horizon: int = 10_000  # adaptive KL: sequences over which the coefficient adapts
    reward_clip: float = 5.0  # scores are clipped to [-reward_clip, reward_clip] (0 = off)
    missing_eos_penalty: float = 0.0  # subtracted from the score of a reply cut by max_new_tokens
    entropy_coef: float = 0.0  # entropy bonus
    is_cap: float = 2.0  # truncated importance-sampling cap between learner and sampler (0 = off)
    critic: str = "reward_model"  # critic init: an earlier stage or a model dir ("" = the policy with a new head)
    critic_warmup_steps: int = 0  # the first steps train the critic only (the policy waits)
    checkpoint_every: int = 10  # steps between checkpoints
    optim: OptimConfig = field(default_factory=lambda: OptimConfig(lr=1e-5, warmup_steps=0, schedule="constant",
                                                                   weight_decay=0.0))
    critic_optim: OptimConfig = field(default_factory=lambda: OptimConfig(lr=1e-4, warmup_steps=0,
                                                                          schedule="constant", weight_decay=0.0))


def value_clipped_loss(values, batch: TrainBatch, *, clip: float = 0.2, norm_tokens: float | None = None):
    """Registered loss ``value_clipped`` (value learners): PPO's clipped value loss on the reply tokens.
    ``batch.extras``: ``returns`` and ``old_values`` [B, T] (state values, see :func:`ppo_math.state_values`).
    Metrics: ``loss``, ``value_clip_frac``, ``value_mean``, ``tokens``."""
    import torch

    from raylign.plugins.policy_losses import aggregate, masked_mean

    mask = batch.loss_mask.float()
    v = ppo_math.state_values(values)
    loss_tok, clipped = ppo_math.clipped_value_loss(v, batch.extras["old_values"].float(),
                                                    batch.extras["returns"].float(), clip or None)
    loss = aggregate(loss_tok, mask, "token_mean", norm_tokens=norm_tokens) * batch.loss_scale
    with torch.no_grad():
        metrics = {"loss": masked_mean(loss_tok, mask).item(), "value_clip_frac": masked_mean(clipped, mask).item(),
                   "value_mean": masked_mean(v, mask).item(), "tokens": float(mask.sum().item())}
    return loss, metrics


value_clipped_loss.head = "value"


def select(batch: SequenceBatch, idx: list[int]) -> SequenceBatch:
    return SequenceBatch(batch.input_ids[idx], batch.attention_mask[idx], batch.loss_mask[idx],
                         {k: v[idx] for k, v in batch.extras.items()})


class PPOStage:
    config_cls = PPOConfig

    def run(self, ctx):
        t_start = time.perf_counter()
        cfg: PPOConfig = ctx.config
        self._check(ctx, cfg)
        tok = load_tokenizer(ctx.input_model)
        stops = stop_token_ids(tok)
        rows = self._load(ctx, cfg, tok)
        train_rows, eval_rows = rows.train, rows.evals
        rewards = ctx.start_rewards(cfg.rewards, rows.verifier or None, rows.verifier_options,
                                    key=f"{ctx.name}.rewards")
        checked = ctx.check_references(rows, rewards)  # only when the reward has a verifier term
        per_step = cfg.epochs * cfg.mini_batches
        fleet = ctx.start_rollout_fleet(ctx.input_model, wait=False)  # the engines start while the learners do
        policy = ctx.start_learner(ctx.input_model, cfg.optim, max(1, cfg.steps - cfg.critic_warmup_steps) * per_step,
                                   pack=cfg.pack)
        critic_dir = ctx.model_ref(cfg.critic, f"{ctx.name}.critic") if cfg.critic else ctx.input_model
        critic = ctx.start_learner(critic_dir, cfg.critic_optim, cfg.steps * per_step, role="critic", head="value",
                                   pack=cfg.pack)
        reference = ctx.start_learner(ctx.input_model, cfg.optim, 1, trainable=False, pack=cfg.pack)
        gold = (ctx.start_rewards([RewardTerm(name=cfg.gold, options=dict(cfg.gold_options))], key=f"{ctx.name}.gold")
                if cfg.gold else None)
        fleet.wait_ready()
        checked["startup_seconds"] = time.perf_counter() - t_start  # every role started, from the stage's start
        checked.update(ctx.solve_rates(rows, rewards, fleet, cfg.max_new_tokens, stops))
        kl_ctl = ppo_math.KLController(cfg.kl_coef, cfg.kl_target, cfg.kl_horizon)

        resume = ctx.resume_point()
        before, gold_before = self.evaluate(fleet, rewards, gold, eval_rows, cfg, stops,
                                            log=lambda gs, ex: ctx.log_rollouts(0, gs, kind="eval", extras=ex))
        ctx.console.print(f"{ctx.name}: before: held-out rm score {before['eval_rm_score']:.3f}"
                          + (f", gold score {before['eval_gold_score']:.3f}" if gold else ""))
        start, kl = 0, 0.0
        if resume is None:
            ctx.log(0, {**before, "kl": 0.0})  # the curves' starting point: the input model itself
        else:
            ctx.restore([policy, critic], resume)
            start, kl_ctl.coef = resume.step, resume.state["kl_coef"]
            ctx.sync_weights(policy, fleet)

        def produce(step: int):
            return self.collect(fleet, rewards, train_rows, cfg, stops, step, ctx.seed)

        with ctx.progress(cfg.steps, start) as bar, ctx.rollout_stream(produce, start, cfg.steps, policy,
                                                                        fleet) as stream:
            for step in range(start + 1, cfg.steps + 1):
                t0, logged = time.perf_counter(), ctx.rollouts.seconds
                groups, metrics = stream.batch(step)  # made ahead while the learners trained when k > 0
                metrics.update(stream.mark_stale(groups))
                batch, stats = self.prepare(policy, critic, reference, groups, cfg, kl_ctl.coef, tok.pad_token_id)
                metrics.update(stats)
                train_policy = step > cfg.critic_warmup_steps
                metrics.update(self.update(policy, critic, batch, cfg, kl_ctl.coef, step, ctx.seed, train_policy))
                kl = stats["kl"]
                metrics["kl_coef"] = kl_ctl.update(kl, len(batch))
                metrics.update(stream.sync(step, push=train_policy))  # critic warm-up: the policy did not move
                t_log = time.perf_counter()
                adv, seq_kl = self.per_reply(batch, groups)
                logged -= time.perf_counter() - t_log  # per_reply's time counts as the rollout log's
                ctx.log_rollouts(step, groups, advantages=adv, extras=seq_kl)
                if cfg.eval_every and step % cfg.eval_every == 0 and step != cfg.steps:
                    metrics.update(self.evaluate(
                        fleet, rewards, gold, eval_rows, cfg, stops,
                        log=lambda gs, ex: ctx.log_rollouts(step, gs, kind="eval", extras=ex))[0])
                metrics["rollout_log_seconds"] = ctx.rollouts.seconds - logged  # this step's rollout writes
                metrics["rollout_restarts"] = fleet.restarts  # rollout workers replaced so far (rollout.max_restarts)
                metrics["step_seconds"] = time.perf_counter() - t0
                ctx.log(step, metrics)
                bar.update(step, score=metrics["score_mean"], kl=kl)
                if cfg.checkpoint_every and step % cfg.checkpoint_every == 0 and step != cfg.steps:
                    ctx.save_checkpoint(step, [policy, critic], {"step": step, "kl_coef": kl_ctl.coef})
        after, gold_after = self.evaluate(fleet, rewards, gold, eval_rows, cfg, stops,
                                          log=lambda gs, ex: ctx.log_rollouts(cfg.steps, gs, kind="eval", extras=ex))
        final = {**after, "kl": kl, "eval_rm_score_before": before["eval_rm_score"]}
        if gold:
            final.update(gold_comparison(gold_before, gold_after))
            final["eval_gold_score_before"] = before["eval_gold_score"]
        ctx.log(cfg.steps, final)
        policy.save_model(ctx.output_model)
        return {**final, **checked}

    # ------------------------------------------------------------------------------------------ set-up
    @staticmethod
    def _check(ctx, cfg: PPOConfig) -> None:
        n = ctx.name
        if not cfg.rewards:
            raise ConfigError(f'{n}.rewards is empty: e.g. rewards = [{{ name = "reward_model", model = "reward_model" }}]')
        if cfg.kl_in not in ("reward", "loss"):
            raise ConfigError(f"{n}.kl_in must be 'reward' or 'loss', got {cfg.kl_in!r}")
        if cfg.kl_estimator not in ("k1", "k2", "k3"):
            raise ConfigError(f"{n}.kl_estimator must be k1, k2 or k3, got {cfg.kl_estimator!r}")
        check_pack(f"{n}.pack", cfg.pack)
        if ctx.engine.rollout.max_staleness > 0 and not cfg.is_cap:
            raise ConfigError(f"{n}.is_cap = 0 with rollout.max_staleness = {ctx.engine.rollout.max_staleness}: "
                              f"samples from older weights need the truncated importance weight (set is_cap, e.g. 2)")
        if cfg.dual_clip and cfg.dual_clip <= 1.0:
            raise ConfigError(f"{n}.dual_clip must be > 1 (or 0 for off), got {cfg.dual_clip}")
        if cfg.epochs < 1 or cfg.mini_batches < 1:
            raise ConfigError(f"{n}.epochs and {n}.mini_batches must be at least 1")
        if not 0 <= cfg.critic_warmup_steps < cfg.steps:
            raise ConfigError(f"{n}.critic_warmup_steps must be in [0, steps), got {cfg.critic_warmup_steps}")
        if cfg.gold:
            ctx.registry.get("verifiers", cfg.gold)
        for i, term in enumerate(cfg.rewards):
            RewardMix.kind_of(term, ctx.registry, f"{n}.rewards[{i}]")

    def _load(self, ctx, cfg: PPOConfig, tok):
        rows = ctx.prompt_rows(tok)
        ctx.console.print(
            f"{ctx.name}: {len(rows.train)} training prompts, {len(rows.evals)} held-out; per step "
            f"{cfg.prompts_per_step} prompts x {cfg.samples_per_prompt} = "
            f"{cfg.prompts_per_step * cfg.samples_per_prompt} replies, {cfg.epochs} epoch(s) x {cfg.mini_batches} "
            f"mini-batch(es); {rows.skipped} prompts over {cfg.max_prompt_tokens} tokens skipped")
        return rows

    # ------------------------------------------------------------------------------------------ rollouts
    def collect(self, fleet, rewards, rows, cfg: PPOConfig, stops, step: int, seed: int):
        picked = [rows[i] for i in indices_at(len(rows), (step - 1) * cfg.prompts_per_step, cfg.prompts_per_step, seed)]
        t0 = time.perf_counter()
        outs = fleet.generate([p["ids"] for p in picked], n=cfg.samples_per_prompt, temperature=cfg.temperature,
                              top_p=1.0, max_tokens=cfg.max_new_tokens, stop_token_ids=stops,
                              seed=seed * 100_003 + step * 101)
        gen_seconds = time.perf_counter() - t0
        samples = [{"completion": c.text, "task": p["row"]} for p, cs in zip(picked, outs) for c in cs]
        verdicts = rewards.score(samples)
        groups, k = [], 0
        for p, cs in zip(picked, outs):
            groups.append(RolloutGroup(task=p["row"], prompt_ids=p["ids"], completions=cs,
                                       verdicts=verdicts[k:k + len(cs)]))
            k += len(cs)
        lengths = [len(c.token_ids) for cs in outs for c in cs]
        metrics: dict[str, float] = {
            "reward_mean": sum(v.reward for v in verdicts) / max(1, len(verdicts)),
            "response_length": sum(lengths) / max(1, len(lengths)),
            "truncated_frac": sum(c.truncated for cs in outs for c in cs) / max(1, len(lengths)),
            "rollout_seconds": gen_seconds, "rollout_tokens_per_s": sum(lengths) / max(gen_seconds, 1e-9),
        }
        for v in verdicts:
            metrics[f"verdict/{v.status}"] = metrics.get(f"verdict/{v.status}", 0) + 1
        metrics.update(rewards.term_metrics(verdicts))
        return groups, metrics

    # ------------------------------------------------------------------------------------------ update
    def prepare(self, policy, critic, reference, groups: list[RolloutGroup], cfg: PPOConfig, kl_coef: float,
                pad_id: int) -> tuple[SequenceBatch, dict[str, float]]:
        """The rollout batch with everything the updates need: old/ref logprobs, old values, advantages, returns."""
        import torch

        from raylign.plugins.policy_losses import kl_estimate

        zeros = torch.zeros((len(groups), max(len(g.completions) for g in groups)))
        batch = sequence_batch(groups, zeros, pad_id, mask_truncated=False)
        mask = batch.loss_mask
        plain = SequenceBatch(batch.input_ids, batch.attention_mask, mask).micro_batches(cfg.micro_batch_size)
        old = torch.cat(policy.token_logprobs(plain))
        ref = torch.cat(reference.token_logprobs(plain))
        values = ppo_math.state_values(torch.cat(critic.values(plain))) * mask
        scores = torch.tensor([v.reward - (cfg.missing_eos_penalty if c.truncated else 0.0)
                               for g in groups for v, c in zip(g.verdicts, g.completions)], dtype=torch.float32)
        if cfg.reward_clip:
            scores = scores.clamp(-cfg.reward_clip, cfg.reward_clip)
        kl_tok = kl_estimate(old, ref, cfg.kl_estimator) * mask
        shaped = kl_coef if cfg.kl_in == "reward" else 0.0
        token_rewards = ppo_math.token_rewards(scores, kl_tok, mask, shaped)
        adv, returns = ppo_math.gae(token_rewards, values, mask, cfg.gamma, cfg.lam)
        if cfg.whiten_advantages:
            adv = ppo_math.whiten(adv, mask)
        batch.extras.update(advantages=adv, old_logprobs=old, ref_logprobs=ref, returns=returns, old_values=values)
        seq_kl = (((old - ref) * mask).sum(1)).mean()  # k1 summed over each reply: the sequence-level KL
        stats = {"score_mean": float(scores.mean()), "kl": float(seq_kl),
                 "kl_token_mean": float(kl_tok.sum() / mask.sum().clamp(min=1)),
                 "explained_variance": ppo_math.explained_variance(values, returns, mask),
                 "return_mean": float((returns * mask).sum() / mask.sum().clamp(min=1)),
                 "value_mean": float((values * mask).sum() / mask.sum().clamp(min=1))}
        return batch, stats

    @staticmethod
    def per_reply(batch: SequenceBatch, groups: list[RolloutGroup]) -> tuple[list[list[float]], list[list[dict]]]:
        """Per reply, aligned with ``groups``' completions: the mean of its (whitened) token advantages, and its
        summed k1 KL to the reference (as ``{"kl": ...}`` extras for the rollout log)."""
        mask = batch.loss_mask
        n = mask.sum(1).clamp(min=1)
        adv = ((batch.extras["advantages"] * mask).sum(1) / n).tolist()
        kl = ((batch.extras["old_logprobs"] - batch.extras["ref_logprobs"]) * mask).sum(1).tolist()
        out_adv, out_kl, k = [], [], 0
        for g in groups:
            m = len(g.completions)
            out_adv.append(adv[k:k + m])
            out_kl.append([{"kl": x} for x in kl[k:k + m]])
            k += m
        return out_adv, out_kl

    def update(self, policy, critic, batch: SequenceBatch, cfg: PPOConfig, kl_coef: float, step: int, seed: int,
               train_policy: bool) -> dict[str, float]:
        order = list(range(len(batch)))
        rng = random.Random(f"{seed}-ppo-{step}")
        size = -(-len(batch) // cfg.mini_batches)
        sums: dict[str, float] = {}
        count = 0
        for _ in range(cfg.epochs):
            rng.shuffle(order)
            for start in range(0, len(order), size):
                part = select(batch, order[start:start + size])
                micro = part.micro_batches(cfg.micro_batch_size, by_length=cfg.pack == "sort")
                out: dict[str, float] = {}
                if train_policy:
                    opts = {"clip_low": cfg.clip_low, "clip_high": cfg.clip_high, "dual_clip": cfg.dual_clip or None,
                            "kl_coef": kl_coef if cfg.kl_in == "loss" else 0.0, "kl_estimator": cfg.kl_estimator,
                            "entropy_coef": cfg.entropy_coef, "is_cap": cfg.is_cap or None, "agg": "token_mean",
                            "norm_tokens": part.loss_tokens}
                    pol = policy.train_step(micro, "policy_gradient", opts)
                    out.update({("policy_loss" if k == "loss" else k): v for k, v in pol.items()
                                if k not in ("kl", "tokens", "step_tokens")})
                val = critic.train_step(micro, "value_clipped", {"clip": cfg.value_clip, "norm_tokens": part.loss_tokens})
                out.update(value_loss=val["loss"], value_clip_frac=val["value_clip_frac"],
                           value_grad_norm=val["grad_norm"])
                for k, v in out.items():
                    sums[k] = sums.get(k, 0.0) + float(v)
                count += 1
        # means over the step's updates, but the policy learner's time is their total
        return {k: v if k == "learner_seconds" else v / count for k, v in sums.items()}

    # ------------------------------------------------------------------------------------------ eval
    @staticmethod
    def evaluate(fleet, rewards, gold, rows, cfg: PPOConfig, stops, log=None) -> tuple[dict[str, float], list[float]]:
        """Greedy answers on the held-out prompts scored by the reward and the gold judge: the metrics and the
        per-prompt gold scores. ``log`` (if given) receives the answers as one-completion groups and their gold
        scores as extras."""
        outs = fleet.generate([r["ids"] for r in rows], n=1, temperature=0.0, top_p=1.0,
                              max_tokens=cfg.max_new_tokens, stop_token_ids=stops, seed=0)
        samples = [{"completion": cs[0].text, "task": r["row"]} for r, cs in zip(rows, outs)]
        verdicts = rewards.score(samples)
        metrics = {"eval_rm_score": sum(v.reward for v in verdicts) / max(1, len(verdicts)),
                   "eval_failed": sum(v.failed for v in verdicts),  # (counted, not hidden in the means)
                   "eval_response_length": sum(len(cs[0].token_ids) for cs in outs) / max(1, len(outs))}
        metrics.update({f"eval_{k}": v for k, v in rewards.term_metrics(verdicts).items()})
        gold_scores: list[float] = []
        if gold is not None:
            gold_verdicts = gold.score(samples)
            gold_scores = [v.reward for v in gold_verdicts]
            metrics["eval_gold_score"] = sum(gold_scores) / max(1, len(gold_scores))
            metrics["eval_gold_failed"] = sum(v.failed for v in gold_verdicts)
        if log is not None:
            log([RolloutGroup(task=r["row"], prompt_ids=r["ids"], completions=cs[:1], verdicts=[v])
                 for r, cs, v in zip(rows, outs, verdicts)],
                [[{"gold_score": s}] for s in gold_scores] if gold_scores else None)
        return metrics, gold_scores


@hookimpl
def raylign_register_stages(register):
    register("ppo", PPOStage)


@hookimpl
def raylign_register_losses(register):
    register("value_clipped", value_clipped_loss)
