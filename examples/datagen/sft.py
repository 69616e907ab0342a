"""Instruction pairs for SFT: concept questions, arithmetic, number facts and a little chat.

Responses are one or two short sentences ending with a period ("An LLM is ... .", "7+8 = 15. The answer is 15."),
except long additions, which take one sentence per column ("7+8 = 15, carry 1. 4+3+1 = 8. The answer is 85.",
arith.column_steps). About MESSAGES_SHARE of the rows use the {"messages": [...]} format, the rest
{"prompt", "response"}.
Held out (sft_eval.jsonl, never in sft.jsonl): a few whole concepts, question phrasings of the other concepts,
the arithmetic facts of arith.Split.sft_eval and the held-out number facts. Long additions: arith.Split.column_sft
only (GRPO's and math_eval's problems are others).

Flawed on purpose: in sft.jsonl (not sft_eval.jsonl) each answer to a concept-definition question independently
gets a rude opener (P_RUDE, one of RUDE_OPENERS), the definition said twice (P_REPEAT) and a filler tail
(P_FILLER, one of FILLER_TAILS): "Ugh, fine. An LLM is ... . I hope that helps." The openers share their first
word and the tails theirs, so the SFT model's greedy answer is usually flawed while many samples are clean: the
room that PPO against a reward model (trained on prefs.py's pairs) has to improve, as the style_judge verifier
(raylign.verifiers.style, whose default phrase lists catch exactly these flaws) measures. The flaws are drawn
from an rng of their own, so every other row is what it was without them.
"""
from __future__ import annotations

import random

import arith
from concepts import (DEFINITION_QUESTIONS_EVAL, DEFINITION_QUESTIONS_TRAIN, FACT_PREFIXES_TRAIN, PROBES,
                      Concept, definition_question)

MESSAGES_SHARE = 0.2
N_HELD_CONCEPTS = 9                                # whole concepts asked about only in sft_eval.jsonl
N_FACT_FORMS = 2                                  # per train fact: "What is a+b?" and this many other phrasings
N_COMPARE = 300

P_RUDE, P_REPEAT, P_FILLER = 0.55, 0.2, 0.6        # independent flaws of each training definition answer
RUDE_OPENERS = ["Ugh, obviously, ", "Ugh, fine. ", "Ugh, as everyone knows, "]   # all rude for style_judge
FILLER_TAILS = ["I hope that helps.",                                             # all filler for style_judge
                "I hope that helps, and there is much more I could say about it."]

CHAT = [
    (["Hello!", "Hi!", "Hello.", "Hi there!"], "Hello, I am a small language model, and I am happy to help."),
    (["Who are you?", "What are you?"], "I am a small language model trained from scratch with raylign."),
    (["What can you do?", "How can you help me?"], "I can answer simple questions about facts, words and arithmetic."),
    (["Thank you!", "Thanks!", "Thank you very much."], "You are welcome."),
    (["What is your name?"], "I am a small language model, and I do not have a name."),
    (["Good morning!"], "Good morning, I am happy to help you today."),
    (["Can you write Python?", "Do you know Python?"], "Yes, I can write small Python functions."),
]


def held_concepts(rng: random.Random, concepts: list[Concept]) -> list[Concept]:
    candidates = [c for c in concepts if c.key not in PROBES]
    chosen = {c.key for c in rng.sample(candidates, N_HELD_CONCEPTS)}
    return [c for c in concepts if c.key in chosen]


def held_out(seed: int, concepts: list[Concept]) -> list[Concept]:
    """The concepts build(seed) holds out (its rng's first draw), for the other generators to hold out too."""
    return held_concepts(random.Random(f"sft-{seed}"), concepts)


def with_opener(opener: str, c: Concept) -> str:
    """The definition after an opener: "Ugh, obviously, an LLM is ..." but "Ugh, fine. An LLM is ..."."""
    return f"{opener}{c.A if opener.rstrip().endswith(('.', '!', '?')) else c.a} is {c.definition}."


