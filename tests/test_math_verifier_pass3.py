"""The ``math`` verifier's third attacker pass, class by class: equivalences it must see and rewards it must refuse.

Each class is a table of neighbours, with the cases that must stay unequal beside the ones that must score.
``_reward(candidate, reference)`` boxes the candidate once, as a model would.
"""
from __future__ import annotations

import pytest

from raylign.verifiers.math.verifier import MathVerifier

VERIFIER = MathVerifier()


def _reward(candidate: str, reference) -> float:
    verdict = VERIFIER("So the answer is $\\boxed{" + candidate + "}$.", {"answer": reference})
    assert verdict.status == "ok", (candidate, reference, verdict)
    return verdict.reward


# ------------------------------------------------------------------------------------------- \max, \min, \gcd, \lcm
@pytest.mark.parametrize("candidate,reference,reward", [
    ("\\max(3,5)", "5", 1.0),
    ("\\min(3,5)", "3", 1.0),
    ("\\min(1, 2, 3)", "1", 1.0),
    ("\\max\\{3, 5\\}", "5", 1.0),
    ("\\gcd(12,18)", "6", 1.0),
    ("\\operatorname{gcd}(12, 18)", "6", 1.0),
    ("\\operatorname{lcm}(4,6)", "12", 1.0),
    ("\\text{lcm}(4, 6)", "12", 1.0),
    ("\\mathrm{lcm}(4, 6)", "12", 1.0),
    ("5", "\\max(3,5)", 1.0),
    ("\\max(\\sqrt{2}, \\frac{3}{2})", "\\frac32", 1.0),
    ("2\\max(1, 2)", "4", 1.0),
    ("\\max(x, y)", "\\max(y, x)", 1.0),  # symbolic: compared as a function of x and y
    ("\\max(x, y)", "x", 0.0),
    ("\\max(3,5)", "3", 0.0),
    ("\\max(3,5)", "\\min(3,5)", 0.0),  # not the same text "(3,5)" any more
    ("\\max(3,5)", "(3,5)", 0.0),
    ("\\gcd(4,6)", "12", 0.0),
    ("\\operatorname{lcm}(4,6)", "24", 0.0),
    ("\\gcd(1.5, 3)", "1.5", 0.0),  # no gcd of non-integers
    ("\\min(3,5)", "5", 0.0),
])
def test_max_min_gcd_lcm_evaluate(candidate, reference, reward):
    assert _reward(candidate, reference) == reward


# ------------------------------------------------------------------------------------------- ordinals and number words
@pytest.mark.parametrize("candidate,reference,reward", [
    ("3rd", "3", 1.0),
    ("3^{rd}", "3", 1.0),
    ("3^\\text{rd}", "3", 1.0),
    ("3^{\\text{rd}}", "3", 1.0),
    ("3^{\\rm rd}", "3", 1.0),
    ("3\\text{rd}", "3", 1.0),
    ("\\text{third}", "3", 1.0),
    ("third", "3", 1.0),
    ("Third", "3", 1.0),
    ("1st", "1", 1.0),
    ("2nd", "2", 1.0),
    ("11th", "11", 1.0),
    ("21st", "21", 1.0),
    ("\\text{three}", "3", 1.0),
    ("3", "3rd", 1.0),
    ("3", "\\text{third}", 1.0),
    ("3^{\\mathrm{rd}}", "3", 1.0),
    ("3\\textsuperscript{rd}", "3", 1.0),
    ("\\text{the third}", "3", 1.0),
    ("\\text{the third}", "4", 0.0),
    ("3rd", "4", 0.0),
    ("3^{rd}", "4", 0.0),
    ("\\text{third}", "4", 0.0),
    ("4th", "3", 0.0),
    ("3th", "3", 0.0),  # not a suffix 3 takes: a product of symbols, as before
    ("11st", "11", 0.0),
    ("\\text{second}", "3", 0.0),
])
def test_ordinals_and_number_words(candidate, reference, reward):
    assert _reward(candidate, reference) == reward


