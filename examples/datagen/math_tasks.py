"""Long-addition tasks for GRPO: {"prompt", "answer", "verifier": "math", "solution"}.

`answer` is the reference number as a string; `solution` is the SFT-formatted worked answer ("7+8 = 15, carry 1.
4+3+1 = 8. The answer is 85.", arith.column_steps), which the math verifier must score 1.0 (its "answer is"
extraction). Train rows ask arith.Split.column_rl, one problem per row, none of them asked by sft.jsonl; eval rows
ask arith.Split.column_eval, whose problems no training file asks.
"""
from __future__ import annotations

import random

import arith


def row(rng: random.Random, op: str, a: int, b: int) -> dict:
    return {"prompt": arith.question(rng, op, a, b), "answer": str(arith.value(op, a, b)), "verifier": "math",
            "solution": arith.answer_text(op, a, b)}


def build(seed: int, split: arith.Split):
    """(math_train rows, math_eval rows)."""
    rng = random.Random(f"math-{seed}")
    return [row(rng, *p) for p in split.column_rl], [row(rng, *p) for p in split.column_eval]
