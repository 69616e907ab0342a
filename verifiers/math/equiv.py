"""Decide whether two math answers are equivalent (one job: two strings in, equal or not out).

Pipeline: ``clean`` (LaTeX spacing, ``\\text{}`` units, degrees, dollars...; ``normalize``) ->
``parse_answer`` (a *value*: a scalar expression, a tuple/interval, a set, a matrix, an equation, an inequality,
a multiple-choice letter or plain text; ``values``) -> ``equal`` (here). Scalars are parsed by our own small
LaTeX parser into a tuple AST (``parse``: no ``eval``, no third-party LaTeX grammar: sympy's ``parse_latex``
needs antlr4 4.11 exactly, which math-verify's 4.13 breaks) and compared by, in order (``evaluate``):

1. exact rational arithmetic (``fractions.Fraction``) when both sides are rational numbers;
2. complex floating-point evaluation at fixed points for the free symbols (until three agree) and then at two random
   ones, all of which must agree (relative tolerance ``rel_tol``): identities such as ``2\\sin x\\cos x`` ==
   ``\\sin 2x`` hold, an expression built to agree at the fixed points does not; two expressions written without a
   decimal literal that agree within the tolerance are checked again at 50 digits (mpmath), so the tolerance
   covers rounding only: ``1000000\\pi + 1`` is not ``1000000\\pi``, ``x + 10^{-9}`` is not ``x``;
3. ``sympy.simplify(a - b) == 0`` when (2) cannot evaluate either side at any point (small expressions only;
   ``simplify`` cannot be interrupted, so a candidate undefined everywhere beside a reference that has values,
   ``0^{-x^2-1} + ...`` or ``\\frac{...}{x-x}``, is unequal without it).

Policies (documented in the verifier's docstring too):

- a decimal literal with >= ``decimal_min_sig`` significant digits (default 4) matches a non-decimal value that
  rounds or truncates to it (``0.3333`` == ``1/3``, ``3.1416`` == ``\\pi``; ``0.33`` != ``1/3``); two decimal
  literals or two rationals must be exactly equal (``1000000`` != ``1000001``);
- percentages: ``50%`` equals ``50`` and ``0.5`` (``percent="both"``; ``"number"``/``"fraction"`` pick one);
- ``1,000`` (groups of three digits, no spaces) is one thousand; ``1, 000`` and ``1,2`` are lists;
- tuples ``(1,2)`` are ordered; ``\\{1,2\\}`` sets and bare lists ``1, 2`` (lists of solutions) are not;
  brackets must match, so ``(0,1]`` != ``[0,1]``; ``(1,2)`` as a tuple and as an open interval are the same value;
- the reference decides between set and multiset: a set ignores repeats (``\\{1,1,2\\}`` == ``\\{1,2\\}``), a
  bare-list reference counts them (``1, 1, 2`` != ``1, 2``);
- set-like values (``sets``) compare by content: set algebra is carried out (``[0,1] \\cup [1,3]`` == ``[0,3]``,
  ``\\{1,2,3\\} \\setminus \\{2\\}`` == ``\\{1,3\\}``), ``\\mathbb{R}`` == ``(-\\infty, \\infty)``, ``\\mathbb{Z}^+`` ==
  ``\\{1, 2, 3, \\ldots\\}``, ``\\mathbb{N}`` != ``\\mathbb{Z}``;
- ``x = 3`` equals ``3`` when the left side is a plain variable or a named quantity (``AB = 5``, ``\\angle ABC =
  30^\\circ``, ``\\text{Area} = 25``), and so does a true computation ending in it
  (``5 + 1 = 6`` is 6; ``2 + 2 = 5`` is neither 4 nor 5, ``2x = 6`` is not 6); a chain's steps must all hold
  (``x = 2+3 = 6`` is not 6); two equations are equal if their sides are, or if ``lhs - rhs`` of one is a constant
  non-zero multiple of the other's;
- multiple-choice letters (``(B)``, ``\\text{(B)}``, ``B``) are compared case-insensitively;
- a whole answer ``2\\frac{1}{2}``, ``2{1 \\over 2}`` or ``2 1/2`` is a mixed number (5/2), not a product (an
  improper fraction after an integer, ``2\\frac{3}{2}``, is: 3);
- ``\\max``, ``\\min``, ``\\gcd`` and ``\\operatorname{lcm}`` of a bracketed list are evaluated (``\\max(3,5)`` ==
  ``5``; ``\\max(x, y)`` stays a function of x and y);
- a whole answer that is a position or a number word is its number (``3rd``, ``3^{\\text{rd}}``, ``\\text{third}``,
  ``three`` == ``3``; the suffix must be the number's own: ``3th`` is not);
- a trailing modulus is dropped and an integer reduced by it (``3 \\pmod{7}`` == ``3``, ``x \\equiv 10 \\pmod 7`` ==
  ``3``, ``17 \\pmod{12}`` != ``17``); two answers that both name a modulus must name the same one;
- ``x \\approx 3`` states the value 3 as ``x = 3`` does, and an answer that starts with ``=``/``\\equiv`` is what
  follows it;
- a function or constant on the left of an equation names no quantity (``\\sin = 5`` and ``\\cos x = \\frac12``
  are not ``5``/``\\frac12``; ``f(x) = 5`` is 5); digits of any script are digits (``１２`` == ``12``);
- ``e`` is Euler's number and ``i`` the imaginary unit; ``\\log`` without a base is the natural logarithm;
- words (``\\text{no solution}``, ``Monday``) compare as lower-cased text; text keeps its commands by name
  (``\\int_0^1 x\\,dx`` is not ``\\sum_0^1 x\\,dx``), formatting ones aside, and every ellipsis is one;
- an inequality equals the interval it describes (``x \\ge 3`` == ``[3,\\infty)``); ``0.\\overline{3}``, ``0.\\bar{3}``,
  ``0.(3)`` and ``0.333...`` are 1/3 (a block written twice before an ellipsis repeats; ``3.14159...`` is a
  truncated decimal);
- degree marks are dropped (``30^\\circ`` == ``30``), radians are not converted (``\\pi/6`` != ``30^\\circ``), but a
  trigonometric function of degrees is taken in degrees (``\\sin 30^\\circ`` == ``\\frac12``).

Guards: powers, factorials and binomials are size-checked before they are computed (``TooLarge``); the parser
nests at most ``MAX_DEPTH`` levels; a value too large to compute exactly or to evaluate in floating point can only
match its own structural copy, otherwise the pair is ``Unjudgeable`` (the verifier reports status ``invalid``).
Nothing here uses signals or threads: the time budget is checked between steps (``BudgetExceeded``).

This module is the pipeline's public face: ``clean``, ``parse_answer``, ``kind``, ``describe`` and the errors are
re-exported from the modules that define them.
"""
from __future__ import annotations

