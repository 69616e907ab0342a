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


# ==================================================================== the second attacker pass, over the first's fixes
# a self-correction takes the first box back; a condition, a question or an alternative does not
@pytest.mark.parametrize("completion,reward", [
    ("So \\boxed{3}.\n\nWait, that's wrong. If we recount, we get 5. So the answer is \\boxed{5}.", 1.0),
    ("\\boxed{3}. Hmm, actually I made a mistake: I should also count the endpoints, so \\boxed{5}.", 1.0),
    ("\\boxed{3}\n\nWait, I made an error. Choosing 2 or more items gives 5 ways. \\boxed{5}", 1.0),
    ("\\boxed{3}. Actually, wait, that's wrong since x may be negative. Correct: \\boxed{5}", 1.0),
    ("\\boxed{3}. Oops, I forgot the case where x = 0 or x = 1. The answer is \\boxed{5}.", 1.0),
    ("\\boxed{3}\nWait, this is wrong because either factor could be zero. Final: \\boxed{5}", 1.0),
    ("\\boxed{3}. Wait, that doesn't work: if n = 2 the sum is 5. \\boxed{5}", 1.0),
    ("\\boxed{3}. That is wrong; I also need to add 2. \\boxed{5}", 1.0),
    ("\\boxed{3}. That's wrong! \\boxed{4}. That's also wrong! \\boxed{5}", 1.0),
    ("\\boxed{3}, and should that be wrong, \\boxed{5}.", 0.0), ("\\boxed{3}. Were that wrong, \\boxed{5}.", 0.0),
    ("\\boxed{3}, but should this be incorrect, \\boxed{5}.", 0.0),
    ("\\boxed{3}. Supposing that's wrong: \\boxed{5}", 0.0), ("\\boxed{3}; in the event that's wrong, \\boxed{5}.", 0.0),
    # past facts and time clauses are corrections (a wrong sum, a step taken back)
    ("\\boxed{3}.\n\nThe numbers were added wrong. The correct total is \\boxed{5}.", 1.0),
    ("\\boxed{3}. When adding I made a mistake. \\boxed{5}", 1.0),
    ("\\boxed{3}. Assuming x > 0 was wrong. \\boxed{5}", 1.0), ("\\boxed{3}. Oops: \\boxed{5}, since 0 counts too.", 1.0),
    ("\\boxed{3}. Wrong? Then \\boxed{5}.", 0.0), ("\\boxed{3}. Actually, \\boxed{5} works too.", 0.0),
    ("\\boxed{3}. Actually both work; \\boxed{5}.", 0.0),
])
def test_corrections_and_conditional_boxes(completion, reward):
    assert _whole(completion, "5") == reward


# a value offered beside the final answer is judged like a second box
@pytest.mark.parametrize("completion,reference,reward", [
    ("The answer is $\\boxed{3}$, or possibly $5$.", "3", 0.0),
    ("\\boxed{3} (or maybe 5)", "3", 0.0), ("\\boxed{3}, but it could also be 5.", "3", 0.0),
    ("The answer is 3. Or maybe 5.", "3", 0.0), ("The answer is 3. Possibly 5.", "3", 0.0),
    ("The answer is 3.\nAlternatively, 5.", "3", 0.0), ("The answer is A, but it could also be B.", "A", 0.0),
    ("The answer is yes, but it could also be no.", "yes", 0.0), ("The answer is 3, but it might be \\sqrt{5}.", "3", 0.0),
    ("The answer is 3, but 5 is also plausible.", "3", 0.0),
    ("The answer is 3, or equivalently $\\frac{6}{2}$.", "3", 1.0), ("\\boxed{3} (or 3.0)", "3", 1.0),
    ("The answer is \\boxed{5}. Alternatively, we could have counted the complement.", "5", 1.0),
    ("The answer is $5$ or $-5$.", "\\pm 5", 1.0), ("The answer is 12; 12 is also the LCM.", "12", 1.0),
    ("The answer is 12, and 12 is divisible by 3.", "12", 1.0),
    # a plain "or", "Alternatively" before a computation, "Maybe" before words: restatements, not doubts
    ("It takes $\\boxed{90}$ minutes, or 1.5 hours.", "90", 1.0), ("She bought \\boxed{24} eggs, or 2 dozen.", "24", 1.0),
    ("The angle is $\\boxed{\\frac{\\pi}{4}}$, or 45 degrees.", "\\frac{\\pi}{4}", 1.0),
    ("The probability is $\\boxed{\\frac{1}{4}}$ (or 1 in 4).", "\\frac14", 1.0), ("\\boxed{12} (or a dozen)", "12", 1.0),
    ("The answer is \\boxed{2}, or x = 2.", "2", 1.0), ("He pays \\boxed{18} dollars (or \\$18).", "18", 1.0),
    ("The speed is $\\boxed{20}\\,\\text{m}/\\text{s}$.", "20", 1.0), ("\\boxed{12}\n\nAlternatively, 3 * 4 = 12.", "12", 1.0),
    ("Answer: 12. Maybe I should double check: 3*4 = 12. Yes.", "12", 1.0),
    ("$\\boxed{(x+1)^2}$, or equivalently x^2 + 2x + 1.", "(x+1)^2", 1.0),
])
def test_values_offered_beside_the_answer(completion, reference, reward):
    assert _whole(completion, reference) == reward


