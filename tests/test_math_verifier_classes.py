"""The ``math`` verifier, class by class (issue 12): equivalences it must see and rewards it must refuse.

Each class is a table of neighbours, with the negative cases that must stay unequal beside the positive ones.
``_score(candidate, reference)`` boxes the candidate once, as a model would.
"""
from __future__ import annotations

import time

import pytest

from raylign.verifiers.math.extract import all_boxed, final_boxes
from raylign.verifiers.math.verifier import MathVerifier

VERIFIER = MathVerifier()


def _score(candidate: str, reference):
    return VERIFIER("So the answer is $\\boxed{" + candidate + "}$.", {"answer": reference})


def _reward(candidate: str, reference) -> float:
    verdict = _score(candidate, reference)
    assert verdict.status == "ok", (candidate, reference, verdict)
    return verdict.reward


# ------------------------------------------------------------------------------------------- hedging
@pytest.mark.parametrize("completion,answer,reward", [
    # several different boxed answers: refused, whichever is right
    ("It is \\boxed{3} or \\boxed{5}.", "5", 0.0),
    ("It is \\boxed{3} or \\boxed{5}.", "3", 0.0),
    ("\\boxed{3}\n\nAlternatively, \\boxed{5}", "5", 0.0),
    ("Candidates: $\\boxed{1}$, $\\boxed{2}$, $\\boxed{3}$, $\\boxed{4}$", "4", 0.0),
    ("\\fbox{3} and \\boxed{5}", "5", 0.0),
    ("\\boxed 3 or \\boxed 5", "5", 0.0),
    ("\\boxed{\\frac{1}{2}} or maybe \\boxed{\\frac{1}{3}}", "\\frac13", 0.0),
    ("\\boxed{x = 2} or \\boxed{x = -2}", "-2", 0.0),
    ("\\boxed{" + "9" * 2000 + "} and then \\boxed{7}", "7", 0.0),  # an oversized box is an answer too
    # the same answer boxed twice, in any form, is one answer
    ("\\boxed{5}. Checking: 2+3=5, so \\boxed{5}", "5", 1.0),
    ("\\boxed{\\frac12}, that is \\boxed{0.5}", "1/2", 1.0),
    ("\\boxed{\\boxed{4}}", "4", 1.0),
    ("We get \\boxed{x=3}, i.e. \\boxed{3}", "3", 1.0),
    ("\\boxed{}\\boxed{6}", "6", 1.0),  # an empty box is no answer
    # a box taken back before the next one is no longer an answer
    ("First I get \\boxed{3}, but that is wrong. Correct: \\boxed{7}", "7", 1.0),
    ("\\boxed{3}. Wait, I made a mistake: the answer is \\boxed{5}", "5", 1.0),
    ("\\boxed{3}. Wait, I made a mistake: the answer is \\boxed{5}", "3", 0.0),
    # a wrong single answer stays wrong
    ("It is \\boxed{3}.", "5", 0.0),
])
def test_hedged_boxes_do_not_score(completion, answer, reward):
    verdict = VERIFIER(completion, {"answer": answer})
    assert verdict.status == "ok"
    assert verdict.reward == reward, verdict.details
    if reward == 0.0 and "boxed" in verdict.details:
        assert "hedging" in verdict.details["reason"]


def test_hedging_says_why():
    verdict = VERIFIER("\\boxed{3} or \\boxed{5}", {"answer": "5"})
    assert (verdict.reward, verdict.status, verdict.error) == (0.0, "ok", None)
    assert verdict.details["reason"] == "boxes several different answers (hedging)"
    assert verdict.details["boxed"] == ["3", "5"]


def test_hedging_is_judged_whatever_the_extraction_order():
    for order in (("answer_is", "boxed"), ("boxed", "answer_is", "last_number"), ("last_number", "boxed")):
        verifier = MathVerifier(extract=order)
        assert verifier("The answer is \\boxed{3} or \\boxed{5}", {"answer": "5"}).reward == 0.0
    # one box and a different last number is not hedging between boxes: the configured order decides
    assert MathVerifier(extract=("last_number",))("\\boxed{3} but after checking, 5", {"answer": "5"}).reward == 1.0


def test_many_identical_boxes_are_one_answer():
    assert VERIFIER("\\boxed{7} " * 500, {"answer": "7"}).reward == 1.0


def test_all_boxed_is_linear_on_nested_boxes():
    text = "\\boxed{" * 60_000 + "1" + "}" * 60_000 + " \\boxed{2}" * 30_000
    start = time.process_time()
    boxes = all_boxed(text, 1000)
    assert time.process_time() - start < 1.0
    assert [c for _, _, c in boxes[:2]] == ["1", "2"] and len(boxes) == 30_001
    verdict = VERIFIER(text[:1_000_000], {"answer": "2"})
    assert verdict.status in ("ok", "invalid") and verdict.reward == 0.0


def test_final_boxes_drop_retracted_ones():
    assert final_boxes("\\boxed{1} is wrong, \\boxed{2} or \\boxed{3}", 100) == ["2", "3"]
    assert final_boxes("\\boxed{1} \\boxed{unclosed", 100) == ["1"]


# ------------------------------------------------------------------------------------------- TeX's \over
@pytest.mark.parametrize("candidate,reference,reward", [
    ("{1 \\over 2}", "\\frac12", 1.0),
    ("1\\over 2", "0.5", 1.0),
    ("3\\over4", "\\frac{3}{4}", 1.0),
    ("{3\\over4}", "0.75", 1.0),
    ("{{1 \\over 2} \\over 3}", "\\frac{1}{6}", 1.0),
    ("{1 \\over {2 \\over 3}}", "\\frac32", 1.0),
    ("{a+1 \\over b}", "\\frac{a+1}{b}", 1.0),
    ("{\\sqrt{3} \\over 2}", "\\frac{\\sqrt3}{2}", 1.0),
    ("-{1 \\over 2}", "-\\frac12", 1.0),
    ("2^{1 \\over 2}", "\\sqrt2", 1.0),
    ("\\left( 1 \\over 2 \\right)", "1/2", 1.0),
    ("x = {1 \\over 3}", "\\frac13", 1.0),
    ("\\{ {1 \\over 2}, 3 \\}", "\\{3, \\frac12\\}", 1.0),
    ("({1 \\over 2}, {3 \\over 4})", "(\\frac12, \\frac34)", 1.0),
    ("{n \\choose 2}", "\\binom{n}{2}", 1.0),
    ("{5 \\choose 2}", "10", 1.0),
    ("\\frac12", "{1 \\over 2}", 1.0),  # the reference may be written with \over too
    # neighbours that must stay unequal
    ("{1 \\over 3}", "\\frac12", 0.0),
    ("{2 \\over 1}", "\\frac12", 0.0),
    ("{a+1 \\over b}", "a + \\frac{1}{b}", 0.0),
    ("{{1 \\over 2} \\over 3}", "\\frac{3}{2}", 0.0),
    ("0.\\overline{3}", "\\frac13", 1.0),  # \overline is not \over
    ("0.\\overline{3}", "\\frac{0}{3}", 0.0),
])
def test_tex_over_fractions(candidate, reference, reward):
    assert _reward(candidate, reference) == reward


