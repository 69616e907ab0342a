"""Stage ``sft``: instruction fine-tuning on prompt/response pairs or chat ``messages``.

Each example is rendered with the tokenizer's chat template and trained with the loss on the assistant's
tokens only. Reported: held-out loss, and the share of held-out and probe prompts answered in the response
format (a reply that ends by itself and matches ``format_regex``) before and after training.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from raylign.engine import hookimpl
from raylign.engine.chat_format import encode_conversation as encode, render_prompt
from raylign.engine.data import batch_indices, read_rows, require, split_holdout
from raylign.engine.errors import ConfigError, DataError
from raylign.engine.modeling import load_tokenizer
from raylign.engine.ops import check_pack, pad_sequences
from raylign.engine.optim import OptimConfig
from raylign.plugins.supervised import LoopConfig, micro_batches, train_loop


@dataclass(frozen=True)
class SFTConfig:
    data: tuple[str, ...] = ()  # JSONL/Parquet rows with prompt+response, or messages
    eval_data: tuple[str, ...] = ()  # held-out rows (empty = hold out eval_fraction of data)
    eval_fraction: float = 0.05  # share held out when eval_data is empty
    system: str = ""  # a system message prepended to every conversation ("" = none)
    max_len: int = 256  # longer examples are cut (their response part keeps its mask)
    steps: int = 200  # optimizer steps
    batch_size: int = 32  # examples per optimizer step
    micro_batch_size: int = 32  # examples per forward/backward
    eval_every: int = 50  # steps between held-out evals
    eval_examples: int = 128  # held-out examples in the loss eval
    checkpoint_every: int = 50  # steps between checkpoints
    log_every: int = 5  # steps between metric lines
    format_regex: str = r"^\S[\s\S]*[.!?]$"  # a reply in the response format matches this (after strip)
    format_eval_prompts: int = 48  # held-out prompts generated from, before and after, for the format rate
    max_new_tokens: int = 48  # tokens generated per prompt in the format eval
    pack: str = "none"  # learner compute on padding: none | sort (micro-batches cut to their real columns) |
    # pack (each micro-batch's sequences packed into rows, attention kept within each; the fastest)
    optim: OptimConfig = field(default_factory=lambda: OptimConfig(lr=1e-3, warmup_steps=10))


def to_messages(row: dict, where: str) -> list[dict[str, str]]:
    """A row as chat messages: ``messages`` as given, or ``prompt`` + ``response``."""
    if "messages" in row:
        msgs = require(row, "messages", where, list)
        for i, m in enumerate(msgs):
            if not isinstance(m, dict) or "role" not in m or "content" not in m:
                raise DataError(f"{where}: messages[{i}] must be an object with 'role' and 'content'")
        if not any(m["role"] == "assistant" for m in msgs):
            raise DataError(f"{where}: messages has no assistant turn to train on")
        return [{"role": m["role"], "content": m["content"]} for m in msgs]
    prompt = require(row, "prompt", where)
    response = require(row, "response", where)
    return [{"role": "user", "content": prompt}, {"role": "assistant", "content": response}]


def collate(examples: list[tuple[list[int], list[float]]], pad_id: int, micro: int, by_length: bool = False):
    """Examples as token-weighted micro-batches (``by_length``: cut from the examples ordered by length)."""
    import torch

    ids, attn = pad_sequences([e[0] for e in examples], pad_id)
    loss_mask = torch.zeros(ids.shape, dtype=torch.float32)
    for i, (_, m) in enumerate(examples):
        loss_mask[i, : len(m)] = torch.tensor(m)
    return micro_batches(ids, attn, loss_mask, micro, by_length=by_length)


def format_rate(replies: list[dict], pattern: str) -> float:
    rx = re.compile(pattern)
    ok = [r["finished"] and bool(rx.match(r["text"].strip())) for r in replies]
    return sum(ok) / max(1, len(ok))


class SFTStage:
    config_cls = SFTConfig

    def run(self, ctx):
        cfg: SFTConfig = ctx.config
        if not cfg.data:
            raise ConfigError(f"{ctx.name}.data is empty: list the JSONL/Parquet files of prompt/response rows")
        try:
            re.compile(cfg.format_regex)
        except re.error as exc:
            raise ConfigError(f"{ctx.name}.format_regex is not a valid regular expression: {exc}") from None
        check_pack(f"{ctx.name}.pack", cfg.pack)
        tok = load_tokenizer(ctx.input_model)
        rows = [(w, to_messages(r, w)) for w, r in read_rows(cfg.data, ctx.base_dir)]
        if cfg.eval_data:
            held_rows = [(w, to_messages(r, w)) for w, r in read_rows(cfg.eval_data, ctx.base_dir)]
        else:
            rows, held_rows = split_holdout(rows, cfg.eval_fraction, ctx.seed)
        train = [encode(tok, m, cfg.system, cfg.max_len) for _, m in rows]
        held = [encode(tok, m, cfg.system, cfg.max_len) for _, m in held_rows[: cfg.eval_examples]]
        ctx.console.print(f"{ctx.name}: {len(train)} training conversations, {len(held)} held-out; "
                          f"{cfg.steps} steps x {cfg.batch_size} = {cfg.steps * cfg.batch_size / len(train):.2f} epochs")
        learner = ctx.start_learner(ctx.input_model, cfg.optim, cfg.steps, pack=cfg.pack)
        # Prompts for the format eval: the run's probes and held-out first user turns.
        prompts = list(ctx.run.probes) + [m[0]["content"] for _, m in held_rows if m[0]["role"] == "user"]
        prompts = prompts[: len(ctx.run.probes) + cfg.format_eval_prompts]
        rendered = [render_prompt(tok, p, cfg.system or None) for p in prompts]
        before = format_rate(learner.generate(rendered, cfg.max_new_tokens), cfg.format_regex)
        loop = LoopConfig(cfg.steps, cfg.batch_size, cfg.micro_batch_size, cfg.eval_every, cfg.checkpoint_every,
                          cfg.log_every)

        by_length = cfg.pack == "sort"  # the loss and the eval loss are token-weighted: the same in any grouping

        def make_step(step: int):
            picked = [train[i] for i in batch_indices(len(train), cfg.batch_size, step, ctx.seed)]
            return collate(picked, tok.pad_token_id, cfg.micro_batch_size, by_length)

        evals = collate(held, tok.pad_token_id, cfg.micro_batch_size, by_length)
        final = train_loop(ctx, learner, loop, make_step, evals)
        replies = learner.generate(rendered, cfg.max_new_tokens)
        after = format_rate(replies, cfg.format_regex)
        learner.save_model(ctx.output_model)
        return {**final, "format_rate_before": before, "format_rate_after": after}


@hookimpl
def raylign_register_stages(register):
    register("sft", SFTStage)
