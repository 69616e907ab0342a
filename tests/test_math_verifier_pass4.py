"""The ``math`` verifier's fourth attacker pass: rewards it gave to wrong answers, and a hang.

Each class is a table of neighbours, with the cases that must stay equal beside the ones that must not score.
``_reward(candidate, reference)`` boxes the candidate once, as a model would; ``_whole`` scores a whole completion.
"""
from __future__ import annotations

import time

import pytest

from raylign.verifiers.math import equiv as math_equiv
from raylign.verifiers.math import evaluate as math_eval
from raylign.verifiers.math import values as math_values
from raylign.verifiers.math.verifier import MathVerifier

VERIFIER = MathVerifier()


def _reward(candidate: str, reference) -> float:
    verdict = VERIFIER("So the answer is $\\boxed{" + candidate + "}$.", {"answer": reference})
    assert verdict.status == "ok", (candidate, reference, verdict)
    return verdict.reward


def _whole(completion: str, reference) -> float:
    verdict = VERIFIER(completion, {"answer": reference})
    assert verdict.status == "ok", (completion, reference, verdict)
    return verdict.reward


# ------------------------------------------------------------------------------- a decimal is its own exact number
@pytest.mark.parametrize("candidate,reference,reward", [
    # a bare decimal against a value that is not one: its rounding or its truncation, nothing else
    ("3.141593", "\\pi", 1.0), ("3.141592", "\\pi", 1.0), ("3.1416", "\\pi", 1.0), ("3.1415", "\\pi", 1.0),
    ("3.141595", "\\pi", 0.0), ("3.141591", "\\pi", 0.0), ("3.1417", "\\pi", 0.0),
    ("-3.1416", "-\\pi", 1.0), ("-3.1415", "-\\pi", 1.0), ("-3.1417", "-\\pi", 0.0),
    ("2.718282", "e", 1.0), ("2.718283", "e", 0.0),
    ("1.732051", "\\sqrt{3}", 1.0), ("1.732052", "\\sqrt{3}", 0.0),
    ("0.693147", "\\ln 2", 1.0), ("0.693148", "\\ln 2", 0.0),
    ("1.4142140", "\\sqrt{2}", 0.0), ("1.41421356", "\\sqrt{2}", 1.0),
    ("3141.593", "1000\\pi", 1.0), ("3141.595", "1000\\pi", 0.0), ("1414214.0", "1000000\\sqrt{2}", 0.0),
    ("0.3333", "\\frac{1}{3}", 1.0), ("0.3334", "\\frac{1}{3}", 0.0), ("0.6667", "\\frac23", 1.0),
    ("0.6666", "\\frac23", 1.0), ("0.6668", "\\frac23", 0.0),
    ("33.33\\%", "\\frac13", 1.0), ("33.34\\%", "\\frac13", 0.0),
    ("0.0", "e^{-30}", 0.0), ("0.0", "\\frac{\\sqrt{2}}{10^{13}}", 0.0),
    # a decimal inside an expression is the number it writes
    ("1000000\\pi + 1.0", "1000000\\pi", 0.0), ("1000000\\pi + 0.5", "1000000\\pi", 0.0),
    ("10^{6}\\sqrt{2} - 0.5", "10^{6}\\sqrt{2}", 0.0), ("\\frac{\\pi}{4} + 0.0000005", "\\frac{\\pi}{4}", 0.0),
    ("1.0000009x", "x", 0.0), ("3.141595x", "\\pi x", 0.0), ("[0, 3.141595]", "[0, \\pi]", 0.0),
    ("x = 2.718283", "e", 0.0),
    ("0.5", "\\frac12", 1.0), ("0.5x", "\\frac{x}{2}", 1.0), ("1.5\\pi", "\\frac{3\\pi}{2}", 1.0),
    ("0.1 + 0.2", "0.3", 1.0), ("2.5", "\\frac{5}{2}", 1.0), ("1000000\\pi + 1.0", "1000000\\pi + 1", 1.0),
])
def test_decimals(candidate, reference, reward):
    assert _reward(candidate, reference) == reward


def test_a_looser_tolerance_still_lets_decimals_approximate():
    assert MathVerifier(rel_tol=1e-2)("\\boxed{3.15}", {"answer": "\\pi"}).reward == 1.0
    assert MathVerifier(rel_tol=1e-2)("\\boxed{\\pi + 0.01}", {"answer": "\\pi"}).reward == 1.0