@pytest.mark.parametrize("completion,reward", [
    # suppositions, recollections and doubts pass the phrase over; the answer stated before it stands
    ("A wrong answer is 12.", 0.0), ("The wrong answer is 12.", 0.0), ("Wrong answer: 12", 0.0),
    ("Incorrect answer: 12", 0.0), ("Not the answer: 12", 0.0), ("The answer is 12... no, that's not right.", 0.0),
    ("I doubt the answer is 12.", 0.0), ("It is unlikely that the answer is 12.", 0.0),
    ("Hypothetically, the answer is 12", 0.0), ("The answer is 12, which is false.", 0.0),
    ("One might think the answer is 12, but we need to account for overlaps. Let's count them: the first set has",
     0.0),
    ("It's tempting to say the answer is 12, but that ignores the order. Counting ordered pairs,", 0.0),
    ("The naive answer is 12, but we must subtract overlaps", 0.0),
    ("A student might claim the answer is 12. However, this double counts. Let me redo", 0.0),
    ("So the answer is 12.\n\nLet me verify: if the answer is 12, then 12 * 3 = 36, which matches.", 1.0),
    ("Therefore, the answer is 12.\n\nCheck: assuming the answer is 12, the total is 36. Correct.", 1.0),
    ("The answer is 12.\n\n(Our initial guess was that the answer is 10, but that was wrong.)", 1.0),
    ("The answer is 12. My previous answer is also 12, so we are consistent.", 1.0),
    ("The answer is 12.\n\nSuppose instead that the answer is 13; then 13*3=39, contradiction.", 1.0),
    ("Thus, the answer is 12. A careless student might think the answer is 13, which is wrong.", 1.0),
    ("Thus, the answer is 12. Note that a common wrong answer is 13.", 1.0),
    # and ordinary sentences still state their answer
    ("If she sells 3 boxes of 4, the answer is 12.", 1.0), ("To check, 3 * 4 = 12, so the answer is 12.", 1.0),
    ("Let me double-check: the answer is 12.", 1.0), ("Using the previous result, the answer is 12.", 1.0),
    ("Since the initial amount was 20 and she spent 8, the answer is 12.", 1.0),
    ("By the ratio test, the answer is 12.", 1.0), ("We verify that x=12 works; the answer is 12.", 1.0),
    ("My initial guess was 10, but after computing, the answer is 12.", 1.0),
    ("Whether or not she walks, the answer is 12.", 1.0), ("The answer is 12, since there is no contradiction.", 1.0),
    ("The answer is 12 because the wrong approach (adding) gives 7.", 1.0), ("I think the answer is 12.", 1.0),
    ("The answer is 12, and it is not possible to use fewer.", 1.0), ("Without a doubt, the answer is 12.", 1.0),
    ("No doubt the answer is 12.", 1.0), ("Our formula says the answer is 12.", 1.0),
])
def test_answer_is_sentences(completion, reward):
    assert _whole(completion, "12") == reward


