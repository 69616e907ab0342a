"""Arithmetic and number facts shared by the corpus, the SFT pairs and the GRPO math tasks.

Task problems are (op, a, b) in a small range a ~2M-parameter model can learn: a+b with a in 0..20, b in 0..9
(sums <= 29) and a-b with 0 <= b <= a <= 20. A held-out set (drawn from the seed) feeds math_eval.jsonl and the
arithmetic of sft_eval.jsonl; its *questions* never appear in sft.jsonl or math_train.jsonl. Of the rest, SFT asks
one part and GRPO (math_train.jsonl) the other (RL_ONLY), as a lab keeps RL prompts apart from SFT data. The pretraining
corpus states every fact of the range, held-out ones included (facts of arithmetic, as any corpus has them),
plus a few wider facts (WIDE_PROBLEMS: sums/differences up to 50, products up to 12*12).
"""
from __future__ import annotations

import random
from dataclasses import dataclass

SYMBOL = {"add": "+", "sub": "-", "mul": "*"}
WORD = {"add": "plus", "sub": "minus", "mul": "times"}
NOUN = {"add": "sum", "sub": "difference", "mul": "product"}
OPS = ("add", "sub")                                   # task ops (no multiplication in SFT/math tasks)
ALWAYS_TRAIN = [("add", 12, 30), ("add", 2, 2), ("sub", 10, 3)]  # probe prompts (12+30 is out of range: SFT only)

HELD_MATH_EVAL = {"add": 75, "sub": 85}               # -> math_eval.jsonl (160 distinct problems)
HELD_SFT_EVAL = {"add": 10, "sub": 10}                # -> sft_eval.jsonl arithmetic (20)
RL_ONLY = {"add": 50, "sub": 55}                       # train problems only GRPO asks (math_train.jsonl), never SFT

N_MAX = 99                                             # number facts (parity, neighbours, comparison) use 0..99


def problems(op: str) -> list[tuple[str, int, int]]:
    """Every task problem of one op (the small range)."""
    if op == "add":
        return [(op, a, b) for a in range(21) for b in range(10)]
    return [(op, a, b) for a in range(21) for b in range(a + 1)]


def in_range(p: tuple[str, int, int]) -> bool:
    op, a, b = p
    if op == "add":
        return 0 <= a <= 20 and 0 <= b <= 9
    return op == "sub" and 0 <= b <= a <= 20


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


def answer_text(op: str, a: int, b: int) -> str:
    """The SFT response and the math rows' `solution`: "12+30 = 42. The answer is 42." """
    c = value(op, a, b)
    return f"{expression(op, a, b)} = {c}. The answer is {c}."


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
    train: list          # (op, a, b) whose questions training may ask, in a fixed order
    math_eval: list      # held out: math_eval.jsonl
    sft_eval: list       # held out: sft_eval.jsonl
    held_numbers: dict   # number-fact family -> held-out items (sft_eval only)
    rl: list = ()        # the part of `train` only GRPO asks (math_train.jsonl); SFT asks the rest

    @property
    def held(self) -> set:
        return set(self.math_eval) | set(self.sft_eval)

    @property
    def sft_train(self) -> list:
        rl = set(self.rl)
        return [p for p in self.train if p not in rl]


def split(seed: int) -> Split:
    rng = random.Random(f"arith-{seed}")
    train, math_eval, sft_eval = [], [], []
    for op in OPS:
        pool = [p for p in problems(op) if p not in ALWAYS_TRAIN]
        rng.shuffle(pool)
        n1, n2 = HELD_MATH_EVAL[op], HELD_SFT_EVAL[op]
        math_eval += pool[:n1]
        sft_eval += pool[n1:n1 + n2]
        train += sorted(pool[n1 + n2:] + [p for p in ALWAYS_TRAIN if p[0] == op])
    numbers = list(range(N_MAX + 1))
    pairs = [(a, b) for a in numbers for b in numbers if a != b]
    held_numbers = {
        "parity": sorted(rng.sample(numbers, 10)),
        "after": sorted(rng.sample(numbers, 8)),
        "before": sorted(rng.sample(numbers[1:], 8)),
        "compare": sorted(rng.sample(pairs, 20)),
    }
    # RL prompts SFT has not answered: GRPO then has something to learn (on problems SFT taught it scores ~100%).
    # Own random stream, so the held-out sets above are what they were before this split existed.
    rl_rng = random.Random(f"arith-rl-{seed}")
    rl = []
    for op in OPS:
        pool = [p for p in train if p[0] == op and p not in ALWAYS_TRAIN]
        rl += sorted(rl_rng.sample(pool, RL_ONLY[op]))
    return Split(train, math_eval, sft_eval, held_numbers, rl)


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
