"""Arithmetic tasks for GRPO: {"prompt", "answer", "verifier": "math", "solution"}.

`answer` is the reference number as a string; `solution` is the SFT-formatted reference ("17+25 = 42. The answer
is 42."), which the math verifier must score 1.0 (its "answer is" extraction). Problems are small (arith.problems);
train rows ask only arith.Split's RL-only problems, which sft.jsonl never asks (so GRPO starts below 100% on its
own prompts); eval problems are arith.Split's math_eval set, whose questions no training file asks (the corpus
states the facts).
"""
from __future__ import annotations

import random

import arith

N_TRAIN = 1000                 # rows: every RL-only problem (arith.Split.rl), then repeats (new phrasing each time)


def row(rng: random.Random, op: str, a: int, b: int) -> dict:
    return {"prompt": arith.question(rng, op, a, b), "answer": str(arith.value(op, a, b)), "verifier": "math",
            "solution": arith.answer_text(op, a, b)}


def build(seed: int, split: arith.Split):
    """(math_train rows, math_eval rows)."""
    rng = random.Random(f"math-{seed}")
    pool = [p for p in split.rl if arith.in_range(p)]
    problems = []
    while len(problems) < N_TRAIN:
        problems += rng.sample(pool, min(len(pool), N_TRAIN - len(problems)))
    rng.shuffle(problems)
    train = [row(rng, *p) for p in problems]
    held = list(split.math_eval)
    rng.shuffle(held)
    evals = [row(rng, *p) for p in held]
    return train, evals