# ------------------------------------------------------------------------------------------- a trailing modulus
@pytest.mark.parametrize("candidate,reference,reward", [
    ("3 \\pmod{7}", "3", 1.0),
    ("3 \\pmod 7", "3", 1.0),
    ("3 \\mod 7", "3", 1.0),
    ("3 \\bmod 7", "3", 1.0),
    ("3 (\\text{mod } 7)", "3", 1.0),
    ("3 \\ (\\mathrm{mod}\\ 7)", "3", 1.0),
    ("3 (mod 7)", "3", 1.0),
    ("x \\equiv 3 \\pmod 7", "3", 1.0),
    ("x \\equiv 3 \\pmod{7}", "3", 1.0),
    ("n \\equiv 3 \\pmod{7}", "3", 1.0),
    ("x ≡ 3 (mod 7)", "3", 1.0),
    ("10 \\bmod 7", "3", 1.0),  # an integer is reduced: 10 mod 7 is 3
    ("x \\equiv 10 \\pmod 7", "3", 1.0),
    ("17 \\pmod{12}", "5", 1.0),
    ("3 \\pmod{7}", "3 \\pmod{7}", 1.0),
    ("3", "3 \\pmod{7}", 1.0),
    ("3 \\pmod{7}", "7", 0.0),
    ("x \\equiv 3 \\pmod 7", "7", 0.0),
    ("17 \\pmod{12}", "17", 0.0),
    ("3 \\pmod{7}", "3 \\pmod{5}", 0.0),  # both name a modulus: it must be the same
    ("3 \\pmod{7}", "4", 0.0),
    ("x \\equiv 3 \\pmod 7", "x \\equiv 4 \\pmod 7", 0.0),
])
def test_a_trailing_modulus_is_the_residue(candidate, reference, reward):
    assert _reward(candidate, reference) == reward


# ------------------------------------------------------------------------------------------- a function is no named quantity
@pytest.mark.parametrize("candidate,reference,reward", [
    ("\\sin = 5", "5", 0.0),
    ("\\log = 2", "2", 0.0),
    ("\\ln = 2", "2", 0.0),
    ("\\sqrt = 3", "3", 0.0),
    ("\\pi = 3", "3", 0.0),
    ("\\max = 3", "3", 0.0),
    ("\\cos x = 1/2", "1/2", 0.0),
    ("\\sin(x) = 5", "5", 0.0),
    ("5 = \\sin", "5", 0.0),
    ("\\cos x = \\frac12", "\\cos x = 1/2", 1.0),  # an equation equals the same equation
    ("f(x) = 5", "5", 1.0),
    ("\\alpha = 5", "5", 1.0),
    ("\\theta = 30^\\circ", "30", 1.0),
    ("x = 5", "5", 1.0),
])
def test_a_function_on_the_left_names_no_quantity(candidate, reference, reward):
    assert _reward(candidate, reference) == reward


# ------------------------------------------------------------------------------------------- digits of other scripts
@pytest.mark.parametrize("candidate,reference,reward", [
    ("１２", "12", 1.0),
    ("١٢", "12", 1.0),
    ("−１２", "-12", 1.0),
    ("\\frac{１}{２}", "0.5", 1.0),
    ("１２", "13", 0.0),
    ("−5", "5", 0.0),
    ("2²", "4", 1.0),
    ("2²", "2", 0.0),
    ("‒3", "-3", 1.0),  # figure dash, small and fullwidth hyphen-minus
    ("﹣3", "-3", 1.0),
    ("－3", "-3", 1.0),
    ("－3", "3", 0.0),
    ("10⁻³", "0.001", 1.0),  # a run of superscripts is one exponent
    ("x¹²", "x^{12}", 1.0),
    ("x¹²", "x^{1}x^{2}", 0.0),
    ("½", "\\frac12", 1.0),  # vulgar fractions; 2½ is a mixed number
    ("2½", "\\frac52", 1.0),
    ("2½", "1", 0.0),
    ("−¾", "-0.75", 1.0),
    ("3⁄4", "0.75", 1.0),
    ("5 cm²", "5 \\text{ cm}^2", 1.0),
    ("5 cm²", "5 \\text{ m}^2", 0.0),
])
def test_unicode_digits_and_minus(candidate, reference, reward):
    assert _reward(candidate, reference) == reward


