"""Stage ``pretrain``: next-token prediction on plain text, packed into fixed-length blocks.

Sources: text files, JSONL with a ``text`` field, Parquet, or a saved HF dataset directory. Documents are
tokenized, joined with EOS and cut into ``block_size`` blocks; AdamW with warmup + cosine, gradient
accumulation and clipping run in the learner actor. Held-out loss and perplexity are reported, before
training too, so the gain over the starting model is visible.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from raylign.engine import hookimpl
from raylign.engine.data import batch_indices, read_texts, split_holdout
from raylign.engine.errors import ConfigError, DataError
from raylign.engine.modeling import load_tokenizer
from raylign.engine.optim import OptimConfig
from raylign.plugins.supervised import LoopConfig, evaluate, micro_batches, train_loop

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True)
class PretrainConfig:
    data: tuple[str, ...] = ()  # text sources (.txt, .jsonl, .parquet, HF dataset dir), relative to the config
    eval_data: tuple[str, ...] = ()  # held-out sources (empty = hold out eval_fraction of data's documents)
    eval_fraction: float = 0.02  # share of documents held out when eval_data is empty
    text_field: str = "text"  # field holding the text in JSONL/Parquet rows
    block_size: int = 256  # tokens per training sequence
    steps: int = 200  # optimizer steps
    batch_size: int = 16  # blocks per optimizer step
    micro_batch_size: int = 16  # blocks per forward/backward (gradient accumulation = batch / micro)
    eval_every: int = 50  # steps between held-out evals
    eval_blocks: int = 64  # held-out blocks evaluated
    checkpoint_every: int = 50  # steps between checkpoints
    log_every: int = 5  # steps between metric lines
    optim: OptimConfig = field(default_factory=lambda: OptimConfig(lr=3e-3, warmup_steps=20))


def pack(docs: list[str], tokenizer, block_size: int) -> torch.Tensor:
    """Tokenize ``docs``, join them with EOS and cut into [N, block_size] blocks (the tail is dropped)."""
    import torch

    eos = tokenizer.eos_token_id
    stream: list[int] = []
    for ids in tokenizer(docs, add_special_tokens=False)["input_ids"]:
        stream.extend(ids)
        stream.append(eos)
    n = len(stream) // block_size
    if n == 0:
        raise DataError(f"the pretraining data has {len(stream)} tokens: fewer than one block of {block_size}")
    return torch.tensor(stream[: n * block_size], dtype=torch.long).view(n, block_size)


def as_batches(blocks: torch.Tensor, micro: int):
    import torch

    mask = torch.ones_like(blocks)
    loss_mask = torch.ones_like(blocks, dtype=torch.float32)
    loss_mask[:, 0] = 0.0
    return micro_batches(blocks, mask, loss_mask, micro)


class PretrainStage:
    config_cls = PretrainConfig

    def run(self, ctx):
        cfg: PretrainConfig = ctx.config
        if not cfg.data:
            raise ConfigError(f"{ctx.name}.data is empty: list the text sources to pretrain on")
        if cfg.batch_size % cfg.micro_batch_size:
            raise ConfigError(f"{ctx.name}.batch_size ({cfg.batch_size}) must be a multiple of "
                              f"{ctx.name}.micro_batch_size ({cfg.micro_batch_size})")
        tok = load_tokenizer(ctx.input_model)
        docs = read_texts(cfg.data, ctx.base_dir, cfg.text_field)
        if cfg.eval_data:
            eval_docs = read_texts(cfg.eval_data, ctx.base_dir, cfg.text_field)
        else:
            docs, eval_docs = split_holdout(docs, cfg.eval_fraction, ctx.seed)
        train = pack(docs, tok, cfg.block_size)
        held = pack(eval_docs, tok, cfg.block_size)[: cfg.eval_blocks]
        ctx.console.print(
            f"{ctx.name}: {train.numel():,} training tokens in {len(train)} blocks of {cfg.block_size}; "
            f"{cfg.steps} steps x {cfg.batch_size} blocks = {cfg.steps * cfg.batch_size * cfg.block_size:,} tokens "
            f"({cfg.steps * cfg.batch_size / len(train):.2f} epochs); {held.numel():,} held-out tokens"
        )
        learner = ctx.start_learner(ctx.input_model, cfg.optim, cfg.steps)
        eval_batches = as_batches(held, cfg.micro_batch_size)
        initial = evaluate(learner, eval_batches)
        loop = LoopConfig(cfg.steps, cfg.batch_size, cfg.micro_batch_size, cfg.eval_every, cfg.checkpoint_every,
                          cfg.log_every)

        def make_step(step: int):
            return as_batches(train[batch_indices(len(train), cfg.batch_size, step, ctx.seed)], cfg.micro_batch_size)

        final = train_loop(ctx, learner, loop, make_step, eval_batches)
        learner.save_model(ctx.output_model)
        return {**final, "eval_loss_initial": initial["eval_loss"], "eval_ppl_initial": initial["eval_ppl"]}


@hookimpl
def raylign_register_stages(register):
    register("pretrain", PretrainStage)