import cmath
import math
import hashlib
import random
import re
import time
from dataclasses import dataclass
from fractions import Fraction

from raylign.verifiers.math.evaluate import (EvalError, evaluate, precise_value, precisely_different, precisely_equal,
                                             safe_rational, sympy_equal)
from raylign.verifiers.math.normalize import clean
from raylign.verifiers.math.parse import E, I, INF, TooLarge, Unjudgeable, contains, symbols
from raylign.verifiers.math.sets import finite_set_equal, real_number, set_equal
from raylign.verifiers.math.values import Scalar, describe, kind, parse_answer, scalar_from_node

__all__ = ["BudgetExceeded", "Options", "TooLarge", "Unjudgeable", "clean", "describe", "equal", "kind",
           "parse_answer", "scalar_equal"]


class BudgetExceeded(Exception):
    """The internal time budget ran out: the verifier reports ``timeout``."""


@dataclass(frozen=True)
class Options:
    rel_tol: float = 1e-6  # relative tolerance of the floating-point comparison (DEFAULT_REL_TOL)
    decimal_min_sig: int = 4  # significant digits a decimal needs to match a value it rounds/truncates
    percent: str = "both"  # what 50% equals: both | number (50) | fraction (0.5)


_POINTS = (0.8326, -1.2649, 1.9173, 0.3711, -0.6137, 2.4819, -2.0931, 1.3457)
_RANDOM_POINTS = 2
FAR = "far"  # what _sample_points says of a far point (checked at 50 digits where floating point disagrees)
_FAR = ((4.5, 12.0), (12.0, 40.0))  # magnitudes of the far points (log-uniform), one positive and one negative each
_CHOICE_PREFIX = re.compile(r"\(([A-Za-z])\)|([A-Za-z])(?:[\s:.)]|$)")
# right after a choice letter: another one ("A. B.", "A) or C)", "A. Maybe B", "A. B is also correct"; the text has
# lost its spaces: "a.orb.")
_ANOTHER_LABEL = re.compile(r"\([a-jA-J]\)")  # a second labelled choice after the first: "(a) ... (c)"
_OTHER_CHOICE = re.compile(r"[\s,;/&]*(?:or|also|maybe|perhaps|possibly|and)?[\s,]*\(?[a-jA-J](?:[.):]|$|is)")


DEFAULT_REL_TOL = 1e-6


def _check(deadline: float | None) -> None:
    if deadline is not None and time.monotonic() > deadline:
        raise BudgetExceeded("time budget exceeded while comparing")


def _non_analytic(node) -> bool:
    """Whether an expression has a piece that is not analytic (absolute values, floors, maxima, roots, fractional
    powers): such expressions can agree on an interval and differ elsewhere (``|x - 5|`` is ``5 - x`` below 5),
    which analytic ones cannot."""
    def rough(m) -> bool:
        if m[0] in ("abs", "floor", "ceil", "agg", "root"):
            return True
        if m[0] == "pow":
            e = safe_rational(m[2])
            return e is None or e.denominator != 1
        return False
    return contains(node, rough)