# ------------------------------------------------------------------------------------------- "the answer is" text
LONG = "1" * 5000


@pytest.mark.parametrize("completion,reference,reward", [
    ("The answer is $3$ or $4$.", "3", 0.0),  # two answers joined: neither alone
    ("The answer is $3$ or $4$.", "4", 0.0),
    ("The answer is $3$, or $4$.", "3", 0.0),
    ("The answer is \\(3\\) and \\(4\\).", "3", 0.0),
    ("The answer is $3$ or $4$.", "3, 4", 1.0),
    ("The answer is $3$, so we are done.", "3", 1.0),
    ("The answer is $3$.", "3", 1.0),
    ("The answer is " + LONG + ".", LONG, 1.0),  # a long numeral is taken whole, not cut at the window
    ("The answer is " + LONG + ".", "1" * 2000, 0.0),
    ("The answer is $" + LONG + "$.", "1" * 2000, 0.0),
    ("The answer is $" + LONG + "$.", LONG, 1.0),
])
def test_answer_is_text(completion, reference, reward):
    verdict = VERIFIER(completion, {"answer": reference})
    assert (verdict.status, verdict.reward) == ("ok", reward), verdict


def test_answer_is_stays_linear_in_the_text():
    import time

    for text in ("the answer is " * 20000 + "5", "answer is: " * 50000 + "5", "The answer is 5" + " " * 500_000,
                 "The answer is " + "7" * 300_000):
        start = time.perf_counter()
        VERIFIER(text, {"answer": "5"})
        assert time.perf_counter() - start < 2.0, text[:40]  # linear: ~50 ms; quadratic would take minutes


# ------------------------------------------------------------------------------------------- minutes; a leading "="
@pytest.mark.parametrize("candidate,reference,reward", [
    ("5 \\text{ min}", "5", 1.0),  # minutes, not the command \min
    ("5 min", "5", 1.0),
    ("5\\text{ mins}", "5", 1.0),
    ("5 \\text{ min}", "5 \\text{ minutes}", 1.0),
    ("5 \\text{ min}", "5 \\text{ h}", 0.0),
    ("5 \\text{ min}", "6", 0.0),
    ("\\text{min}(3, 5)", "3", 1.0),
    ("= 5", "5", 1.0),
    ("\\equiv 5", "5", 1.0),
    ("\\equiv 3 \\pmod{7}", "3", 1.0),
    ("= 6", "5", 0.0),
    ("==5", "5", 0.0),
])
def test_minutes_and_a_leading_equals_sign(candidate, reference, reward):
    assert _reward(candidate, reference) == reward


# ------------------------------------------------------------------------------------------- \approx states a value
@pytest.mark.parametrize("candidate,reference,reward", [
    ("x \\approx 3", "3", 1.0),
    ("\\approx 3", "3", 1.0),
    ("x ≈ 3", "3", 1.0),
    ("x \\approx 3.1416", "\\pi", 1.0),  # the decimal rule: four significant digits
    ("x \\approx 3", "4", 0.0),
    ("3 \\approx 4", "3", 0.0),  # a false statement answers neither side
    ("3 \\approx 4", "4", 0.0),
    ("x \\approx 3.14", "\\pi", 0.0),
    ("x \\lt 3", "(-\\infty, 3)", 1.0),  # the commands listed beside \approx still apply
    ("x \\gt 3", "(3, \\infty)", 1.0),
    ("x \\gt 3", "[3, \\infty)", 0.0),
])
def test_approx_states_a_value(candidate, reference, reward):
    assert _reward(candidate, reference) == reward


