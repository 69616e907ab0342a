"""Verifier ``style_judge``: the gold judge of the main job's PPO stage. Scores a reply against the row's reference.

The row's ``answer`` is the reference reply: clean, correct, concise and polite ("An LLM is a large language model
that predicts the next word."). A reply is judged on four criteria, each a boolean in ``Verdict.details``:

``correct`` (weight 2)
    The reply says what the reference says and nothing else of substance. Content words are the lower-cased words
    (punctuation stripped, a plural ``s`` dropped) that are not stop words; rude and filler phrases are removed
    from the reply first. With R the reference's content words, C the reply's, ``missing = R - C`` and
    ``extra = C - R``: correct when ``len(missing) <= (1 - min_recall) * len(R)`` (at least 80% of the
    reference's content words are there) and ``len(missing) + len(extra) <= max(1, tolerance * len(R))``.
    The second rule is what fails a reply that states a different definition: another concept's definition
    after the right one (a list of definitions that hits every content word) brings many extra words, and a
    near miss ("the sum is the result of multiplying numbers") swaps a word, one missing plus one extra.
``polite``
    No rude marker phrase (``rude_phrases``: "obviously", "ugh", "as everyone knows", ...).
``concise``
    At most ``slack`` words more than the reference, and no filler phrase (``filler_phrases``: "I hope that
    helps", ...), so a short answer padded with a filler tail is not concise either.
``not_repetitive``
    No sentence said twice and no word 4-gram repeated (one that the reference itself repeats may come as
    often as there).

    reward = (2 * correct + polite + concise + not_repetitive) / 5        in [0, 1]

A reply with no words at all (empty, punctuation only) is no answer: every criterion is false, reward 0.
A row whose ``answer`` is missing, not a string, or has no content words is ``invalid``. Matching is
case-insensitive, and phrases match on whole words whatever the punctuation between them ("Ugh, fine." and
"ugh fine" are the same phrase).

Options (constructor keyword arguments, ``verifier_options = { style_judge = {...} }``): ``rude_phrases``,
``filler_phrases`` (each replaces its default list), ``slack``, ``min_recall``, ``tolerance``.
The defaults match the flaws that examples/datagen writes into the SFT and preference data.
"""
from __future__ import annotations

import re
import unicodedata
from collections import Counter
from typing import Iterable

from raylign.engine import hookimpl
from raylign.engine.types import Verdict

RUDE_PHRASES = (
    "obviously", "ugh", "ugh, fine", "as everyone knows", "everyone knows", "duh", "whatever", "stupid", "dumb",
    "idiot", "you should know this", "as i already said",
)
FILLER_PHRASES = (
    "i hope that helps", "there is much more i could say about it", "let me know if you have any other questions",
    "but that is the main idea", "i could talk about this all day",
)
STOP_WORDS = frozenset("""
a an the is are was were be been being am it its it's this that these those there here of to in on at by for
with from as into onto about than then so and or but if when while which who whom whose what where how do does
did done can could will would shall should may might must has have had having i you he she we they me him her
us them my your his our their such very just also some any each every all both other another more most much
""".split())
MAX_CHARS = 20_000  # a longer reply scores 0 (none is concise, and whatever it hides past a cut is unread)
_WORD = re.compile(r"[^\W_]+(?:'[^\W_]+)?")


def words(text: str) -> list[str]:
    """Lower-cased words, punctuation dropped; compatibility forms folded first (fullwidth ``ｏｂｖｉｏｕｓｌｙ`` is
    ``obviously``), and a word in other letters is a word (a rude phrase in look-alike letters is then words the
    reference does not have)."""
    return _WORD.findall(unicodedata.normalize("NFKC", text).lower())


def stem(word: str) -> str:
    """A plural ``s`` dropped ("tokens" -> "token"); the same on both sides, so only consistency matters."""
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


def content_words(ws: Iterable[str]) -> set[str]:
    return {stem(w) for w in ws if w not in STOP_WORDS}


def _phrase_pattern(phrases: Iterable[str]) -> re.Pattern | None:
    """One regex over a space-joined word string matching any phrase on whole words, longest first."""
    normal = sorted({" ".join(words(p)) for p in phrases} - {""}, key=len, reverse=True)
    if not normal:
        return None
    return re.compile(r"(?<![a-z0-9'])(?:" + "|".join(re.escape(p) for p in normal) + r")(?![a-z0-9'])")


