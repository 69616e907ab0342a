"""The ``style_judge`` verifier (the gold judge): a table of replies with hand-computed rewards.

Reference REF: 12 words, so a concise reply has at most 12 + 3 = 15; content words (stop words gone, plural s
dropped) {llm, large, language, model, predict, next, word}: 7, so at most 1 may be missing and at most 1
missing-plus-extra is allowed (max(1, 0.2 * 7)). reward = (2 * correct + polite + concise + not_repetitive) / 5.
"""
from __future__ import annotations

import pytest

from raylign.engine.plugins import build_registry
from raylign.verifiers.style import FILLER_PHRASES, RUDE_PHRASES, StyleJudge

REF = "An LLM is a large language model that predicts the next word."
CAT = "A cat is a small furry animal that many people keep as a pet."
LOWER = REF[0].lower() + REF[1:]
C, P, K, N = "correct", "polite", "concise", "not_repetitive"

CASES = [
    # (case, reply, reward, criteria that fail)
    ("clean", REF, 1.0, set()),
    ("no final period, extra spaces", "  An LLM is a large language model that predicts the next word ", 1.0, set()),
    ("upper case", REF.upper(), 1.0, set()),
    ("rude opener", "Obviously, " + LOWER, 0.8, {P}),
    ("rude opener in capitals", "OBVIOUSLY, " + LOWER, 0.8, {P}),
    ("ugh, fine. (14 words)", "Ugh, fine. " + REF, 0.8, {P}),
    ("long rude opener: 16 words", "Ugh, as everyone knows, " + LOWER, 0.6, {P, K}),
    ("rude word at the end", REF + " Duh.", 0.8, {P}),
    ("filler tail", REF + " I hope that helps.", 0.8, {K}),
    ("filler tail, long", REF + " I hope that helps, and there is much more I could say about it.", 0.8, {K}),
    ("rude + filler", "Ugh, obviously, " + LOWER + " I hope that helps.", 0.6, {P, K}),
    ("repeated reference", REF + " " + REF, 0.6, {K, N}),
    ("repeated 4-gram, 16 words", "An LLM is a large language model, a large language model that predicts the next "
     "word.", 0.6, {K, N}),
    ("rude + repeated + filler", "Ugh, fine. " + REF + " " + REF + " I hope that helps.", 0.4, {P, K, N}),
    ("wrong definition", "An LLM is a small furry animal that many people keep as a pet.", 0.6, {C}),
    ("wrong + rude + repeated + filler", "Duh. An LLM is a pet. An LLM is a pet. I hope that helps.", 0.0,
     {C, P, K, N}),
    ("truncated", "An LLM is a large language model.", 0.6, {C}),
    ("truncated + filler", "An LLM is a large language model. I hope that helps.", 0.4, {C, K}),
    ("one content word dropped", "An LLM is a large language model that predicts words.", 1.0, set()),
    ("one content word swapped", "An LLM is a large language model that predicts the next token.", 0.6, {C}),
    ("reference plus one junk word", REF + " Banana.", 1.0, set()),
    ("reference plus two junk words", REF + " Banana kiwi.", 0.6, {C}),
    ("reference plus another definition", REF + " " + CAT, 0.4, {C, K}),
    ("empty", "", 0.0, {C, P, K, N}),
    ("white space", " \n\t ", 0.0, {C, P, K, N}),
    ("punctuation only", "?!... ,;", 0.0, {C, P, K, N}),
    ("reference 200 times", " ".join([REF] * 200), 0.6, {K, N}),
]


@pytest.mark.parametrize("case, reply, reward, failing", CASES, ids=[c[0] for c in CASES])
def test_rubric(case, reply, reward, failing):
    verdict = StyleJudge()(reply, {"answer": REF})
    assert verdict.status == "ok" and verdict.error is None
    assert verdict.reward == pytest.approx(reward)
    assert {k for k in (C, P, K, N) if not verdict.details[k]} == failing, verdict.details
    assert all(isinstance(verdict.details[k], bool) for k in (C, P, K, N))


