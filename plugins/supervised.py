"""The training loop pretrain and SFT share: fixed-order batches by step, periodic eval and checkpoints.

Batch ``s`` is a pure function of the seed and ``s`` (``raylign.engine.data.batch_indices``), so a resumed run
sees exactly the batches an uninterrupted one would: no step lost or repeated.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

from raylign.engine.learner_handle import LearnerHandle
from raylign.engine.types import SequenceBatch, TrainBatch

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True)
class LoopConfig:
    steps: int  # optimizer steps
    batch_size: int  # sequences per optimizer step
    micro_batch_size: int  # sequences per forward/backward
    eval_every: int  # steps between held-out evals (0 = only at the end)
    checkpoint_every: int  # steps between checkpoints (0 = never)
    log_every: int  # steps between metric lines


def micro_batches(ids: torch.Tensor, mask: torch.Tensor, loss_mask: torch.Tensor, micro: int,
                  by_length: bool = False) -> list[TrainBatch]:
    """Split [B,T] tensors into micro-batches whose losses sum to the step's token-weighted mean; ``by_length``:
    cut from the sequences ordered by length, each cut to its real columns (a stage's ``pack = "sort"``; the
    token-weighted mean, and so the step's loss and the eval loss, stay the same)."""
    return SequenceBatch(ids, mask, loss_mask).micro_batches(micro, token_weighted=True, by_length=by_length)


def evaluate(learner: LearnerHandle, eval_batches: list[TrainBatch]) -> dict[str, float]:
    res = learner.eval_loss(eval_batches, "next_token")
    loss = res["loss"]
    return {"eval_loss": loss, "eval_ppl": math.exp(min(loss, 50.0))}


def train_loop(ctx, learner: LearnerHandle, cfg: LoopConfig, make_step: Callable[[int], list[TrainBatch]],
               eval_batches: list[TrainBatch], loss: str = "next_token", options: dict | None = None,
               evaluate: Callable[[LearnerHandle, list[TrainBatch]], dict[str, float]] = evaluate) -> dict[str, float]:
    """Run steps ``start+1 .. cfg.steps`` of ``loss`` (with its ``options``); returns the last ``evaluate`` metrics. Resumes from the
    latest checkpoint."""
    resume = ctx.resume_point()
    start = 0
    if resume is not None:
        ctx.restore(learner, resume)
        start = resume.step
        ctx.console.print(f"resuming {ctx.name} after step {start} from {resume.path}")
    last_eval: dict[str, float] = {}
    with ctx.progress(cfg.steps, start) as bar:
        for step in range(start + 1, cfg.steps + 1):
            metrics = learner.train_step(make_step(step - 1), loss, options)
            metrics["tokens_per_s"] = metrics["step_tokens"] / max(metrics["learner_seconds"], 1e-9)
            if cfg.eval_every and step % cfg.eval_every == 0 and step != cfg.steps:
                last_eval = evaluate(learner, eval_batches)
                metrics.update(last_eval)
            else:
                last_eval = {}
            if step % cfg.log_every == 0 or step == cfg.steps or last_eval:
                ctx.log(step, metrics)
            bar.update(step, loss=metrics["loss"])
            if cfg.checkpoint_every and step % cfg.checkpoint_every == 0 and step != cfg.steps:
                ctx.save_checkpoint(step, learner, {"step": step})
    last_eval = evaluate(learner, eval_batches)
    ctx.log(cfg.steps, last_eval)
    return last_eval