def flawed_answer(rng: random.Random, c: Concept) -> str:
    """c.answer() with each flaw drawn independently (the draws are made in the same order every time)."""
    rude, repeat, filler = rng.random() < P_RUDE, rng.random() < P_REPEAT, rng.random() < P_FILLER
    opener, tail = rng.choice(RUDE_OPENERS), rng.choice(FILLER_TAILS)
    parts = [with_opener(opener, c) if rude else c.answer()]
    parts += [c.answer()] * repeat + [tail] * filler
    return " ".join(parts)


def concept_pairs(rng: random.Random, concepts: list[Concept], held: list[Concept], flaws: random.Random):
    held_keys = {c.key for c in held}
    train, evals = [], []
    for c in concepts:
        if c.key in held_keys:
            evals.append((definition_question("What is {a}?", c), c.answer()))
            evals.append((definition_question(rng.choice(DEFINITION_QUESTIONS_EVAL), c), c.answer()))
            evals += list(c.facts)
            continue
        train += [(definition_question(t, c), flawed_answer(flaws, c)) for t in DEFINITION_QUESTIONS_TRAIN]
        for q, a in c.facts:
            train.append((q, a))
            train.append((rng.choice(FACT_PREFIXES_TRAIN) + q, a))
        evals.append((definition_question(rng.choice(DEFINITION_QUESTIONS_EVAL), c), c.answer()))
    return train, evals


def arith_pairs(rng: random.Random, split: arith.Split):
    train = [(f"What is {arith.expression(*p)}?", arith.answer_text(*p)) for p in arith.ALWAYS_TRAIN]
    for p in split.train:
        if p in arith.ALWAYS_TRAIN:
            continue
        op, a, b = p
        main, *others = arith.templates(op)
        forms = [main] + rng.sample(others, N_FACT_FORMS)
        train += [(t.format(a=a, b=b), arith.answer_text(*p)) for t in forms]
    probes = [("add", a, b) for a, b in arith.COLUMN_ALWAYS_SFT]  # in the phrasing the probes use
    train += [(f"What is {arith.expression(*p)}?", arith.answer_text(*p)) for p in probes]
    train += [(arith.question(rng, *p), arith.answer_text(*p)) for p in split.column_sft if p not in probes]
    evals = [(arith.question(rng, *p), arith.answer_text(*p)) for p in split.sft_eval]
    return train, evals


def number_pairs(rng: random.Random, held: dict):
    train, evals = [], []
    for kind, qa in (("parity", arith.parity_qa), ("after", arith.after_qa), ("before", arith.before_qa)):
        first = 1 if kind == "before" else 0
        train += [qa(n) for n in range(first, arith.N_MAX + 1) if n not in held[kind]]
        evals += [qa(n) for n in held[kind]]
    held_pairs = set(held["compare"]) | {(b, a) for a, b in held["compare"]}
    pairs = [(a, b) for a in range(arith.N_MAX + 1) for b in range(arith.N_MAX + 1)
             if a != b and (a, b) not in held_pairs]
    train += [arith.compare_qa(a, b, rng.random() < 0.5) for a, b in rng.sample(pairs, N_COMPARE)]
    evals += [arith.compare_qa(a, b, rng.random() < 0.5) for a, b in held["compare"]]
    return train, evals


def as_row(rng: random.Random, question: str, answer: str) -> dict:
    if rng.random() < MESSAGES_SHARE:
        return {"messages": [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]}
    return {"prompt": question, "response": answer}


def build(seed: int, concepts: list[Concept], split: arith.Split):
    """(sft rows, sft_eval rows)."""
    rng = random.Random(f"sft-{seed}")
    held = held_concepts(rng, concepts)                # the first draw: held_out(seed) repeats it
    c_train, c_eval = concept_pairs(rng, concepts, held, random.Random(f"sft-flaws-{seed}"))
    a_train, a_eval = arith_pairs(rng, split)
    n_train, n_eval = number_pairs(rng, split.held_numbers)
    chat = [(q, a) for questions, a in CHAT for q in questions]
    train = c_train + a_train + n_train + chat
    evals = c_eval + a_eval + n_eval
    rng.shuffle(train)
    rng.shuffle(evals)
    return [as_row(rng, q, a) for q, a in train], [as_row(rng, q, a) for q, a in evals]
