"""Stage ``dpo``: Direct Preference Optimization (Rafailov et al. 2023) on preference pairs, and its losses.

No sampling and no reward model: the policy learns from pairs directly. For each pair the loss compares how much
more likely the policy makes the chosen reply than the frozen reference (the input model) does, against the same
for the rejected reply. A step trains ``batch_size`` pairs; the learner receives them interleaved (row 2i the
chosen reply, row 2i+1 the rejected one, each micro-batch whole pairs) with ``loss_mask`` on the reply tokens and
``extras["ref_logprobs"]``: the reference's per-token log-probs, computed once for every pair before training
(``reference = "precompute"``, recomputed on resume: they are a pure function of the input model) or for each
batch (``"per_step"``: no stored log-probs, a second model held during training).

Losses (registered here, chosen by ``loss``; a plugin can register its own with the same options):
  - ``dpo``: -(1-ε)·logσ(β·Δ) - ε·logσ(-β·Δ), Δ = (π_c - ref_c) - (π_r - ref_r) with sequence log-probs summed
    over the reply tokens; ε = ``label_smoothing`` (conservative DPO, for noisy labels).
  - ``ipo``: (Δ - 1/(2β))², Δ from per-token-averaged log-probs (Azar et al. 2023; TRL does the same).
A row's optional ``margin`` is checked to be a number and otherwise ignored: DPO and IPO treat a preference as
binary.

Reported: per step the loss's metrics (``loss``, ``rewards/chosen`` = β·(π_c - ref_c) mean, ``rewards/rejected``,
``rewards/margins``, ``rewards/accuracies``, ``logps/chosen``, ``logps/rejected``); held-out pair metrics before,
during and after (``eval_accuracy``: the share of held-out pairs whose implicit reward ranks chosen first, 0.0
before training since Δ = 0 there; ``eval_accuracy_length_confounded`` on the pairs whose rejected reply is the
longer one, ``eval_accuracy_longer_chosen`` on the others, as the reward_model stage reports them); with ``gold``
set, greedy answers to ``eval_prompts`` from the input model and from the trained policy scored by the gold judge
(``gold_win_rate``, ``gold_tie_rate``, ``eval_gold_score*``).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from raylign.engine import hookimpl
from raylign.engine import options as declared
from raylign.engine.chat_format import conversation, encode_conversation, render_prompt
from raylign.engine.data import batch_indices, read_rows, require, split_holdout
from raylign.engine.errors import ConfigError, DataError
from raylign.engine.ops import check_pack, chunk, pad_sequences, token_logprobs
from raylign.engine.optim import OptimConfig
from raylign.engine.types import SequenceBatch, TrainBatch

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True)
class DPOConfig:
    data: tuple[str, ...] = ()  # JSONL/Parquet/HF rows: prompt, chosen, rejected (strings or chat messages), [margin]
    eval_data: tuple[str, ...] = ()  # held-out pairs (empty = hold out eval_fraction of data)
    eval_fraction: float = 0.05  # share held out when eval_data is empty
    system: str = ""  # a system message prepended to every conversation ("" = none)
    max_len: int = 256  # longer conversations are cut; a pair with a reply cut away entirely is skipped
    steps: int = 100  # optimizer steps
    batch_size: int = 16  # preference pairs per optimizer step (twice as many sequences)
    micro_batch_size: int = 16  # pairs per forward/backward (a pair is never split)
    loss: str = "dpo"  # a registered preference loss: dpo (sigmoid) | ipo, or a plugin's
    beta: float = 0.1  # strength of the pull towards the reference (higher = stay closer)
    label_smoothing: float = 0.0  # ε: the assumed share of flipped labels (conservative DPO; dpo loss only)
    reference: Literal["precompute", "per_step"] = "precompute"  # reference log-probs: once up front, or per batch
    eval_every: int = 25  # steps between held-out pair evals (0 = before and after only)
    eval_pairs: int = 256  # held-out pairs in the eval
    checkpoint_every: int = 50  # steps between checkpoints (0 = never)
    gold: str = ""  # a registered verifier (or reward provider) judging greedy answers before/after ("" = skip)
    gold_options: dict[str, Any] = field(default_factory=dict)  # the gold judge's options
    eval_prompts: tuple[str, ...] = ()  # held-out prompt rows (prompt + what the gold judge reads, e.g. answer)
    max_new_tokens: int = 48  # greedy tokens per answer in the gold eval
    pack: str = "none"  # learner compute on padding: none | sort (micro-batches cut to their real columns) |
    # pack (each micro-batch's sequences packed into rows, attention kept within each; the fastest)
    optim: OptimConfig = field(default_factory=lambda: OptimConfig(lr=1e-4, warmup_steps=10, weight_decay=0.0))


# ---------------------------------------------------------------------------------------------------------
# Loss math: small pure functions on per-pair tensors [P]
# ---------------------------------------------------------------------------------------------------------

def preference_delta(policy_chosen: torch.Tensor, ref_chosen: torch.Tensor, policy_rejected: torch.Tensor,
                     ref_rejected: torch.Tensor) -> torch.Tensor:
    """Δ = (π_c - ref_c) - (π_r - ref_r): how much more the policy than the reference prefers chosen."""
    return (policy_chosen - ref_chosen) - (policy_rejected - ref_rejected)


def dpo_pair_loss(delta: torch.Tensor, beta: float, label_smoothing: float = 0.0) -> torch.Tensor:
    """-(1-ε)·logσ(β·Δ) - ε·logσ(-β·Δ) per pair (ε = 0: the DPO paper's loss; ε > 0: conservative DPO)."""
    import torch.nn.functional as F

    logits = beta * delta
    return -(1.0 - label_smoothing) * F.logsigmoid(logits) - label_smoothing * F.logsigmoid(-logits)


def ipo_pair_loss(delta: torch.Tensor, beta: float) -> torch.Tensor:
    """(Δ - 1/(2β))² per pair (IPO: regresses Δ to a fixed margin instead of pushing it to infinity)."""
    return (delta - 1.0 / (2.0 * beta)).square()


def sequence_logps(logits: torch.Tensor, batch: TrainBatch, average: bool = False):
    """The policy's and the reference's log-probs of each sequence's reply tokens (``loss_mask``), summed or
    (``average``) per token: ``(policy [B], reference [B])``."""
    if "ref_logprobs" not in batch.extras:
        raise KeyError("a preference loss needs batch.extras['ref_logprobs'] [B, T] (the reference's log-probs)")
    if batch.input_ids.shape[0] % 2:
        raise ValueError(f"a preference batch holds (chosen, rejected) rows: got {batch.input_ids.shape[0]} rows")
    mask = batch.loss_mask.float()
    policy = (token_logprobs(logits, batch.input_ids) * mask).sum(-1)
    ref = (batch.extras["ref_logprobs"].float() * mask).sum(-1)
    if average:
        n = mask.sum(-1).clamp(min=1.0)
        policy, ref = policy / n, ref / n
    return policy, ref


def pair_mean(values: torch.Tensor, weight: float, norm_pairs: float | None, norm_tokens: float | None) -> float:
    """A per-pair metric of one micro-batch, as the number to report so that the engine's token-weighted mean
    over micro-batches (weights: each one's loss tokens ``weight``) is the plain mean over all pairs.

    With ``norm_pairs`` and ``norm_tokens`` (the pairs and loss tokens of the whole step, or eval set):
    sum(values) / norm_pairs · norm_tokens / weight; without them the micro-batch's own mean (exact when it is
    the only one)."""
    if norm_pairs is None or norm_tokens is None or weight <= 0:
        return float(values.float().mean())
    return float(values.float().sum()) / norm_pairs * norm_tokens / weight


def _preference_result(per_pair, policy, ref, beta, batch, norm_pairs, norm_tokens):
    """The micro-batch's loss (its share of the step's pair mean) and the metrics every preference loss reports."""
    import torch

    loss = per_pair.sum() / norm_pairs if norm_pairs else per_pair.mean() * batch.loss_scale
    with torch.no_grad():
        chosen, rejected = beta * (policy[0::2] - ref[0::2]), beta * (policy[1::2] - ref[1::2])
        w = float(batch.loss_mask.sum())
        values = {"loss": per_pair, "rewards/chosen": chosen, "rewards/rejected": rejected,
                  "rewards/margins": chosen - rejected, "rewards/accuracies": (chosen > rejected).float(),
                  "logps/chosen": policy[0::2], "logps/rejected": policy[1::2]}
        metrics = {k: pair_mean(v.detach(), w, norm_pairs, norm_tokens) for k, v in values.items()}
    return loss, metrics


# ---------------------------------------------------------------------------------------------------------
# Registered losses. Metrics are per-pair means (see pair_mean: the step's norm_pairs and norm_tokens make the
# engine's token-weighted mean over micro-batches the mean over pairs). Rewards and logps use the log-probs the
# loss compares: sums for dpo, per-token means for ipo.
# ---------------------------------------------------------------------------------------------------------

def dpo_loss(logits: torch.Tensor, batch: TrainBatch, *, beta: float = 0.1, label_smoothing: float = 0.0,
             norm_pairs: float | None = None, norm_tokens: float | None = None):
    """DPO's sigmoid loss (with conservative-DPO label smoothing) over the micro-batch's interleaved pairs."""
    policy, ref = sequence_logps(logits, batch)
    delta = preference_delta(policy[0::2], ref[0::2], policy[1::2], ref[1::2])
    return _preference_result(dpo_pair_loss(delta, beta, label_smoothing), policy, ref, beta, batch, norm_pairs,
                              norm_tokens)


def ipo_loss(logits: torch.Tensor, batch: TrainBatch, *, beta: float = 0.1, norm_pairs: float | None = None,
             norm_tokens: float | None = None):
    """IPO's squared loss on per-token-averaged log-probs over the micro-batch's interleaved pairs."""
    policy, ref = sequence_logps(logits, batch, average=True)
    delta = preference_delta(policy[0::2], ref[0::2], policy[1::2], ref[1::2])
    return _preference_result(ipo_pair_loss(delta, beta), policy, ref, beta, batch, norm_pairs, norm_tokens)


# ---------------------------------------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------------------------------------

@dataclass
class Pair:
    """One encoded preference pair: (token ids, reply mask) of each side, and the reference's log-probs of each
    (1-D, one per token) once computed."""

    chosen: tuple[list[int], list[float]]
    rejected: tuple[list[int], list[float]]
    rejected_longer: bool = False  # the rejected reply has more characters than the chosen one
    ref: tuple[Any, Any] | None = None  # (chosen [Tc], rejected [Tr]) tensors


def reply_text(reply: str | list[dict]) -> str:
    return reply if isinstance(reply, str) else " ".join(m["content"] for m in reply)


def _check_turns(value: Any, name: str, where: str) -> None:
    """Chat messages must be objects with string role and content (a string needs no check)."""
    if isinstance(value, list):
        for i, m in enumerate(value):
            if not isinstance(m, dict) or not isinstance(m.get("role"), str) or not isinstance(m.get("content"), str):
                raise DataError(f"{where}: {name}[{i}] must be an object with string 'role' and 'content'")


def encode_pair(tok, row: dict, where: str, system: str, max_len: int) -> Pair | None:
    """The row as a :class:`Pair`; None when max_len cuts a reply away entirely. Bad rows fail with file:line."""
    for name in ("prompt", "chosen", "rejected"):
        _check_turns(require(row, name, where, (str, list)), name, where)
    if row.get("margin") is not None and (isinstance(row["margin"], bool) or
                                          not isinstance(row["margin"], (int, float))):
        raise DataError(f"{where}: field 'margin' must be a number, got {type(row['margin']).__name__}")
    sides = [encode_conversation(tok, conversation(row["prompt"], row[name]), system, max_len)
             for name in ("chosen", "rejected")]
    for ids, mask in sides:
        mask[0] = 0.0  # nothing predicts the first token
        if not any(mask):
            return None
    return Pair(sides[0], sides[1], len(reply_text(row["rejected"])) > len(reply_text(row["chosen"])))


def pair_batch(pairs: list[Pair], pad_id: int, by_length: bool = False) -> SequenceBatch:
    """Pairs as interleaved rows (2i chosen, 2i+1 rejected), right-padded; ``ref_logprobs`` when every pair has
    them. ``by_length``: the pairs ordered by their longer side (longest first, ties in order), so the
    micro-batches hold pairs of similar length (a pack = "sort" learner cuts each to its real columns); a pair
    stays whole, and the registered losses' step-wide ``norm_pairs``/``norm_tokens`` make the loss and metrics
    the same in any order."""
    import torch

    if by_length:
        pairs = sorted(pairs, key=lambda p: -max(len(p.chosen[0]), len(p.rejected[0])))  # stable sort
    seqs = [side for p in pairs for side in (p.chosen, p.rejected)]
    ids, attn = pad_sequences([s[0] for s in seqs], pad_id)
    loss_mask = torch.zeros(ids.shape, dtype=torch.float32)
    for i, (_, mask) in enumerate(seqs):
        loss_mask[i, : len(mask)] = torch.tensor(mask)
    extras = {}
    if all(p.ref is not None for p in pairs):
        ref = torch.zeros(ids.shape, dtype=torch.float32)
        for i, r in enumerate(r for p in pairs for r in p.ref):
            ref[i, : len(r)] = r
        extras["ref_logprobs"] = ref
    return SequenceBatch(ids, attn, loss_mask, extras)


def reference_logprobs(reference, batch: SequenceBatch, micro_pairs: int) -> torch.Tensor:
    """The reference learner's per-token log-probs [S, T] of ``batch``."""
    import torch

    plain = SequenceBatch(batch.input_ids, batch.attention_mask, batch.loss_mask)
    return torch.cat(reference.token_logprobs(plain.micro_batches(2 * micro_pairs)))


def attach_reference(reference, pairs: list[Pair], pad_id: int, micro_pairs: int) -> None:
    """Compute and store every pair's reference log-probs (a few micro-batches per call, pairs of similar length
    together: less padding)."""
    by_length = sorted(pairs, key=lambda p: max(len(p.chosen[0]), len(p.rejected[0])))
    for part in chunk(by_length, 8 * micro_pairs):
        ref = reference_logprobs(reference, pair_batch(part, pad_id), micro_pairs)
        for i, p in enumerate(part):
            p.ref = (ref[2 * i, : len(p.chosen[0])].clone(), ref[2 * i + 1, : len(p.rejected[0])].clone())


# ---------------------------------------------------------------------------------------------------------
# The stage
# ---------------------------------------------------------------------------------------------------------

EVAL_NAMES = {"loss": "eval_loss", "rewards/accuracies": "eval_accuracy", "rewards/margins": "eval_margin",
              "rewards/chosen": "eval_reward_chosen", "rewards/rejected": "eval_reward_rejected",
              "logps/chosen": "eval_logps_chosen", "logps/rejected": "eval_logps_rejected"}


class DPOStage:
    config_cls = DPOConfig

    def run(self, ctx):
        from raylign.engine.modeling import load_tokenizer

        cfg: DPOConfig = ctx.config
        self._check(ctx, cfg)
        tok = load_tokenizer(ctx.input_model)
        train, held = self._load(ctx, cfg, tok)
        pad, micro = tok.pad_token_id, cfg.micro_batch_size
        reference = ctx.start_learner(ctx.input_model, cfg.optim, 1, trainable=False, pack=cfg.pack)
        attach_reference(reference, held, pad, micro)
        if cfg.reference == "precompute":
            attach_reference(reference, train, pad, micro)
            reference.kill()  # every log-prob it will give is stored: free its memory for the training
            reference = None
        policy = ctx.start_learner(ctx.input_model, cfg.optim, cfg.steps, pack=cfg.pack)
        by_length = cfg.pack == "sort"
        evals = {name: pair_batch(group, pad, by_length) for name, group in (
            ("length_confounded", [p for p in held if p.rejected_longer]),
            ("longer_chosen", [p for p in held if not p.rejected_longer])) if group}
        gold = self._gold_setup(ctx, cfg, tok) if cfg.gold else None
        gold_before = self._gold_scores(policy, gold, cfg) if gold else None
        before = self.evaluate(ctx, cfg, policy, evals)

        start, resume = 0, ctx.resume_point()
        if resume is not None:
            ctx.restore(policy, resume)
            start = resume.step
            ctx.console.print(f"resuming {ctx.name} after step {start} from {resume.path}")
        elif before:
            ctx.log(0, before)
        with ctx.progress(cfg.steps, start) as bar:
            for step in range(start + 1, cfg.steps + 1):
                picked = [train[i] for i in batch_indices(len(train), cfg.batch_size, step - 1, ctx.seed)]
                batch = pair_batch(picked, pad, by_length)
                if reference is not None:
                    batch.extras["ref_logprobs"] = reference_logprobs(reference, batch, micro)
                options = self.loss_options(ctx, cfg, batch)
                metrics = policy.train_step(batch.micro_batches(2 * micro), cfg.loss, options)
                metrics["pairs_per_s"] = len(picked) / max(metrics["learner_seconds"], 1e-9)
                if cfg.eval_every and step % cfg.eval_every == 0 and step != cfg.steps:
                    metrics.update(self.evaluate(ctx, cfg, policy, evals))
                ctx.log(step, metrics)
                bar.update(step, loss=metrics["loss"], acc=metrics.get("rewards/accuracies", 0.0))
                if cfg.checkpoint_every and step % cfg.checkpoint_every == 0 and step != cfg.steps:
                    ctx.save_checkpoint(step, policy, {"step": step})
        after = self.evaluate(ctx, cfg, policy, evals)
        final = {**after, **{f"{k}_before": before[k] for k in ("eval_loss", "eval_accuracy", "eval_margin")
                             if k in before}}
        if gold:
            final.update(self._gold_compare(gold_before, self._gold_scores(policy, gold, cfg)))
        ctx.log(cfg.steps, final)
        policy.save_model(ctx.output_model)
        return final

    # ------------------------------------------------------------------------------------------ set-up
    @staticmethod
    def _check(ctx, cfg: DPOConfig) -> None:
        n = ctx.name
        if not cfg.data:
            raise ConfigError(f"{n}.data is empty: list JSONL/Parquet files of prompt/chosen/rejected rows")
        for key in ("steps", "batch_size", "micro_batch_size", "max_len", "max_new_tokens"):
            if getattr(cfg, key) < 1:
                raise ConfigError(f"{n}.{key} must be at least 1, got {getattr(cfg, key)}")
        if cfg.beta <= 0:
            raise ConfigError(f"{n}.beta must be > 0, got {cfg.beta}")
        if not 0.0 <= cfg.label_smoothing < 0.5:
            raise ConfigError(f"{n}.label_smoothing must be in [0, 0.5), got {cfg.label_smoothing}")
        check_pack(f"{n}.pack", cfg.pack)
        fn = ctx.registry.get("losses", cfg.loss)
        if getattr(fn, "head", "lm") != "lm":
            raise ConfigError(f"{n}.loss = {cfg.loss!r} trains a value head; dpo trains a causal LM")
        declared.validate(fn, DPOStage.loss_options(ctx, cfg, None), f"{n}.loss {cfg.loss!r}")
        if cfg.gold:
            known = ctx.registry.names("verifiers") + ctx.registry.names("reward_providers")
            if cfg.gold not in known:
                raise ConfigError(f"{n}.gold = {cfg.gold!r} is not a registered verifier or reward provider "
                                  f"({', '.join(known)})")
            if not cfg.eval_prompts:
                raise ConfigError(f"{n}.gold is set but {n}.eval_prompts is empty: list held-out prompt rows")

    @staticmethod
    def loss_options(ctx, cfg: DPOConfig, batch: SequenceBatch | None) -> dict[str, Any]:
        """The options the configured loss declares, from the config and (per step) the batch's sizes."""
        names = declared.known(ctx.registry.get("losses", cfg.loss))
        if cfg.label_smoothing and "label_smoothing" not in names:
            raise ConfigError(f"{ctx.name}.label_smoothing = {cfg.label_smoothing} but loss {cfg.loss!r} has no "
                              f"label_smoothing option")
        norm = (len(batch) / 2.0, float(batch.loss_mask.sum())) if batch is not None else (1.0, 1.0)
        wanted = {"beta": cfg.beta, "label_smoothing": cfg.label_smoothing, "norm_pairs": norm[0],
                  "norm_tokens": norm[1]}
        return {k: v for k, v in wanted.items() if k in names}

    @staticmethod
    def _load(ctx, cfg: DPOConfig, tok) -> tuple[list[Pair], list[Pair]]:
        rows = read_rows(cfg.data, ctx.base_dir)
        if cfg.eval_data:
            held_rows = read_rows(cfg.eval_data, ctx.base_dir)
        else:
            rows, held_rows = split_holdout(rows, cfg.eval_fraction, ctx.seed)

        def encode(rows):
            pairs = [encode_pair(tok, r, w, cfg.system, cfg.max_len) for w, r in rows]
            return [p for p in pairs if p is not None], sum(p is None for p in pairs)

        train, s1 = encode(rows)
        held, s2 = encode(held_rows[: cfg.eval_pairs])
        if not train:
            raise DataError(f"{ctx.name}: no training pair has reply tokens within max_len = {cfg.max_len}")
        epochs = cfg.steps * cfg.batch_size / len(train)
        ctx.console.print(f"{ctx.name}: {len(train)} training pairs, {len(held)} held-out "
                          f"({sum(p.rejected_longer for p in held)} with the longer reply rejected); "
                          f"{cfg.steps} steps x {cfg.batch_size} pairs = {epochs:.2f} epochs; {s1 + s2} pairs "
                          f"skipped (a reply cut away by max_len); reference: {cfg.reference}")
        return train, held

    # ------------------------------------------------------------------------------------------ evals
    def evaluate(self, ctx, cfg: DPOConfig, policy, evals: dict[str, SequenceBatch]) -> dict[str, float]:
        """The loss's metrics over the held-out pairs (per-pair means), named ``eval_*``, and the accuracy on
        each length subset: ``eval_accuracy_length_confounded`` (pairs whose rejected reply is the longer one),
        ``eval_accuracy_longer_chosen`` (the others)."""
        if not evals:
            return {}
        parts = {name: policy.eval_loss(b.micro_batches(2 * cfg.micro_batch_size), cfg.loss,
                                        self.loss_options(ctx, cfg, b)) for name, b in evals.items()}
        sizes = {name: len(b) / 2 for name, b in evals.items()}
        names = set.intersection(*(set(res) for res in parts.values())) - {"tokens"}
        out = {EVAL_NAMES.get(k, f"eval_{k}"): sum(parts[g][k] * sizes[g] for g in parts) / sum(sizes.values())
               for k in sorted(names)}
        for g, res in parts.items():
            if "rewards/accuracies" in res:
                out[f"eval_accuracy_{g}"] = res["rewards/accuracies"]
        return out

    @staticmethod
    def _gold_setup(ctx, cfg: DPOConfig, tok) -> dict[str, Any]:
        from raylign.engine.rewards.mix import RewardTerm

        rows = read_rows(cfg.eval_prompts, ctx.base_dir)
        for w, r in rows:
            _check_turns(require(r, "prompt", w, (str, list)), "prompt", w)
        rewards = ctx.start_rewards([RewardTerm(name=cfg.gold, options=dict(cfg.gold_options))],
                                    key=f"{ctx.name}.gold")
        return {"rows": [r for _, r in rows], "rewards": rewards,
                "rendered": [render_prompt(tok, r["prompt"], cfg.system or None) for _, r in rows]}

    @staticmethod
    def _gold_scores(policy, gold: dict[str, Any], cfg: DPOConfig):
        replies = policy.generate(gold["rendered"], cfg.max_new_tokens)
        return gold["rewards"].score([{"completion": r["text"], "task": row} for r, row in zip(replies, gold["rows"])])

    @staticmethod
    def _gold_compare(before, after) -> dict[str, float]:
        """Win/tie rates and mean gold scores over the prompts where neither verdict failed (timeout/error:
        counted in ``gold_failed``, never scored as a zero)."""
        from raylign.plugins.judge import gold_comparison

        kept = [(b.reward, a.reward) for b, a in zip(before, after) if not (b.failed or a.failed)]
        b, a = [k[0] for k in kept], [k[1] for k in kept]
        out = gold_comparison(b, a)
        out.update(eval_gold_score_before=sum(b) / max(1, len(b)), eval_gold_score=sum(a) / max(1, len(a)),
                   gold_failed=len(before) - len(kept), gold_prompts=len(before))
        return out


@hookimpl
def raylign_register_losses(register):
    register("dpo", dpo_loss)
    register("ipo", ipo_loss)


@hookimpl
def raylign_register_stages(register):
    register("dpo", DPOStage)
