"""The ``math`` verifier, session 16: differences too small for a fixed precision, and the exact paths that made
the verifier faster (each must give the verdicts the slower path gave, or better ones).

``_reward(candidate, reference)`` boxes the candidate once, as a model would.
"""
from __future__ import annotations

import json
import pathlib
from fractions import Fraction

import pytest

from raylign.verifiers.math import evaluate as math_eval
from raylign.verifiers.math import normalize as math_normalize
from raylign.verifiers.math import parse as math_parse
from raylign.verifiers.math.numerals import to_int
from raylign.verifiers.math.values import parse_answer

# the fourth pass's verifier and its one-box helper
from test_math_verifier_pass4 import VERIFIER, _reward


# ---------------------------------------------------------------- a difference past 50 digits is still a difference
@pytest.mark.parametrize("candidate,reference,reward", [
    # a tiny exact term, a tiny term of a sum, a huge term beside a small one: each is seen at the digits it needs
    ("\\pi + 10^{-60}", "\\pi", 0.0), ("\\pi + 10^{-45}", "\\pi", 0.0), ("\\pi + 10^{-200}", "\\pi", 0.0),
    ("e + \\frac{1}{10^{60}}", "e", 0.0), ("\\sqrt{2}+10^{-70}", "\\sqrt{2}", 0.0),
    ("\\pi + 0." + "0" * 70 + "1", "\\pi", 0.0), ("\\pi + e^{-200}", "\\pi", 0.0), ("\\pi^{200}+1", "\\pi^{200}", 0.0),
    ("100!\\pi + 1", "100!\\pi", 0.0), ("\\frac{2\\pi(10^{60}+1)}{10^{60}}", "2\\pi", 0.0),
    ("\\sqrt{\\pi^2+10^{-80}}", "\\pi", 0.0), ("\\ln(10^{50}) + 10^{-50}", "\\ln(10^{50}+1)", 0.0),
    ("x + 10^{-60}", "x", 0.0), ("\\sin x + 10^{-60}", "\\sin x", 0.0), ("\\sin(x) + e^{-300}", "\\sin x", 0.0),
    ("e^{x} + 10^{-70}", "e^{x}", 0.0), ("\\lfloor x\\rfloor + 10^{-80}", "\\lfloor x \\rfloor", 0.0),
    # the same numbers written otherwise still score
    ("10^{-60} + \\pi", "\\pi + 10^{-60}", 1.0), ("\\frac{\\pi}{10^{60}}", "10^{-60}\\pi", 1.0),
    ("\\pi \\cdot 100!", "100!\\pi", 1.0), ("\\pi^{200}", "\\pi^{200}", 1.0), ("1 + x^{100}", "x^{100}+1", 1.0),
    ("\\frac{1}{\\sqrt{3}}", "\\frac{\\sqrt{3}}{3}", 1.0), ("1", "\\sin^2 x+\\cos^2 x", 1.0), ("-1", "e^{i\\pi}", 1.0),
    ("3", "\\log_2 8", 1.0), ("3.14159265358979", "\\pi", 1.0), ("3.141592653589793", "\\pi", 1.0),
    ("10^{20}", "\\sqrt{10^{40}+1}", 0.0), ("\\sqrt{10^{20}+1}", "\\sqrt{10^{20}+1}", 1.0),
])
def test_differences_past_fifty_digits(candidate, reference, reward):
    assert _reward(candidate, reference) == reward


def test_a_difference_past_every_precision_is_not_judged_equal():
    verdict = VERIFIER("So the answer is $\\boxed{\\pi + 10^{-3000}}$.", {"answer": "\\pi"})
    assert (verdict.reward, verdict.status) == (0.0, "invalid")


def test_precise_digits_follow_the_numbers():
    node = parse_answer("\\pi + 10^{-60}")[1].node
    assert math_eval.extra_digits(node) >= 60
    assert math_eval.magnitude_digits(parse_answer("\\pi^{200} + 1")[1].node) >= 99
    assert math_eval.magnitude_digits(parse_answer("x + 1")[1].node, env={"x": complex(1.5)}) == 1


# ---------------------------------------------------------------- rational functions at a point: exact
@pytest.mark.parametrize("a,b,x,same", [
    ("(x+1)^2", "x^2+2x+1", 0.8326, True), ("\\frac{x+y}{xy}", "\\frac1x+\\frac1y", 0.8326, True),
    ("x + 10^{-60}", "x", 0.8326, False), ("\\frac{x}{3}", "0.3333333333333333x", 0.8326, False),
    ("|x - 5|", "5 - x", 1.25, True), ("\\sqrt{x^2}", "x", 1.25, True),  # the root of a square is exact
    ("\\sqrt{x}", "x^{1/2}", 0.8326, None),  # the root of a non-square is not rational: mpmath decides
])
def test_rational_at_a_point(a, b, x, same):
    env = {"x": complex(x), "y": complex(-1.2649)}
    va, vb = (math_eval.rational_at(parse_answer(s)[1].node, env) for s in (a, b))
    if same is None:
        assert va is None or vb is None
    else:
        assert va is not None and vb is not None and (va == vb) == same
        assert math_eval.precisely_different(parse_answer(a)[1].node, parse_answer(b)[1].node, env) == (not same)