def test_over_inside_a_box_is_extracted_whole():
    verdict = VERIFIER("Hence $\\boxed{{1 \\over 2}}$", {"answer": "0.5"})
    assert verdict.reward == 1.0 and verdict.details["extracted"] == "{1 \\over 2}"
    assert VERIFIER("Hence $\\boxed{1 \\over 2}$", {"answer": "0.5"}).reward == 1.0


# ------------------------------------------------------------------------------------------- units
@pytest.mark.parametrize("candidate,reference,reward", [
    ("5\\text{ cm}", "5", 1.0),
    ("5 \\text{cm}", "5", 1.0),
    ("5\\,\\text{cm}", "5", 1.0),
    ("5\\mbox{ cm}", "5", 1.0),
    ("5\\text{ m}", "5", 1.0),
    ("5\\,\\mathrm{m}", "5", 1.0),
    ("60 \\mathrm{km/h}", "60", 1.0),
    ("60\\text{ km/h}", "60", 1.0),
    ("60\\ \\text{km}/\\text{h}", "60", 1.0),
    ("60 \\text{ km per hour}", "60", 1.0),
    ("9.8 \\text{ m/s}^2", "9.8", 1.0),
    ("9.8\\,\\mathrm{m\\,s^{-2}}", "9.8", 1.0),
    ("12\\text{ cm}^2", "12", 1.0),
    ("12 \\text{ square feet}", "12", 1.0),
    ("7\\,\\text{kg}\\cdot\\text{m}/\\text{s}^2", "7", 1.0),
    ("30^\\circ", "30", 1.0),
    ("30^{\\circ}", "30", 1.0),
    ("30 degrees", "30", 1.0),
    ("30\\text{ degrees}", "30", 1.0),
    ("30°", "30", 1.0),
    ("\\frac{1}{2}\\text{ cm}", "0.5", 1.0),
    ("2\\pi\\text{ cm}", "2\\pi", 1.0),
    ("\\sqrt{2}\\,\\mathrm{m}", "\\sqrt2", 1.0),
    ("5 cm", "5", 1.0),
    ("60 mph", "60", 1.0),
    ("\\$18.90", "18.9", 1.0),
    ("12 \\text{ dollars}", "\\$12", 1.0),
    ("(3\\text{ cm}, 4\\text{ cm})", "(3, 4)", 1.0),
    ("\\SI{5}{\\centi\\metre}", "5", 1.0),
    ("\\mathrm{5\\,cm}", "5", 1.0),
    ("5~\\text{cm}", "5", 1.0),
    ("x = 5\\text{ cm}", "5", 1.0),
    # the unit may be on the reference's side
    ("5", "5\\text{ cm}", 1.0),
    ("60", "60 \\mathrm{km/h}", 1.0),
    ("30", "30^\\circ", 1.0),
    ("5 \\text{ centimeters}", "5\\text{ cm}", 1.0),
    ("60 \\text{ km/h}", "60 \\text{ kilometers per hour}", 1.0),
    ("60\\,\\mathrm{km\\,h^{-1}}", "60 \\text{ km/h}", 1.0),  # the same unit, written with a negative power
    ("9.8\\,\\mathrm{m\\,s^{-2}}", "9.8 \\text{ m/s}^2", 1.0),
    ("3 \\text{ meters per second}", "3\\text{ m/s}", 1.0),
    ("5 \\text{ square centimeters}", "5\\text{ cm}^2", 1.0),
    ("5\\text{ cm}", "5\\text{ cm}^2", 0.0),
    ("60 \\text{ mph}", "60 \\text{ km/h}", 0.0),
    # a unit never makes a wrong number right
    ("6\\text{ cm}", "5", 0.0),
    ("50 \\mathrm{km/h}", "60", 0.0),
    ("31^\\circ", "30", 0.0),
    ("6", "5\\text{ cm}", 0.0),
    ("5\\text{ cm}", "5\\text{ m}", 0.0),  # both units named, and they differ
    ("5 \\text{ cents}", "\\$5", 0.0),
    ("30 \\text{ radians}", "30^\\circ", 0.0),
    ("5 \\text{ million}", "5", 0.0),  # a scale word is not a unit
    ("5 \\text{ million}", "5000000", 1.0),
    ("3 \\text{ thousand}", "3000", 1.0),
    # words that are not units keep their meaning
    ("1 \\text{ and } 2", "1", 0.0),
    ("1 \\text{ and } 2", "2, 1", 1.0),
    ("3 \\text{ or } 4", "3", 0.0),
    ("x \\text{ for } x > 0", "x", 0.0),
    ("2ab", "2", 0.0),
    ("3s", "3", 0.0),  # 3 times s, not 3 seconds
    ("4\\pi r h", "4\\pi r", 0.0),
    ("2\\mathrm{e}", "2", 0.0),
    ("3\\mathrm{i}", "3", 0.0),
    # a unit on a term of a sum is not dropped: 5 m + 2 cm is not 7
    ("5\\text{ m} + 2\\text{ cm}", "7", 0.0),
    ("5\\text{ cm} + 2", "7", 0.0),
    ("5 + 2\\text{ cm}", "7", 0.0),
    ("5\\text{ m} - 2", "3", 0.0),
    ("5 m + 2 cm", "7", 0.0),
    ("5 + 2 cm", "7", 0.0),
    ("5\\text{ cm}^2 + 2\\text{ cm}", "7", 0.0),
    ("-5\\text{ cm}", "-5", 1.0),  # a sign is not a sum
    ("x = -5\\text{ cm}", "-5", 1.0),
    ("1.2 \\times 10^{-3}\\text{ m}", "0.0012", 1.0),
    ("2\\text{ m} \\times 3\\text{ m}", "6", 1.0),
    ("(-3\\text{ cm}, 4\\text{ cm})", "(-3, 4)", 1.0),
    ("3 \\text{ million} + 2", "3000002", 1.0),  # scale words still scale
])
def test_units_beside_a_value(candidate, reference, reward):
    assert _reward(candidate, reference) == reward


def test_different_units_say_why():
    verdict = _score("5\\text{ cm}", "5\\text{ m}")
    assert (verdict.reward, verdict.details["reason"]) == (0.0, "different units")
    assert verdict.details["units"] == {"answer": ["m"], "extracted": ["cm"]}


