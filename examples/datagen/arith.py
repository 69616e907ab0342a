"""Arithmetic and number facts shared by the corpus, the SFT pairs and the GRPO math tasks.

Two kinds of problem:
- facts, (op, a, b) in a small range a ~2M-parameter model can learn by heart: a+b with a in 0..20, b in 0..9
  (sums <= 29) and a-b with 0 <= b <= a <= 20. Answered in one line ("7+8 = 15. The answer is 15."). SFT asks
  them all but a held-out set (sft_eval.jsonl). The pretraining corpus states every fact of the range, held-out
  ones included (facts of arithmetic, as any corpus has them), plus a few wider facts (WIDE_PROBLEMS: sums and
  differences up to 50, products up to 12*12).
- long additions, a+b with two-digit operands, answered column by column, ones first, with the carry written
  out ("7+8 = 15, carry 1. 4+3+1 = 8. The answer is 85."). They are the GRPO math task. There are too many
  (8100) to learn by heart, so a model gets held-out ones right only by running the procedure, whose steps
  (copying the column's digits from the question, one-digit facts, the carry, reading the answer off the
  steps) every problem shares: that is what lets an RL stage that practises on some problems gain on others.
  SFT shows the procedure on a few hundred problems; GRPO (math_train.jsonl) asks others; math_eval.jsonl holds
  out others again.
"""
from __future__ import annotations

import random
from dataclasses import dataclass

from sampling import distinct_parts

SYMBOL = {"add": "+", "sub": "-", "mul": "*"}
WORD = {"add": "plus", "sub": "minus", "mul": "times"}
NOUN = {"add": "sum", "sub": "difference", "mul": "product"}
OPS = ("add", "sub")                                   # task ops (no multiplication in SFT/math tasks)
ALWAYS_TRAIN = [("add", 2, 2), ("sub", 10, 3)]       # probe prompts among the facts
HELD_SFT_EVAL = {"add": 10, "sub": 10}                # -> sft_eval.jsonl arithmetic (20)

COLUMN_DIGITS = 2                  # long additions add two numbers of this many digits (10..99)
COLUMN_ALWAYS_SFT = [(12, 30)]     # probe prompt ("What is 12+30?"), so always an SFT problem
COLUMN_EVAL = 400                  # -> math_eval.jsonl
COLUMN_SFT = 300                   # -> sft.jsonl, one phrasing each
COLUMN_RL = 1000                   # -> math_train.jsonl, every row a problem of its own

N_MAX = 99                                             # number facts (parity, neighbours, comparison) use 0..99


def problems(op: str) -> list[tuple[str, int, int]]:
    """Every task problem of one op (the small range)."""
    if op == "add":
        return [(op, a, b) for a in range(21) for b in range(10)]
    return [(op, a, b) for a in range(21) for b in range(a + 1)]


def wide_problems(op: str) -> list[tuple[str, int, int]]:
    """The wider facts the corpus states now and then."""
    if op == "add":
        return [(op, a, b) for a in range(51) for b in range(51)]
    if op == "sub":
        return [(op, a, b) for a in range(51) for b in range(a + 1)]
    return [(op, a, b) for a in range(13) for b in range(13)]


def value(op: str, a: int, b: int) -> int:
    return a + b if op == "add" else a - b if op == "sub" else a * b


def expression(op: str, a: int, b: int) -> str:
    return f"{a}{SYMBOL[op]}{b}"


def is_column(op: str, a: int, b: int) -> bool:
    """A long addition (answered column by column), not a fact."""
    return op == "add" and a >= 10 and b >= 10


def answer_text(op: str, a: int, b: int) -> str:
    """The SFT response and the math rows' `solution`: a fact in one line ("7+8 = 15. The answer is 15."), a long
    addition column by column ("7+8 = 15, carry 1. 4+3+1 = 8. The answer is 85.")."""
    if is_column(op, a, b):
        return column_steps(a, b)
    c = value(op, a, b)
    return f"{expression(op, a, b)} = {c}. The answer is {c}."


def column_steps(a: int, b: int) -> str:
    """One sentence per column, ones first: its digits (and the carry, as +1), their sum, the carry if any; the
    last column's sum is written whole. Then the answer."""
    da, db = str(a)[::-1], str(b)[::-1]
    n = max(len(da), len(db))
    steps, carry = [], 0
    for i in range(n):
        x, y = (int(d[i]) if i < len(d) else 0 for d in (da, db))
        total = x + y + carry
        summands = f"{x}+{y}" + ("+1" if carry else "")
        carry = int(total >= 10 and i < n - 1)
        steps.append(f"{summands} = {total}" + (", carry 1." if carry else "."))
    return " ".join(steps) + f" The answer is {a + b}."


# (template, weight) per op; the same phrasing is used by sft.jsonl and the math_*.jsonl tasks
QUESTIONS = {
    "add": [("What is {a}+{b}?", 6), ("What is {a} plus {b}?", 2), ("What is the sum of {a} and {b}?", 1),
            ("Compute {a}+{b}.", 1)],
    "sub": [("What is {a}-{b}?", 6), ("What is {a} minus {b}?", 2), ("What is {b} subtracted from {a}?", 1),
            ("Compute {a}-{b}.", 1)],
}


def templates(op: str) -> list[str]:
    return [t for t, _ in QUESTIONS[op]]


