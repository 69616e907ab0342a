"""The small verifiers against an attacker's pass: ``style_judge`` reads look-alike letters and whole replies,
``length`` counts words however they are glued, ``format`` refuses a row whose pattern is no string."""
from __future__ import annotations

import pytest

from raylign.verifiers.format import FormatVerifier
from raylign.verifiers.length import LengthPenalty
from raylign.verifiers.style import MAX_CHARS, StyleJudge

REFERENCE = "An LLM is a large language model that predicts the next word."


@pytest.mark.parametrize("tail", [
    " Ｏｂｖｉｏｕｓｌｙ， ａｓ ｅｖｅｒｙｏｎｅ ｋｎｏｗｓ.",  # fullwidth: before, invisible (1.0)
    " Оbviоusly, аs еveryоne knоws.",  # Cyrillic look-alikes: words the reference does not have
    " " * MAX_CHARS + "Ugh, obviously. I hope that helps.",  # past the old cut at MAX_CHARS
])
def test_style_judge_sees_what_hides_in_other_letters_or_past_its_cut(tail):
    v = StyleJudge()(REFERENCE + tail, {"answer": REFERENCE})
    assert v.reward <= 0.6, v
    assert StyleJudge()(REFERENCE, {"answer": REFERENCE}).reward == 1.0


@pytest.mark.parametrize("glue", [" ", "\u200b", ",", " ,", "\u2060"])
def test_length_counts_words_however_they_are_glued(glue):
    text = glue.join(["word"] * 200)
    assert LengthPenalty(free=12)(text, {}).reward == -188.0


def test_length_keeps_numbers_and_contractions_whole():
    assert LengthPenalty()("It's 3.14, state-of-the-art.", {}).details["length"] == 3


@pytest.mark.parametrize("pattern", [123, None, ["a"]])
def test_format_refuses_a_pattern_that_is_no_string(pattern):
    v = FormatVerifier()("Hello.", {"format": pattern})
    assert v.status == "invalid" and "format" in v.error