# ------------------------------------------------------------------------------------------- trigonometry
@pytest.mark.parametrize("candidate,reference,reward", [
    # double angle
    ("2\\sin x\\cos x", "\\sin 2x", 1.0),
    ("\\sin 2x", "2\\sin x \\cos x", 1.0),
    ("2\\sin(x)\\cos(x)", "\\sin(2x)", 1.0),
    ("\\cos^2 x - \\sin^2 x", "\\cos 2x", 1.0),
    ("2\\cos^2 x - 1", "\\cos(2x)", 1.0),
    ("1 - 2\\sin^2 x", "\\cos 2x", 1.0),
    ("2\\sin\\theta\\cos\\theta", "\\sin 2\\theta", 1.0),
    ("\\frac{2\\tan x}{1-\\tan^2 x}", "\\tan 2x", 1.0),
    # Pythagorean forms
    ("1-\\sin^2 x", "\\cos^2 x", 1.0),
    ("\\sec^2 x - 1", "\\tan^2 x", 1.0),
    ("\\csc^2 x - 1", "\\cot^2 x", 1.0),
    ("\\sin^2 x + \\cos^2 x", "1", 1.0),
    ("\\frac{1}{\\cos^2 x}", "1 + \\tan^2 x", 1.0),
    ("\\frac{\\sin x}{\\cos x}", "\\tan x", 1.0),
    ("\\sin(x + \\frac{\\pi}{2})", "\\cos x", 1.0),
    ("\\sin^{-1} x", "\\arcsin x", 1.0),
    ("\\sin 30^\\circ", "\\frac12", 1.0),
    ("\\cos 60^{\\circ}", "0.5", 1.0),
    ("\\sin x\\, e^x", "e^x \\sin x", 1.0),  # a bare argument is one factor unless a coefficient leads
    ("\\cos 2\\pi x", "\\cos(2\\pi x)", 1.0),
    ("\\sin^2 2x", "(\\sin(2x))^2", 1.0),
    # wrong identities stay wrong
    ("\\sin 2x", "2\\sin x", 0.0),
    ("2\\sin x", "\\sin 2x", 0.0),
    ("\\sin^2 x", "\\sin x^2", 0.0),
    ("1+\\sin^2 x", "\\cos^2 x", 0.0),
    ("\\sec^2 x + 1", "\\tan^2 x", 0.0),
    ("\\cos^2 x + \\sin^2 x", "\\cos 2x", 0.0),
    ("\\sin x \\cos x", "\\sin 2x", 0.0),
    ("\\sin^{-1} x", "\\csc x", 0.0),
    ("\\sin 30", "\\frac12", 0.0),  # 30 radians
])
def test_trigonometric_identities(candidate, reference, reward):
    assert _reward(candidate, reference) == reward


def test_agreeing_at_the_fixed_points_is_not_enough():
    """An expression built to agree with the reference at the fixed sample points fails at the random ones."""
    fake = "x + (x - 0.8326)(x + 1.2649)(x - 1.9173)(x - 0.3711)(x + 0.6137)(x - 2.4819)(x + 2.0931)(x - 1.3457)"
    for _ in range(5):
        assert _reward(fake, "x") == 0.0


# ------------------------------------------------------------------------------------------- repeated elements
@pytest.mark.parametrize("candidate,reference,reward", [
    # a set with repeats is the set without them
    ("\\{1, 1, 2\\}", "\\{1, 2\\}", 1.0),
    ("\\{2, 1, 2\\}", "\\{1, 2\\}", 1.0),
    ("\\{1, 2\\}", "\\{1, 1, 2\\}", 1.0),
    ("\\{\\frac12, 0.5, 3\\}", "\\{3, \\frac{1}{2}\\}", 1.0),
    ("\\{a, a, b\\}", "\\{b, a\\}", 1.0),
    ("\\{(1,2), (1,2), (3,4)\\}", "\\{(3,4), (1,2)\\}", 1.0),
    ("\\{3, 3\\}", "3", 1.0),
    ("1, 1, 2", "\\{1, 2\\}", 1.0),  # the reference asks for a set
    ("\\{1, 1, 2\\}", "\\{1, 2, 3\\}", 0.0),
    ("\\{1, 2, 3\\}", "\\{1, 1, 2\\}", 0.0),
    ("\\{1, 1\\}", "\\{1, 2\\}", 0.0),
    # a bare list (roots with multiplicity) is a multiset: repeats count
    ("1, 1, 2", "1, 2", 0.0),
    ("1, 2", "1, 1, 2", 0.0),
    ("1, 2, 2", "1, 1, 2", 0.0),
    ("2, 1, 1", "1, 1, 2", 1.0),
    ("1, 2, 1", "1, 1, 2", 1.0),
    ("x = 3, x = 3, x = -1", "3, -1, 3", 1.0),
    ("\\frac12, 0.5", "\\frac12, \\frac12", 1.0),
    ("\\frac12, 0.5", "\\frac12", 0.0),
    ("\\{1, 2\\}", "1, 1, 2", 0.0),  # a multiset reference is not met by the set without the repeat
    ("\\{1, 1, 2\\}", "1, 1, 2", 1.0),
    # tuples are ordered, repeats included
    ("(1, 1, 2)", "(1, 2)", 0.0),
    ("(1, 2, 1)", "(1, 1, 2)", 0.0),
    ("(1, 1, 2)", "(1, 1, 2)", 1.0),
])
def test_sets_with_repeated_elements_and_multisets(candidate, reference, reward):
    assert _reward(candidate, reference) == reward


# ------------------------------------------------------------------------------------------- set algebra
@pytest.mark.parametrize("candidate,reference,reward", [
    ("\\{1,2\\} \\cup \\{3\\}", "\\{1,2,3\\}", 1.0),
    ("\\{1,2,3\\}", "\\{3\\} \\cup \\{2, 1\\}", 1.0),
    ("\\{1,2\\} \\cup \\{2,3\\}", "\\{1,2,3\\}", 1.0),
    ("\\{1,2,3\\} \\cap \\{2,3,4\\}", "\\{2,3\\}", 1.0),
    ("\\{1,2,3\\} \\setminus \\{2\\}", "\\{1,3\\}", 1.0),
    ("\\{1,2,3\\} - \\{2\\}", "\\{1,3\\}", 1.0),
    ("\\{1,2\\} \\cap \\{3\\}", "\\emptyset", 1.0),
    ("(\\{1\\} \\cup \\{2\\}) \\cap \\{2\\}", "\\{2\\}", 1.0),
    ("\\{a, b\\} \\cup \\{c\\}", "\\{a, b, c\\}", 1.0),
    ("[0,1] \\cup [2,3]", "[2,3] \\cup [0,1]", 1.0),
    ("[0,1] \\cup [1,3]", "[0,3]", 1.0),
    ("[0,1) \\cup [1,3]", "[0,3]", 1.0),
    ("[0,2] \\cap [1,3]", "[1,2]", 1.0),
    ("[0,3] \\setminus (1,2)", "[0,1] \\cup [2,3]", 1.0),
    ("[0,3] \\setminus \\{1\\}", "[0,1) \\cup (1,3]", 1.0),
    ("(-\\infty, 2) \\cap (0, \\infty)", "(0, 2)", 1.0),
    ("[0, \\pi] \\cup [\\pi, 4]", "[0, 4]", 1.0),
    ("(0, 1) ∪ (1, 2)", "(0,2) \\setminus \\{1\\}", 1.0),
    ("x \\neq 1", "(-\\infty, 1) \\cup (1, \\infty)", 1.0),
    ("[0, 1.5708] \\cup [2, 3]", "[0, \\frac{\\pi}{2}] \\cup [2, 3]", 1.0),  # a decimal endpoint as in a tuple
    ("[0, 1.57] \\cup [2, 3]", "[0, \\frac{\\pi}{2}] \\cup [2, 3]", 0.0),
    ("x \\neq 2", "\\mathbb{R} \\setminus \\{1\\}", 0.0),
    # wrong results stay wrong
    ("\\{1,2\\} \\cup \\{3\\}", "\\{1,2\\}", 0.0),
    ("\\{1,2,3\\} \\cap \\{2,3,4\\}", "\\{1,2,3,4\\}", 0.0),
    ("\\{1,2,3\\} - \\{2\\}", "\\{1,2,3\\}", 0.0),
    ("\\{1,2,3\\} \\setminus \\{2\\}", "\\{2\\}", 0.0),
    ("[0,1) \\cup (1,3]", "[0,3]", 0.0),
    ("[0,1] \\cup [2,3]", "[0,3]", 0.0),
    ("[0,2] \\cap [1,3]", "[0,3]", 0.0),
    ("[0,3] \\setminus (1,2)", "[0,3]", 0.0),
    ("[0,2] \\cup [1,3]", "(0,3]", 0.0),
])
def test_set_algebra_against_its_result(candidate, reference, reward):
    assert _reward(candidate, reference) == reward


