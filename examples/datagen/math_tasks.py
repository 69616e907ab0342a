"""Arithmetic tasks for GRPO: {"prompt", "answer", "verifier": "math", "solution"}.

`answer` is the reference number as a string; `solution` is the SFT-formatted reference ("17+25 = 42. The answer
is 42."), which the math verifier must score 1.0 (its "answer is" extraction). Eval problems are arith.Split's
math_eval set, which no training file contains.
"""
from __future__ import annotations

import random

import arith

N_TRAIN = 2000                 # distinct train-split problems: every product, SUB_TRAIN differences, the rest sums
SUB_TRAIN = 750


def row(rng: random.Random, op: str, a: int, b: int) -> dict:
    return {"prompt": arith.question(rng, op, a, b), "answer": str(arith.value(op, a, b)), "verifier": "math",
            "solution": arith.answer_text(op, a, b)}


def build(seed: int, split: arith.Split):
    """(math_train rows, math_eval rows)."""
    rng = random.Random(f"math-{seed}")
    pool = {op: [p for p in split.train if p[0] == op] for op in ("add", "sub", "mul")}
    problems = list(pool["mul"]) + rng.sample(pool["sub"], SUB_TRAIN)
    problems += rng.sample(pool["add"], N_TRAIN - len(problems))
    rng.shuffle(problems)
    train = [row(rng, *p) for p in problems]
    held = list(split.math_eval)
    rng.shuffle(held)
    evals = [row(rng, *p) for p in held]
    return train, evals