# ------------------------------------------------------------------------------------------- named sets in words; \mp; oo
@pytest.mark.parametrize("candidate,reference,reward", [
    ("\\text{all real numbers except } 1", "\\mathbb{R} \\setminus \\{1\\}", 1.0),
    ("\\text{all real numbers except } 1 \\text{ and } 2", "\\mathbb{R} \\setminus \\{1, 2\\}", 1.0),
    ("\\text{all real numbers except } x = 1", "x \\ne 1", 1.0),
    ("\\text{all real numbers other than } 1", "(-\\infty, 1) \\cup (1, \\infty)", 1.0),
    ("\\text{all integers except } 0", "\\mathbb{Z} \\setminus \\{0\\}", 1.0),
    ("\\text{all real numbers except } 2", "\\mathbb{R} \\setminus \\{1\\}", 0.0),
    ("\\text{all real numbers}", "\\mathbb{R} \\setminus \\{1\\}", 0.0),
    ("\\text{all integers except } 0", "\\mathbb{Z}", 0.0),
    ("\\text{all real numbers except } 1", "\\mathbb{R}", 0.0),
    ("\\mp 2", "2, -2", 1.0),
    ("1 \\mp 2", "-1, 3", 1.0),
    ("\\mp 2", "2", 0.0),
    ("oo", "\\infty", 1.0),
    ("-oo", "\\infty", 0.0),
    ("oo", "0", 0.0),
])
def test_named_sets_in_words_mp_and_oo(candidate, reference, reward):
    assert _reward(candidate, reference) == reward


# ------------------------------------------------------------------------------------------- one item per box: not intervals
@pytest.mark.parametrize("completion,reference,reward", [
    ("\\boxed{2} and \\boxed{3}", "[2, 3]", 0.0),  # an interval is not its two endpoints
    ("\\boxed{2} and \\boxed{3}", "(2, 3]", 0.0),
    ("\\boxed{2} and \\boxed{3}", "[2, 3)", 0.0),
    ("\\boxed{2} and \\boxed{3}", "(2, 3)", 1.0),  # a tuple
    ("\\boxed{2} and \\boxed{3}", "\\{2, 3\\}", 1.0),
    ("\\boxed{2} and \\boxed{3}", "2, 3", 1.0),
    ("\\boxed{3} and \\boxed{2}", "(2, 3)", 0.0),
    ("\\boxed{[2, 3]}", "[2, 3]", 1.0),
])
def test_boxes_together_are_never_an_interval(completion, reference, reward):
    verdict = VERIFIER(completion, {"answer": reference})
    assert (verdict.status, verdict.reward) == ("ok", reward), verdict


# ------------------------------------------------------------------------------------------- text keeps its commands
@pytest.mark.parametrize("candidate,reference,reward", [
    ("\\int_0^1 x dx", "\\sum_0^1 x dx", 0.0),  # compared as text, the operators still differ
    ("\\sin_{x}", "\\cos_{x}", 0.0),
    ("\\forall x", "\\exists x", 0.0),
    ("\\uparrow", "\\downarrow", 0.0),
    ("A \\subset B", "A \\supset B", 0.0),
    ("p \\land q", "p \\lor q", 0.0),
    ("\\triangle ABC", "\\angle ABC", 0.0),
    ("\\lim_{x \\to 0} f", "\\liminf_{x \\to 0} f", 0.0),
    ("\\in t", "\\int", 0.0),
    ("\\int_0^1 x dx", "\\int_{0}^{1} x\\, dx", 1.0),  # spacing and braces still do not count
    ("\\lim_{x \\to 0} f", "\\lim_{x \\rightarrow 0} f", 1.0),
    ("\\emph{yes}", "yes", 1.0),  # formatting commands do not count
    ("\\mathrm{Yes}", "yes", 1.0),
    ("1, 2, \\ldots", "1, 2, \\cdots", 1.0),  # every ellipsis is one
    ("1, 2, \\ldots", "1,2,...", 1.0),
    ("1, 2, …", "1, 2, \\dots", 1.0),
    ("1, 2, 3, \\ldots", "1, 2, 3", 0.0),
])
def test_text_keeps_its_commands(candidate, reference, reward):
    assert _reward(candidate, reference) == reward