def question(rng: random.Random, op: str, a: int, b: int) -> str:
    options = QUESTIONS[op]
    template = rng.choices([t for t, _ in options], weights=[w for _, w in options])[0]
    return template.format(a=a, b=b)


@dataclass(frozen=True)
class Split:
    train: list          # facts (op, a, b) SFT asks, in a fixed order
    sft_eval: list       # facts held out: sft_eval.jsonl
    held_numbers: dict   # number-fact family -> held-out items (sft_eval only)
    column_sft: list     # long additions ("add", a, b): sft.jsonl
    column_rl: list      # long additions GRPO asks (math_train.jsonl), none in SFT
    column_eval: list    # long additions held out: math_eval.jsonl


def column_problem(rng: random.Random) -> tuple[str, int, int]:
    low, high = 10 ** (COLUMN_DIGITS - 1), 10 ** COLUMN_DIGITS - 1
    return "add", rng.randint(low, high), rng.randint(low, high)


def column_split(seed: int) -> tuple[list, list, list]:
    """(sft, rl, eval) long additions: distinct problems, no problem in two of them."""
    rng = random.Random(f"column-{seed}")
    probes = [("add", a, b) for a, b in COLUMN_ALWAYS_SFT]
    held, sft, rl = distinct_parts(lambda: column_problem(rng), (COLUMN_EVAL, COLUMN_SFT, COLUMN_RL), seen=probes)
    return probes + sft, rl, held


def split(seed: int) -> Split:
    rng = random.Random(f"arith-{seed}")
    train, sft_eval = [], []
    for op in OPS:
        pool = [p for p in problems(op) if p not in ALWAYS_TRAIN]
        rng.shuffle(pool)
        n = HELD_SFT_EVAL[op]
        sft_eval += pool[:n]
        train += sorted(pool[n:] + [p for p in ALWAYS_TRAIN if p[0] == op])
    numbers = list(range(N_MAX + 1))
    pairs = [(a, b) for a in numbers for b in numbers if a != b]
    held_numbers = {
        "parity": sorted(rng.sample(numbers, 10)),
        "after": sorted(rng.sample(numbers, 8)),
        "before": sorted(rng.sample(numbers[1:], 8)),
        "compare": sorted(rng.sample(pairs, 20)),
    }
    column_sft, column_rl, column_eval = column_split(seed)
    return Split(train, sft_eval, held_numbers, column_sft, column_rl, column_eval)


# --- number facts: (question, answer) and declarative forms for the corpus ------------------------------------
def parity_qa(n: int) -> tuple[str, str]:
    return f"Is {n} even or odd?", f"{n} is {'even' if n % 2 == 0 else 'odd'}."


def after_qa(n: int) -> tuple[str, str]:
    return f"What number comes after {n}?", f"The number after {n} is {n + 1}."


def before_qa(n: int) -> tuple[str, str]:
    return f"What number comes before {n}?", f"The number before {n} is {n - 1}."


def compare_qa(a: int, b: int, larger: bool) -> tuple[str, str]:
    hi, lo = max(a, b), min(a, b)
    if larger:
        return f"Which is larger, {a} or {b}?", f"{hi} is larger than {lo}."
    return f"Which is smaller, {a} or {b}?", f"{lo} is smaller than {hi}."


STATEMENTS = {  # corpus forms of one arithmetic fact
    "add": ["{a} plus {b} is {c}.", "{a}+{b}={c}", "{a} + {b} = {c}", "The sum of {a} and {b} is {c}.",
            "If you add {a} and {b}, you get {c}.", "{a} and {b} make {c}.", "{a}+{b} = {c}."],
    "sub": ["{a} minus {b} is {c}.", "{a}-{b}={c}", "{a} - {b} = {c}", "The difference between {a} and {b} is {c}.",
            "If you take {b} away from {a}, you get {c}.", "{b} subtracted from {a} is {c}.", "{a}-{b} = {c}."],
    "mul": ["{a} times {b} is {c}.", "{a}*{b}={c}", "{a} * {b} = {c}", "The product of {a} and {b} is {c}.",
            "If you multiply {a} by {b}, you get {c}.", "{a} groups of {b} make {c}.", "{a}*{b} = {c}."],
}


def statement(rng: random.Random, op: str, a: int, b: int) -> str:
    return rng.choice(STATEMENTS[op]).format(a=a, b=b, c=value(op, a, b))


def number_statement(rng: random.Random, held: dict) -> str:
    """One declarative number fact (parity, neighbours, comparison), never about a held-out item."""
    while True:
        kind = rng.choice(["parity", "after", "before", "compare"])
        n, m = rng.randint(0, N_MAX), rng.randint(0, N_MAX)
        if kind == "compare":
            if n == m or (n, m) in held["compare"] or (m, n) in held["compare"]:
                continue
            hi, lo = max(n, m), min(n, m)
            return rng.choice([f"{hi} is larger than {lo}.", f"{lo} is smaller than {hi}.",
                               f"{hi} is bigger than {lo}.", f"{lo} is less than {hi}."])
        if n in held[kind] or (kind == "before" and n == 0):
            continue
        if kind == "parity":
            word = "even" if n % 2 == 0 else "odd"
            return rng.choice([f"{n} is {word}.", f"{n} is an {word} number.", f"The number {n} is {word}."])
        if kind == "after":
            return rng.choice([f"The number after {n} is {n + 1}.", f"{n + 1} comes after {n}."])
        return rng.choice([f"The number before {n} is {n - 1}.", f"{n - 1} comes before {n}."])