# ------------------------------------------------------------------------------------------- named sets
@pytest.mark.parametrize("candidate,reference,reward", [
    ("\\mathbb{R}", "(-\\infty, \\infty)", 1.0),
    ("(-\\infty, \\infty)", "\\mathbb{R}", 1.0),
    ("\\R", "(-\\infty,\\infty)", 1.0),
    ("\\reals", "\\mathbb{R}", 1.0),
    ("ℝ", "(-\\infty, \\infty)", 1.0),
    ("\\mathbb R", "\\mathbb{R}", 1.0),
    ("x \\in \\mathbb{R}", "(-\\infty, \\infty)", 1.0),
    ("\\text{all real numbers}", "\\mathbb{R}", 1.0),
    ("(-\\infty, 0) \\cup [0, \\infty)", "\\mathbb{R}", 1.0),
    ("\\mathbb{R} \\setminus \\{0\\}", "(-\\infty, 0) \\cup (0, \\infty)", 1.0),
    ("\\mathbb{R} - \\{0\\}", "\\mathbb{R}^*", 1.0),
    ("\\mathbb{R}^+", "(0, \\infty)", 1.0),
    ("\\mathbb{R}_{>0}", "(0, \\infty)", 1.0),
    ("\\mathbb{R}_{\\ge 0}", "[0, \\infty)", 1.0),
    ("x > 0", "\\mathbb{R}^+", 1.0),
    ("\\{x \\mid x > 0\\}", "\\mathbb{R}^+", 1.0),  # set-builder notation
    ("\\{x \\in \\mathbb{R} : x \\ge 2\\}", "[2, \\infty)", 1.0),
    ("\\{x \\mid x > 0\\}", "[0, \\infty)", 0.0),
    ("\\mathbb{Z}", "\\{\\ldots, -2, -1, 0, 1, 2, \\ldots\\}", 1.0),
    ("\\mathbb{N}", "\\{1, 2, 3, \\ldots\\}", 1.0),
    ("\\mathbb{N}", "\\{0, 1, 2, \\ldots\\}", 1.0),  # either reading of N
    ("\\mathbb{Z}^+", "\\{1, 2, 3, \\ldots\\}", 1.0),
    ("\\mathbb{N}_0", "\\{0, 1, 2, \\ldots\\}", 1.0),
    ("\\mathbb{N} \\cup \\{0\\}", "\\mathbb{Z}_{\\ge 0}", 1.0),
    ("\\mathbb{Z} \\cap [1, 5]", "\\{1, 2, 3, 4, 5\\}", 1.0),
    ("\\{1, 2, \\ldots, 5\\}", "\\{1, 2, 3, 4, 5\\}", 1.0),
    ("\\{2, 4, 6, \\ldots\\}", "\\{2, 4, 6, 8, \\ldots\\}", 1.0),
    ("\\mathbb{Q}", "\\mathbb{Q}", 1.0),
    ("\\mathbb{C}", "\\mathbb{C}", 1.0),
    # different sets stay different
    ("\\mathbb{N}", "\\mathbb{Z}", 0.0),
    ("\\mathbb{Z}", "\\mathbb{N}", 0.0),
    ("\\mathbb{R}", "\\mathbb{Z}", 0.0),
    ("\\mathbb{Q}", "\\mathbb{R}", 0.0),
    ("\\mathbb{R}", "\\mathbb{C}", 0.0),
    ("\\mathbb{R}", "[0, \\infty)", 0.0),
    ("\\mathbb{R}^+", "[0, \\infty)", 0.0),
    ("\\mathbb{Z}^+", "\\{0, 1, 2, \\ldots\\}", 0.0),
    ("\\mathbb{N}", "\\{2, 4, 6, \\ldots\\}", 0.0),
    ("\\mathbb{R}", "\\mathbb{R} \\setminus \\{0\\}", 0.0),
    ("\\{1, 2, \\ldots, 5\\}", "\\{1, 2, 3, 4\\}", 0.0),
    ("\\mathbb{R}^2", "\\mathbb{R}", 0.0),
])
def test_blackboard_bold_sets(candidate, reference, reward):
    assert _reward(candidate, reference) == reward


# ------------------------------------------------------------------------------------------- long numerals
_BIG = 2**10_000
_DIGITS = str(_BIG)  # 3,011 digits


def _last_digit_changed(digits: str) -> str:
    return digits[:-1] + str((int(digits[-1]) + 1) % 10)


@pytest.mark.parametrize("candidate,reference,reward", [
    (_DIGITS, _DIGITS, 1.0),
    (_DIGITS, "2^{10000}", 1.0),
    ("2^{10000}", _DIGITS, 1.0),
    ("{:,}".format(_BIG), _DIGITS, 1.0),
    (_DIGITS + ".000", _DIGITS, 1.0),
    ("-" + _DIGITS, "-2^{10000}", 1.0),
    ("9" * 8_000, "10^{8000} - 1", 1.0),
    ("1" * 50_000, "1" * 50_000, 1.0),
    ("0" * 10 + "7" * 20_000, "7" * 20_000, 1.0),
    ("3." + "14" * 3_000, "3." + "14" * 3_000 + "0", 1.0),
    # one digit off, anywhere, is wrong
    (_last_digit_changed(_DIGITS), _DIGITS, 0.0),
    (_last_digit_changed(_DIGITS), "2^{10000}", 0.0),
    ("1" * 50_000, "1" * 49_999 + "2", 0.0),
    ("1" * 50_000, "1" * 49_999, 0.0),
    ("2" + "1" * 49_999, "1" * 50_000, 0.0),
    ("9" * 8_000, "10^{8000} + 1", 0.0),
    ("-" + _DIGITS, _DIGITS, 0.0),
    ("3." + "14" * 3_000 + "1", "3." + "14" * 3_000, 0.0),
])
def test_long_numerals_compared_exactly(candidate, reference, reward):
    start = time.process_time()
    assert _reward(candidate, reference) == reward
    assert time.process_time() - start < 1.0