# ------------------------------------------------------------------------------------------- binomials: \binom52, \binom{n}{2}
@pytest.mark.parametrize("candidate,reference,reward", [
    ("\\dbinom52", "10", 1.0),  # the brace-less shorthand, like \frac12
    ("\\binom{5}2", "10", 1.0),
    ("\\binom5{2}", "10", 1.0),
    ("\\binom52", "5", 0.0),
    ("\\binom{n}{2}", "\\frac{n(n-1)}{2}", 1.0),  # a symbol's binomial is its falling factorial over k!
    ("\\binom{n+1}{2}", "\\frac{n(n+1)}{2}", 1.0),
    ("\\binom{n}{3}", "\\frac{n(n-1)(n-2)}{6}", 1.0),
    ("\\binom{n}{2}", "\\frac{n(n+1)}{2}", 0.0),
    ("\\binom{n}{2}", "n^2", 0.0),
])
def test_binomials(candidate, reference, reward):
    assert _reward(candidate, reference) == reward


# ------------------------------------------------------------------------------------------- a float reference
@pytest.mark.parametrize("candidate,reference,reward", [
    ("1e300", 1e300, 1.0),  # its repr, not the binary expansion's digits
    ("10^{300}", 1e300, 1.0),
    ("-1e300", -1e300, 1.0),
    ("1e20", 1e20, 1.0),
    ("100000000000000000000", 1e20, 1.0),
    ("2^{60}", 2.0**60, 1.0),  # a long mantissa: the exact whole number
    ("5", 5.0, 1.0),
    ("1e301", 1e300, 0.0),
    ("1e300", -1e300, 0.0),
    ("1000000000000000052504760255204420248704468581108159154915854115511802457988908195786371375080447864043704443"
     "832883878176942523235360430575644792184786706982848387200926575803737830233794788090059368953234970799945081119"
     "038967640880074652742780142494579258788820056842838115669472196386865459400540160", 1e300, 0.0),
])
def test_a_float_reference(candidate, reference, reward):
    assert _reward(candidate, reference) == reward


# ------------------------------------------------------------------------------------------- a named choice letter
@pytest.mark.parametrize("candidate,reference,reward", [
    ("\\text{Option A}", "A", 1.0),
    ("\\text{Answer: A}", "A", 1.0),
    ("\\text{option (B)}", "B", 1.0),
    ("\\text{Choice C}", "(C)", 1.0),
    ("\\text{answer is D}", "D", 1.0),
    ("\\text{Option A}", "B", 0.0),
    ("\\text{Option A or B}", "A", 0.0),  # two letters: neither
    ("\\text{choices}", "S", 0.0),  # a word, not "choice S"
    ("\\text{optional}", "A", 0.0),
    ("\\text{Option}", "O", 0.0),
])
def test_a_named_choice_letter(candidate, reference, reward):
    assert _reward(candidate, reference) == reward


# ------------------------------------------------------------------------------------------- x = 3, y = 4 as a point
@pytest.mark.parametrize("candidate,reference,reward", [
    ("y=4, x=3", "(3,4)", 1.0),  # the variables give the order
    ("x=3, y=4", "(3,4)", 1.0),
    ("b=2, a=1", "(1,2)", 1.0),
    ("z=5, y=4, x=3", "(3,4,5)", 1.0),
    ("(3,4)", "y=4, x=3", 1.0),
    ("y=3, x=4", "(3,4)", 0.0),
    ("x=4, y=3", "(3,4)", 0.0),
    ("4, 3", "(3,4)", 0.0),
    ("x=3, x=4", "(3,4)", 0.0),  # two values of x: no point
    ("x=3, x=4", "3, 4", 1.0),  # but two roots
])
def test_named_coordinates_as_a_point(candidate, reference, reward):
    assert _reward(candidate, reference) == reward