def _sample_points(syms: list[str], deadline: float | None, key: object, far: bool = True):
    """The points at which expressions in ``syms`` are compared, as ``(bindings, random)``; checks the budget
    first. The random ones (``_RANDOM_POINTS`` per call) keep an expression built to agree at the fixed points
    (``x + (x-0.8326)(x+1.2649)...``) from passing. They are drawn from a generator seeded by a hash of ``key``
    (the two expressions compared), so the same pair always gets the same verdict (a run, its resume and a
    re-run score alike) while any change to a candidate moves the points it is checked at."""
    rng = random.Random(hashlib.sha256(repr(key).encode()).digest())
    for p in range(len(_POINTS)):
        _check(deadline)
        yield {s: complex(_POINTS[(p + 3 * j) % len(_POINTS)] + 0.137 * j) for j, s in enumerate(syms)}, False
    for _ in range(_RANDOM_POINTS):
        _check(deadline)
        yield {s: complex(rng.choice((-1, 1)) * rng.uniform(0.35, 2.4)) for s in syms}, True
    for low, high in _FAR if far else ():  # and far from 0 on each side (``far``): |x - 5| is 5 - x only below
        for sign in (1, -1):  # 5, min(x, 5) is x only there
            _check(deadline)
            yield {s: complex(sign * math.exp(rng.uniform(math.log(low), math.log(high)))) for s in syms}, FAR


def _close(a: complex, b: complex, tol: float) -> bool:
    d = abs(a - b)
    return d <= tol * max(abs(a), abs(b)) or d <= 1e-12


def _finite(v: complex) -> bool:
    return cmath.isfinite(v)


def _exactly_apart(xn, yn, va: complex, vb: complex, o: Options, env=None) -> bool:
    """Whether two expressions that agree within the tolerance (at the point ``env``) are in fact different
    numbers (``1000000\\pi + 1`` is not ``1000000\\pi``, ``x + 10^{-9}`` not ``x``, ``1000000\\pi + 1.0`` not
    ``1000000\\pi``): the tolerance is for rounding in floating point, not for a difference the answer wrote. A
    decimal literal is the exact number it writes (a bare decimal that approximates the other side is judged by
    the decimal rule instead); equal floats are checked too (sqrt(10^{20}+1) is 10^{10} in floating point). A
    ``rel_tol`` looser than the default is an allowance the config asked for: decimal literals are then
    approximations within it."""
    if o.rel_tol > DEFAULT_REL_TOL and any(contains(n, lambda m: m[0] == "num" and "." in m[2]) for n in (xn, yn)):
        return False
    return precisely_different(xn, yn, env)


def _decimal_rule(x, y, o: Options, exact: bool) -> bool:
    """A decimal (a bare decimal literal with at least one place, or one in scientific notation, ``4.85 \\times
    10^{8}``; >= decimal_min_sig significant digits) matches a value that is not one when it is that value
    rounded, or truncated toward zero, to the decimal's places: 3.1416 and 3.1415 for pi, 0.3333 for 1/3, never
    3.1417 or 0.3334. A decimal of ``MACHINE_SIG`` significant digits or more (a program's float output,
    ``1.4142135623730951``) may be off by a unit in its last place or by a double's rounding. Rational values
    are compared exactly, others at 60 digits, or 30 past the decimal's own digits."""
    for vr, vd, wn, wr in _decimal_sides(x, y, o):
        if exact:
            target = wr
            if target.denominator == 1 and vd[0] <= 0:
                continue  # an integer is never approximated short of its units digit (1.2345e5 is not 123456)
        else:
            target = precise_value(wn, digits=_decimal_digits(vd))
            if target is None:
                continue
        if _rounds_or_truncates(vr, target, vd[0], vd[1] >= MACHINE_SIG, _decimal_digits(vd)):
            return True
    return False


MACHINE_SIG = 12  # significant digits from which a decimal is taken for a program's floating-point output


def _decimal_digits(vd: tuple[int, int]) -> int:
    """The working digits for a decimal of ``(places, significant digits)``: 60, or 30 past its own digits."""
    return max(60, vd[1] + 30, vd[0] + 30)


def _decimal_sides(x, y, o: Options):
    """``(value, (places, significant digits), other node, other value)`` for each side that is a decimal the
    decimal rule applies to (a bare decimal with at least one place, or one in scientific notation, with
    ``decimal_min_sig`` digits or more) against another that is no decimal at all."""
    for (vn, vr, vd), (wn, wr, wd) in ((x, y), (y, x)):
        if vd is not None and vd[0] < 1:
            continue  # "3141592." is an integer written with a point, not an approximation to any places
        vd = vd or _scientific(vn)
        if vd is None or wd is not None or _scientific(wn) is not None or vd[1] < o.decimal_min_sig or vr is None:
            continue
        yield vr, vd, wn, wr