# ----------------------------------------------------------------- floors, maxima, factorials are checked precisely
@pytest.mark.parametrize("candidate,reference,reward", [
    ("\\max(1000000\\pi, 0)", "1000000\\pi + 1", 0.0), ("1000000\\pi \\cdot 1!", "1000000\\pi + 1", 0.0),
    ("x \\cdot 1!", "x + 10^{-9}", 0.0), ("\\max(x, x)", "x + 10^{-9}", 0.0),
    ("\\lfloor 1000000\\pi \\rfloor", "1000000\\pi", 0.0),
    ("\\lfloor \\sqrt{10^{12}+1} \\rfloor", "\\sqrt{10^{12}+1}", 0.0),
    ("\\lceil \\sqrt{10^{12}+1} \\rceil", "\\sqrt{10^{12}+1}", 0.0),
    ("\\lfloor 1000000\\pi \\rfloor", "3141592", 1.0), ("\\lceil 1000000\\pi \\rceil", "3141593", 1.0),
    ("\\max(1000000\\pi, 0)", "1000000\\pi", 1.0), ("1000000\\pi \\cdot 1!", "1000000\\pi", 1.0),
    ("x \\cdot 1!", "x", 1.0), ("5!", "120", 1.0), ("\\binom{10}{3}", "120", 1.0),
])
def test_exact_operators(candidate, reference, reward):
    assert _reward(candidate, reference) == reward


# ------------------------------------------------------------------------------------------------ unknown units
@pytest.mark.parametrize("candidate,reference,reward", [
    ("5 \\text{ nm}", "5 \\text{ m}", 0.0), ("5 \\text{ nanometers}", "5 \\text{ m}", 0.0),
    ("5\\text{ dm}", "5\\text{ m}", 0.0), ("5\\text{ Mm}", "5\\text{ mm}", 0.0), ("5 \\text{ kN}", "5 \\text{ N}", 0.0),
    ("5 \\text{ mV}", "5 \\text{ V}", 0.0), ("5 \\text{ kHz}", "5 \\text{ Hz}", 0.0),
    ("5\\text{ MPa}", "5\\text{ Pa}", 0.0), ("5\\text{ kWh}", "5\\text{ kW}", 0.0), ("5\\text{ ns}", "5\\text{ s}", 0.0),
    ("5 \\text{ micrograms}", "5 \\text{ g}", 0.0), ("5\\text{ hectares}", "5\\text{ m}^2", 0.0),
    ("5 \\text{ meters squared}", "5 \\text{ m}", 0.0), ("5 \\text{ light years}", "5 \\text{ years}", 0.0),
    ("5 \\text{ GB}", "5 \\text{ MB}", 0.0), ("5 \\text{ pence}", "\\$5", 0.0), ("5 \\text{ euros}", "\\$5", 0.0),
    ("5 \\text{ apples}", "5 \\text{ oranges}", 0.0), ("5 \\text{ m}", "5 \\text{ widgets}", 0.0),
    # the same unit, however written; and a unit-less reference takes any unit
    ("5 \\text{ widgets}", "5 \\text{ widget}", 1.0), ("5 \\text{ GB}", "5 \\text{ GB}", 1.0),
    ("5 \\text{ nm}", "5", 1.0), ("5 \\text{ apples}", "5", 1.0), ("5", "5 \\text{ apples}", 1.0),
    ("5\\text{ m}", "5 \\text{ meters}", 1.0), ("12 \\text{ square feet}", "12 \\text{ ft}^2", 1.0),
    ("60 \\text{ km/h}", "60", 1.0),
])
def test_units_we_cannot_name(candidate, reference, reward):
    assert _reward(candidate, reference) == reward


# -------------------------------------------------------------------------------------- sympy within the budget
SINK = "0^{-|y|} + (\\sin x + \\cos z)^{12} (\\tan z + e^{w})^{9}"
SINK2 = "0^{-|y|} + (\\cos x - \\sin z)^{11} (\\tan w)^{8}"


