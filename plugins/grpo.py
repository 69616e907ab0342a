"""Stage ``grpo``: group-relative policy optimization against verifiable rewards.

One step: sample G completions for each of ``prompts_per_step`` prompts on the vLLM rollout fleet; score them
in the reward fleet (verifier by row); optionally drop zero-variance groups and refill (dynamic sampling);
turn rewards into advantages with a registered estimator; recompute old logprobs on the learner for the updates
after the first (and reference logprobs when ``kl_coef > 0``); run ``updates_per_batch`` optimizer steps of a
registered policy loss (their metrics averaged, except the totals ``learner_seconds``, ``tokens`` and
``step_tokens``); push the new weights to the fleet (versioned, canary-checked). Held-out greedy accuracy is
measured on the fleet before and after. Groups are scored as they finish generating; with
``rollout.max_staleness = k > 0`` the engine makes the next batches while the learner trains
(engine/rollout_stream.py), and samples from weights more than k syncs old are left out of the loss.

Rollouts: each step writes a sample of its groups (prompt, completions, verdicts, each sample's advantage) to
``rollouts/<stage>.jsonl``, and each held-out eval its greedy answers (kind "eval"; step 0 = before training).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from raylign.engine import hookimpl
from raylign.engine import options as declared
from raylign.engine.data import indices_at
from raylign.engine.errors import ConfigError
from raylign.engine.modeling import load_tokenizer, stop_token_ids
from raylign.engine.ops import check_pack
from raylign.engine.optim import OptimConfig
from raylign.engine.rewards.mix import RewardMix, RewardTerm
from raylign.engine.rollout_score import generate_and_score
from raylign.engine.tasks.spec import PromptDataConfig
from raylign.engine.types import RolloutGroup, SequenceBatch
from raylign.plugins.grpo_batch import has_signal, pass_rate, sequence_batch

TOTALS = ("learner_seconds", "tokens", "step_tokens")  # a step's updates add up; other metrics are averaged


@dataclass(frozen=True)
class GRPOConfig(PromptDataConfig):
    # data, eval_data, eval_size, task, fields, template, system, few_shot, max_prompt_tokens, check: the prompt
    # rows (PromptDataConfig, raylign.engine.tasks.spec): JSONL/Parquet rows of prompt and answer/tests (and an
    # optional verifier), any other field names mapped in `fields`, or a registered task
    eval_every: int = 0  # steps between evals during training (0 = before and after only)
    verifier: str = "math"  # default verifier; a row's `verifier` field overrides it
    verifier_options: dict[str, dict[str, Any]] = field(default_factory=dict)  # {name = {option = value}}
    rewards: tuple[RewardTerm, ...] = ()  # a weighted sum of verifiers and reward providers (empty = each row's
    # verifier alone); a term named "verifier" is each row's own verifier
    steps: int = 20  # rollout batches (each followed by updates_per_batch optimizer steps)
    prompts_per_step: int = 16  # prompts per rollout batch
    group_size: int = 8  # G completions per prompt
    micro_batch_size: int = 32  # sequences per learner forward/backward
    pack: str = "none"  # learner compute on padding: none | sort (micro-batches cut to their real columns) |
    # pack (each micro-batch's sequences packed into rows, attention kept within each; the fastest)
    updates_per_batch: int = 1  # optimizer steps per rollout batch (the batch is split into this many parts)
    max_new_tokens: int = 64  # completion length limit
    temperature: float = 1.0  # training sampling temperature (top-p 1, no top-k: true sampler logprobs)
    advantage: str = "grpo"  # a registered advantage estimator: grpo, dr_grpo, rloo, reinforce_pp, ...
    advantage_options: dict[str, Any] = field(default_factory=dict)  # e.g. {std_normalize = false}
    loss: str = "policy_gradient"  # a registered learner loss
    clip_low: float = 0.2  # PPO clip below 1
    clip_high: float = 0.28  # PPO clip above 1 (clip-higher)
    agg: str = "token_mean"  # loss aggregation: token_mean | seq_mean_token_sum | seq_mean_token_mean | seq_mean_token_sum_norm
    kl_coef: float = 0.0  # KL penalty to the frozen starting model (0 = no reference model is loaded)
    kl_estimator: str = "k3"  # k1 | k2 | k3
    entropy_coef: float = 0.0  # entropy bonus
    is_cap: float = 2.0  # truncated importance-sampling cap between learner and sampler (0 = off)
    dynamic_sampling: bool = False  # drop groups whose rewards are all equal and refill the batch
    max_refills: int = 3  # extra rollout rounds per step when refilling
    mask_truncated: bool = False  # leave completions cut by max_new_tokens out of the loss (DAPO overlong masking;
    # off by default: with a short max_new_tokens it removes the penalty for rambling and the policy learns to ramble)
    drop_failed: bool = False  # samples whose verdict is timeout/error are left out of the loss (else scored)
    checkpoint_every: int = 10  # steps between checkpoints
    optim: OptimConfig = field(default_factory=lambda: OptimConfig(lr=2e-4, warmup_steps=0, schedule="constant",
                                                                   weight_decay=0.0))


class GRPOStage:
    config_cls = GRPOConfig

    def run(self, ctx):
        t_start = time.perf_counter()
        cfg: GRPOConfig = ctx.config
        self._check(ctx, cfg)
        tok = load_tokenizer(ctx.input_model)
        stops = stop_token_ids(tok)
        rows = self._load(ctx, cfg, tok)
        train_rows, eval_rows = rows.train, rows.evals
        rewards = ctx.start_rewards(cfg.rewards or (RewardTerm(name="verifier"),), rows.verifier,
                                    rows.verifier_options, key=f"{ctx.name}.rewards")
        checked = ctx.check_references(rows, rewards)  # a wrong field mapping stops here, before the fleets
        total_updates = cfg.steps * cfg.updates_per_batch
        fleet = ctx.start_rollout_fleet(ctx.input_model, wait=False)  # the engines start while the learners do
        learner = ctx.start_learner(ctx.input_model, cfg.optim, total_updates, pack=cfg.pack)
        reference = (ctx.start_learner(ctx.input_model, cfg.optim, 1, trainable=False, pack=cfg.pack)
                     if cfg.kl_coef > 0 else None)
        fleet.wait_ready()
        checked["startup_seconds"] = time.perf_counter() - t_start  # every role started, from the stage's start
        checked.update(ctx.solve_rates(rows, rewards, fleet, cfg.max_new_tokens, stops))
        estimator = ctx.registry.get("advantage_estimators", cfg.advantage)

        # the same greedy eval on training prompts: a gain there without one on held-out prompts is memorization
        seen, train_probe = set(), []
        for r in train_rows:
            if len(train_probe) < cfg.eval_size and tuple(r["ids"]) not in seen:
                seen.add(tuple(r["ids"]))
                train_probe.append(r)
        before = self.evaluate(fleet, rewards, eval_rows, cfg, stops,
                               log=lambda gs: ctx.log_rollouts(0, gs, kind="eval"))
        train_before = self.evaluate(fleet, rewards, train_probe, cfg, stops)["eval_accuracy"]
        ctx.console.print(f"{ctx.name}: greedy accuracy before: held-out {before['eval_accuracy']:.3f}, "
                          f"training prompts {train_before:.3f}")
        start = 0
        resume = ctx.resume_point()
        if resume is not None:
            ctx.restore(learner, resume)
            start = resume.step
            ctx.sync_weights(learner, fleet)

        def produce(step: int):
            # the prompt stream position is a pure function of the step, so a resumed run sees the same prompts
            stride = cfg.prompts_per_step * (1 + cfg.max_refills if cfg.dynamic_sampling else 1)
            return self.collect(fleet, rewards, train_rows, cfg, stops, step, (step - 1) * stride, ctx.seed)

        with ctx.progress(cfg.steps, start) as bar, ctx.rollout_stream(produce, start, cfg.steps, learner,
                                                                        fleet) as stream:
            for step in range(start + 1, cfg.steps + 1):
                t0, logged = time.perf_counter(), ctx.rollouts.seconds
                groups, metrics = stream.batch(step)  # made ahead while the learner trained when k > 0
                metrics.update(stream.mark_stale(groups))
                advantages = self.advantages(groups, cfg, estimator)
                metrics.update(self.update(learner, reference, groups, advantages, cfg, tok.pad_token_id))
                metrics.update(stream.sync(step))
                ctx.log_rollouts(step, groups, advantages=advantages)
                if cfg.eval_every and step % cfg.eval_every == 0 and step != cfg.steps:
                    metrics.update(self.evaluate(fleet, rewards, eval_rows, cfg, stops,
                                                 log=lambda gs: ctx.log_rollouts(step, gs, kind="eval")))
                metrics["rollout_log_seconds"] = ctx.rollouts.seconds - logged  # this step's rollout writes
                metrics["rollout_restarts"] = fleet.restarts  # rollout workers replaced so far (rollout.max_restarts)
                metrics["step_seconds"] = time.perf_counter() - t0
                ctx.log(step, metrics)
                bar.update(step, reward=metrics["reward_mean"], pass_rate=metrics["pass_rate"])
                if cfg.checkpoint_every and step % cfg.checkpoint_every == 0 and step != cfg.steps:
                    ctx.save_checkpoint(step, learner, {"step": step})
        after = self.evaluate(fleet, rewards, eval_rows, cfg, stops,
                              log=lambda gs: ctx.log_rollouts(cfg.steps, gs, kind="eval"))
        train_after = self.evaluate(fleet, rewards, train_probe, cfg, stops)["eval_accuracy"]
        ctx.log(cfg.steps, {**after, "train_accuracy": train_after})
        learner.save_model(ctx.output_model)
        return {"eval_accuracy_before": before["eval_accuracy"], "eval_accuracy": after["eval_accuracy"],
                "eval_accuracy_gain": after["eval_accuracy"] - before["eval_accuracy"],
                "eval_reward_mean": after["eval_reward_mean"],
                "train_accuracy_before": train_before, "train_accuracy": train_after, **checked}

    # ------------------------------------------------------------------------------------------ set-up
    @staticmethod
    def _check(ctx, cfg: GRPOConfig) -> None:
        if cfg.group_size < 2:
            raise ConfigError(f"{ctx.name}.group_size must be at least 2 (advantages compare samples of a group)")
        if cfg.updates_per_batch < 1 or cfg.prompts_per_step % cfg.updates_per_batch:
            raise ConfigError(f"{ctx.name}.prompts_per_step ({cfg.prompts_per_step}) must be a multiple of "
                              f"{ctx.name}.updates_per_batch ({cfg.updates_per_batch})")
        if cfg.kl_estimator not in ("k1", "k2", "k3"):
            raise ConfigError(f"{ctx.name}.kl_estimator must be k1, k2 or k3, got {cfg.kl_estimator!r}")
        if ctx.engine.rollout.max_staleness > 0 and not cfg.is_cap:
            raise ConfigError(f"{ctx.name}.is_cap = 0 with rollout.max_staleness = "
                              f"{ctx.engine.rollout.max_staleness}: "
                              f"samples from older weights need the truncated importance weight (set is_cap, e.g. 2)")
        check_pack(f"{ctx.name}.pack", cfg.pack)
        estimator = ctx.registry.get("advantage_estimators", cfg.advantage)
        declared.validate(estimator, cfg.advantage_options, f"{ctx.name}.advantage {cfg.advantage!r}")
        declared.validate(ctx.registry.get("losses", cfg.loss), GRPOStage.loss_options(cfg, 1.0, 1.0),
                          f"{ctx.name}.loss {cfg.loss!r}")
        ctx.registry.get("verifiers", cfg.verifier)
        for i, term in enumerate(cfg.rewards):
            RewardMix.kind_of(term, ctx.registry, f"{ctx.name}.rewards[{i}]")

    def _load(self, ctx, cfg: GRPOConfig, tok):
        rows = ctx.prompt_rows(tok, cfg.verifier, cfg.verifier_options)  # an unknown row verifier fails here
        ctx.console.print(
            f"{ctx.name}: {len(rows.train)} training prompts, {len(rows.evals)} held-out; per step "
            f"{cfg.prompts_per_step} prompts x {cfg.group_size} samples = {cfg.prompts_per_step * cfg.group_size} "
            f"completions, {cfg.updates_per_batch} update(s); {rows.skipped} prompts over {cfg.max_prompt_tokens} "
            f"tokens skipped"
        )
        return rows

    # ------------------------------------------------------------------------------------------ rollouts
    def collect(self, fleet, rewards, rows, cfg: GRPOConfig, stops, step: int, cursor: int, seed: int):
        """Sample and score groups until ``prompts_per_step`` groups are in (refilling when dynamic)."""
        groups: list[RolloutGroup] = []
        statuses: dict[str, int] = {}
        sandboxes: dict[str, int] = {}  # the code verifier reports which sandbox backend ran each program
        gen_tokens, gen_seconds, dropped, rounds, all_rewards, all_verdicts = 0, 0.0, 0, 0, [], []
        lengths, truncated, score_seconds, score_tail = [], 0, 0.0, 0.0
        need = cfg.prompts_per_step
        while len(groups) < cfg.prompts_per_step and rounds <= (cfg.max_refills if cfg.dynamic_sampling else 0):
            idx = indices_at(len(rows), cursor, need, seed)
            cursor += need
            batch = [rows[i] for i in idx]
            # each group is scored as soon as its samples are done, while the fleet generates the rest
            scored = generate_and_score(
                fleet, rewards, [b["ids"] for b in batch],
                lambda i, cs, batch=batch: [{"completion": c.text, "task": batch[i]["row"]} for c in cs],
                n=cfg.group_size, temperature=cfg.temperature, top_p=1.0, max_tokens=cfg.max_new_tokens,
                stop_token_ids=stops, seed=seed * 100_003 + step * 101 + rounds)
            gen_seconds += scored.generate_seconds
            score_seconds += scored.score_seconds
            score_tail += scored.score_tail_seconds
            for b, cs, vs in zip(batch, scored.groups, scored.verdicts):
                all_verdicts.extend(vs)
                group = RolloutGroup(task=b["row"], prompt_ids=b["ids"], completions=cs, verdicts=vs,
                                     keep=[not (cfg.drop_failed and v.failed) for v in vs])
                for v in vs:
                    statuses[v.status] = statuses.get(v.status, 0) + 1
                    if v.details.get("sandbox"):
                        sandboxes[v.details["sandbox"]] = sandboxes.get(v.details["sandbox"], 0) + 1
                all_rewards.extend(group.rewards)
                gen_tokens += sum(len(c.token_ids) for c in cs)
                lengths.extend(len(c.token_ids) for c in cs)
                truncated += sum(c.truncated for c in cs)
                if cfg.dynamic_sampling and not has_signal(group):
                    dropped += 1
                    continue
                if len(groups) < cfg.prompts_per_step:
                    groups.append(group)
            need = cfg.prompts_per_step - len(groups)
            rounds += 1
        if not groups:  # every group was zero-variance: train on the last round anyway (advantages are 0)
            groups = [group]
        metrics = {
            "reward_mean": sum(all_rewards) / max(1, len(all_rewards)),
            "pass_rate": pass_rate(all_rewards),
            "response_length": sum(lengths) / max(1, len(lengths)),
            "truncated_frac": truncated / max(1, len(lengths)),
            "rollout_tokens_per_s": gen_tokens / max(gen_seconds, 1e-9),
            "rollout_seconds": gen_seconds,
            "score_seconds": score_seconds,  # the scoring calls' own time, mostly hidden behind generation
            "score_wait_seconds": score_tail,  # scoring still running once generation had ended
            "groups_dropped": dropped,
            "rollout_rounds": rounds,
        }
        metrics.update({f"verdict/{s}": n for s, n in sorted(statuses.items())})
        metrics.update({f"sandbox/{s}": n for s, n in sorted(sandboxes.items())})
        metrics.update(rewards.term_metrics(all_verdicts))
        return groups, metrics

    # ------------------------------------------------------------------------------------------ update
    @staticmethod
    def loss_options(cfg: GRPOConfig, norm_tokens: float, norm_seqs: float) -> dict[str, Any]:
        """The policy loss's options for one update (``norm_*``: that update's loss tokens and sequences)."""
        return {"clip_low": cfg.clip_low, "clip_high": cfg.clip_high, "agg": cfg.agg, "kl_coef": cfg.kl_coef,
                "kl_estimator": cfg.kl_estimator, "entropy_coef": cfg.entropy_coef, "is_cap": cfg.is_cap or None,
                "norm_tokens": norm_tokens, "norm_seqs": norm_seqs, "max_len": cfg.max_new_tokens}

    @staticmethod
    def advantages(groups: list[RolloutGroup], cfg: GRPOConfig, estimator):
        """[groups, G] advantages of the samples from their rewards (0 for samples left out of the loss)."""
        import torch

        rewards = torch.tensor([g.rewards for g in groups], dtype=torch.float32)
        keep = torch.tensor([g.keep for g in groups])
        return estimator(rewards, **cfg.advantage_options) * keep

    def update(self, learner, reference, groups: list[RolloutGroup], advantages, cfg: GRPOConfig, pad_id: int):
        import torch

        per_update = max(1, len(groups) // cfg.updates_per_batch)
        parts = []
        for u in range(0, len(groups), per_update):
            part = sequence_batch(groups[u : u + per_update], advantages[u : u + per_update], pad_id,
                                  cfg.mask_truncated)
            plain = SequenceBatch(part.input_ids, part.attention_mask, part.loss_mask).micro_batches(cfg.micro_batch_size)
            if u:  # later parts train after earlier updates: take the ratio against the policy before the first
                # update, computed for every later part before that update. The first part trains on exactly that
                # policy, so its loss uses its own detached logprobs as "old" (as with one update per batch)
                part.extras["old_logprobs"] = torch.cat(learner.token_logprobs(plain))
            if reference is not None:
                part.extras["ref_logprobs"] = torch.cat(reference.token_logprobs(plain))
            parts.append(part)
        sums: dict[str, float] = {}
        for part in parts:
            options = self.loss_options(cfg, part.loss_tokens, part.loss_sequences)
            out = learner.train_step(part.micro_batches(cfg.micro_batch_size, by_length=cfg.pack == "sort"),
                                     cfg.loss, options)
            for k, v in out.items():
                sums[k] = sums.get(k, 0.0) + float(v)
        metrics = {k: v if k in TOTALS else v / len(parts) for k, v in sums.items()}
        metrics["advantage_abs_mean"] = float(advantages.abs().mean())
        return metrics

    # ------------------------------------------------------------------------------------------ eval
    @staticmethod
    def evaluate(fleet, rewards, rows, cfg: GRPOConfig, stops, log=None) -> dict[str, float]:
        """Greedy accuracy on ``rows``; ``log`` (if given) receives the answers as one-completion groups."""
        if not rows:
            return {"eval_accuracy": 0.0, "eval_reward_mean": 0.0, "eval_failed": 0}
        outs = fleet.generate([r["ids"] for r in rows], n=1, temperature=0.0, top_p=1.0,
                              max_tokens=cfg.max_new_tokens, stop_token_ids=stops, seed=0)
        verdicts = rewards.score([{"completion": cs[0].text, "task": r["row"]} for r, cs in zip(rows, outs)])
        if log is not None:
            log([RolloutGroup(task=r["row"], prompt_ids=r["ids"], completions=cs[:1], verdicts=[v])
                 for r, cs, v in zip(rows, outs, verdicts)])
        rs = [v.reward for v in verdicts]  # (a timeout or error is no correct answer: counted in eval_failed)
        return {"eval_accuracy": pass_rate(rs), "eval_reward_mean": sum(rs) / len(rs),
                "eval_failed": sum(v.failed for v in verdicts)}


@hookimpl
def raylign_register_stages(register):
    register("grpo", GRPOStage)