def test_long_numeral_references_of_any_type():
    """An int reference past Python's int-to-str limit (4,300 digits) and a numeral in a JSON-like string."""
    big = 7 * 10**6_000 + 1
    digits = "7" + "0" * 5_999 + "1"
    assert VERIFIER("\\boxed{" + digits + "}", {"answer": big}).reward == 1.0
    assert VERIFIER("\\boxed{" + digits + "}", {"answer": big + 10}).reward == 0.0
    verdict = VERIFIER("\\boxed{" + digits + "}", {"answer": digits})
    assert verdict.details["reason"] == "same number" and len(verdict.details["normalized"]["answer"]) < 600


def test_megabyte_numeral_is_judged_quickly():
    digits = "123456789" * 110_000  # 990,000 digits
    start = time.process_time()
    assert VERIFIER("\\boxed{" + digits + "}", {"answer": digits}).reward == 1.0
    assert VERIFIER("\\boxed{" + digits + "}", {"answer": digits[:-1] + "8"}).reward == 0.0
    assert time.process_time() - start < 1.0


def test_long_expressions_are_still_limited():
    verdict = VERIFIER("\\boxed{" + "1+" * 2_000 + "1}", {"answer": "2001"})
    assert verdict.status == "invalid" and verdict.reward == 0.0


def test_numeral_past_exact_arithmetic_against_an_expression_is_invalid_quickly():
    digits = "1" + "0" * 200_000
    start = time.process_time()
    verdict = VERIFIER("\\boxed{" + digits + "}", {"answer": "10^{200000}"})
    assert (verdict.status, verdict.reward) == ("invalid", 0.0)
    assert time.process_time() - start < 1.0


def test_the_random_points_are_a_function_of_the_pair_compared():
    """Same pair, same points (a verdict is reproducible across processes and runs); another pair, other points."""
    from raylign.verifiers.math.equiv import _sample_points

    def drawn(key):
        return [env for env, rnd in _sample_points(["x"], None, key) if rnd]

    assert drawn(("a", "b")) == drawn(("a", "b"))
    assert drawn(("a", "b")) != drawn(("a", "c"))
    v = MathVerifier()
    answers = ["x + 1 + (x - 0.8326)(x + 1.2649)(x - 1.9173)", "2\\sin x\\cos x"]
    for ans in answers:
        first = [v(f"\\boxed{{{ans}}}", {"answer": ref}).reward for ref in ("x + 1", "\\sin 2x")]
        assert [v(f"\\boxed{{{ans}}}", {"answer": ref}).reward for ref in ("x + 1", "\\sin 2x")] == first



@pytest.mark.parametrize("completion, answer, reward", [
    ("9+9 = 18, carry 1. 7+5+1 = 13. The answer is 138 much to Cairo.", "138", 1.0),  # seen in a GRPO run
    ("The answer is 138 so we are done.", "138", 1.0),
    ("The answer is 42 in the end", "42", 1.0),
    ("The answer is 137 much to Cairo.", "138", 0.0),  # words never make a wrong value right
    ("The answer is 5 so we are done.", "5 cm", 1.0),  # a unit-less answer beside a unit-bearing reference
    ("The answer is 3 and 5", "3, 5", 1.0),  # 'and' still separates items
    ("The answer is 5 million dollars", "5000000", 1.0),  # scale words still scale
    ("The answer is 2 sin x", "2\\sin x", 1.0),  # math words are not prose
    ("The answer is 2 sin x so we are done", "2\\sin 2x", 0.0),
])
def test_words_after_the_value_are_not_part_of_the_answer(completion, answer, reward):
    v = MathVerifier(extract=("boxed", "answer_is", "last_number"))
    assert v(completion, {"answer": answer}).reward == reward


# ------------------------------------------------------------------------------------------- slow paths
_TRIG = "\\sin(x)^{7}\\cos(y)^{5}\\tan(z)^{3} + \\sinh(x y)^{4}"


@pytest.mark.parametrize("candidate,reference", [
    # undefined at every point beside a reference that has values: unequal without sympy (seconds of simplify)
    ("0^{x-x}\\frac{(x+y+z)^{12}}{(x-y)^{7}(y-z)^{5}}", "\\frac{(x+y-z)^{12}}{(x+y)^{7}(y+z)^{5}}"),
    ("0^{x-x}((x+1)^{40}-(y+1)^{40})", "(x - y)^{40}"),
    ("0^{-x^2-1} + " + _TRIG, _TRIG),
    ("\\frac{" + _TRIG + "}{x - x}", _TRIG),
    ("\\log(x-x)\\cdot(" + _TRIG + ")", _TRIG),
    # each big step is within its own limit, but not forty of them in one answer
    ("+".join(["\\sqrt[63]{7^{13000}}"] * 40), "1"),
    ("+".join(["(7^{13000})^{1/63}"] * 40), "1"),
    ("\\cdot".join(["\\binom{40000}{20000}"] * 40), "1"),
    ("+".join(["\\binom{16000}{8000}"] * 40), "1"),
    ("+".join(["1000!"] * 150), "1"),
    ("\\{" + ",".join(["\\binom{12000}{%d}" % (6000 + i) for i in range(40)]) + "\\}", "\\{1\\}"),
    ("[\\binom{40000}{20000}, \\binom{40000}{20001}]", "[1, 2]"),
])
def test_heavy_answers_are_refused_quickly(candidate, reference):
    from raylign.verifiers.math.normalize import clean
    from raylign.verifiers.math.values import parse_answer

    clean.cache_clear()
    parse_answer.cache_clear()
    start = time.process_time()
    verdict = _score(candidate, reference)
    assert time.process_time() - start < 1.0, verdict
    assert verdict.reward == 0.0 and verdict.status in ("ok", "invalid"), verdict