@pytest.mark.parametrize("completion", [
    f"So the answer is $\\boxed{{{SINK} = {SINK2}}}$.",
    f"So the answer is $\\boxed{{y = {SINK} = {SINK2}}}$.",
    f"So the answer is $\\boxed{{\\{{{SINK}\\}} \\cap \\{{{SINK2}\\}}}}$.",
    f"\\boxed{{{SINK}}} and \\boxed{{{SINK2}}}",
    "So the answer is $\\boxed{0^{-|y|} + (\\sin x + \\cos z)^{3} (\\tan z + e^{w})^{3} (\\sin w + \\cos x)^{3} = "
    "0^{-|y|} + (\\cos x - \\sin z)^{3} (\\tan w + \\sin x)^{3}}$.",
])
def test_expressions_undefined_everywhere_end_within_the_budget(completion):
    """Before: neither side evaluates anywhere (``0^{-|y|}``), so sympy's simplify ran unbounded: 7-20 s, one
    134-character variant over 10 minutes."""
    t0 = time.monotonic()
    verdict = VERIFIER(completion, {"answer": "5"})
    assert verdict.reward == 0.0 and verdict.status in ("ok", "timeout"), verdict
    assert time.monotonic() - t0 < 2.5


def test_sympy_takes_only_small_expressions_with_small_powers():
    def node(text):
        return math_values.make_scalar(math_equiv.clean(text)).node

    assert math_eval.sympy_equal(node("(x+1)^2"), node("x^2+2x+1")) is True
    assert math_eval.sympy_equal(node("(\\sin x + \\cos y)^{4}"), node("1")) is None
    assert math_eval.sympy_equal(node("(x+1)^2"), node("x^2+2x+1"), timeout=0.0) in (True, None)


# ------------------------------------------------------------------------------------- hedges the boxes hide
@pytest.mark.parametrize("completion,reference,reward", [
    ("So \\boxed{5 \\text{ or } \\boxed{3}}.", "3", 0.0),  # a box holding a box says both
    ("\\boxed{3, 5, \\boxed{7}}", "7", 0.0), ("\\fbox{\\boxed{3} \\text{ or } 5}", "3", 0.0),
    ("\\boxed{\\boxed{3}}", "3", 1.0),
    # a condition or an alternative is not a correction: both boxes stand
    ("The answer is \\boxed{3}, or if that is wrong, \\boxed{5}.", "5", 0.0),
    ("\\boxed{3}. Actually, it could also be \\boxed{5}.", "5", 0.0),
    ("\\boxed{3}, unless I made a mistake, in which case \\boxed{5}", "5", 0.0),
    ("First I get \\boxed{3}, but that is wrong. Correct: \\boxed{7}", "7", 1.0),
    ("\\boxed{3}. Wait, that's wrong: 2+2 is 4. So \\boxed{4}.", "4", 1.0),
    # "answer is" followed by another answer in the same sentence
    ("The answer is $3$, or possibly $5$.", "3", 0.0), ("The answer is $3$ (or maybe $5$).", "3", 0.0),
    ("The answer is $3$; $5$ is also possible.", "3", 0.0), ("The answer is $3$ and also $5$.", "3", 0.0),
    ("The answer is $3$/$5$.", "3", 0.0), ("The answer is 3, but it could also be 5.", "3", 0.0),
    ("The answer is $3$.", "3", 1.0), ("The answer is 3, since 3 + 0 = 3.", "3", 1.0),
    ("The answer is $12$, and we can check that $12 \\cdot 3 = 36$.", "12", 1.0),
    ("The answer is $\\frac{1}{2}$, which is 0.5.", "\\frac12", 1.0), ("The answer is $2$ and $3$.", "2, 3", 1.0),
    # two choice letters in one box
    ("\\boxed{\\text{A.B}}", "A", 0.0), ("\\boxed{\\text{A. B.}}", "A", 0.0), ("\\boxed{\\text{A)B)}}", "A", 0.0),
    ("\\boxed{\\text{A) or B)}}", "A", 0.0), ("\\boxed{\\text{A:B}}", "A", 0.0),
    ("\\boxed{\\text{A}}", "A", 1.0), ("\\boxed{\\text{A. 12 apples}}", "A", 1.0), ("The answer is (B).", "B", 1.0),
])
def test_hedges(completion, reference, reward):
    assert _whole(completion, reference) == reward


@pytest.mark.parametrize("completion", [
    "My previous answer is 12, which was wrong. Now computing 6*3",
    "The answer is 12, which is wrong.", "So the answer is 12, which is incorrect, so let me redo",
    "Suppose the answer is 12. Then 12*3 = 36 which contradicts", "Let's verify whether the answer is 12 by substituting",
    "We need to check if the answer is 12", "The answer is 12, but that contradicts the constraint",
])
def test_an_answer_the_completion_only_supposes_or_rejects_does_not_score(completion):
    assert _whole(completion, "12") == 0.0
    assert _whole("So the answer is 12. Checking: 12 * 3 = 36, correct.", "12") == 1.0


