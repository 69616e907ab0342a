"""The value of a tuple AST (one job: AST in, number out): exact, floating-point, or sympy's verdict.

- ``rational``: the exact ``Fraction`` value when the AST is a rational number, else None. Powers, factorials
  and binomials are size-checked before they are computed (``TooLarge``, bounded by ``MAX_BITS``,
  ``MAX_FACTORIAL``, ``MAX_BINOMIAL_BITS`` and ``MAX_SYMBOLIC_EXP``), and so is their number: the big steps of
  one answer (``exact_work``: ``parse_answer`` opens one per answer; a lone call has its own) share
  ``MAX_WORK`` bits of results, so forty ``\\sqrt[63]{7^{13000}}`` are ``TooLarge`` rather than seconds of work.
- ``evaluate``: the complex floating-point value with the free symbols bound; raises on overflow or where the
  expression is undefined (``EvalError``, ``ArithmeticError``, ``ValueError``).
- ``precisely_different``: whether two expressions that agree in floating point (at a sample point) differ at 50
  digits (mpmath); two rational functions at a real point are compared exactly (``rational_at``).
- ``sympy_equal``: ``sympy.simplify(a - b) == 0``, the last resort, for small expressions only.
"""
from __future__ import annotations

import cmath
import math
import threading
from contextlib import contextmanager
from fractions import Fraction
from functools import lru_cache

from raylign.verifiers.math.parse import TooLarge, canon, children, contains

MAX_BITS = 40_000  # largest exact rational (numerator/denominator bits, about 12,000 digits) we build
MAX_FACTORIAL = 3_000  # 3000! has about 30,000 bits, under MAX_BITS
MAX_SYMBOLIC_EXP = 1_000  # x^n with |n| above this is not evaluated
MAX_BINOMIAL_BITS = 16_000  # binomials past this size are not computed (math.comb's time grows with its square)
MAX_WORK = 4 * MAX_BITS  # bits of big results (powers, roots, factorials, binomials, long products) per answer
_BIG_STEP = 256  # results of fewer bits are not counted


class _Work:
    """What is left of the ``MAX_WORK`` budget of the answer being computed (one per thread)."""

    def __init__(self):
        self.left: int | None = None  # None: no answer-wide budget open


_WORK = threading.local()


@contextmanager
def exact_work(bits: int = MAX_WORK):
    """Share one budget of ``bits`` among every ``rational`` call inside (one answer's scalars)."""
    outer = getattr(_WORK, "left", None)
    _WORK.left = [bits]
    try:
        yield
    finally:
        _WORK.left = outer


def _charge(budget: list, bits: int) -> None:
    if bits >= _BIG_STEP:
        budget[0] -= bits
        if budget[0] < 0:
            raise TooLarge("too much exact arithmetic in one answer")