def _decimal_against_value(x, y, o: Options) -> bool:
    """Whether one side is a decimal the decimal rule applies to and the other is no decimal at all."""
    return next(_decimal_sides(x, y, o), None) is not None


def _scientific(node):
    """``(places, significant digits)`` of a decimal in scientific notation (``4.8516 \\times 10^{8}``: places
    4 - 8 = -4), else None."""
    if node[0] == "neg":
        return _scientific(node[1])
    if node[0] != "mul" or len(node[1]) != 2:
        return None
    mantissa, power = node[1]
    if mantissa[0] == "neg":  # -3.1416e0
        mantissa = mantissa[1]
    if mantissa[0] != "num" or "." not in mantissa[2] or power[0] != "pow" or power[1][0] != "num" \
            or power[1][1] != 10:
        return None
    e = power[2]
    sign = -1 if e[0] == "neg" else 1
    e = e[1] if e[0] == "neg" else e
    if e[0] != "num" or e[1].denominator != 1 or abs(e[1]) > 400:
        return None
    digits = mantissa[2].lstrip("+-")
    places = len(digits.split(".", 1)[1])
    sig = len(digits.replace(".", "").lstrip("0"))
    return places - sign * int(e[1]), sig


def _rounds_or_truncates(dec: Fraction, target, places: int, machine: bool = False, digits: int = 60) -> bool:
    """Whether ``dec`` (a decimal with ``places`` places, negative for tens, hundreds...) is ``target`` (a
    Fraction, or a real mpmath number) rounded (half a unit either way) or truncated toward zero to that many
    places; ``machine``: also within a unit in the last place, or a double's rounding (2^-52 relative)."""
    unit = Fraction(10) ** -places
    if isinstance(target, Fraction):
        gap = target - dec
        if abs(gap) <= unit / 2 or (machine and abs(gap) <= max(unit, abs(target) * Fraction(1, 2 ** 51))):
            return True
        return (dec == 0 or (dec > 0) == (target > 0)) and abs(dec) <= abs(target) and abs(gap) < unit
    import mpmath
    with mpmath.workdps(digits):
        d = mpmath.mpf(dec.numerator) / dec.denominator
        u = mpmath.mpf(10) ** -places
        gap = target - d
        if abs(gap) <= u / 2 or (machine and abs(gap) <= max(u, abs(target) * mpmath.mpf(2) ** -51)):
            return True
        return bool((dec == 0 or (d > 0) == (target > 0)) and abs(d) <= abs(target) and abs(gap) < u)


def _alternatives(a: Scalar, b: Scalar, o: Options):
    base = (a.node, a.rat, a.dec)
    if not a.pct or b.pct or o.percent == "number":
        return [base]
    hundredth = (("mul", (a.node, ("inv", ("num", Fraction(100), "100")))),
                 None if a.rat is None else a.rat / 100, None if a.dec is None else (a.dec[0] + 2, a.dec[1]))
    return [hundredth] if o.percent == "fraction" else [base, hundredth]


def scalar_equal(a: Scalar, b: Scalar, o: Options, deadline=None) -> bool:
    if a.canon == b.canon and a.pct == b.pct:
        return True
    if a.huge or b.huge:
        raise TooLarge("answer too large to evaluate and not written the same way as the reference")
    for x in _alternatives(a, b, o):
        for y in _alternatives(b, a, o):
            if _numbers_equal(x, y, o, deadline):
                return True
    return False


_EVAL_ERRORS = (ArithmeticError, ValueError, EvalError, KeyError)


def _numbers_equal(x, y, o: Options, deadline) -> bool:
    (xn, xr, _), (yn, yr, _) = x, y
    if xr is not None and yr is not None:
        return xr == yr or _decimal_rule(x, y, o, exact=True)
    if contains(xn, lambda n: n == INF) or contains(yn, lambda n: n == INF):
        return False  # infinities only match structurally (checked by the caller)
    syms = sorted(symbols(xn) | symbols(yn))
    if not syms:
        try:
            va, vb = evaluate(xn, {}), evaluate(yn, {})
            if _finite(va) and _finite(vb):
                if o.rel_tol <= DEFAULT_REL_TOL and _decimal_against_value(x, y, o):
                    return _decimal_rule(x, y, o, exact=False)  # (it decides alone: an equal value rounds to it)
                if _close(va, vb, o.rel_tol) and not _exactly_apart(xn, yn, va, vb, o):
                    return True
                return _decimal_rule(x, y, o, exact=False)
            raise OverflowError
        except OverflowError:
            raise TooLarge("answer overflows floating point and is not written like the reference") from None
        except _EVAL_ERRORS:
            return False  # undefined (1/0, log 0) and not written like the reference
    agreed = overflowed = defined = 0
    for env, drawn in _sample_points(syms, deadline, (xn, yn), _non_analytic(xn) or _non_analytic(yn)):
        if agreed >= 3 and not drawn:
            continue  # three fixed points agree: the random ones decide the rest
        values = []
        for node in (xn, yn):
            try:
                values.append(evaluate(node, env))
                defined += 1
            except OverflowError:
                values.append(None)
                overflowed += 1
            except _EVAL_ERRORS:
                values.append(None)
        if None in values:
            continue
        va, vb = values
        if not (_finite(va) and _finite(vb)):
            overflowed += 1
            continue
        if not _close(va, vb, o.rel_tol) and drawn is FAR and precisely_equal(xn, yn, env):
            agreed += 1  # far from 0, floating point cancels (\sqrt{x^8+1} - x^4); 50 digits do not
            continue
        if not _close(va, vb, o.rel_tol) or (not agreed and _exactly_apart(xn, yn, va, vb, o, env)):
            return False  # (the first agreeing point is checked at 50 digits too: x + 10^{-9} is not x)
        agreed += 1  # the random points are always tried: agreeing at the fixed ones is not enough
    if agreed >= 2:
        return True
    if overflowed:
        raise TooLarge("answer overflows floating point and is not written like the reference")
    if defined:
        return False  # one side has values where the other has none (1/(x-x) beside x): not the same function
    _check(deadline)
    # neither side evaluates anywhere: the only case sympy is given (bounded by the budget's remaining time)
    same = sympy_equal(xn, yn, None if deadline is None else deadline - time.monotonic())
    _check(deadline)
    return bool(same)


