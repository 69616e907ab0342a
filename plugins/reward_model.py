"""Stage ``reward_model``: a Bradley–Terry reward model learned from preference pairs.

A scalar head on the input causal LM (``head="value"``) scores a prompt and a reply; the reward is the head's
value at the **last real token of the reply** (its end-of-turn marker, found from the token ids, never "the
last position" of a padded row). Loss per pair: ``-logsigmoid(r_chosen - r_rejected - margin)``, plus
``center_coef · (r_chosen + r_rejected)²`` (reward centering) when set.

The saved directory is a transformers sequence-classification model with one label (pad token set), plus
``reward_stats.json``: the mean and std of its rewards on the held-out pairs, which the ``reward_model`` reward
provider normalizes by. Its model is a side product: the next stage starts from this stage's input (the policy).

Held-out metrics: ``eval_accuracy`` (pairs ranked like their label), ``eval_accuracy_length_confounded`` (pairs
whose rejected reply is the longer one), ``eval_accuracy_longer_chosen`` (the others), ``eval_loss``, reward
means of chosen and rejected replies, margin.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from raylign.engine import hookimpl
from raylign.engine.chat_format import conversation, encode_conversation, reply_end
from raylign.engine.data import batch_indices, read_rows, require, split_holdout
from raylign.engine.errors import ConfigError, DataError
from raylign.engine.modeling import load_tokenizer
from raylign.engine.ops import check_pack, pad_sequences
from raylign.engine.optim import OptimConfig
from raylign.engine.types import SequenceBatch, TrainBatch
from raylign.plugins.supervised import LoopConfig, train_loop

if TYPE_CHECKING:
    import torch

STATS_FILE = "reward_stats.json"


@dataclass(frozen=True)
class RewardModelConfig:
    data: tuple[str, ...] = ()  # preference rows: prompt, chosen, rejected (strings or chat messages), [margin]
    eval_data: tuple[str, ...] = ()  # held-out pairs (empty = hold out eval_fraction of data)
    eval_fraction: float = 0.05  # share held out when eval_data is empty
    eval_pairs: int = 400  # held-out pairs evaluated
    system: str = ""  # system message before every prompt ("" = none)
    max_len: int = 256  # pairs with a side longer than this (tokens) are skipped (counted in the log)
    steps: int = 200  # optimizer steps
    batch_size: int = 32  # pairs per optimizer step
    micro_batch_size: int = 32  # pairs per forward/backward
    center_coef: float = 0.0  # reward centering: + center_coef * (r_chosen + r_rejected)^2 (0 = off)
    eval_every: int = 50  # steps between held-out evals (0 = at the end only)
    checkpoint_every: int = 50  # steps between checkpoints
    log_every: int = 5  # steps between metric lines
    pack: str = "none"  # learner compute on padding: none | sort (micro-batches cut to their real columns) |
    # pack (each micro-batch's sequences packed into rows, attention kept within each; the fastest)
    optim: OptimConfig = field(default_factory=lambda: OptimConfig(lr=1e-4, warmup_steps=10))


# ---------------------------------------------------------------------------------------------- loss math

def read_rewards(values: torch.Tensor, read_mask: torch.Tensor) -> torch.Tensor:
    """[B] rewards: each row's value where ``read_mask`` (one-hot per row: the reply's last real token) is 1."""
    return (values * read_mask).sum(-1)


def bradley_terry(chosen: torch.Tensor, rejected: torch.Tensor, margin: torch.Tensor | float = 0.0,
                  center_coef: float = 0.0) -> torch.Tensor:
    """Per-pair loss ``-logsigmoid(r_c - r_r - margin) + center_coef · (r_c + r_r)²``, [P]."""
    import torch.nn.functional as F

    loss = -F.logsigmoid(chosen - rejected - margin)
    if center_coef:
        loss = loss + center_coef * (chosen + rejected).square()
    return loss


def bradley_terry_loss(values: torch.Tensor, batch: TrainBatch, *, center_coef: float = 0.0):
    """Registered loss ``bradley_terry`` (value learners). Rows 2i / 2i+1 of the batch are pair i's chosen /
    rejected reply; ``loss_mask`` is one-hot at each row's read position; ``extras["margin"]`` [B] (optional).
    ``values`` and ``batch`` are the learner's aligned pair (with pack = sort | pack both cut to the real columns,
    the read mask with them, so the read position stays the reply's last real token).

    Metrics (means over pairs): ``loss``, ``accuracy``, ``reward_chosen``, ``reward_rejected``, ``margin``."""
    import torch

    r = read_rewards(values, batch.loss_mask.to(values.dtype))
    chosen, rejected = r[0::2], r[1::2]
    margin = batch.extras["margin"][0::2].to(r.dtype) if "margin" in batch.extras else 0.0
    per_pair = bradley_terry(chosen, rejected, margin, center_coef)
    loss = per_pair.mean() * batch.loss_scale
    with torch.no_grad():
        metrics = {"loss": per_pair.mean().item(), "accuracy": (chosen > rejected).float().mean().item(),
                   "reward_chosen": chosen.mean().item(), "reward_rejected": rejected.mean().item(),
                   "margin": (chosen - rejected).mean().item()}
    return loss, metrics


bradley_terry_loss.head = "value"  # trains a learner with a scalar head


# ---------------------------------------------------------------------------------------------- data

@dataclass
class EncodedPair:
    chosen: list[int]
    rejected: list[int]
    read: tuple[int, int]  # the reward's read position in each
    margin: float
    rejected_longer: bool  # the rejected reply has more characters than the chosen one


def reply_text(reply) -> str:
    return reply if isinstance(reply, str) else " ".join(str(m.get("content", "")) for m in reply)


def encode_pair(tok, row: dict, where: str, system: str, max_len: int) -> EncodedPair | None:
    """A preference row as token ids (None when a side is longer than ``max_len``)."""
    prompt = require(row, "prompt", where, (str, list))
    sides = []
    for key in ("chosen", "rejected"):
        reply = require(row, key, where, (str, list))
        ids, mask = encode_conversation(tok, conversation(prompt, reply), system)
        end = reply_end(tok, ids, mask)
        if end < 0:
            raise DataError(f"{where}: {key} has no assistant reply to score")
        if len(ids) > max_len:
            return None
        sides.append((ids, end))
    margin = row.get("margin", 0.0)
    if isinstance(margin, bool) or not isinstance(margin, (int, float)):
        raise DataError(f"{where}: margin must be a number, got {margin!r}")
    longer = len(reply_text(row["rejected"])) > len(reply_text(row["chosen"]))
    return EncodedPair(sides[0][0], sides[1][0], (sides[0][1], sides[1][1]), float(margin), longer)


def pair_batch(pairs: list[EncodedPair], pad_id: int, micro_pairs: int, by_length: bool = False) -> list[TrainBatch]:
    """Pairs as micro-batches: rows 2i (chosen) and 2i+1 (rejected), never split; loss_mask one-hot at the read
    position; ``extras["margin"]`` [B]. ``by_length``: the pairs ordered by their longer side first (longest
    first, ties in order; a pack = "sort" learner then cuts each micro-batch to its real columns): the step's
    loss and metrics are the same, the rows no longer follow ``pairs`` (training only, never the eval, whose
    rewards are matched back to the pairs)."""
    import torch

    if by_length:
        pairs = sorted(pairs, key=lambda p: -max(len(p.chosen), len(p.rejected)))  # stable: ties keep their order
    seqs = [s for p in pairs for s in (p.chosen, p.rejected)]
    ids, attn = pad_sequences(seqs, pad_id)
    read = torch.zeros(ids.shape, dtype=torch.float32)
    for i, p in enumerate(pairs):
        read[2 * i, p.read[0]] = 1.0
        read[2 * i + 1, p.read[1]] = 1.0
    margin = torch.tensor([p.margin for p in pairs for _ in (0, 1)], dtype=torch.float32)
    return SequenceBatch(ids, attn, read, {"margin": margin}).micro_batches(2 * micro_pairs, token_weighted=True)


# ---------------------------------------------------------------------------------------------- stage

class RewardModelStage:
    config_cls = RewardModelConfig
    side_model = True  # the next stage trains the policy this stage started from

    def run(self, ctx):
        cfg: RewardModelConfig = ctx.config
        if not cfg.data:
            raise ConfigError(f"{ctx.name}.data is empty: list JSONL/Parquet files of prompt/chosen/rejected rows")
        check_pack(f"{ctx.name}.pack", cfg.pack)
        tok = load_tokenizer(ctx.input_model)
        rows = read_rows(cfg.data, ctx.base_dir)
        held = read_rows(cfg.eval_data, ctx.base_dir) if cfg.eval_data else None
        if held is None:
            rows, held = split_holdout(rows, cfg.eval_fraction, ctx.seed)
        train, skipped = self.encode(tok, rows, cfg)
        evals, skipped_eval = self.encode(tok, held[: cfg.eval_pairs], cfg)
        if not train or not evals:
            raise DataError(f"{ctx.name}: no pair fits max_len = {cfg.max_len} tokens ({len(rows)} training rows)")
        ctx.console.print(f"{ctx.name}: {len(train)} training pairs, {len(evals)} held-out "
                          f"({sum(p.rejected_longer for p in evals)} with the longer reply rejected); "
                          f"{skipped + skipped_eval} pairs over {cfg.max_len} tokens skipped; {cfg.steps} steps x "
                          f"{cfg.batch_size} pairs = {cfg.steps * cfg.batch_size / len(train):.2f} epochs")
        learner = ctx.start_learner(ctx.input_model, cfg.optim, cfg.steps, role="reward_model", head="value",
                                    pack=cfg.pack)
        # in the pairs' order (evaluate matches rewards back to them); with pack != none the learner's values()
        # regroups the sequences by length itself and returns them in this layout
        eval_batches = pair_batch(evals, tok.pad_token_id, cfg.micro_batch_size)
        options = {"center_coef": cfg.center_coef}

        def make_step(step: int):
            picked = [train[i] for i in batch_indices(len(train), cfg.batch_size, step, ctx.seed)]
            return pair_batch(picked, tok.pad_token_id, cfg.micro_batch_size, by_length=cfg.pack == "sort")

        def evaluate(handle, batches):
            return self.evaluate(handle, batches, evals, options)

        loop = LoopConfig(cfg.steps, cfg.batch_size, cfg.micro_batch_size, cfg.eval_every, cfg.checkpoint_every,
                          cfg.log_every)
        before = evaluate(learner, eval_batches)
        final = train_loop(ctx, learner, loop, make_step, eval_batches, "bradley_terry", options, evaluate)
        learner.save_model(ctx.output_model)
        stats = {"mean": final.pop("eval_reward_mean"), "std": final.pop("eval_reward_std"),
                 "pairs": len(evals), "measured_on": "held-out pairs (chosen and rejected replies)"}
        (ctx.output_model / STATS_FILE).write_text(json.dumps(stats, indent=1) + "\n")
        return {**final, "eval_accuracy_before": before["eval_accuracy"], "reward_mean": stats["mean"],
                "reward_std": stats["std"]}

    @staticmethod
    def encode(tok, rows, cfg: RewardModelConfig) -> tuple[list[EncodedPair], int]:
        out, skipped = [], 0
        for where, row in rows:
            pair = encode_pair(tok, row, where, cfg.system, cfg.max_len)
            if pair is None:
                skipped += 1
            else:
                out.append(pair)
        return out, skipped

    @staticmethod
    def evaluate(learner, batches: list[TrainBatch], pairs: list[EncodedPair], options) -> dict[str, float]:
        """Held-out loss, accuracy overall and on the length-confounded pairs, and the rewards' mean and std, from
        one pass of the reward model over the held-out pairs."""
        import torch

        # one forward pass: the loss is the pair mean of the same Bradley-Terry terms the learner would compute
        rewards = torch.cat([read_rewards(v, b.loss_mask) for v, b in zip(learner.values(batches), batches)])
        chosen, rejected = rewards[0::2], rewards[1::2]
        margin = torch.cat([b.extras["margin"][0::2] for b in batches])
        loss = bradley_terry(chosen, rejected, margin, options.get("center_coef", 0.0)).mean()
        right = (chosen > rejected).tolist()
        longer = [p.rejected_longer for p in pairs]

        out = {"eval_loss": float(loss), "eval_accuracy": sum(right) / len(right)}
        for key, sel in (("eval_accuracy_length_confounded", longer),
                         ("eval_accuracy_longer_chosen", [not x for x in longer])):
            picked = [r for r, s in zip(right, sel) if s]
            if picked:  # absent when the held-out pairs have none of that kind
                out[key] = sum(picked) / len(picked)
        return {**out,
                "eval_reward_chosen": float(chosen.mean()), "eval_reward_rejected": float(rejected.mean()),
                "eval_margin": float((chosen - rejected).mean()),
                "eval_reward_mean": float(rewards.mean()), "eval_reward_std": float(rewards.std())}


@hookimpl
def raylign_register_stages(register):
    register("reward_model", RewardModelStage)


@hookimpl
def raylign_register_losses(register):
    register("bradley_terry", bradley_terry_loss)