@pytest.mark.parametrize("task", [{}, {"answer": None}, {"answer": 42}, {"answer": ["An LLM."]}, {"answer": ""},
                                  {"answer": "It is the."}, {"answer": "..."}])
def test_a_row_without_a_usable_reference_is_invalid(task):
    verdict = StyleJudge()(REF, task)
    assert verdict.status == "invalid" and verdict.reward == 0.0 and verdict.error


def test_a_non_string_completion_is_no_answer():
    assert StyleJudge()(None, {"answer": REF}).reward == 0.0


def test_a_4gram_the_reference_repeats_may_come_as_often():
    ref = "A pair is one of two, and a twin is one of two."
    judge = StyleJudge()
    assert judge(ref, {"answer": ref}).reward == 1.0
    assert not judge(ref + " A pair is one of two.", {"answer": ref}).details[N]


@pytest.mark.parametrize("options, reply, reward, failing", [
    ({"rude_phrases": ["banana"]}, "Obviously, " + LOWER, 1.0, set()),        # "obviously" now one extra word
    ({"rude_phrases": ["banana"]}, REF + " Banana.", 0.8, {P}),
    ({"rude_phrases": ["banana"], "slack": 0}, "Obviously, " + LOWER, 0.8, {K}),
    ({"slack": 0}, REF, 1.0, set()),
    ({"slack": 10, "filler_phrases": []}, REF + " Thanks for asking.", 0.6, {C}),  # thanks, asking: 2 extra
    ({"slack": 10, "filler_phrases": [], "tolerance": 0.3}, REF + " Thanks for asking.", 1.0, set()),
    ({"filler_phrases": ["thanks for asking"]}, REF + " Thanks for asking.", 0.8, {K}),
    ({"slack": 10}, REF + " I hope that helps.", 0.8, {K}),                  # a filler phrase is never concise
    ({"min_recall": 0.5, "tolerance": 0.5}, "An LLM is a large language model.", 1.0, set()),
    ({"tolerance": 0.0}, "An LLM is a large language model that predicts words.", 1.0, set()),  # at least 1
])
def test_options_change_the_verdict(options, reply, reward, failing):
    verdict = StyleJudge(**options)(reply, {"answer": REF})
    assert verdict.reward == pytest.approx(reward), verdict.details
    assert {k for k in (C, P, K, N) if not verdict.details[k]} == failing


@pytest.mark.parametrize("options", [{"slack": -1}, {"slack": 1.5}, {"slack": True}, {"rude_phrases": "ugh"},
                                     {"filler_phrases": [1]}, {"min_recall": 1.5}, {"tolerance": -0.1}])
def test_bad_options_fail_at_construction(options):
    with pytest.raises(ValueError, match="style_judge"):
        StyleJudge(**options)


def test_no_default_phrase_is_in_a_clean_answer_or_the_other_list():
    judge = StyleJudge()
    for phrase in RUDE_PHRASES:
        verdict = judge(f"{phrase.capitalize()}, {LOWER}", {"answer": REF})
        assert not verdict.details[P] and verdict.details[C], phrase
    for phrase in FILLER_PHRASES:
        verdict = judge(f"{REF} {phrase.capitalize()}.", {"answer": REF})
        assert verdict.details[P] and not verdict.details[K] and verdict.details[C], phrase


def test_reward_is_in_unit_interval_and_details_explain_it():
    verdict = StyleJudge()("Ugh, an LLM is a large language model that predicts the next token.", {"answer": REF})
    d = verdict.details
    assert d["missing"] == ["word"] and d["extra"] == ["token"] and d["rude"] == ["ugh"] and d["words"] == 13
    assert d["max_words"] == 15 and verdict.reward == pytest.approx(0.4)


def test_registered_as_style_judge():
    reg = build_registry()
    assert reg.get("verifiers", "style_judge") is StyleJudge