# ------------------------------------------------------------------------------------------- repeating decimals, any notation
@pytest.mark.parametrize("candidate,reference,reward", [
    ("0.333...", "1/3", 1.0),
    ("0.333\\ldots", "\\frac13", 1.0),
    ("0.1666\\ldots", "1/6", 1.0),
    ("0.142857142857\\ldots", "1/7", 1.0),
    ("0.999\\ldots", "1", 1.0),
    ("-0.333...", "-\\frac13", 1.0),
    ("0.(3)", "1/3", 1.0),
    ("0.1(6)", "1/6", 1.0),
    ("0.\\bar{3}", "1/3", 1.0),
    ("0.\\dot{3}", "1/3", 1.0),
    ("0.3\\dot{3}", "1/3", 1.0),
    ("0.\\dot{1}4285\\dot{7}", "1/7", 1.0),
    ("3.14159...", "\\pi", 1.0),  # no repeating block: the decimal, truncated
    ("0.(3)", "0", 0.0),  # not 0. times 3
    ("0.\\bar{3}", "0", 0.0),
    ("0.333...", "0.333", 0.0),
    ("0.3...", "1/3", 0.0),  # one digit is no repeating block
    ("0.1666\\ldots", "1/3", 0.0),
    ("3.14...", "\\pi", 0.0),  # too few digits for the decimal rule
])
def test_repeating_decimals(candidate, reference, reward):
    assert _reward(candidate, reference) == reward


# ------------------------------------------------------------------------------------------- accents make another symbol
@pytest.mark.parametrize("candidate,reference,reward", [
    ("\\bar{z}", "z", 0.0),  # the conjugate (or a mean) is not z
    ("\\overline{z}", "z", 0.0),
    ("\\hat{x}", "x", 0.0),
    ("\\tilde{x}", "x", 0.0),
    ("\\dot{x}", "x", 0.0),
    ("\\hat{\\theta}", "\\theta", 0.0),
    ("\\bar{x}", "\\bar{y}", 0.0),
    ("\\bar{x}", "\\overline{x}", 1.0),
    ("\\bar{x} + 1", "1 + \\bar x", 1.0),
    ("\\vec{v}", "v", 1.0),  # vector marks are notation
    ("\\mathbf{v}", "v", 1.0),
    ("\\overline{AB} = 5", "5", 1.0),
])
def test_accents_make_another_symbol(candidate, reference, reward):
    assert _reward(candidate, reference) == reward


# ------------------------------------------------------------------------------------------- last_number keeps a Unicode minus
LAST_NUMBER = MathVerifier(extract=["boxed", "answer_is", "last_number"])


@pytest.mark.parametrize("completion,reference,reward", [
    ("so we get −5", "-5", 1.0),
    ("so we get −5", "5", 0.0),  # the sign is part of the number
    ("x = −3.5", "-3.5", 1.0),
    ("x = −3.5" + " word" * 2000, "-3.5", 1.0),  # past the tail the scan starts from
    ("we get ١٢", "12", 1.0),
])
def test_last_number_keeps_a_unicode_minus(completion, reference, reward):
    verdict = LAST_NUMBER(completion, {"answer": reference})
    assert (verdict.status, verdict.reward) == ("ok", reward), verdict


