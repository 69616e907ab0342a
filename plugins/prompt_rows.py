"""Prompt rows of the RL stages (grpo, ppo): read, held out, rendered in the model's chat format. No Ray."""
from __future__ import annotations

from typing import Any, Callable

from raylign.engine.chat_format import render_prompt
from raylign.engine.data import read_rows, require, split_holdout


def load_prompt_rows(ctx, tok, cfg, check: Callable[[dict[str, Any], str], None] | None = None):
    """``(train, held_out, skipped)`` from ``cfg.data`` and ``cfg.eval_data`` (else ``cfg.eval_fraction`` of the
    data held out; at most ``cfg.eval_size`` held-out rows). Each row becomes ``{"row", "ids"}``: the row and its
    prompt rendered with ``cfg.system`` in the model's chat format; prompts over ``cfg.max_prompt_tokens`` are
    skipped (counted). ``check(row, where)`` may reject a row before anything starts (e.g. an unknown verifier)."""

    def prepare(rows):
        out, skipped = [], 0
        for where, row in rows:
            prompt = require(row, "prompt", where, (str, list))
            ids = tok(render_prompt(tok, prompt, cfg.system or None), add_special_tokens=False)["input_ids"]
            if len(ids) > cfg.max_prompt_tokens:
                skipped += 1
                continue
            if check is not None:
                check(row, where)
            out.append({"row": row, "ids": ids})
        return out, skipped

    rows = read_rows(cfg.data, ctx.base_dir)
    if cfg.eval_data:
        held = read_rows(cfg.eval_data, ctx.base_dir)
    else:
        rows, held = split_holdout(rows, cfg.eval_fraction, ctx.seed)
    train, s1 = prepare(rows)
    evals, s2 = prepare(held[: cfg.eval_size])
    return train, evals, s1 + s2