@pytest.mark.parametrize("candidate,reference,reward", [
    ("\\sqrt[63]{7^{12978}}", "7^{206}", 1.0),  # an exact root of a big power is still found
    ("\\sqrt{7^{13000}}", "7^{6500}", 1.0),
    ("\\binom{100}{50}", "100891344545564193334812497256", 1.0),
    ("\\binom{12000}{2}", "71994000", 1.0),
    ("x^{\\binom{10}{2} - 44}", "x", 1.0),
    ("\\frac{1}{x-x}", "\\frac{1}{x-x}", 1.0),  # written alike
    ("\\frac{x}{x-x}", "x", 0.0),
])
def test_exact_arithmetic_within_its_limits(candidate, reference, reward):
    assert _reward(candidate, reference) == reward


@pytest.mark.parametrize("completion,answer,reward", [
    ("\\boxed{5}\\boxed{}", "5", 1.0),  # an empty last box is no answer: the box before it is
    ("\\boxed{5} \\boxed{ }", "5", 1.0),
    ("\\boxed{5}\\boxed{}", "6", 0.0),
    ("\\boxed{3} \\boxed{5} \\boxed{}", "5", 0.0),  # still hedging
    ("\\boxed{}", "5", 0.0),
])
def test_an_empty_box_is_no_answer(completion, answer, reward):
    verdict = VERIFIER(completion, {"answer": answer})
    assert (verdict.status, verdict.reward) == ("ok", reward), verdict


@pytest.mark.parametrize("candidate,reference,reward", [
    ("5 = x", "5", 1.0),
    ("5 = x", "x = 5", 1.0),
    ("2x + 1 = y", "2x+1", 1.0),
    ("6 = x", "5", 0.0),
    ("5 = 2x", "5", 0.0),  # neither side a plain variable
    ("x = 5", "x = 6", 0.0),
])
def test_an_equation_may_name_its_variable_on_the_right(candidate, reference, reward):
    assert _reward(candidate, reference) == reward


def test_last_number_does_not_rescan_the_text_after_it():
    from raylign.verifiers.math.extract import last_number

    text = "so it is 12" + "a" * 900_000
    start = time.process_time()
    for _ in range(5):
        assert last_number(text) == "12"
    assert time.process_time() - start < 0.5


# ------------------------------------------------------------------------------------------- mixed numbers
@pytest.mark.parametrize("candidate,reference,reward", [
    # an integer before a proper fraction is a mixed number (math-verify and MATH's answers read it so)
    ("2\\frac{1}{2}", "5/2", 1.0),
    ("2\\frac12", "\\frac52", 1.0),
    ("2\\tfrac12", "5/2", 1.0),
    ("2\\dfrac{1}{2}", "2.5", 1.0),
    ("2 \\frac{1}{2}", "5/2", 1.0),
    ("2\\,\\frac{1}{2}", "5/2", 1.0),
    ("2{1\\over2}", "5/2", 1.0),  # TeX's \over inside its group
    ("2{1 \\over 2}", "2.5", 1.0),
    ("2{\\frac12}", "5/2", 1.0),
    ("-2{1\\over 2}", "-5/2", 1.0),
    ("-1\\frac{1}{4}", "-\\frac54", 1.0),
    ("2 1/2", "5/2", 1.0),
    ("x = 2\\frac{1}{2}", "5/2", 1.0),
    ("(2\\frac12, 3)", "(\\frac52, 3)", 1.0),
    ("2\\frac{1}{2}\\text{ cups}", "2.5", 1.0),
    ("5/2", "2\\frac{1}{2}", 1.0),  # the reference may be the mixed number
    # neighbours: a product is written with an operator; the mixed number is not the product
    ("2 \\cdot \\frac12", "1", 1.0),
    ("2 \\cdot \\frac12", "5/2", 0.0),
    ("2\\times\\frac{1}{2}", "5/2", 0.0),
    ("2\\frac{1}{2}", "1", 0.0),
    ("2{1\\over2}", "1", 0.0),
    ("2\\frac{1}{2}", "-5/2", 0.0),
    ("-2\\frac{1}{2}", "-3/2", 0.0),  # -(2 + 1/2), not -2 + 1/2
    ("2\\frac{1}{3}", "5/2", 0.0),
    ("2\\frac{3}{2}", "3", 1.0),  # an improper fraction after an integer is not a mixed number: a product
    ("2\\frac{3}{2}", "7/2", 0.0),
    ("x\\frac{1}{2}", "\\frac{x}{2}", 1.0),
])
def test_mixed_numbers(candidate, reference, reward):
    assert _reward(candidate, reference) == reward


# ------------------------------------------------------------------------------------------- inches
@pytest.mark.parametrize("candidate,reference,reward", [
    ("6\\text{ in}", "6", 1.0),
    ("6 \\text{in}", "6", 1.0),
    ("6\\text{ in.}", "6", 1.0),
    ("6\\mathrm{\\,in}", "6", 1.0),
    ("6 in", "6", 1.0),
    ("12\\text{ in}^2", "12", 1.0),
    ("12 \\text{ sq in}", "12", 1.0),
    ("(3\\text{ in}, 4\\text{ in})", "(3, 4)", 1.0),
    ("6\\text{ in}", "6\\text{ inches}", 1.0),
    ("6", "6\\text{ in}", 1.0),
    # a unit never makes a wrong number right, and inches are not feet
    ("6\\text{ in}", "7", 0.0),
    ("6\\text{ in}", "6\\text{ ft}", 0.0),
    ("6\\text{ in}", "6\\text{ cm}", 0.0),
    ("12\\text{ in}^2", "12\\text{ in}", 0.0),
    ("6\\text{ in} + 2", "8", 0.0),  # a unit on one term of a sum stays
    # "in" between things is a word
    ("x \\text{ in } [0,1]", "x", 0.0),
    ("x \\text{ in } [0,1]", "[0,1]", 0.0),
    ("x \\in [0,1]", "[0,1]", 1.0),
])
def test_inches(candidate, reference, reward):
    assert _reward(candidate, reference) == reward


# ------------------------------------------------------------------------------------------- set algebra against a list
@pytest.mark.parametrize("candidate,reference,reward", [
    # a bare list without repeats is met by a set expression with the same elements
    ("\\{1,2\\}\\cup\\{3\\}", "1,2,3", 1.0),
    ("\\{1\\}\\cup\\{2\\}\\cup\\{3\\}", "3, 2, 1", 1.0),
    ("\\{1,2,3\\}\\setminus\\{2\\}", "1, 3", 1.0),
    ("\\{1,2,3\\} \\cap \\{2,3,4\\}", "3, 2", 1.0),
    ("\\{(1,2)\\} \\cup \\{(3,4)\\}", "(3,4), (1,2)", 1.0),
    ("1, 2, 3", "\\{1,2\\}\\cup\\{3\\}", 1.0),
    ("\\{1,2\\}\\cup\\{3\\}", "\\{1,2,3\\}", 1.0),
    # neighbours: other elements, and a list that counts a repeat no set holds
    ("\\{1,2\\}\\cup\\{3\\}", "1,2", 0.0),
    ("\\{1,2\\}\\cup\\{3\\}", "1,2,4", 0.0),
    ("\\{1,2\\}\\cup\\{3\\}", "1,2,3,3", 0.0),
    ("\\{1,2\\}\\cup\\{2\\}", "1,2,2", 0.0),
    ("\\{1,2,3\\}\\setminus\\{2\\}", "1, 2", 0.0),
    ("[1,2]\\cup[3,4]", "1,2,3,4", 0.0),  # intervals are not their endpoints
    ("\\{1,2\\}\\cap\\{3\\}", "1", 0.0),
])
def test_set_algebra_against_a_list(candidate, reference, reward):
    assert _reward(candidate, reference) == reward