@pytest.mark.parametrize("candidate,reference,reward", [
    # a program's float output, and scientific notation, follow the decimal rule
    ("1.4142135623730951", "\\sqrt2", 1.0), ("1.0471975511965976", "\\frac{\\pi}{3}", 1.0),
    ("0.7071067811865476", "\\frac{\\sqrt2}{2}", 1.0), ("22026.465794806718", "e^{10}", 1.0),
    ("0.8333333333333334", "\\frac56", 1.0), ("3.14159265358979312", "\\pi", 1.0),
    ("1.41421356237319", "\\sqrt2", 0.0), ("0.70710677", "\\frac{\\sqrt2}{2}", 0.0),
    ("4.8516519541 \\times 10^{8}", "e^{20}", 1.0), ("4.8516519541e8", "e^{20}", 1.0),
    ("2.0611536e-9", "e^{-20}", 1.0), ("2.0611536 \\times 10^{-9}", "e^{-20}", 1.0),
    ("1.41421356 \\times 10^{6}", "1000000\\sqrt2", 1.0), ("3.14159 \\times 10^{2}", "100\\pi", 1.0),
    ("3.14169 \\times 10^{2}", "100\\pi", 0.0), ("1.5 \\times 10^{3}", "1500", 1.0), ("1.6 \\times 10^{3}", "1500", 0.0),
    ("(3141592.)", "1000000\\pi", 0.0), ("[0, 3141592.]", "[0,1000000\\pi]", 0.0),
    # far points: cancellation in floating point is checked at 50 digits
    ("\\sqrt{x^{8}+1}-x^{4}", "\\frac{1}{\\sqrt{x^{8}+1}+x^{4}}", 1.0), ("\\sqrt{(x^{10}+1)^2}-x^{10}", "1", 1.0),
    ("(\\sqrt{x^8+1}-x^4)(\\sqrt{x^8+1}+x^4)", "1", 1.0), ("\\sqrt{x^{16}+2x^8+1} - x^8", "1", 1.0),
    # inequalities: only disjoint ones joined are a union
    ("x > -1 \\text{ and } x < 3", "\\mathbb{R}", 0.0), ("x > -1, x < 3", "\\mathbb{R}", 0.0),
    ("x \\ne 1, x \\ne 2", "\\mathbb{R}", 0.0), ("x > 3 \\text{ and } x > 100", "(3,\\infty)", 0.0),
    # choice letters
    ("\\text{A. Or B.}", "A", 0.0), ("\\text{A. Also B}", "A", 0.0), ("\\text{A. Maybe B}", "A", 0.0),
    ("\\text{A) Or C)}", "A", 0.0), ("\\text{A. B is also correct}", "A", 0.0),
    ("(C)\\ 2a", "C", 1.0), ("\\text{C) y = 2x}", "C", 1.0),
    # units written in common ways; hedge words are no unit
    ("25 \\text{ units}^2", "25 \\text{ square units}", 1.0), ("25 \\text{ sq. units}", "25 \\text{ units}^2", 1.0),
    ("7 \\text{ cubic units}", "7 \\text{ units}^3", 1.0), ("100 \\text{ degrees Celsius}", "100^\\circ C", 1.0),
    ("212 \\text{ degrees Fahrenheit}", "212^\\circ F", 1.0), ("100 \\text{ Celsius}", "100^\\circ C", 1.0),
    ("100 \\text{ degrees Celsius}", "100^\\circ F", 0.0),
    ("5 \\text{ boxes}", "5 \\text{ box}", 1.0), ("5 \\text{ classes}", "5 \\text{ class}", 1.0),
    ("5 \\text{ cherries}", "5 \\text{ cherry}", 1.0), ("5 \\text{ buses}", "5\\text{ bus}", 1.0),
    ("2 \\text{ PM}", "2\\text{ pm}", 0.0),  # (PM, pm: an abbreviation's case may be a prefix's) ("5 \\text{ years}", "5 \\text{ years old}", 1.0),
    ("5 \\text{ meters squared}", "5 \\text{ m}^2", 1.0), ("60 \\text{ kmph}", "60 \\text{ km/h}", 1.0),
    ("5 \\text{ Kg}", "5 \\text{ kg}", 1.0), ("5 \\text{ CM}", "5\\text{ cm}", 1.0),
    ("5 \\text{ maybe six}", "5", 0.0), ("5 \\text{ perhaps seven}", "5", 0.0), ("5 \\text{ else seven}", "5", 0.0),
])
def test_second_pass_neighbours(candidate, reference, reward):
    assert _reward(candidate, reference) == reward


# ===================================================================== the third attacker pass: regressions of the second
@pytest.mark.parametrize("completion,reference,reward", [
    ("\\boxed{12}\n\nPerhaps I should explain the last step.", "12", 1.0),
    ("The answer is (B). Maybe I should double-check option C.", "B", 1.0),
    ("The answer is 4, which is not possible to improve on.", "4", 1.0),
    ("5 horses", "5 horse", 1.0), ("5 cookies", "5 cookie", 1.0), ("5 movies", "5 movie", 1.0),
    ("5 calories", "5 calorie", 1.0), ("5 prizes", "5 prize", 1.0),
    ("5 \\text{ MW}", "5 \\text{ mW}", 0.0), ("5 \\text{ MB}", "5 \\text{ Mb}", 0.0), ("5 \\text{ kN}", "5 \\text{ kn}", 0.0),
    ("5 \\text{ nm}", "5 \\text{ Nm}", 0.0),
    ("1.2345e5", "123456", 0.0), ("1.235 \\times 10^5", "123456", 0.0), ("1.23456e5", "123456", 1.0),
    ("12.000000000000002", "12", 1.0), ("12.000000000001", "12", 1.0), ("12.00002", "12", 0.0),
    ("-3.1416e0", "-\\pi", 1.0), ("-4.8516519541 \\times 10^{8}", "-e^{20}", 1.0),
])
def test_third_pass(completion, reference, reward):
    text = completion if completion.startswith(("\\boxed{12}\n", "The answer")) else \
        "So the answer is $\\boxed{" + completion + "}$."
    assert _whole(text, reference) == reward


def test_retractions_between_boxes_are_read_in_linear_time():
    """Before: the clause search started over for every retraction word: 160 KB between two boxes took 29 s."""
    t0 = time.monotonic()
    verdict = VERIFIER("\\boxed{3}" + "if wrong, " * 16000 + "\\boxed{5}", {"answer": "5"})
    assert verdict.status in ("ok", "timeout") and time.monotonic() - t0 < 2.0