def _equations_proportional(r, c, deadline) -> bool:
    """lhs1 - rhs1 == k * (lhs2 - rhs2) for a constant k != 0 (checked at a few points)."""
    if not all(v[0] == "scalar" for v in (r[1], r[2], c[1], c[2])):
        return False
    nodes = [r[1][1], r[2][1], c[1][1], c[2][1]]
    if any(s.huge for s in nodes):
        raise TooLarge("equation too large to evaluate")
    f = ("add", (nodes[0].node, ("neg", nodes[1].node)))
    g = ("add", (nodes[2].node, ("neg", nodes[3].node)))
    syms = sorted(symbols(f) | symbols(g))
    ratio, agreed = None, 0
    for env, drawn in _sample_points(syms, deadline, (f, g), _non_analytic(f) or _non_analytic(g)):
        if agreed >= 3 and not drawn:
            continue
        try:
            fa, ga = evaluate(f, env), evaluate(g, env)
        except _EVAL_ERRORS:
            continue
        if not (_finite(fa) and _finite(ga)):
            continue
        if abs(ga) < 1e-12 or abs(fa) < 1e-12:
            if abs(ga) < 1e-12 and abs(fa) < 1e-12:
                continue
            return False
        q = fa / ga
        if ratio is None:
            ratio = q
        elif not _close(q, ratio, 1e-8):
            return False
        agreed += 1
    return agreed >= 3


_FLIP = {"<": ">", ">": "<", "≤": "≥", "≥": "≤", "≠": "≠"}
_NEG_INF = ("scalar", scalar_from_node(("neg", INF)))
_POS_INF = ("scalar", scalar_from_node(INF))


def _normalize_rel(v):
    parts, ops = v[1], v[2]
    if all(op in "><≥≤" for op in ops) and all(op in ">≥" for op in ops):
        return parts[::-1], tuple(_FLIP[op] for op in ops[::-1])
    return parts, ops


def _abs_linear(part):
    """``(variable, centre)`` for a side ``|x - a|`` (``|x|``, ``|x + a|``, ``|a - x|``) with a rational ``a``."""
    if part[0] != "scalar" or part[1].node[0] != "abs":
        return None
    inner = part[1].node[1]
    if inner[0] == "sym":
        return inner[1], Fraction(0)
    if inner[0] != "add" or len(inner[1]) != 2:
        return None
    for var, const in (inner[1], inner[1][::-1]):
        sign = 1
        if var[0] == "neg":
            var, sign = var[1], -1
        if var[0] != "sym":
            continue
        c = safe_rational(const)
        if c is not None:
            return var[1], -c * sign  # |x + c| = |x - (-c)|; |c - x| = |x - c|
    return None


def _scalar_of(value: Fraction):
    return ("scalar", scalar_from_node(("num", value, str(value))))


def _abs_relation(v, as_set: bool):
    """``|x - a| < b`` as the interval ``(a - b, a + b)``; ``|x - a| > b`` as the union outside it (a set only,
    ``as_set``); None for anything else."""
    parts, ops = _normalize_rel(v)
    if len(parts) != 2 or not all(op in "<≤" for op in ops):
        return None
    inside = _abs_linear(parts[0])
    side = parts[1] if inside else parts[0]
    inside = inside or _abs_linear(parts[1])
    bound = safe_rational(side[1].node) if inside and side[0] == "scalar" else None
    if bound is None or bound < 0:
        return None
    centre = inside[1]
    low, high = _scalar_of(centre - bound), _scalar_of(centre + bound)
    closed = ops[0] == "≤"
    if _abs_linear(parts[0]):  # |x - a| < b: between
        return ("seq", "[" if closed else "(", "]" if closed else ")", (low, high))
    if not as_set:
        return None
    return ("union", (("seq", "(", "]" if closed else ")", (_NEG_INF, low)),
                      ("seq", "[" if closed else "(", ")", (high, _POS_INF))))