def test_rational_at_gives_up_on_complex_points_and_huge_values():
    node = parse_answer("x^2")[1].node
    assert math_eval.rational_at(node, {"x": complex(0.5, 1.0)}) is None
    assert math_eval.rational_at(node, {"x": complex(0.5)}) == Fraction(1, 4)
    assert math_eval.rational_at(parse_answer("x^{900}")[1].node, {"x": complex(0.8326)}) is None  # past MAX_BITS


# ---------------------------------------------------------------- what only speeds things up changes no output
def test_normalizing_substitutions_run_only_with_their_trigger_and_change_nothing_else():
    texts = ["\\left. x \\right| \\bigl( \\Bigr) \\displaystyle\\sum\\limits \\, \\; \\: \\! \\  \\qquad ~",
             "\\Bbb{R} \\dfrac12 \\tbinom52 \\frac{a}b \\frac1{b} \\frac12 \\binom52 \\sqrt2 \\leqslant \\geq \\ne \\lt \\gt \\approx",
             "\\sin^2 30^\\circ \\cos 45\\degree 5^{\\circ}C \\operatorname{lcm}(2, 3) \\text{max}\\{1\\}",
             "\\SI{5}{\\metre} \\qty{3}{kg} \\num{1000} 5\\% \\$5 $5$ 1{,}000 \\langle 1 \\rangle \\lbrace\\rbrace",
             "\\lbrack \\rbrack \\lvert x \\rvert \\vert \\mid \\emptyset \\varnothing 5 percent <= >= !=",
             "5 \\Omega 5 \\mu\\text{m}"]
    for pattern, repl, triggers in math_normalize._SUBS:  # each match holds one of its pattern's triggers
        found = [m.group(0) for text in texts for m in pattern.finditer(text)]
        assert found, pattern.pattern
        assert all(any(t in match for t in triggers) for match in found), (pattern.pattern, found)
    for text, cleaned in [("\\dfrac12", "\\frac{1}{2}"), ("\\left( x \\right)", "( x )"), ("5~\\text{cm}", "5"),
                          ("x \\leq 3", "x ≤ 3"), ("\\sin 30^\\circ", "\\sin (30\\pi/180)"), ("\\$5", "5"),
                          ("x<=3", "x≤3"), ("\\Bbb R", "\\mathbb{R}"), ("\\lbrace 1 \\rbrace", "\\{ 1 \\}")]:
        assert math_normalize.clean(text) == cleaned, text


def test_only_long_expressions_are_walked_for_their_depth():
    deep = "\\sqrt" * 130 + " x"  # 131 tokens: walked, and under the depth bound
    assert math_parse.parse_expr(deep)[0] == "root"
    with pytest.raises(math_parse.Unjudgeable):
        math_parse.parse_expr("-" * 10 + "(" * 59 + "x" + ")" * 59 + "!" * 3)  # the parser's own bound


# ---------------------------------------------------------------- the fifth and sixth attacker passes, row by row
# tests/data/math_pass5.jsonl: the fifth pass's table (hedges, supposed and retracted answers, values past 50 digits,
# quantities named before their value, approximations, units, sets, notation, long numerals) with the neighbours
# that must keep their verdicts; class letters as in the pass's report (o: a neighbour that scored right before).
# tests/data/math_pass6.jsonl: the sixth pass's, over the fifth pass's rules (answers taken back, statements after
# the box, hedges after the answer, remarks, quantities, approximations, choices with content): the rows whose
# verdicts are right now, neighbours included; the rows left wrong are listed in docs/experiments.md.
# tests/data/math_pass7.jsonl: the seventh pass's, written as a careful grader would (realistic MATH, GSM8K and
# Minerva completions: money in $...$, answer phrases with words between, "#### 72", number words, two final
# statements, restatements, scalar multiples of vectors, excluded points), neighbours included.
# tests/data/math_pass8.jsonl: the eighth pass's, over the seventh's rules (earlier statements, negated boxes,
# values joined by "or", answer phrases, number words, units beside the answer, multiples of matrices); the rows
# left wrong by both (a value in other units beside the box is never judged; an earlier statement is no second
# answer, since only the final one is scored) are listed in docs/experiments.md.
# tests/data/math_pass9.jsonl: the ninth pass's, over the eighth's (retraction words in checks and additive
# corrections, "#### N" lines, values joined by "or", exclamations, values said over another).
# tests/data/math_pass10.jsonl: the tenth pass's broad sweep: MATH problems across subjects (two correct forms, a
# near miss and a sign or rounding error each), GSM8K, AIME and the hedges a policy would try
def _table(name: str) -> list[dict]:
    path = pathlib.Path(__file__).parent / "data" / name
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    for row in rows:
        if row.get("int"):  # a reference given as a Python int (of any length)
            row["reference"] = to_int(row["reference"])
    return rows


_ROWS = [(n, i, row) for n in range(5, 11) for i, row in enumerate(_table(f"math_pass{n}.jsonl"))]


@pytest.mark.parametrize("row", [r for _, _, r in _ROWS], ids=[f"pass{n}-{i}-{r['class']}" for n, i, r in _ROWS])
def test_attacker_tables(row):
    """Every row of the attacker passes' tables scores as the table says."""
    verdict = VERIFIER(row["completion"], {"answer": row["reference"]})
    assert verdict.reward == row["reward"], (row["note"], verdict)
