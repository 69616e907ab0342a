"""The pretraining corpus: a templated mini-encyclopedia, arithmetic statements and a little Python.

No chat-formatted questions and answers appear here (SFT teaches the answer format); the corpus states the same
facts declaratively. Held-out arithmetic and number facts (arith.Split) and eval code tasks are never used.
"""
from __future__ import annotations

import random

import arith
import code_tasks
from concepts import (CATEGORY_TITLES, Concept, category_sentence, definition_sentence)

# characters of each document kind in pretrain.jsonl (about 1.6 MB in all)
BUDGET = {"concept": 760_000, "glossary": 170_000, "arith": 430_000, "numbers": 90_000, "code": 150_000}
EVAL_FRACTION = 0.04                       # pretrain_eval.jsonl gets this share of each budget
OP_WEIGHTS = {"add": 50, "sub": 35, "mul": 15}


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
    """Train-split problems, op-weighted."""

    def __init__(self, split: arith.Split):
        self.by_op = {op: [p for p in split.train if p[0] == op] for op in OP_WEIGHTS}
        self.held = split.held

    def sample(self, rng: random.Random) -> tuple[str, int, int]:
        op = rng.choices(list(OP_WEIGHTS), weights=list(OP_WEIGHTS.values()))[0]
        return rng.choice(self.by_op[op])


def arith_doc(rng: random.Random, sampler: ArithSampler) -> str:
    """Either a mix of random statements or a small table (one op, one first number, consecutive second)."""
    if rng.random() < 0.6:
        lines = [arith.statement(rng, *sampler.sample(rng)) for _ in range(rng.randint(12, 25))]
        return "\n".join(lines)
    op, a, _ = sampler.sample(rng)
    top = 12 if op == "mul" else (a if op == "sub" else 50)
    start = rng.randint(0, max(0, top - 9))
    form = rng.choice(arith.STATEMENTS[op])
    lines = [form.format(a=a, b=b, c=arith.value(op, a, b)) for b in range(start, min(top, start + 9) + 1)
             if (op, a, b) not in sampler.held]
    return "\n".join(lines) if len(lines) >= 3 else arith_doc(rng, sampler)


def numbers_doc(rng: random.Random, held: dict) -> str:
    return " ".join(arith.number_statement(rng, held) for _ in range(rng.randint(8, 16)))


def code_doc(rng: random.Random, tasks: list[code_tasks.Task], sampler: ArithSampler) -> str:
    parts = [code_tasks.corpus_text(rng, t) for t in rng.sample(tasks, rng.randint(2, 4))]
    if rng.random() < 0.4:
        op, a, b = sampler.sample(rng)
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
