"""The concept table and the ways its facts are stated (corpus) and asked about (SFT)."""
from __future__ import annotations

import random
from dataclasses import dataclass

from concepts_tech import TECH
from concepts_world import ANIMALS, COLORS, COUNTRIES, MATH, NATURE


@dataclass(frozen=True)
class Concept:
    key: str                                  # unique id, e.g. "llm"
    name: str                                 # bare name: "LLM", "reward model", "France"
    a: str                                    # with its article, sentence-internal: "an LLM", "the sun", "Ray"
    definition: str                           # completes "<A> is ...", without the final period
    facts: tuple[tuple[str, str], ...]        # (question, one-sentence answer)
    category: str                             # tech, math, animal, country, color, nature

    @property
    def A(self) -> str:                       # article form at the start of a sentence
        return cap(self.a)

    def answer(self) -> str:                  # the SFT answer to any "what is" question
        return f"{self.A} is {self.definition}."


def cap(s: str) -> str:
    return s[:1].upper() + s[1:]


def load() -> list[Concept]:
    tables = [("tech", TECH), ("math", MATH), ("animal", ANIMALS), ("country", COUNTRIES), ("color", COLORS),
              ("nature", NATURE)]
    out = []
    for category, rows in tables:
        for name, a, definition, facts in rows:
            key = name.lower().replace(" ", "_")
            out.append(Concept(key, name, a, definition, tuple(facts), category))
    keys = [c.key for c in out]
    assert len(keys) == len(set(keys)), "duplicate concept names"
    return out


# Concepts whose questions are always in SFT training (the probes every example asks).
PROBES = ("llm", "token", "transformer", "gpu", "ray", "python", "reinforcement_learning", "reward_model", "grpo",
          "sft", "pretraining", "cat", "dog", "france", "blue", "sun", "water")

# --- corpus: declarative sentences -------------------------------------------------------------------------
# (template, weight); "{A} is {d}." dominates so that "An LLM is" continues with the definition.
DEFINITION_SENTENCES = [
    ("{A} is {d}.", 10),
    ("The term {name} refers to {d}.", 2),
    ("{A}, simply put, is {d}.", 1),
    ("In simple words, {a} is {d}.", 2),
    ("People often say that {a} is {d}.", 1),
    ("Here is a simple fact: {a} is {d}.", 1),
    ("It is useful to know that {a} is {d}.", 1),
]

CATEGORY_SENTENCES = {
    "tech": "The word {name} comes up often in computing and machine learning.",
    "math": "The word {name} is used in mathematics.",
    "animal": "The {name} is an animal.",
    "country": "{name} is one of the countries of the world.",
    "color": "{A} is one of the colors that people can see.",
    "nature": "{A} is part of nature.",
}

CATEGORY_TITLES = {
    "tech": ["Some words from machine learning.", "A short glossary of computing.", "Terms used with LLMs."],
    "math": ["Some words from mathematics.", "A short glossary of math words."],
    "animal": ["Some animals.", "Facts about animals.", "A short list of animals."],
    "country": ["Some countries of the world.", "Facts about countries."],
    "color": ["Some colors.", "Facts about colors."],
    "nature": ["Some facts about nature.", "The world around us."],
}


def weighted(rng: random.Random, options: list[tuple[str, int]]) -> str:
    return rng.choices([t for t, _ in options], weights=[w for _, w in options])[0]


def definition_sentence(rng: random.Random, c: Concept, plain: bool = False) -> str:
    template = DEFINITION_SENTENCES[0][0] if plain else weighted(rng, DEFINITION_SENTENCES)
    return template.format(A=c.A, a=c.a, name=c.name, d=c.definition)


def category_sentence(c: Concept) -> str:
    return CATEGORY_SENTENCES[c.category].format(A=c.A, a=c.a, name=c.name)


# --- SFT: questions -------------------------------------------------------------------------------------------
DEFINITION_QUESTIONS_TRAIN = [
    "What is {a}?",
    "What's {a}?",
    "Tell me what {a} is.",
    "Explain what {a} is.",
    "Describe {a} in one sentence.",
    "Define the term {name}.",
    "What is meant by {a}?",
    "I would like to know what {a} is.",
    "Briefly, what is {a}?",
    "Give a short definition of {name}.",
]
DEFINITION_QUESTIONS_EVAL = [          # never used in training
    "Could you tell me what {a} is?",
    "In one sentence, what is {a}?",
    "Please explain what {a} is.",
    "What exactly is {a}?",
    "Do you know what {a} is?",
]
FACT_PREFIXES_TRAIN = ["Quick question: ", "Please answer: ", "I wonder: "]


def definition_question(template: str, c: Concept) -> str:
    return template.format(a=c.a, name=c.name)
