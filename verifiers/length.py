"""Verifier ``length``: a length penalty to add to a stage's reward as a weighted term.

    rewards = [{ name = "reward_model", model = "reward_model" }, { name = "length", weight = 0.05, options = { free = 12 } }]

reward = -max(0, n - free) / scale, where n counts the completion's words (``unit = "words"``) or characters
(``unit = "chars"``): 0 up to ``free`` units, then more negative with every unit past it. The weight scales it.
"""
from __future__ import annotations

import re

from raylign.engine import hookimpl
from raylign.engine.types import Verdict

UNITS = ("words", "chars")
# a word: letters or digits in any script, joined by an apostrophe, a hyphen or a decimal point; anything else
# separates words (commas and zero-width spaces too: "a,b,c" and "a\u200bb" are not one word)
_WORD = re.compile(r"[^\W_]+(?:['’.-][^\W_]+)*")


def count_words(text: str) -> int:
    """The words of ``text`` as the penalty counts them (``_WORD``)."""
    return len(_WORD.findall(text))


class LengthPenalty:
    def __init__(self, unit: str = "words", free: int = 0, scale: float = 1.0) -> None:
        if unit not in UNITS:
            raise ValueError(f"length: unit must be one of {UNITS}, got {unit!r}")
        if scale <= 0:
            raise ValueError(f"length: scale must be > 0, got {scale!r}")
        self.unit, self.free, self.scale = unit, int(free), float(scale)

    def __call__(self, completion: str, task: dict) -> Verdict:
        n = count_words(completion) if self.unit == "words" else len(completion)
        return Verdict(reward=-max(0, n - self.free) / self.scale, details={"length": n, "unit": self.unit})


@hookimpl
def raylign_register_verifiers(register):
    register("length", LengthPenalty)