# ------------------------------------------------------------------------------------------- ISO interval brackets
@pytest.mark.parametrize("candidate,reference,reward", [
    ("]0, 1[", "(0, 1)", 1.0),
    ("[0, 1[", "[0, 1)", 1.0),
    ("]0, 1]", "(0, 1]", 1.0),
    ("\\left]0,1\\right[", "(0,1)", 1.0),
    ("]-\\infty, 0[ \\cup ]0, +\\infty[", "\\mathbb{R} \\setminus \\{0\\}", 1.0),
    ("]0,1[ \\cup [2, 3]", "(0,1) \\cup [2,3]", 1.0),
    ("]0, 1[", "[0, 1]", 0.0),
    ("]0, 1[", "(0, 1]", 0.0),
    ("[0, 1[", "[0, 1]", 0.0),
])
def test_iso_interval_brackets(candidate, reference, reward):
    assert _reward(candidate, reference) == reward


# ------------------------------------------------------------------------------------------- a ratio a : b
@pytest.mark.parametrize("candidate,reference,reward", [
    ("3:4", "\\frac34", 1.0),
    ("\\frac{3}{4}", "3:4", 1.0),
    ("6:8", "3:4", 1.0),
    ("1 : 2", "0.5", 1.0),
    ("100:1", "100", 1.0),
    ("3:4", "4:3", 0.0),
    ("3:4:5", "6:8:10", 0.0),  # three terms stay as written
    ("x:y", "x/y", 0.0),
    ("10:30", "7:21", 0.0),  # a time of day is no ratio
    ("10:30", "10:30", 1.0),
    ("3:00", "3", 0.0),
])
def test_a_ratio(candidate, reference, reward):
    assert _reward(candidate, reference) == reward


# ------------------------------------------------------------------------------------------- inverse functions: \sec^{-1}
@pytest.mark.parametrize("candidate,reference,reward", [
    ("\\sec^{-1}(2)", "\\pi/3", 1.0),
    ("\\csc^{-1}(2)", "\\pi/6", 1.0),
    ("\\cot^{-1}(1)", "\\pi/4", 1.0),
    ("\\operatorname{arcsec}(2)", "\\pi/3", 1.0),
    ("\\sinh^{-1} x", "\\ln(x+\\sqrt{x^2+1})", 1.0),
    ("(\\sec x)^{-1}", "\\cos x", 1.0),  # a power of the value, written as one
    ("\\sec^{-1} x", "\\cos x", 0.0),  # arcsec, not the reciprocal
    ("\\sinh^{-1} x", "\\frac{1}{\\sinh x}", 0.0),
    ("\\cot^{-1}(1)", "1", 0.0),
])
def test_inverse_functions(candidate, reference, reward):
    assert _reward(candidate, reference) == reward


# ------------------------------------------------------------------------------------------- within the tolerance, but written apart
@pytest.mark.parametrize("candidate,reference,reward", [
    ("1000000\\pi + 1", "1000000\\pi", 0.0),  # 3e-7 apart, relatively: an answer off by one
    ("\\pi + 10^{-10}", "\\pi", 0.0),
    ("\\sqrt{2} + 10^{-9}", "\\sqrt2", 0.0),
    ("x + 10^{-9}", "x", 0.0),
    ("1000000 x + 1", "1000000x", 0.0),
    ("\\frac{\\sqrt6-\\sqrt2}{4}", "\\sin 15^\\circ", 1.0),  # rounding apart only
    ("\\frac{\\sqrt2}{2}", "\\frac{1}{\\sqrt2}", 1.0),
    ("\\arctan 1 + \\arctan 2 + \\arctan 3", "\\pi", 1.0),
    ("\\cos(\\pi/5)", "\\frac{1+\\sqrt5}{4}", 1.0),
    ("e^{i\\pi}", "-1", 1.0),
    ("(-8)^{1/3}", "-2", 1.0),
    ("2\\sin x\\cos x", "\\sin 2x", 1.0),
    ("\\sqrt[3]{x^3}", "x", 1.0),
    ("3.14159265358979", "\\pi", 1.0),  # a decimal keeps the decimal rule
    ("1.4142136", "\\sqrt2", 1.0),
    ("\\sqrt{10^{20}+1}", "10^{10}", 0.0),  # the same double: only the precise check tells them apart
    ("10^{10}", "\\sqrt{10^{20}+1}", 0.0),
    ("\\sqrt{10^{40}+1}", "10^{20}", 0.0),  # 5e-41 apart, relatively
    ("\\sqrt{10^{20}}", "10^{10}", 1.0),
    ("\\sqrt{10^{20}+2\\cdot10^{10}+1}", "10^{10}+1", 1.0),  # equal at every precision
    ("\\sqrt{2}\\cdot\\sqrt{2}", "2", 1.0),
    ("\\pi^{2}", "\\pi\\cdot\\pi", 1.0),
])
def test_within_the_tolerance_but_written_apart(candidate, reference, reward):
    assert _reward(candidate, reference) == reward