# ----------------------------------------------------------------------------------------------- the rest
@pytest.mark.parametrize("candidate,reference,reward", [
    ("\\text{on}", "no", 0.0), ("on", "no", 0.0), ("No", "no", 1.0), ("\\text{No}", "no", 1.0), ("NO", "No", 1.0),
    ("\\begin{vmatrix}1&2\\\\3&4\\end{vmatrix}", "\\begin{pmatrix}1&2\\\\3&4\\end{pmatrix}", 0.0),
    ("\\begin{bmatrix}1&2\\\\3&4\\end{bmatrix}", "\\begin{pmatrix}1&2\\\\3&4\\end{pmatrix}", 1.0),
    ("(\\ln(1+10^{-14}), \\infty)", "\\mathbb{R}^+", 0.0), ("(e^{-30}, \\infty)", "\\mathbb{R}^+", 0.0),
    ("(0, \\infty)", "\\mathbb{R}^+", 1.0), ("(\\sin\\pi, \\infty)", "(0, \\infty)", 1.0),
    # equal only near 0: the far sample points tell them apart
    ("5 - x", "|x - 5|", 0.0), ("x + 5", "|x + 5|", 0.0), ("x + 5", "\\sqrt{x^2 + 10x + 25}", 0.0),
    ("10 - x", "\\sqrt{(x-10)^2}", 0.0), ("x", "\\min(x, 5)", 0.0), ("x", "x + \\lfloor \\frac{x^2}{10} \\rfloor", 0.0),
    ("y = \\min(x, 10)", "y = x", 0.0),
    ("\\frac{x^3-1}{x-1}", "x^2+x+1", 1.0), ("\\sqrt{4-x^2}", "\\sqrt{(2-x)(2+x)}", 1.0), ("\\ln(x^2)", "2\\ln|x|", 1.0),
    ("e^{x^2}", "e^{x \\cdot x}", 1.0), ("2\\sin x\\cos x", "\\sin 2x", 1.0),
])
def test_words_structures_and_far_points(candidate, reference, reward):
    assert _reward(candidate, reference) == reward


# ---------------------------------------------------------------------------- equivalences it missed (neighbours)
@pytest.mark.parametrize("candidate,reference,reward", [
    ("x \\le -1 \\text{ or } x \\ge 3", "(-\\infty,-1] \\cup [3,\\infty)", 1.0),
    ("x < -1 \\text{ or } x > 3", "(-\\infty,-1) \\cup (3,\\infty)", 1.0),
    ("(-\\infty,-1) \\cup (3,\\infty)", "x < -1 \\text{ or } x > 3", 1.0),
    ("x < 0 \\text{ or } x > 0", "\\mathbb{R} \\setminus \\{0\\}", 1.0),
    ("x < -1 \\text{ or } x > 3", "(-\\infty,-1] \\cup (3,\\infty)", 0.0),  # a bracket differs
    ("x < -1 \\text{ or } y > 3", "(-\\infty,-1) \\cup (3,\\infty)", 0.0),  # two variables
    ("x < -1 \\text{ or } x > 4", "(-\\infty,-1) \\cup (3,\\infty)", 0.0),
    ("\\Bbb R", "\\mathbb{R}", 1.0), ("\\Bbb{R}", "\\mathbb{R}", 1.0), ("\\Bbb Z", "\\mathbb{R}", 0.0),
    ("3,", "3", 1.0), ("3;", "3", 1.0), ("1, 2,", "1, 2", 1.0), ("3,5", "3", 0.0),
])
def test_missed_equivalences(candidate, reference, reward):
    assert _reward(candidate, reference) == reward


@pytest.mark.parametrize("candidate,reference,reward", [
    ("\\{3.1416, 3.1415\\}", "\\pi", 0.0), ("\\{0.3333, 0.3334\\}", "\\frac13", 0.0),
    ("\\{0.3333, 0.3334\\}", "\\{\\frac13\\}", 0.0),
    ("\\{3, 3\\}", "3", 1.0), ("\\{\\frac12, 0.5\\}", "\\frac12", 1.0), ("\\{3\\}", "3", 1.0),
])
def test_a_set_is_one_number_only_when_its_items_are_one_value(candidate, reference, reward):
    """Before: each item close to the reference was enough, so two approximations in braces hedged."""
    assert _reward(candidate, reference) == reward