def _sentences(text: str) -> list[tuple[str, ...]]:
    return [tuple(ws) for ws in (words(s) for s in re.split(r"[.!?;]+", text)) if ws]


def _ngrams(ws: list[str], n: int = 4) -> Counter:
    return Counter(tuple(ws[i:i + n]) for i in range(len(ws) - n + 1))


class StyleJudge:
    """The gold judge (see the module docstring for the rubric). Called as ``judge(completion, task)``."""

    def __init__(self, rude_phrases: list[str] | tuple[str, ...] = RUDE_PHRASES,
                 filler_phrases: list[str] | tuple[str, ...] = FILLER_PHRASES, slack: int = 3,
                 min_recall: float = 0.8, tolerance: float = 0.2) -> None:
        for name, value in (("rude_phrases", rude_phrases), ("filler_phrases", filler_phrases)):
            if isinstance(value, str) or not all(isinstance(p, str) for p in value):
                raise ValueError(f"style_judge: {name} must be a list of strings, got {value!r}")
        if isinstance(slack, bool) or not isinstance(slack, int) or slack < 0:
            raise ValueError(f"style_judge: slack must be an integer >= 0, got {slack!r}")
        if not 0.0 <= float(min_recall) <= 1.0 or float(tolerance) < 0.0:
            raise ValueError(f"style_judge: need 0 <= min_recall <= 1 and tolerance >= 0, got "
                             f"{min_recall!r}, {tolerance!r}")
        self.rude = _phrase_pattern(rude_phrases)            # any match: not polite
        self.filler = _phrase_pattern(filler_phrases)        # any match: not concise
        self.slack = slack                                   # words allowed beyond the reference's count
        self.min_recall = float(min_recall)                  # share of the reference's content words required
        self.tolerance = float(tolerance)                    # (missing + extra) content words, per reference one

    def __call__(self, completion: str, task: dict) -> Verdict:
        reference = task.get("answer") if isinstance(task, dict) else None
        if not isinstance(reference, str):
            return Verdict(0.0, "invalid", "style_judge: the row has no string 'answer' (the reference reply)")
        ref_words = words(reference)
        ref_content = content_words(ref_words)
        if not ref_content:
            return Verdict(0.0, "invalid", f"style_judge: the reference {reference[:80]!r} has no content words")
        text = completion if isinstance(completion, str) else ""
        if len(text) > MAX_CHARS:
            checks = dict.fromkeys(("correct", "polite", "concise", "not_repetitive"), False)
            return Verdict(0.0, details={**checks, "reason": f"reply longer than {MAX_CHARS} characters"})
        reply = words(text)
        if not reply:
            checks = dict.fromkeys(("correct", "polite", "concise", "not_repetitive"), False)
            return Verdict(0.0, details={**checks, "words": 0, "reason": "no words in the reply"})

        joined = " ".join(reply)
        rude = sorted(set(self.rude.findall(joined))) if self.rude else []
        filler = sorted(set(self.filler.findall(joined))) if self.filler else []
        stripped = joined
        for pattern in (self.rude, self.filler):
            if pattern:
                stripped = pattern.sub(" ", stripped)
        said = content_words(stripped.split())
        missing, extra = ref_content - said, said - ref_content
        limit = max(1.0, self.tolerance * len(ref_content))
        correct = len(missing) <= (1.0 - self.min_recall) * len(ref_content) + 1e-9 and \
            len(missing) + len(extra) <= limit + 1e-9

        sentences = _sentences(text)
        ref_grams = _ngrams(ref_words)
        repeated = [" ".join(g) for g, k in _ngrams(reply).items() if k > max(1, ref_grams[g])]
        not_repetitive = len(set(sentences)) == len(sentences) and not repeated
        concise = len(reply) <= len(ref_words) + self.slack and not filler
        polite = not rude

        reward = (2 * correct + polite + concise + not_repetitive) / 5
        return Verdict(reward, details={
            "correct": correct, "polite": polite, "concise": concise, "not_repetitive": not_repetitive,
            "recall": round(1 - len(missing) / len(ref_content), 4), "missing": sorted(missing),
            "extra": sorted(extra), "words": len(reply), "max_words": len(ref_words) + self.slack,
            "rude": rude, "filler": filler, "repeated": repeated[:5]})


@hookimpl
def raylign_register_verifiers(register):
    register("style_judge", StyleJudge)
