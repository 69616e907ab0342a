"""The pretraining corpus: a templated mini-encyclopedia, arithmetic statements and a little Python.

No chat-formatted questions and answers appear here (SFT teaches the answer format); the corpus states the same
facts declaratively. Arithmetic is dense and repetitive in the task range (arith.problems): every fact, held-out
ones included, is stated many times in several forms. Held-out number facts and eval code tasks are never used.
"""
from __future__ import annotations

import random

import arith
import code_tasks
from concepts import (CATEGORY_TITLES, Concept, category_sentence, definition_sentence)

# characters of each document kind in pretrain.jsonl (about 1.6 MB in all)
BUDGET = {"concept": 760_000, "glossary": 170_000, "arith": 430_000, "numbers": 90_000, "code": 150_000}
EVAL_FRACTION = 0.04                       # pretrain_eval.jsonl gets this share of each budget
WIDE_SHARE = 0.08                          # arithmetic documents of wider facts (most stay in the task range)
WIDE_WEIGHTS = {"add": 45, "sub": 35, "mul": 20}


def concept_doc(rng: random.Random, c: Concept) -> str:
    """A short paragraph: a definition (most often "<A> is ..."), some facts, sometimes a category line."""
    sentences = [definition_sentence(rng, c, plain=rng.random() < 0.5)]
    facts = [answer for _, answer in c.facts]
    rng.shuffle(facts)
    sentences += facts[:rng.randint(1, len(facts))]
    if rng.random() < 0.4:
        sentences.insert(rng.randint(1, len(sentences)), category_sentence(c))
    if rng.random() < 0.25:
        sentences.append(definition_sentence(rng, c))
    return " ".join(sentences)


def glossary_doc(rng: random.Random, concepts: list[Concept]) -> str:
    """A title and three to six definitions from one category, each with one fact sometimes."""
    category = rng.choice(sorted(CATEGORY_TITLES))
    members = [c for c in concepts if c.category == category]
    chosen = rng.sample(members, min(len(members), rng.randint(3, 6)))
    lines = [rng.choice(CATEGORY_TITLES[category])]
    for c in chosen:
        line = definition_sentence(rng, c, plain=rng.random() < 0.7)
        if rng.random() < 0.5:
            line += " " + rng.choice(c.facts)[1]
        lines.append(line)
    return "\n".join(lines)


class ArithSampler:
    """Mostly facts of the task range (held-out problems' facts included), now and then a wider one."""

    def __init__(self, split: arith.Split):
        self.small = {op: arith.problems(op) for op in arith.OPS}
        self.wide = {op: arith.wide_problems(op) for op in WIDE_WEIGHTS}

    def sample(self, rng: random.Random, wide: bool = False) -> tuple[str, int, int]:
        if wide:
            op = rng.choices(list(WIDE_WEIGHTS), weights=list(WIDE_WEIGHTS.values()))[0]
            return rng.choice(self.wide[op])
        return rng.choice(self.small[rng.choice(arith.OPS)])


def fact_lines(rng: random.Random, op: str, a: int, b: int) -> list[str]:
    """One in-range fact, and often its mirror ("7 plus 5 is 12." / "12 minus 5 is 7.")."""
    lines = [arith.statement(rng, op, a, b)]
    if rng.random() < 0.4:
        c = arith.value(op, a, b)
        lines.append(arith.statement(rng, "sub", c, b) if op == "add" else arith.statement(rng, "add", c, b))
    if op == "add" and rng.random() < 0.2:
        lines.append(arith.statement(rng, "add", b, a))
    return lines


def arith_doc(rng: random.Random, sampler: ArithSampler) -> str:
    """Random in-range facts, a small table (one op, one first number) or, rarely, wider facts."""
    r = rng.random()
    if r < WIDE_SHARE:
        return "\n".join(arith.statement(rng, *sampler.sample(rng, wide=True)) for _ in range(rng.randint(8, 16)))
    if r < 0.55:
        lines = []
        for _ in range(rng.randint(8, 16)):
            lines += fact_lines(rng, *sampler.sample(rng))
        return "\n".join(lines)
    op = rng.choice(arith.OPS)
    a = rng.randint(0, 20)
    form = rng.choice(arith.STATEMENTS[op])
    bs = range(10) if op == "add" else range(a + 1)
    return "\n".join(form.format(a=a, b=b, c=arith.value(op, a, b)) for b in bs)


def numbers_doc(rng: random.Random, held: dict) -> str:
    return " ".join(arith.number_statement(rng, held) for _ in range(rng.randint(8, 16)))


def code_doc(rng: random.Random, tasks: list[code_tasks.Task], sampler: ArithSampler) -> str:
    parts = [code_tasks.corpus_text(rng, t) for t in rng.sample(tasks, rng.randint(2, 4))]
    if rng.random() < 0.4:
        op, a, b = sampler.sample(rng, wide=rng.random() < WIDE_SHARE)
        parts.append(code_tasks.snippet(rng, op, a, b, arith.value(op, a, b)))
    return "\n".join(parts)


def _fill(rng: random.Random, budget: int, make) -> list[str]:
    docs, size = [], 0
    while size < budget:
        doc = make()
        docs.append(doc)
        size += len(doc)
    return docs


def documents(rng: random.Random, scale: float, concepts: list[Concept], split: arith.Split,
              tasks: list[code_tasks.Task]) -> list[str]:
    """Documents of every kind, each kind filling scale * its budget, shuffled together."""
    sampler = ArithSampler(split)
    makers = {
        "concept": lambda: concept_doc(rng, rng.choice(concepts)),
        "glossary": lambda: glossary_doc(rng, concepts),
        "arith": lambda: arith_doc(rng, sampler),
        "numbers": lambda: numbers_doc(rng, split.held_numbers),
        "code": lambda: code_doc(rng, tasks, sampler),
    }
    docs = [doc for kind, make in makers.items() for doc in _fill(rng, int(BUDGET[kind] * scale), make)]
    rng.shuffle(docs)
    return docs


def build(seed: int, concepts: list[Concept], split: arith.Split, train_tasks: list[code_tasks.Task]):
    """(pretrain rows, pretrain_eval rows); no eval document is also a train document."""
    train = documents(random.Random(f"corpus-{seed}"), 1.0, concepts, split, train_tasks)
    seen = set(train)
    held = [d for d in documents(random.Random(f"corpus-eval-{seed}"), EVAL_FRACTION, concepts, split, train_tasks)
            if d not in seen]
    held = list(dict.fromkeys(held))
    return [{"text": d} for d in train], [{"text": d} for d in held]