def _rel_to_interval(v):
    parts, ops = _normalize_rel(v)
    if not all(op in "<≤" for op in ops):
        return None
    absolute = _abs_relation(v, as_set=False)
    if absolute is not None:
        return absolute
    is_var = [p[0] == "scalar" and p[1].node[0] == "sym" for p in parts]
    if len(parts) == 2 and is_var[0]:
        return ("seq", "(", ")" if ops[0] == "<" else "]", (_NEG_INF, parts[1]))
    if len(parts) == 2 and is_var[1]:
        return ("seq", "(" if ops[0] == "<" else "[", ")", (parts[0], _POS_INF))
    if len(parts) == 3 and is_var[1]:
        return ("seq", "(" if ops[0] == "<" else "[", ")" if ops[1] == "<" else "]", (parts[0], parts[2]))
    return None


def _rel_to_set(v):
    """An inequality as a set: its interval, or ``x \\ne a`` as the real line without ``a``."""
    parts, ops = v[1], v[2]
    if ops == ("≠",) and len(parts) == 2:
        is_var = [p[0] == "scalar" and p[1].node[0] == "sym" for p in parts]
        if is_var[0] != is_var[1]:
            return ("setop", "minus", ("named", "R", ""), ("set", (parts[1] if is_var[0] else parts[0],)))
        return None
    return _abs_relation(v, as_set=True) or _rel_to_interval(v)


def _rels_as_union(v):
    """A list of inequalities in one variable (``x \\le -1`` or ``x \\ge 3``) as the union of their sets; None for
    any other list."""
    items = v[1]
    points = _excluded_points(items)
    if points is not None:  # "x \ne 1, 2", "x \ne 1 and x \ne 2": the real line without them
        return ("setop", "minus", ("named", "R", ""), ("set", points))
    if len(items) < 2 or any(item[0] != "rel" for item in items):
        return None
    names = set()
    for item in items:
        names |= {p[1].node[1] for p in item[1] if p[0] == "scalar" and p[1].node[0] == "sym"}
    parts = [_rel_to_interval(item) for item in items]
    if len(names) != 1 or any(part is None for part in parts):
        return None
    # "or" and "and" both become a list; only disjoint intervals are read as a union ("x < -1 or x > 3"): joined
    # by "and" they would be the empty set, which no answer means, and overlapping ones ("x > -1, x < 3") are
    # conditions that all hold: their intersection
    spans = []
    for part in parts:
        lo, hi = (real_number(e) for e in part[3])
        if lo is None or hi is None:
            return None
        spans.append((lo, hi, part[1] == "[", part[2] == "]"))
    order = sorted(range(len(spans)), key=lambda i: spans[i][0])
    for i, j in zip(order, order[1:]):
        (_, hi, _, hi_in), (lo, _, lo_in, _) = spans[i], spans[j]
        if hi > lo or (hi == lo and hi_in and lo_in):
            return _intersection(parts, spans)  # "x \ge -1 and x \le 3": conditions that all hold
    return ("union", tuple(parts))


def _excluded_points(items):
    """The points a list of ``x \\ne a`` excludes (``x \\ne 1, 2``: the first names the variable, the others may be
    the points alone), or None for any other list."""
    name, points = None, []
    for i, item in enumerate(items):
        if item[0] == "rel" and item[2] == ("≠",) and len(item[1]) == 2:
            sym = [p[0] == "scalar" and p[1].node[0] == "sym" for p in item[1]]
            if sym[0] == sym[1]:
                return None
            var, point = (item[1][0], item[1][1]) if sym[0] else (item[1][1], item[1][0])
            if name not in (None, var[1].node[1]):
                return None
            name = var[1].node[1]
            points.append(point)
        elif i > 0 and name is not None and item[0] == "scalar" and not symbols(item[1].node):
            points.append(item)
        else:
            return None
    return tuple(points) if len(points) > 1 else None


def _intersection(parts, spans):
    """The interval where every one of the inequalities' intervals holds (None when that is empty)."""
    lo_i = max(range(len(spans)), key=lambda i: (spans[i][0], not spans[i][2]))  # the highest lower end (open first)
    hi_i = min(range(len(spans)), key=lambda i: (spans[i][1], spans[i][3]))  # the lowest upper end (open first)
    lo, lo_in, hi, hi_in = spans[lo_i][0], spans[lo_i][2], spans[hi_i][1], spans[hi_i][3]
    if lo > hi or (lo == hi and not (lo_in and hi_in)):
        return None
    return ("seq", "[" if lo_in else "(", "]" if hi_in else ")", (parts[lo_i][3][0], parts[hi_i][3][1]))