# ------------------------------------------------------------------------------------------- last_number takes a long numeral whole
@pytest.mark.parametrize("completion,reference,reward", [
    ("we get " + "1" * 10000, "1" * 4000, 0.0),  # not its last 4,000 digits
    ("we get " + "1" * 10000, "1" * 10000, 1.0),
    ("we get " + "1" * 10000 + " apples", "1" * 10000, 1.0),
    ("we get " + "2" * 10000 + " and then " + "x" * 5000, "2" * 10000, 1.0),
    ("we get -" + "1" * 10000, "-" + "1" * 10000, 1.0),
    ("x" * 10000 + " 5", "5", 1.0),
    ("1," * 3000 + "5", "5", 1.0),
])
def test_last_number_takes_a_long_numeral_whole(completion, reference, reward):
    verdict = LAST_NUMBER(completion, {"answer": reference})
    assert (verdict.status, verdict.reward) == ("ok", reward), verdict


@pytest.mark.parametrize("completion,reference,reward", [
    ("\\boxed " + "1" * 1000, "1" * 199, 0.0),  # a brace-less box is not cut at 200 characters
    ("\\boxed " + "1" * 1000, "1" * 1000, 1.0),
    ("\\boxed 5", "5", 1.0),
])
def test_a_brace_less_box_is_taken_whole(completion, reference, reward):
    verdict = VERIFIER(completion, {"answer": reference})
    assert (verdict.status, verdict.reward) == ("ok", reward), verdict


@pytest.mark.parametrize("candidate,reference,reward", [
    ("±3", "3, -3", 1.0),  # Unicode ± and ∓ are \pm and \mp
    ("x = ±3", "\\pm 3", 1.0),
    ("∓3", "3, -3", 1.0),
    ("2±1", "1, 3", 1.0),
    ("±3", "3", 0.0),
    ("2±1", "3", 0.0),
    ("∛8", "2", 1.0),  # and ∛, ∜, ⋅ are roots and a product
    ("∜16", "2", 1.0),
    ("2∛2", "\\sqrt[3]{16}", 1.0),
    ("3⋅4", "12", 1.0),
    ("∛8", "8", 0.0),
])
def test_unicode_plus_minus(candidate, reference, reward):
    assert _reward(candidate, reference) == reward


# ------------------------------------------------------------------------------------------- "no solution" is the empty set
@pytest.mark.parametrize("candidate,reference,reward", [
    ("\\text{no solution}", "\\emptyset", 1.0),
    ("\\emptyset", "\\text{No solution}", 1.0),
    ("\\text{No real solutions}", "\\varnothing", 1.0),
    ("\\{\\}", "\\text{there is no solution}", 1.0),
    ("\\text{no solution}", "0", 0.0),
    ("\\text{no solution}", "\\text{none}", 0.0),  # "none" may name a choice or a count
    ("\\text{none}", "\\emptyset", 0.0),
    ("\\text{no solution}", "\\{0\\}", 0.0),
    ("\\text{no solution}", "\\mathbb{R}", 0.0),
])
def test_no_solution_is_the_empty_set(candidate, reference, reward):
    assert _reward(candidate, reference) == reward
