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