def _ordered(a, b, o, deadline) -> bool:
    return len(a) == len(b) and all(equal(x, y, o, deadline) for x, y in zip(a, b))


def _unordered(a, b, o, deadline) -> bool:
    if len(a) != len(b):
        return False
    used = [False] * len(b)
    for x in a:
        for j, y in enumerate(b):
            if not used[j] and equal(x, y, o, deadline):
                used[j] = True
                break
        else:
            return False
    return True


def _distinct(items, o, deadline) -> bool:
    """Whether no two items of a list are equal."""
    return not any(equal(x, y, o, deadline) for i, x in enumerate(items) for y in items[i + 1:])


def _in_variable_order(items: tuple) -> tuple:
    """A list of ``x = 3, y = 4`` items sorted by their variables (``y = 4, x = 3`` answers the point ``(3, 4)``;
    ``x = 3, x = 4`` names no point and is empty); any other list as it is."""
    names = [v[1][1].node[1] if v[0] == "eq" and v[3] and v[1][0] == "scalar" and v[1][1].node[0] == "sym" else None
             for v in items]
    if None in names or any(len(n) != 1 for n in names):
        return items
    if len(set(names)) != len(names):
        return ()  # x = 3, x = 4 names two values of one variable: no point
    return tuple(v for _, v in sorted(zip(names, items), key=lambda p: p[0]))


def _chain_holds(v, o: Options, deadline) -> bool:
    """Whether every computed step of an equation chain equals its right-hand side (``x = 2+3 = 5``; not
    ``x = 2+3 = 6``). A step too large to compare does not hold."""
    try:
        return all(equal(step, v[2], o, deadline) for step in v[4])
    except TooLarge:
        return False


def _stands_for_rhs(v, o: Options, deadline) -> bool:
    """Whether an equation answers with its right-hand side: it names a variable (``x = 5``, ``f(x) = x^2``), or
    it is a true computation whose result is the right-hand side (``5 + 1 = 6``, ``\\frac{12}{2} = 6``); a chain's
    steps must hold too. A false one (``2 + 2 = 5``) is no value, and neither is a condition (``2x = 6``,
    ``x + y = 3``): it answers neither side."""
    if not _chain_holds(v, o, deadline):
        return False
    if v[3]:
        return True
    try:
        return equal(v[1], v[2], o, deadline)
    except TooLarge:
        return False


def _vector(m):
    rows = m[1]
    if len(rows) == 1:
        return rows[0]
    if all(len(r) == 1 for r in rows):
        return tuple(r[0] for r in rows)
    return None


def _choice_letter(v) -> str | None:
    if v[0] == "choice":
        return v[1]
    if v[0] == "scalar" and v[1].node[0] == "sym" and len(v[1].node[1]) == 1:
        return v[1].node[1].upper()
    if v[0] == "scalar" and v[1].node in (E, I):
        return v[1].node[1].upper()
    if v[0] == "text":
        m = _CHOICE_PREFIX.match(v[1])
        if m is None or _OTHER_CHOICE.match(v[1], m.end()) or (m.group(1) and _ANOTHER_LABEL.search(v[1], m.end())):
            return None  # no letter, or two of them ("A. B.", "A) or B)", "(A) alternatively (C)"): not one choice
        return (m.group(1) or m.group(2)).upper()
    return None


_SET_KINDS = {"set", "union", "setop", "named"}


def _sets_equal(r, c, o: Options, deadline) -> bool | None:
    """Set semantics (``sets``) when either side is a set, a set expression or a named set: repeats do not count,
    operations are carried out, ``\\mathbb{R}`` is ``(-\\infty, \\infty)``. A bare-list reference is a multiset
    and keeps its own rule, but a set expression meets one without repeats (``1, 2, 3`` is
    ``\\{1,2\\} \\cup \\{3\\}``); None when the sets' content cannot be computed (symbolic endpoints)."""
    if r[0] == "list":
        if c[0] not in ("union", "setop"):
            return None
        if not _distinct(r[1], o, deadline):
            return False  # 1, 1, 2 counts a repeat that no set holds
        r = ("set", r[1])
    if r[0] == "rel" or c[0] == "rel":
        r = _rel_to_set(r) if r[0] == "rel" else r
        c = _rel_to_set(c) if c[0] == "rel" else c
        if r is None or c is None:
            return None
    if c[0] == "list":
        c = ("set", c[1])
    if {r[0], c[0]} == {"scalar", "set"}:  # \{3, 3\} is 3; \{3, 4\} is not, however large 3 is
        scalar, items = (r, c[1]) if r[0] == "scalar" else (c, r[1])
        if len(items) == 1 or not items:
            return bool(items) and equal(r if r[0] == "scalar" else items[0], c if c[0] == "scalar" else items[0],
                                         o, deadline)
        try:  # every item the same value (\{3.1416, 3.1415\} holds two, however close each is to pi)
            return all(equal(scalar, item, o, deadline) for item in items) and \
                all(equal(items[0], item, o, deadline) for item in items[1:])
        except TooLarge:
            return False
    return set_equal(r, c, lambda x, y: equal(x, y, o, deadline))