# ------------------------------------------------------------------------------------------- equations ending in the value
@pytest.mark.parametrize("candidate,reference,reward", [
    # a true computation answers with its right-hand side
    ("5+1=6", "6", 1.0),
    ("6 = 5+1", "6", 1.0),
    ("3 \\times 2 = 6", "6", 1.0),
    ("\\frac{12}{2} = 6", "6", 1.0),
    ("2^{10} = 1024", "1024", 1.0),
    ("\\sqrt{16} = 4", "4", 1.0),
    ("\\frac{1}{2} = 0.5", "\\frac12", 1.0),
    ("5 + 1 = 6", "5+1", 1.0),
    ("(x+1)^2 = x^2+2x+1", "x^2+2x+1", 1.0),
    ("5+1=6", "x = 6", 0.0),  # a computation is not the equation x = 6
    # a chain holds step by step; variables in it are names
    ("2+2=4=4", "4", 1.0),
    ("x = 2+3 = 5", "5", 1.0),
    ("x = 2+3 = 5", "x = 5", 1.0),
    ("x = y = 3", "3", 1.0),
    ("y = 2(x+1) = 2x+2", "2x+2", 1.0),
    # a false computation answers neither side
    ("2+2=5", "4", 0.0),
    ("2+2=5", "5", 0.0),
    ("5 = 6", "6", 0.0),
    ("5 = 6", "5", 0.0),
    ("2+2=4=5", "5", 0.0),
    ("2+2=4=5", "4", 0.0),
    ("x = 2+3 = 6", "6", 0.0),
    ("x = 2+3 = 6", "5", 0.0),
    ("x = 2+3 = 6", "x = 6", 0.0),
    ("9^{9^{9^{9}}} = 5", "5", 0.0),
    # a condition is not its right-hand side
    ("2x = 6", "6", 0.0),
    ("2x = 6", "3", 0.0),
    ("x+1 = 6", "6", 0.0),
    ("x+y = 3", "3", 0.0),
    ("y = 2x+1", "2x - y + 1 = 0", 1.0),  # equations still compare as equations
])
def test_an_equation_ending_in_the_value(candidate, reference, reward):
    assert _reward(candidate, reference) == reward


def test_a_computation_may_be_the_reference():
    assert VERIFIER("\\boxed{6}", {"answer": "5+1=6"}).reward == 1.0
    assert VERIFIER("\\boxed{5}", {"answer": "2+2=5"}).reward == 0.0


# ------------------------------------------------------------------------------------------- one unit on every term of a sum
@pytest.mark.parametrize("candidate,reference,reward", [
    # every term in the same unit: the sum of the values, in that unit
    ("5\\text{ cm}+2\\text{ cm}", "7", 1.0),
    ("5\\text{ cm}+2\\text{ cm}", "7\\text{ cm}", 1.0),
    ("5\\,\\text{cm} + 2\\,\\text{cm}", "7", 1.0),
    ("5\\mathrm{~cm}+2\\mathrm{~cm}", "7", 1.0),
    ("5 \\text{ centimeters} + 2 \\text{ cm}", "7", 1.0),  # one unit, two spellings
    ("5 cm + 2 cm", "7", 1.0),
    ("5\\text{ cm}-2\\text{ cm}", "3", 1.0),
    ("-5 cm - 2 cm", "-7", 1.0),
    ("5 cm + 2 cm + 3 cm", "10", 1.0),
    ("5\\text{ cm}^2 + 2\\text{ cm}^2", "7\\text{ cm}^2", 1.0),
    ("\\frac{1}{2}\\text{ cm} + \\frac{1}{2}\\text{ cm}", "1", 1.0),
    ("5\\text{ m/s} + 2\\text{ m/s}", "7", 1.0),
    ("6\\text{ in} + 2\\text{ in}", "8", 1.0),
    ("5 \\text{ dollars} + 2 \\text{ dollars}", "\\$7", 1.0),
    ("x = 5\\text{ cm} + 2\\text{ cm}", "7", 1.0),
    ("5\\text{ cm} + 2\\text{ cm} = 7\\text{ cm}", "7", 1.0),
    ("(3\\text{ cm} + 1\\text{ cm}, 5\\text{ cm})", "(4, 5)", 1.0),
    ("5\\text{ cm} + 2\\text{ cm}, 3", "7, 3", 1.0),
    ("2 m + 3 m", "5 m", 1.0),
    # the sum is still checked, and its unit against the reference's
    ("5\\text{ cm}+2\\text{ cm}", "8", 0.0),
    ("5\\text{ cm} + 2\\text{ cm}", "7\\text{ m}", 0.0),
    ("5\\text{ cm}^2 + 2\\text{ cm}^2", "7\\text{ cm}", 0.0),
    ("5\\text{ cm} + 2\\text{ cm} = 8\\text{ cm}", "8", 0.0),
    # different units, or a unit on some terms only: no sum of values (5 m + 2 cm is not 7)
    ("5\\text{ m} + 2\\text{ cm}", "7", 0.0),
    ("5\\text{ m} + 2\\text{ cm}", "5.02", 0.0),
    ("5 m + 2 cm", "7", 0.0),
    ("5\\text{ cm}^2 + 2\\text{ cm}", "7", 0.0),
    ("5 \\text{ hours} + 30 \\text{ minutes}", "5.5", 0.0),
    ("5\\text{ cm} + 2", "7", 0.0),
    ("5 + 2\\text{ cm}", "7", 0.0),
    ("5\\text{ m} - 2", "3", 0.0),
    # sums without units are untouched
    ("2m + 3m", "5m", 1.0),
    ("2x + 3x", "5x", 1.0),
    ("3 \\text{ million} + 2", "3000002", 1.0),
])
def test_a_sum_with_one_unit_on_every_term(candidate, reference, reward):
    assert _reward(candidate, reference) == reward


def test_sums_with_units_stay_fast():
    from raylign.verifiers.math.normalize import clean
    from raylign.verifiers.math.values import parse_answer

    for answer in ("5\\text{ cm}+" * 80 + "5\\text{ cm}", "5 cm + 2 m + " * 70 + "1", "1 cm+1 cm, " * 60):
        clean.cache_clear()
        parse_answer.cache_clear()
        start = time.process_time()
        verdict = _score(answer[:990], "7")
        assert time.process_time() - start < 0.25, verdict
        assert verdict.reward == 0.0