# ----------------------------------------------------------------------------------------------- exact values
def _iroot(n: int, q: int) -> int | None:
    """The exact integer q-th root of n >= 0, or None."""
    if n < 2:
        return n
    bits = n.bit_length()
    if bits < 1000:
        r = int(round(n ** (1.0 / q)))
    else:  # the root of the leading ~200 bits, shifted: Newton then doubles the correct bits at each step
        shift = (bits - 200) // q * q
        r = int(round(float(n >> shift) ** (1.0 / q))) << (shift // q)
    for _ in range(200):  # Newton from a nearby start
        nr = ((q - 1) * r + n // r ** (q - 1)) // q
        if abs(nr - r) <= 1:
            break
        r = nr
    for c in (r - 1, r, r + 1):
        if c >= 0 and c**q == n:
            return c
    return None


def _rpow(b: Fraction | None, e: Fraction | None, budget: list) -> Fraction | None:
    if e is None:
        return None
    if b is None:
        if abs(e) > MAX_SYMBOLIC_EXP:
            raise TooLarge("power with a huge exponent")
        return None
    if b == 0:
        return None if e <= 0 else Fraction(0)
    if b == 1:
        return b
    if b == -1 and e.denominator == 1:
        return Fraction(1 if e.numerator % 2 == 0 else -1)
    bits = max(b.numerator.bit_length(), b.denominator.bit_length())
    if abs(e) * bits > MAX_BITS:
        raise TooLarge("power too large to evaluate")
    _charge(budget, int(abs(e) * bits) + bits)
    p, q = e.numerator, e.denominator
    if q == 1:
        return b**p
    if q > 64 or (b < 0 and q % 2 == 0):
        return None
    sign = -1 if b < 0 else 1
    rn, rd = _iroot(abs(b.numerator), q), _iroot(b.denominator, q)
    if rn is None or rd is None:
        return None
    return (Fraction(sign * rn, rd)) ** p


def rational(node) -> Fraction | None:
    """The exact rational value of a tuple AST, or None; raises TooLarge instead of building huge numbers (or
    too many big ones: ``exact_work``)."""
    shared = getattr(_WORK, "left", None)
    return _rational(node, shared if shared is not None else [MAX_WORK])


def _rational(node, budget: list, env: dict | None = None) -> Fraction | None:
    rational = lambda n: _rational(n, budget, env)  # noqa: E731  (the same budget all the way down)
    k = node[0]
    if k == "num":
        return node[1]
    if k == "sym":
        return None if env is None else env.get(node[1])
    if k == "const":
        return None
    if k == "add" or k == "mul":
        vals = [rational(c) for c in node[1]]
        if any(v is None for v in vals):
            return None
        acc = vals[0]
        for v in vals[1:]:
            acc = acc + v if k == "add" else acc * v
            size = max(acc.numerator.bit_length(), acc.denominator.bit_length())
            if size > MAX_BITS:
                raise TooLarge("product too large to evaluate")
            _charge(budget, size)
        return acc
    if k == "neg":
        v = rational(node[1])
        return None if v is None else -v
    if k == "inv":
        v = rational(node[1])
        return None if not v else 1 / v
    if k == "pow":
        return _rpow(rational(node[1]), rational(node[2]), budget)
    if k == "root":
        x, n = rational(node[1]), rational(node[2])
        return None if not n else _rpow(x, 1 / n, budget)
    if k == "fact":
        v = rational(node[1])
        if v is None or v.denominator != 1 or v < 0:
            return None
        if v > MAX_FACTORIAL:
            raise TooLarge("factorial too large to evaluate")
        _charge(budget, int(v) * max(1, int(v).bit_length()))
        return Fraction(math.factorial(int(v)))
    if k == "dfact":  # n!! = n (n - 2) (n - 4) ... down to 1 or 2; (-1)!! = 0!! = 1
        v = rational(node[1])
        if v is None or v.denominator != 1 or v < -1:
            return None
        if v > 2 * MAX_FACTORIAL:
            raise TooLarge("double factorial too large to evaluate")
        _charge(budget, int(v) * max(1, int(v).bit_length()) // 2)
        return Fraction(_double_factorial(int(v)))
    if k == "binom":
        n, r = rational(node[1]), rational(node[2])
        if n is None or r is None or n.denominator != 1 or r.denominator != 1:
            return None
        if n > MAX_BITS:
            raise TooLarge("binomial too large to evaluate")
        if not 0 <= r <= n:
            return Fraction(0)
        n, r = int(n), int(min(r, n - r))
        size = (math.lgamma(n + 1) - math.lgamma(r + 1) - math.lgamma(n - r + 1)) / math.log(2) if r > 0 else 0
        if size > MAX_BINOMIAL_BITS:
            raise TooLarge("binomial too large to evaluate")
        _charge(budget, 8 * int(size))  # math.comb takes longer than a power of that size
        return Fraction(math.comb(n, r))
    if k == "abs":
        v = rational(node[1])
        return None if v is None else abs(v)
    if k in ("floor", "ceil"):
        v = rational(node[1])
        return None if v is None else Fraction(math.floor(v) if k == "floor" else math.ceil(v))
    if k == "agg":
        return _aggregate_rational(node[1], [rational(c) for c in node[2]])
    for child in node[2:] if k in ("func",) else node[1:]:  # func/log: only look for huge arguments
        if isinstance(child, tuple):
            rational(child)
    return None


def _double_factorial(n: int) -> int:
    return math.prod(range(n, 0, -2)) if n > 0 else 1


def _aggregate_rational(name: str, vals: list) -> Fraction | None:
    """``max``/``min`` of rationals; ``gcd``/``lcm`` of integers (None for anything else)."""
    if any(v is None for v in vals):
        return None
    if name in ("max", "min"):
        return max(vals) if name == "max" else min(vals)
    if any(v.denominator != 1 for v in vals):
        return None
    if name == "lcm" and sum(v.numerator.bit_length() for v in vals) > MAX_BITS:
        raise TooLarge("lcm too large to evaluate")
    return Fraction((math.gcd if name == "gcd" else math.lcm)(*(int(v) for v in vals)))


def rational_at(node, env: dict) -> Fraction | None:
    """The exact value of an AST with its symbols bound by ``env`` (complex floats, the sample points), when the
    points are real and the value is rational there (a polynomial or rational function with rational
    coefficients, exact roots of perfect powers, absolute values, floors...); None otherwise, or when it would be
    too large (its own ``MAX_WORK`` budget)."""
    if any(v.imag for v in env.values()):
        return None
    try:
        return _rational(node, [MAX_WORK], {name: Fraction(v.real) for name, v in env.items()})
    except (TooLarge, ValueError, OverflowError):  # (a point that is no finite float)
        return None


# ----------------------------------------------------------------------------------------------- float values
class EvalError(Exception):
    """The AST has no floating-point value here (infinity, a complex factorial, an unsupported node)."""


_CONSTS = {"pi": complex(math.pi), "E": complex(math.e), "I": 1j}
_CFUNCS = {"sin": cmath.sin, "cos": cmath.cos, "tan": cmath.tan, "cot": lambda z: 1 / cmath.tan(z),
           "sec": lambda z: 1 / cmath.cos(z), "csc": lambda z: 1 / cmath.sin(z), "arcsin": cmath.asin,
           "arccos": cmath.acos, "arctan": cmath.atan, "sinh": cmath.sinh, "cosh": cmath.cosh, "tanh": cmath.tanh,
           "exp": cmath.exp, "arcsec": lambda z: cmath.acos(1 / z), "arccsc": lambda z: cmath.asin(1 / z),
           "arccot": lambda z: cmath.atan(1 / z), "arcsinh": cmath.asinh, "arccosh": cmath.acosh,
           "arctanh": cmath.atanh}


@lru_cache(maxsize=1024)
def _safe_rational(node):
    """``rational`` or None, remembered: an exponent is asked for at every point an expression is evaluated."""
    try:
        return _rational(node, [MAX_WORK])  # its own budget, whatever answer is open: the same node, the same value
    except TooLarge:
        return None


safe_rational = _safe_rational  # (public name: equiv asks whether an exponent is an integer)


def _real_int(v: complex) -> int | None:
    if v.imag == 0 and v.real == int(v.real) and abs(v.real) < 1e15:
        return int(v.real)
    return None


def evaluate(node, env) -> complex:
    """Complex floating-point value of a tuple AST with symbols bound by ``env``; raises on overflow/undefined."""
    k = node[0]
    if k == "num":
        return complex(node[1])
    if k == "sym":
        return env[node[1]]
    if k == "const":
        if node[1] == "oo":
            raise EvalError("infinity")
        return _CONSTS[node[1]]
    if k == "add":
        return sum((evaluate(c, env) for c in node[1]), 0j)
    if k == "mul":
        acc = 1 + 0j
        for c in node[1]:
            acc *= evaluate(c, env)
        return acc
    if k == "neg":
        return 0j - evaluate(node[1], env)  # keeps a +0.0 imaginary part (branch cuts)
    if k == "inv":
        return 1 / evaluate(node[1], env)
    if k in ("pow", "root"):
        b = evaluate(node[1], env)
        if k == "root":
            n = _safe_rational(node[2])
            e_rat = None if not n else 1 / n
            e = complex(e_rat) if e_rat is not None else 1 / evaluate(node[2], env)
        else:
            e_rat = _safe_rational(node[2])
            e = complex(e_rat) if e_rat is not None else evaluate(node[2], env)
        if e_rat is not None:
            if e_rat.denominator == 1 and abs(e_rat) <= 4096:
                return b ** int(e_rat)
            if b.imag == 0 and b.real < 0 and e_rat.denominator % 2 == 1:  # real odd root of a negative
                r = abs(b.real) ** float(e_rat)
                return complex(-r if e_rat.numerator % 2 else r)
        if b == 0:
            if e.real > 0:
                return 0j
            raise ZeroDivisionError
        lg = cmath.log(complex(b.real, 0.0) if b.imag == 0 else b) * e
        if lg.real > 700:
            raise OverflowError
        return cmath.exp(lg)
    if k == "fact":
        v = evaluate(node[1], env)
        if v.imag != 0 or v.real > 170:
            raise OverflowError if v.real > 170 else EvalError("factorial of a complex number")
        n = _real_int(v)
        return complex(math.factorial(n) if n is not None and n >= 0 else math.gamma(v.real + 1))
    if k == "dfact":
        n = _real_int(evaluate(node[1], env))
        if n is None or n < -1:
            raise EvalError("double factorial of a number that is no integer from -1 up")
        if n > 300:
            raise OverflowError
        return complex(_double_factorial(n))
    if k == "binom":
        top, r = evaluate(node[1], env), _real_int(evaluate(node[2], env))
        n = _real_int(top)
        if n is None and r is not None and 0 <= r <= 64:
            return _falling(top, r) / math.factorial(r)  # \\binom{n}{2} of a symbol: n(n-1)/2
        if n is None or r is None or n > 2000:
            raise EvalError("binomial")
        return complex(math.comb(n, r) if 0 <= r <= n else 0)
    if k == "func":
        v = evaluate(node[2], env)
        if node[1] == "exp" and v.real > 700:
            raise OverflowError
        return _CFUNCS[node[1]](v)
    if k == "log":
        v = cmath.log(evaluate(node[1], env))
        return v if node[2] is None else v / cmath.log(evaluate(node[2], env))
    if k == "abs":
        return complex(abs(evaluate(node[1], env)))
    if k in ("floor", "ceil"):
        v = evaluate(node[1], env)
        return complex((math.floor if k == "floor" else math.ceil)(v.real))
    if k == "agg":
        return _aggregate_float(node[1], [evaluate(c, env) for c in node[2]])
    raise EvalError(f"cannot evaluate {k}")


def _falling(z: complex, r: int) -> complex:
    """z (z - 1) ... (z - r + 1)."""
    acc = 1 + 0j
    for j in range(r):
        acc *= z - j
    return acc


def _aggregate_float(name: str, vals: list) -> complex:
    """``max``/``min`` of real values; ``gcd``/``lcm`` of integer values; EvalError otherwise."""
    if name in ("max", "min"):
        if any(v.imag != 0 for v in vals):
            raise EvalError(f"{name} of a complex number")
        return complex((max if name == "max" else min)(v.real for v in vals))
    ints = [_real_int(v) for v in vals]
    if None in ints:
        raise EvalError(f"{name} of a non-integer")
    return complex((math.gcd if name == "gcd" else math.lcm)(*ints))


# ----------------------------------------------------------------------------------------------- precise values
_MP_FUNCS = {"sin": "sin", "cos": "cos", "tan": "tan", "cot": "cot", "sec": "sec", "csc": "csc", "arcsin": "asin",
             "arccos": "acos", "arctan": "atan", "arcsec": "asec", "arccsc": "acsc", "arccot": "acot", "sinh": "sinh",
             "cosh": "cosh", "tanh": "tanh", "arcsinh": "asinh", "arccosh": "acosh", "arctanh": "atanh", "exp": "exp"}
_PRECISE_DIGITS = 50


def _mp_value(node, mp, env):
    """The value of an AST in mpmath at ``_PRECISE_DIGITS`` digits (symbols bound by ``env``), with ``evaluate``'s
    branches."""
    k = node[0]
    rec = lambda n: _mp_value(n, mp, env)  # noqa: E731
    if k == "num":
        return mp.mpf(node[1].numerator) / node[1].denominator
    if k == "sym":
        return mp.mpc(env[node[1]])
    if k == "const":
        if node[1] == "oo":
            raise EvalError("infinity")
        return {"pi": mp.pi, "E": mp.e, "I": mp.mpc(0, 1)}[node[1]] + 0
    if k == "add":
        return mp.fsum(rec(c) for c in node[1])
    if k == "mul":
        return mp.fprod(rec(c) for c in node[1])
    if k == "neg":
        return -rec(node[1])
    if k == "inv":
        return 1 / rec(node[1])
    if k in ("pow", "root"):
        b = rec(node[1])
        e_rat = _safe_rational(node[2])
        e_rat = (1 / e_rat if e_rat else None) if k == "root" else e_rat
        if e_rat is None:
            e = rec(node[2])
            return mp.power(b, 1 / e if k == "root" else e)
        if e_rat.denominator == 1:
            return mp.power(b, int(e_rat))
        if mp.im(b) == 0 and mp.re(b) < 0 and e_rat.denominator % 2 == 1:
            r = mp.power(-mp.re(b), mp.mpf(e_rat.numerator) / e_rat.denominator)
            return -r if e_rat.numerator % 2 else r
        return mp.power(b, mp.mpf(e_rat.numerator) / e_rat.denominator)
    if k == "func" and node[1] in _MP_FUNCS:
        return getattr(mp, _MP_FUNCS[node[1]])(rec(node[2]))
    if k == "log":
        v = mp.log(rec(node[1]))
        return v if node[2] is None else v / mp.log(rec(node[2]))
    if k == "abs":
        return abs(rec(node[1]))
    if k in ("floor", "ceil"):
        v = rec(node[1])
        if mp.im(v) != 0:
            raise EvalError(f"{k} of a complex number")
        return (mp.floor if k == "floor" else mp.ceil)(mp.re(v))
    if k in ("fact", "dfact", "binom", "agg"):
        exact = _safe_rational(node)  # 100!, \\binom{200}{100}: their exact value, however large
        if exact is not None:
            return mp.mpf(exact.numerator) / exact.denominator
        v = evaluate(node, env)  # exact integers, as the float evaluator computes them (below 2^53: exact)
        if v.imag == 0 and v.real.is_integer() and abs(v.real) < 2 ** 53:
            return mp.mpf(int(v.real))
        if k == "agg" and node[1] in ("max", "min"):
            vals = [rec(c) for c in node[2]]
            if any(mp.im(x) != 0 for x in vals):
                raise EvalError(f"{node[1]} of a complex number")
            return (max if node[1] == "max" else min)(mp.re(x) for x in vals)
    raise EvalError(f"no precise value for {k}")


# what _mp_value raises where an expression has no precise value (undefined, unsupported, a symbol left unbound)
_NO_PRECISE_VALUE = (EvalError, ArithmeticError, ValueError, TypeError, KeyError, OverflowError)
MAX_EXTRA_DIGITS = 2_000  # exact numbers past this many digits (all of an answer's, summed) are not compared precisely


def extra_digits(*nodes) -> int:
    """The decimal digits of the exact numbers the ASTs are built from, summed: each literal, and each power,
    factorial or binomial with a rational value (counted whole). Precise comparisons work at that many digits more
    than their base: a term ``10^{-60}`` beside ``\\pi``, or ``1`` beside ``100!\\,\\pi``, shows only past 60 (158)
    digits. Raises TooLarge past ``MAX_EXTRA_DIGITS``: such an answer is not compared at all, rather than declared
    equal for a difference too small to see."""
    total, stack = 0, list(nodes)
    while stack:
        n = stack.pop()
        k = n[0]
        v = n[1] if k == "num" else _safe_rational(n) if k in ("pow", "fact", "dfact", "binom") else None
        if v is None:
            stack.extend(children(n))
            continue
        total += max(v.numerator.bit_length(), v.denominator.bit_length()) * 77 // 256 + 1  # log10(2) ~ 77/256
        if total > MAX_EXTRA_DIGITS:
            raise TooLarge("numbers too large to compare precisely")
    return total


def magnitude_digits(*nodes, env=None) -> int:
    """Digits a precise comparison needs for what floating point shows of the ASTs at ``env``, in one walk: the
    orders of magnitude between the largest and the smallest nonzero term of any sum (``\\pi^{200} + 1`` against
    ``\\pi^{200}`` differs in its 100th digit, ``\\pi + e^{-200}`` against ``\\pi`` in its 87th), plus the digits
    of the largest value a floor or ceiling rounds (telling ``\\lfloor e^{120} \\rfloor`` from its ceiling, or from
    ``e^{120}``, takes all 53 digits of the integer first)."""
    spread, top, stack = 0.0, 0.0, list(nodes)

    def size(node) -> float:
        try:
            value = abs(evaluate(node, env or {}))
        except (EvalError, ArithmeticError, ValueError, KeyError):
            return 0.0
        return value if math.isfinite(value) else 0.0

    while stack:
        n = stack.pop()
        if n[0] == "add":
            sizes = [v for v in map(size, n[1]) if v]
            if len(sizes) > 1:
                spread = max(spread, math.log10(max(sizes) / min(sizes)))
        elif n[0] in ("floor", "ceil"):
            v = size(n[1])
            if v > 1:
                top = max(top, math.log10(v))
        stack.extend(children(n))
    return math.ceil(spread) + (math.ceil(top) + 1 if top else 0)


def _precise_digits(base: int, nodes, env) -> int:
    """``base`` digits, plus those of the exact numbers, the spread of the sums and the integers of the floors of
    ``nodes``; TooLarge past ``MAX_EXTRA_DIGITS`` more."""
    more = extra_digits(*nodes) + magnitude_digits(*nodes, env=env)
    if more > MAX_EXTRA_DIGITS:
        raise TooLarge("numbers too far apart to compare precisely")
    return base + more


def precise_value(node, env=None, digits: int = 60):
    """The real value of a symbol-free AST at ``digits`` digits and more (``extra_digits``; an mpmath number), or
    None when it has no such value (complex, undefined, or not computable precisely)."""
    try:
        import mpmath
    except ImportError:
        return None
    with mpmath.workdps(max(digits, _precise_digits(60, (node,), env))):
        try:
            v = _mp_value(node, mpmath, env or {})
        except _NO_PRECISE_VALUE:
            return None
        if mpmath.im(v) != 0 or not mpmath.isfinite(v):
            return None
        return +mpmath.re(v)


def precisely_equal(a, b, env=None) -> bool:
    """Whether two ASTs (symbols bound by ``env``) are the same number at ``_PRECISE_DIGITS`` digits more than
    their exact numbers and sums need (``extra_digits``, ``magnitude_digits``; to all but twenty of them, which
    cancellation may cost): a disagreement in floating point that is only cancellation
    (``\\sqrt{x^8+1} - x^4`` at x = 40). False when it cannot tell."""
    if env:
        x, y = rational_at(a, env), rational_at(b, env)
        if x is not None and y is not None:
            return x == y
    try:
        import mpmath
    except ImportError:
        return False
    digits = _precise_digits(_PRECISE_DIGITS, (a, b), env)
    with mpmath.workdps(digits):
        try:
            x, y = _mp_value(a, mpmath, env or {}), _mp_value(b, mpmath, env or {})
        except _NO_PRECISE_VALUE:
            return False
        return bool(abs(x - y) <= mpmath.mpf(10) ** (20 - digits) * max(abs(x), abs(y), 1))


def precisely_different(a, b, env=None) -> bool:
    """Whether two ASTs (symbols bound by ``env``) that agree in floating point are different numbers
    (``1000000\\pi + 1`` and ``1000000\\pi``, ``\\sqrt{10^{20}+1}`` and ``10^{10}``); False when it cannot tell.

    The difference is computed at ``_PRECISE_DIGITS`` digits more than the exact numbers the two are built from
    have and the spread of their sums need (``extra_digits``, ``magnitude_digits``: ``\\pi + 10^{-60}`` is not ``\\pi``),
    and again at twice that: a real difference stays the
    same (to a few digits), one made by rounding (cancellation in ``10^{80} + \\pi - 10^{80}``) shrinks with the
    precision. mpmath (a sympy dependency) is imported by the first comparison that needs it."""
    if env:  # at a real point, two rational functions are compared exactly (no mpmath)
        x, y = rational_at(a, env), rational_at(b, env)
        if x is not None and y is not None:
            return x != y
    try:
        import mpmath
    except ImportError:
        return False
    base = _precise_digits(_PRECISE_DIGITS, (a, b), env)
    # a floor or ceiling of a value a hair from an integer rounds the wrong way until the precision reaches that
    # hair (\\lfloor (1+\\sqrt2)^{200} \\rfloor is 10^{-77} below the integer it is not): such expressions are
    # also tried at four times the digits before they are called equal
    rounding = any(contains(n, lambda m: m[0] in ("floor", "ceil")) for n in (a, b))
    levels = (base, 2 * base, 4 * base) if rounding else (base, 2 * base)
    seen = None
    for digits in levels:
        with mpmath.workdps(digits):
            try:
                x, y = _mp_value(a, mpmath, env or {}), _mp_value(b, mpmath, env or {})
            except _NO_PRECISE_VALUE:
                return False
            scale = max(abs(x), abs(y))
            gap = abs(x - y)
            if gap <= mpmath.mpf(10) ** (5 - digits) * scale:
                if not rounding:
                    return False  # equal up to this precision's rounding
                seen = None
                continue
            if seen is not None:  # the same gap at two precisions: a real one (rounding shrinks with precision)
                return bool(abs(seen - gap) <= gap / 1000)
            seen = gap
    return seen is not None  # a rounding's gap seen at the highest precision only


# ----------------------------------------------------------------------------------------------- sympy fallback
def _to_sympy(node, sp):
    k = node[0]
    rec = lambda n: _to_sympy(n, sp)  # noqa: E731
    if k == "num":
        return sp.Rational(node[1].numerator, node[1].denominator)
    if k == "sym":
        return sp.Symbol(node[1])
    if k == "const":
        return {"pi": sp.pi, "E": sp.E, "I": sp.I, "oo": sp.oo}[node[1]]
    if k == "add":
        return sp.Add(*map(rec, node[1]))
    if k == "mul":
        return sp.Mul(*map(rec, node[1]))
    if k == "neg":
        return -rec(node[1])
    if k == "inv":
        return 1 / rec(node[1])
    if k in ("pow", "root"):
        e = _safe_rational(node[2])
        if e is not None and abs(e) > 50:
            raise EvalError("exponent too large for sympy")
        if e is None and contains(node[2], lambda n: n[0] in ("pow", "root", "func", "log", "fact")):
            raise EvalError("nested non-rational exponent: not given to sympy")
        return sp.Pow(rec(node[1]), rec(node[2])) if k == "pow" else sp.root(rec(node[1]), rec(node[2]))
    if k == "fact":
        return sp.factorial(rec(node[1]))
    if k == "dfact":
        return sp.factorial2(rec(node[1]))
    if k == "binom":
        return sp.binomial(rec(node[1]), rec(node[2]))
    if k == "func":
        fn = {"arcsin": "asin", "arccos": "acos", "arctan": "atan", "arcsec": "asec", "arccsc": "acsc", "arccot": "acot",
              "arcsinh": "asinh", "arccosh": "acosh", "arctanh": "atanh"}.get(node[1], node[1])
        return getattr(sp, fn)(rec(node[2]))
    if k == "log":
        return sp.log(rec(node[1])) if node[2] is None else sp.log(rec(node[1]), rec(node[2]))
    if k == "abs":
        return sp.Abs(rec(node[1]))
    if k in ("floor", "ceil"):
        return (sp.floor if k == "floor" else sp.ceiling)(rec(node[1]))
    if k == "agg" and node[1] in ("max", "min"):
        return (sp.Max if node[1] == "max" else sp.Min)(*map(rec, node[2]))
    raise EvalError(k)


def _node_count(node) -> int:
    return len(canon(node))


SYMPY_MAX_NODES = 60  # both sides together
SYMPY_MAX_POWER = 3  # largest integer exponent


def _max_power(node) -> int:
    """The largest integer exponent in ``node`` (a power with another exponent counts as a large one)."""
    top = 0
    stack = [node]
    while stack:
        n = stack.pop()
        if n[0] in ("pow", "root"):
            e = _safe_rational(n[2])
            top = max(top, abs(e.numerator) if e is not None and e.denominator == 1 else SYMPY_MAX_POWER + 1)
        stack.extend(c for c in n[1:] if isinstance(c, tuple))
        stack.extend(c for c in n[1:] if isinstance(c, list) for c in c if isinstance(c, tuple))
    return top


def sympy_equal(a, b, timeout: float | None = None) -> bool | None:
    """``simplify(a - b) == 0`` for small expressions; None when it was not tried or did not finish.

    sympy cannot be interrupted, and ``simplify`` can take minutes on a short expression (powers of sums of
    trigonometric functions), so it is given only small ones (``SYMPY_MAX_NODES`` nodes, integer exponents up to
    ``SYMPY_MAX_POWER``), in a thread the caller waits on for at most ``timeout`` seconds (None: no wait bound)."""
    if _node_count(a) + _node_count(b) > SYMPY_MAX_NODES or max(_max_power(a), _max_power(b)) > SYMPY_MAX_POWER \
            or any(contains(n, lambda m: m[0] in ("fact", "dfact", "binom", "floor", "ceil")) for n in (a, b)):
        return None  # sympy is slow on these and our evaluator already covers them
    out: list = []

    def run() -> None:
        try:
            import sympy as sp

            out.append(bool(sp.simplify(_to_sympy(a, sp) - _to_sympy(b, sp)) == 0))
        except (EvalError, TypeError, ValueError, ZeroDivisionError, OverflowError, AttributeError):
            out.append(None)
        except Exception:  # noqa: BLE001 - sympy's own failures: not tried
            out.append(None)

    if timeout is None:
        run()
    else:
        import threading
        worker = threading.Thread(target=run, name="raylign-sympy", daemon=True)
        worker.start()
        worker.join(max(0.0, timeout))
    return out[0] if out else None