def equal(r: tuple, c: tuple, o: Options, deadline=None) -> bool:
    """Whether candidate value ``c`` matches reference value ``r`` (see the module docstring for the rules)."""
    _check(deadline)
    kr, kc = r[0], c[0]
    if kr == "eq" and kc == "eq":
        if not (_chain_holds(r, o, deadline) and _chain_holds(c, o, deadline)):
            return False
        if equal(r[1], c[1], o, deadline) and equal(r[2], c[2], o, deadline):
            return True
        if equal(r[1], c[2], o, deadline) and equal(r[2], c[1], o, deadline):
            return True
        return _equations_proportional(r, c, deadline)
    if kr == "eq":
        return _stands_for_rhs(r, o, deadline) and equal(r[2], c, o, deadline)
    if kc == "eq":
        return _stands_for_rhs(c, o, deadline) and equal(r, c[2], o, deadline)
    if kr == "approx":  # "\frac13 \approx 0.333": the exact value, or the rounding written beside it
        return equal(r[1], c, o, deadline) or equal(r[2], c, o, deadline)
    if kc == "approx":
        return equal(r, c[1], o, deadline) or equal(r, c[2], o, deadline)
    if kr == "choice" or kc == "choice":
        a, b = _choice_letter(r), _choice_letter(c)
        if a is not None and a == b:
            return True
        for x, y in ((r, c), (c, r)):  # "(C) \frac12" against 1/2: the choice's content
            if x[0] == "choice" and len(x) > 2 and y[0] != "choice" and _choice_letter(y) is None:
                return equal(y, x[2], o, deadline) if x is c else equal(x[2], y, o, deadline)
        return False
    if kr == "scalar" and kc == "scalar":
        return scalar_equal(r[1], c[1], o, deadline)
    if kr == "text" or kc == "text":
        return kr == kc and r[1] == c[1]
    if kr == "rel" and kc == "rel":
        (pr, opr), (pc, opc) = _normalize_rel(r), _normalize_rel(c)
        if opr == opc and _ordered(pr, pc, o, deadline):
            return True
        sr, sc = _abs_relation(r, as_set=True), _abs_relation(c, as_set=True)
        if sr is None and sc is None:
            return False  # (two inequalities of one form: compared as written)
        sr, sc = sr or _rel_to_interval(r), sc or _rel_to_interval(c)  # |x| \le 2 is -2 \le x \le 2
        return sr is not None and sc is not None and equal(sr, sc, o, deadline)
    if {kr, kc} & (_SET_KINDS | {"seq"}) and "list" in (kr, kc):  # x < -1 or x > 3: a union of intervals
        union = _rels_as_union(r if kr == "list" else c)
        if union is not None:
            r, c = (union, c) if kr == "list" else (r, union)
            kr, kc = r[0], c[0]
    if kr in _SET_KINDS or kc in _SET_KINDS:
        same = _sets_equal(r, c, o, deadline)
        if same is not None:
            return same
    if kr == "rel" or kc == "rel":
        r = _rel_to_interval(r) if kr == "rel" else r
        c = _rel_to_interval(c) if kc == "rel" else c
        return r is not None and c is not None and r[0] == c[0] == "seq" and equal(r, c, o, deadline)
    if kr == "seq" and kc == "seq":
        return r[1] == c[1] and r[2] == c[2] and _ordered(r[3], c[3], o, deadline)
    if {kr, kc} == {"seq", "list"}:
        return _ordered(_in_variable_order(r[-1]), _in_variable_order(c[-1]), o, deadline)
    if kr == "list" and kc in ("set", "list") or kr == kc == "union":
        return _unordered(r[1], c[1], o, deadline)  # a bare list is a multiset: 1, 1, 2 != 1, 2
    if kr == "set" and kc in ("set", "list"):
        return finite_set_equal(r[1], c[1], lambda x, y: equal(x, y, o, deadline))  # repeats do not count
    if kr == kc == "ellipsis":
        return True
    if kr == "set" and len(r[1]) == 1 and kc == "scalar":
        return equal(r[1][0], c, o, deadline)
    if kc == "set" and len(c[1]) == 1 and kr == "scalar":
        return equal(r, c[1][0], o, deadline)
    if kr == kc == "matrix":
        return len(r[1]) == len(c[1]) and all(_ordered(x, y, o, deadline) for x, y in zip(r[1], c[1]))
    if {kr, kc} == {"matrix", "seq"}:
        m, s = (r, c) if kr == "matrix" else (c, r)
        vec = _vector(m)
        return vec is not None and s[1] == "(" and s[2] == ")" and _ordered(vec, s[3], o, deadline)
    return False