# ------------------------------------------------------------------------------------------- delimiters spelled as commands
@pytest.mark.parametrize("candidate,reference,reward", [
    ("\\lbrace 1,2\\rbrace", "\\{2,1\\}", 1.0),
    ("\\left\\lbrace 1, 2 \\right\\rbrace", "\\{1,2\\}", 1.0),
    ("\\lbrace 1,2\\rbrace \\cup \\lbrace 3 \\rbrace", "\\{1,2,3\\}", 1.0),
    ("\\lbrack 0, 1 \\rbrack", "[0,1]", 1.0),
    ("\\left\\lbrack 0, 1 \\right)", "[0,1)", 1.0),
    ("\\langle 1, 2\\rangle", "(1,2)", 1.0),
    ("\\lbrace 1,2\\rbrace", "\\{1,3\\}", 0.0),
    ("\\lbrace 1,1,2\\rbrace", "1, 1, 2", 1.0),
    ("\\lbrack 0, 1 )", "[0,1]", 0.0),
    ("\\lbrack 0, 1 \\rbrack", "(0,1)", 0.0),
])
def test_delimiters_spelled_as_commands(candidate, reference, reward):
    assert _reward(candidate, reference) == reward


@pytest.mark.parametrize("completion,answer,reward", [
    # one number in two different units is two answers
    ("\\boxed{7\\text{ cm}} or \\boxed{7\\text{ m}}", "7", 0.0),
    ("\\boxed{7\\text{ cm}} or \\boxed{7\\text{ m}}", "7\\text{ cm}", 0.0),
    ("\\boxed{30^\\circ} or \\boxed{30 \\text{ radians}}", "30", 0.0),
    # the same answer with and without its unit, or in two spellings of it, is one answer
    ("\\boxed{7\\text{ cm}}, that is \\boxed{7}", "7", 1.0),
    ("\\boxed{7\\text{ cm}} = \\boxed{7 \\text{ centimeters}}", "7", 1.0),
    ("\\boxed{5\\text{ cm}+2\\text{ cm}}, so \\boxed{7\\text{ cm}}", "7", 1.0),
    ("\\boxed{5+1=6}, so \\boxed{6}", "6", 1.0),
    ("\\boxed{5} or \\boxed{5+1=6}", "5", 0.0),
])
def test_hedging_across_units_and_forms(completion, answer, reward):
    verdict = VERIFIER(completion, {"answer": answer})
    assert (verdict.status, verdict.reward) == ("ok", reward), verdict


# ------------------------------------------------------------------------------------------- temperatures, \pm and \pmod
@pytest.mark.parametrize("candidate,reference,reward", [
    ("5^{\\circ}C", "5", 1.0),
    ("5^\\circ C", "5", 1.0),
    ("5°C", "5", 1.0),
    ("5^{\\circ}C", "5^\\circ \\text{C}", 1.0),
    ("5^{\\circ}C", "5^\\circ", 1.0),
    ("5^{\\circ}C", "6", 0.0),
    ("5^{\\circ}C", "5^\\circ F", 0.0),
    ("-40^\\circ C", "-40^\\circ F", 0.0),
    # \pm is a pair of answers; \pmod is not \pm
    ("\\pm 5", "5, -5", 1.0),
    ("x = 2 \\pm \\sqrt{3}", "2-\\sqrt3, 2+\\sqrt3", 1.0),
    ("17 \\pmod{12}", "17", 0.0),
    ("5 \\pmod{12}", "5, 5", 0.0),
    ("5 \\pmod{12}", "5 \\pmod{12}", 1.0),
])
def test_temperatures_and_plus_minus(candidate, reference, reward):
    assert _reward(candidate, reference) == reward


# ------------------------------------------------------------------------------------------- a named quantity = its value
@pytest.mark.parametrize("candidate,reference,reward", [
    ("AB = 5", "5", 1.0),
    ("\\overline{AB} = 5", "5", 1.0),
    ("|AB| = 5", "5", 1.0),
    ("\\angle ABC = 30^\\circ", "30", 1.0),
    ("m\\angle A = 30^\\circ", "30", 1.0),
    ("\\text{Area} = 25", "25", 1.0),
    ("\\text{area of the triangle} = 25", "25", 1.0),
    ("AB = BC = 5", "5", 1.0),
    ("BC = 2\\sqrt{3}", "\\sqrt{12}", 1.0),
    ("5 = AB", "5", 1.0),
    # the value must still be right; equations still compare as equations
    ("AB = 5", "6", 0.0),
    ("\\text{Area} = 25", "26", 0.0),
    ("AB = 5", "BC = 5", 0.0),
    # a condition is not a name
    ("xy = 5", "5", 0.0),
    ("xyz = 5", "5", 0.0),
    ("abc = 6", "6", 0.0),
    ("\\text{Sum} = 6", "6", 1.0),
    ("2AB = 10", "10", 0.0),
    ("\\sqrt{AB} = 5", "5", 0.0),
])
def test_a_named_quantity_equals_its_value(candidate, reference, reward):
    assert _reward(candidate, reference) == reward


@pytest.mark.parametrize("completion,answer,reward", [
    # a reference of several items answered one item per box
    ("The roots are \\boxed{2} and \\boxed{3}.", "2, 3", 1.0),
    ("The roots are \\boxed{3} and \\boxed{2}.", "2, 3", 1.0),
    ("\\boxed{3}, \\boxed{5}", "\\{3, 5\\}", 1.0),
    ("\\boxed{x=2} or \\boxed{x=3}", "2, 3", 1.0),
    ("\\boxed{2} and \\boxed{3}", "(2, 3)", 1.0),
    ("\\boxed{2}, \\boxed{3}, so \\boxed{2} and \\boxed{3}", "2, 3", 1.0),
    ("\\boxed{1} is wrong; \\boxed{2} and \\boxed{3}", "2, 3", 1.0),
    # neighbours: order of a tuple, an extra or missing or wrong item, one value boxed twice, a single reference
    ("\\boxed{3} and \\boxed{2}", "(2, 3)", 0.0),
    ("\\boxed{2} and \\boxed{3} and \\boxed{4}", "2, 3", 0.0),
    ("\\boxed{2} and \\boxed{4}", "2, 3", 0.0),
    ("\\boxed{2} and \\boxed{2}", "2, 3", 0.0),
    ("\\boxed{2, 3} and \\boxed{4}", "2, 3", 0.0),
    ("\\boxed{2} and \\boxed{3}", "2, 2", 0.0),
    ("\\boxed{\\frac12} and \\boxed{0.5}", "\\frac12, \\frac12", 0.0),
    ("\\boxed{3} or \\boxed{5}", "5", 0.0),
    ("\\boxed{3} or \\boxed{5}", "3", 0.0),
])
def test_several_items_boxed_one_by_one(completion, answer, reward):
    verdict = VERIFIER(completion, {"answer": answer})
    assert (verdict.status, verdict.reward) == ("ok", reward), verdict
