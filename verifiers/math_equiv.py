"""Decide whether two math answers are equivalent (one job: two strings in, equal or not out).

Pipeline: ``clean`` (LaTeX spacing, ``\\text{}`` units, degrees, dollars...) -> ``parse_answer`` (a *value*: a
scalar expression, a tuple/interval, a set, a matrix, an equation, an inequality, a multiple-choice letter or
plain text) -> ``equal``. Scalars are parsed by our own small LaTeX parser into a tuple AST (no ``eval``, no
third-party LaTeX grammar: sympy's ``parse_latex`` needs antlr4 4.11 exactly, which math-verify's 4.13 breaks)
and compared by, in order:

1. exact rational arithmetic (``fractions.Fraction``) when both sides are rational numbers;
2. complex floating-point evaluation, at a few fixed points for the free symbols, relative tolerance ``rel_tol``;
3. ``sympy.simplify(a - b) == 0`` when (2) cannot evaluate (small expressions only).

Policies (documented in the verifier's docstring too):

- a decimal literal with >= ``decimal_min_sig`` significant digits (default 4) matches a non-decimal value that
  rounds or truncates to it (``0.3333`` == ``1/3``, ``3.1416`` == ``\\pi``; ``0.33`` != ``1/3``); two decimal
  literals or two rationals must be exactly equal (``1000000`` != ``1000001``);
- percentages: ``50%`` equals ``50`` and ``0.5`` (``percent="both"``; ``"number"``/``"fraction"`` pick one);
- ``1,000`` (groups of three digits, no spaces) is one thousand; ``1, 000`` and ``1,2`` are lists;
- tuples ``(1,2)`` are ordered; ``\\{1,2\\}`` sets and bare lists ``1, 2`` (lists of solutions) are not;
  brackets must match, so ``(0,1]`` != ``[0,1]``; ``(1,2)`` as a tuple and as an open interval are the same value;
- ``x = 3`` equals ``3`` when the left side is a plain variable; two equations are equal if their sides are, or
  if ``lhs - rhs`` of one is a constant non-zero multiple of the other's;
- multiple-choice letters (``(B)``, ``\\text{(B)}``, ``B``) are compared case-insensitively;
- a whole answer ``2\\frac{1}{2}`` or ``2 1/2`` is a mixed number (5/2), not a product;
- ``e`` is Euler's number and ``i`` the imaginary unit; ``\\log`` without a base is the natural logarithm;
- words (``\\text{no solution}``, ``Monday``) compare as lower-cased text;
- an inequality equals the interval it describes (``x \\ge 3`` == ``[3,\\infty)``); ``0.\\overline{3}`` is 1/3;
- degree marks are dropped (``30^\\circ`` == ``30``), radians are not converted (``\\pi/6`` != ``30^\\circ``).

Guards: powers, factorials and binomials are size-checked before they are computed (``TooLarge``); the parser
nests at most ``MAX_DEPTH`` levels; a value too large to compute exactly or to evaluate in floating point can only
match its own structural copy, otherwise the pair is ``Unjudgeable`` (the verifier reports status ``invalid``).
Nothing here uses signals or threads: the time budget is checked between steps (``BudgetExceeded``).
"""
from __future__ import annotations

import cmath
import math
import re
import time
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache

from raylign.verifiers.math_extract import braced

MAX_BITS = 20_000  # largest exact rational (numerator/denominator bits) we are willing to build
MAX_FACTORIAL = 1_000
MAX_SYMBOLIC_EXP = 1_000  # x^n with |n| above this is not evaluated
MAX_DEPTH = 60  # parser nesting
MAX_ITEMS = 64  # elements of a tuple/set/matrix


class Unjudgeable(Exception):
    """The answer cannot be judged (too large, too deep, too many parts): the verifier reports ``invalid``."""


class TooLarge(Unjudgeable):
    """A power, factorial or binomial whose exact value would be astronomically large."""


class BudgetExceeded(Exception):
    """The internal time budget ran out: the verifier reports ``timeout``."""


class ParseError(Exception):
    """Not a math expression we understand; the answer is then compared as normalized text."""


@dataclass(frozen=True)
class Options:
    rel_tol: float = 1e-6
    decimal_min_sig: int = 4
    percent: str = "both"  # both | number | fraction


# ----------------------------------------------------------------------------------------------- cleaning
_UNICODE = {"−": "-", "–": "-", "—": "-", "×": "\\times ", "·": "\\cdot ", "÷": "\\div ", "π": "\\pi ",
            "∞": "\\infty ", "√": "\\sqrt ", "°": "", "∪": "\\cup ", "²": "^2", "³": "^3", "\u00a0": " ",
            "\u2009": " ", "\u202f": " ", "⩽": "≤", "⩾": "≥", "∈": "\\in "}
_UNICODE_RE = re.compile("|".join(map(re.escape, _UNICODE)))
_SUBS = [(re.compile(p), r) for p, r in [
    (r"\\(?:left|right)\.", ""),
    (r"\\(?:left|right|[bB]igg?[lr]?)(?![a-zA-Z])", ""),
    (r"\\(?:displaystyle|textstyle|scriptstyle|limits|nolimits)(?![a-zA-Z])", ""),
    (r"(?<!\\)\\[,;:!]", ""), (r"(?<!\\)\\ ", " "), (r"\\q?quad(?![a-zA-Z])", " "), (r"~", " "),
    (r"\\[dtc]frac(?![a-zA-Z])", r"\\frac"), (r"\\[dt]binom(?![a-zA-Z])", r"\\binom"),
    (r"\\frac\s*([0-9a-zA-Z])\s*([0-9a-zA-Z])", r"\\frac{\1}{\2}"),
    (r"\\frac\s*(\{[^{}]*\})\s*([0-9a-zA-Z])", r"\\frac\1{\2}"),
    (r"\\frac\s*([0-9a-zA-Z])\s*(\{)", r"\\frac{\1}\2"),
    (r"\\sqrt\s*([0-9a-zA-Z])", r"\\sqrt{\1}"),
    (r"\\(?:leqslant|leq|le)(?![a-zA-Z])", "≤"), (r"\\(?:geqslant|geq|ge)(?![a-zA-Z])", "≥"),
    (r"\\(?:neq|ne)(?![a-zA-Z])", "≠"), (r"\\lt(?![a-zA-Z])", "<"), (r"\\gt(?![a-zA-Z])", ">"),
    (r"\^\s*\{?\s*\\circ\s*\}?|\\circ(?![a-zA-Z])|\\degree(?![a-zA-Z])", ""),
    (r"\\%", "%"), (r"\\\$|\$", ""), (r"\{,\}", ","),
    (r"\\langle(?![a-zA-Z])", "("), (r"\\rangle(?![a-zA-Z])", ")"),
    (r"\\(?:lvert|rvert|vert|mid)(?![a-zA-Z])", "|"),
    (r"\\(?:emptyset|varnothing)(?![a-zA-Z])", r"\\{\\}"),
    (r"\s+percent\b", "%"), (r"<=", "≤"), (r">=", "≥"), (r"!=", "≠"),
]]
_TEXT_CMD = re.compile(r"\\(text|textbf|textit|textrm|textnormal|textsf|mbox|mathrm|mathbf|mathit|mathsf|"
                       r"boldsymbol|bm|operatorname)\s*\{")
_UNIT_TEXT = re.compile(r"[A-Za-z][A-Za-z .]*")
_UNIT_POWER = re.compile(r"\s*\^\s*\{?\s*[23]\s*\}?")
_MATH_WORDS = {"pi", "sqrt", "sin", "cos", "tan", "cot", "sec", "csc", "log", "ln", "exp", "arcsin", "arccos",
               "arctan", "sinh", "cosh", "tanh", "inf", "infty", "infinity", "frac", "oo"}
_UNITS = {"cm", "mm", "km", "kg", "mg", "ml", "ft", "in", "yd", "mi", "mph", "kph", "sec", "min", "hr", "hrs",
          "hours", "days", "cents", "dollars", "units", "degrees", "deg", "inches", "feet", "meters", "miles",
          "minutes", "seconds", "years", "pounds", "lbs", "oz", "grams", "liters", "gallons", "people"}
_UNIT_WORDS = re.compile(r"^(?P<head>.*?[\d}).|])(?P<sep>\s*)(?P<units>(?:[A-Za-z]{2,}\.?)(?:\s+[A-Za-z]{2,}\.?)*)"
                         r"(?:\^\{?[23]\}?)?$")
_SEPARATOR_WORDS = re.compile(r"\s+(?:and|or)\s+")
_IN_PREFIX = re.compile(r"^[a-zA-Z]\s*\\in\s*")
_SCI = re.compile(r"^([-+]?\d+(?:\.\d+)?)[eE]([-+]?\d+)$")


def _strip_text_commands(s: str) -> str:
    """Unwrap ``\\text{}``-like groups: a whole-answer group is its content; a word group after a value is a
    unit and is dropped (with a following ``^2``); "and"/"or" become commas."""
    pos = 0
    for _ in range(64):
        m = _TEXT_CMD.search(s, pos)
        if m is None:
            break
        group = braced(s, m.end() - 1)
        if group is None:
            break
        inner, end = group
        core = inner.strip()
        if m.start() == 0 and end == len(s):
            s, pos = core, 0
            continue
        if core.lower() in ("and", "or", ",", ""):
            repl = ","
            if not core:
                repl = ""
        elif m.group(1) != "operatorname" and m.start() > 0 and _UNIT_TEXT.fullmatch(core) and len(core) >= 2 \
                and core.lower() not in _MATH_WORDS:
            power = _UNIT_POWER.match(s, end)
            if power:
                end = power.end()
            repl = " "
        else:
            repl = "{" + inner + "}" if m.group(1) in ("mathbf", "boldsymbol", "bm", "mathrm") else inner
        s = s[: m.start()] + repl + s[end:]
        pos = m.start() + len(repl) if repl not in (" ", ",", "") else m.start()
    return s


@lru_cache(maxsize=16384)
def clean(s: str) -> str:
    """Normalize an answer string: spacing, delimiters, text/units, degrees, dollars, trailing periods."""
    s = s.strip()
    if not s:
        return s
    s = _UNICODE_RE.sub(lambda m: _UNICODE[m.group(0)], s)
    for left, right in (("\\(", "\\)"), ("\\[", "\\]"), ("$$", "$$")):
        if s.startswith(left) and s.endswith(right) and len(s) >= len(left) + len(right):
            s = s[len(left) : len(s) - len(right)]
    for pattern, repl in _SUBS:
        s = pattern.sub(repl, s)
    if "\\" in s:
        s = _strip_text_commands(s)
    s = _SEPARATOR_WORDS.sub(",", s)
    s = re.sub(r"\s+", " ", s).strip().rstrip(".").strip()
    m = _UNIT_WORDS.match(s)
    if m and not any(w.lower().rstrip(".") in _MATH_WORDS for w in m.group("units").split()):
        if m.group("sep") or m.group("units").lower().rstrip(".") in _UNITS:
            s = m.group("head").rstrip()
    s = _IN_PREFIX.sub("", s)
    m = _SCI.match(s)
    if m:
        s = f"{m.group(1)}\\times10^{{{m.group(2)}}}"
    return s.strip().rstrip(".").strip()


# ----------------------------------------------------------------------------------------------- scalar parser
_TOKEN = re.compile(r"(\d+(?:\.\d*)?|\.\d+)|(\\[a-zA-Z]+|\\.)|([a-zA-Z]+)|([-+*/^_()\[\]{}|!,'=<>≤≥≠%&])|(\s+)")
_NAMES = {"pi": ("const", "pi"), "inf": ("const", "oo"), "infty": ("const", "oo"), "infinity": ("const", "oo")}
_FUNCS = {"sin", "cos", "tan", "cot", "sec", "csc", "arcsin", "arccos", "arctan", "sinh", "cosh", "tanh", "ln",
          "log", "exp", "sqrt"}
_GREEK = {"alpha", "beta", "gamma", "delta", "epsilon", "varepsilon", "zeta", "eta", "theta", "vartheta", "iota",
          "kappa", "lambda", "mu", "nu", "xi", "rho", "sigma", "tau", "upsilon", "phi", "varphi", "chi", "psi",
          "omega", "Gamma", "Delta", "Theta", "Lambda", "Xi", "Sigma", "Phi", "Psi", "Omega"}
_WRAPPERS = {"\\mathbf", "\\boldsymbol", "\\bm", "\\mathrm", "\\mathit", "\\vec", "\\hat", "\\bar", "\\tilde",
             "\\overline", "\\text", "\\operatorname", "\\mathsf", "\\textbf", "\\mbox"}
_BINARY = {"\\cdot", "\\times", "\\div", "\\ast"}
PI, E, I, INF = ("const", "pi"), ("const", "E"), ("const", "I"), ("const", "oo")
TWO = ("num", Fraction(2), "2")


def tokenize(s: str) -> list[tuple[str, str]]:
    toks, pos = [], 0
    for m in _TOKEN.finditer(s):
        if m.start() != pos:
            raise ParseError(f"unexpected character {s[pos]!r}")
        pos = m.end()
        num, cmd, word, op, _ws = m.groups()
        if num is not None:
            toks.append(("num", num))
        elif cmd is not None:
            toks.append(("cmd", cmd))
        elif word is not None:
            low = word.lower()
            if low in _NAMES or low in _FUNCS:
                toks.append(("name", low))
            else:
                toks.extend(("letter", ch) for ch in word)
        elif op is not None:
            toks.append(("op", op))
    if pos != len(s):
        raise ParseError(f"unexpected character {s[pos]!r}")
    return toks


class _Parser:
    """Recursive descent over tokens -> tuple AST: ("num", Fraction, text) ("sym", name) ("const", name)
    ("add", items) ("neg", x) ("mul", items) ("inv", x) ("pow", b, e) ("root", x, n) ("fact", x)
    ("binom", n, k) ("func", name, x) ("log", x, base|None) ("abs", x) ("floor", x) ("ceil", x)."""

    def __init__(self, toks):
        self.t, self.i, self.depth, self.abs_depth = toks, 0, 0, 0

    def peek(self):
        return self.t[self.i] if self.i < len(self.t) else (None, None)

    def take(self, kind, text):
        if self.peek() != (kind, text):
            raise ParseError(f"expected {text!r}")
        self.i += 1

    def enter(self):
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise Unjudgeable(f"expression nested deeper than {MAX_DEPTH} levels")

    def parse(self):
        node = self.expr()
        if self.i != len(self.t):
            raise ParseError(f"unexpected {self.peek()[1]!r}")
        return node

    def expr(self):
        self.enter()
        items = [self.term(self.factor())]
        while self.peek() in (("op", "+"), ("op", "-")):
            sign = self.t[self.i][1]
            self.i += 1
            t = self.term(self.factor())
            items.append(t if sign == "+" else ("neg", t))
        self.depth -= 1
        return items[0] if len(items) == 1 else ("add", tuple(items))

    def term(self, first):
        items = [first]
        while True:
            k, v = self.peek()
            if (k == "op" and v in "*/") or (k == "cmd" and v in _BINARY):
                self.i += 1
                f = self.factor()
                items.append(("inv", f) if v in ("/", "\\div") else f)
            elif k in ("letter", "name") or (k == "op" and (v in "([{" or (v == "|" and not self.abs_depth))) or (
                    k == "cmd" and v not in _BINARY and v not in ("\\rfloor", "\\rceil", "\\}", "\\cup", "\\pm")):
                items.append(self.power())  # implicit multiplication
            else:
                break
        return items[0] if len(items) == 1 else ("mul", tuple(items))

    def factor(self):
        neg = False
        while self.peek() in (("op", "-"), ("op", "+")):
            neg ^= self.t[self.i][1] == "-"
            self.i += 1
        node = self.power()
        return ("neg", node) if neg else node

    def power(self):
        base = self.postfix()
        if self.peek() == ("op", "^"):
            self.i += 1
            return ("pow", base, self.exponent())
        return base

    def exponent(self):
        self.enter()
        k, v = self.peek()
        if k == "op" and v in "-+":
            self.i += 1
            node = self.exponent()
            node = ("neg", node) if v == "-" else node
        elif k == "num":
            self.i += 1
            node = ("num", Fraction(v), v)
        elif k == "op" and v in "({" or k in ("letter", "cmd", "name"):
            node = self.postfix()
        else:
            raise ParseError("bad exponent")
        if self.peek() == ("op", "^"):  # 9^9^9 is right-associative
            self.i += 1
            node = ("pow", node, self.exponent())
        self.depth -= 1
        return node

    def postfix(self):
        node, count = self.atom(), 0
        while self.peek() == ("op", "!"):
            self.i += 1
            count += 1
            if count > 3:
                raise TooLarge("factorial tower")
            node = ("fact", node)
        return node

    def group(self):
        """``{expr}`` or a single atom (``\\sqrt2``)."""
        if self.peek() == ("op", "{"):
            self.i += 1
            self.enter()
            node = self.expr()
            self.depth -= 1
            self.take("op", "}")
            return node
        return self.atom()

    def subscript(self) -> str:
        if self.peek() == ("op", "{"):
            self.i += 1
            parts, depth = [], 1
            while self.i < len(self.t):
                k, v = self.t[self.i]
                self.i += 1
                depth += (v == "{") - (v == "}") if k == "op" else 0
                if depth == 0:
                    return "".join(parts)
                parts.append(v.lstrip("\\"))
            raise ParseError("unclosed subscript")
        k, v = self.peek()
        if k in ("num", "letter", "cmd", "name"):
            self.i += 1
            return v.lstrip("\\")
        raise ParseError("bad subscript")

    def atom(self):
        k, v = self.peek()
        self.i += 1
        if k == "num":
            return ("num", Fraction(v), v)
        if k == "letter":
            if self.peek() == ("op", "_"):
                self.i += 1
                return ("sym", f"{v}_{self.subscript()}")
            return E if v == "e" else I if v == "i" else ("sym", v)
        if k == "name":
            if v in _NAMES:
                return _NAMES[v]
            return self.function(v)
        if k == "op" and v in "([{":
            close = {"(": ")", "[": "]", "{": "}"}[v]
            self.enter()
            node = self.expr()
            self.depth -= 1
            self.take("op", close)
            return node
        if k == "op" and v == "|":
            self.abs_depth += 1
            self.enter()
            node = self.expr()
            self.depth -= 1
            self.abs_depth -= 1
            self.take("op", "|")
            return ("abs", node)
        if k == "cmd":
            return self.command(v)
        raise ParseError(f"unexpected {v!r}")

    def command(self, v):
        name = v[1:]
        if name == "frac":
            num = self.group()
            return ("mul", (num, ("inv", self.group())))
        if name == "sqrt":
            index = TWO
            if self.peek() == ("op", "["):
                self.i += 1
                index = self.expr()
                self.take("op", "]")
            return ("root", self.group(), index)
        if name == "binom":
            n = self.group()
            return ("binom", n, self.group())
        if name == "pi":
            return PI
        if name in ("infty", "infinity"):
            return INF
        if name in _GREEK:
            if self.peek() == ("op", "_"):
                self.i += 1
                return ("sym", f"{name}_{self.subscript()}")
            return ("sym", name)
        if name in _FUNCS:
            return self.function(name)
        if name in ("lfloor", "lceil"):
            self.enter()
            node = self.expr()
            self.depth -= 1
            self.take("cmd", "\\rfloor" if name == "lfloor" else "\\rceil")
            return ("floor" if name == "lfloor" else "ceil", node)
        if v in _WRAPPERS:
            return self.group()
        raise ParseError(f"unsupported command {v}")

    def function(self, name):
        power = base = None
        if name == "sqrt":
            return ("root", self.atom(), TWO)
        if self.peek() == ("op", "^"):
            self.i += 1
            power = self.exponent()
        if name == "log" and self.peek() == ("op", "_"):
            self.i += 1
            base = self.group()
        if self.peek() == ("op", "("):
            self.i += 1
            self.enter()
            arg = self.expr()
            self.depth -= 1
            self.take("op", ")")
        else:
            arg = self.group() if self.peek() == ("op", "{") else self.power()
        node = ("log", arg, base) if name in ("log", "ln") else ("func", name, arg)
        return ("pow", node, power) if power is not None else node


def ast_depth(node) -> int:
    """Depth of a tuple AST, computed without recursion."""
    best, stack = 0, [(node, 1)]
    while stack:
        n, d = stack.pop()
        best = max(best, d)
        for child in n[1:]:
            if isinstance(child, tuple) and child and isinstance(child[0], str):
                stack.append((child, d + 1))
            elif isinstance(child, tuple):
                stack.extend((c, d + 1) for c in child)
    return best


# ----------------------------------------------------------------------------------------------- exact values
def _iroot(n: int, q: int) -> int | None:
    """The exact integer q-th root of n >= 0, or None."""
    if n < 2:
        return n
    r = int(round(n ** (1.0 / q))) if n.bit_length() < 1000 else 1 << (n.bit_length() // q)
    for _ in range(200):  # Newton from a nearby start
        nr = ((q - 1) * r + n // r ** (q - 1)) // q
        if abs(nr - r) <= 1:
            break
        r = nr
    for c in (r - 1, r, r + 1):
        if c >= 0 and c**q == n:
            return c
    return None


def _rpow(b: Fraction | None, e: Fraction | None) -> Fraction | None:
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
    """The exact rational value of a tuple AST, or None; raises TooLarge instead of building huge numbers."""
    k = node[0]
    if k == "num":
        return node[1]
    if k in ("sym", "const"):
        return None
    if k == "add" or k == "mul":
        vals = [rational(c) for c in node[1]]
        if any(v is None for v in vals):
            return None
        acc = vals[0]
        for v in vals[1:]:
            acc = acc + v if k == "add" else acc * v
            if max(acc.numerator.bit_length(), acc.denominator.bit_length()) > MAX_BITS:
                raise TooLarge("product too large to evaluate")
        return acc
    if k == "neg":
        v = rational(node[1])
        return None if v is None else -v
    if k == "inv":
        v = rational(node[1])
        return None if not v else 1 / v
    if k == "pow":
        return _rpow(rational(node[1]), rational(node[2]))
    if k == "root":
        x, n = rational(node[1]), rational(node[2])
        return None if not n else _rpow(x, 1 / n)
    if k == "fact":
        v = rational(node[1])
        if v is None or v.denominator != 1 or v < 0:
            return None
        if v > MAX_FACTORIAL:
            raise TooLarge("factorial too large to evaluate")
        return Fraction(math.factorial(int(v)))
    if k == "binom":
        n, r = rational(node[1]), rational(node[2])
        if n is None or r is None or n.denominator != 1 or r.denominator != 1:
            return None
        if n > MAX_BITS:
            raise TooLarge("binomial too large to evaluate")
        return Fraction(math.comb(int(n), int(r))) if 0 <= r <= n else Fraction(0)
    if k == "abs":
        v = rational(node[1])
        return None if v is None else abs(v)
    if k in ("floor", "ceil"):
        v = rational(node[1])
        return None if v is None else Fraction(math.floor(v) if k == "floor" else math.ceil(v))
    for child in node[2:] if k in ("func",) else node[1:]:  # func/log: only look for huge arguments
        if isinstance(child, tuple):
            rational(child)
    return None


# ----------------------------------------------------------------------------------------------- float values
class _EvalError(Exception):
    pass


_CONSTS = {"pi": complex(math.pi), "E": complex(math.e), "I": 1j}
_CFUNCS = {"sin": cmath.sin, "cos": cmath.cos, "tan": cmath.tan, "cot": lambda z: 1 / cmath.tan(z),
           "sec": lambda z: 1 / cmath.cos(z), "csc": lambda z: 1 / cmath.sin(z), "arcsin": cmath.asin,
           "arccos": cmath.acos, "arctan": cmath.atan, "sinh": cmath.sinh, "cosh": cmath.cosh, "tanh": cmath.tanh,
           "exp": cmath.exp}


def _safe_rational(node):
    try:
        return rational(node)
    except TooLarge:
        return None


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
            raise _EvalError("infinity")
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
            raise OverflowError if v.real > 170 else _EvalError("factorial of a complex number")
        n = _real_int(v)
        return complex(math.factorial(n) if n is not None and n >= 0 else math.gamma(v.real + 1))
    if k == "binom":
        n, r = _real_int(evaluate(node[1], env)), _real_int(evaluate(node[2], env))
        if n is None or r is None or n > 2000:
            raise _EvalError("binomial")
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
    raise _EvalError(f"cannot evaluate {k}")


def symbols(node, acc=None) -> frozenset:
    acc = set() if acc is None else acc
    if node[0] == "sym":
        acc.add(node[1])
    elif node[0] not in ("num", "const"):
        for child in node[1:]:
            if isinstance(child, tuple) and child and isinstance(child[0], str):
                symbols(child, acc)
            elif isinstance(child, tuple):
                for c in child:
                    symbols(c, acc)
    return frozenset(acc)


def _contains(node, target) -> bool:
    stack = [node]
    while stack:
        n = stack.pop()
        if n == target:
            return True
        for child in n[1:]:
            if isinstance(child, tuple) and child and isinstance(child[0], str):
                stack.append(child)
            elif isinstance(child, tuple):
                stack.extend(child)
    return False


def _contains_kind(node, kd: str) -> bool:
    stack = [node]
    while stack:
        n = stack.pop()
        if n[0] == kd:
            return True
        for child in n[1:]:
            if isinstance(child, tuple) and child and isinstance(child[0], str):
                stack.append(child)
            elif isinstance(child, tuple):
                stack.extend(child)
    return False


def canon(node) -> str:
    """A deterministic string of the AST (structural comparison and details)."""
    k = node[0]
    if k == "num":
        return str(node[1])
    if k in ("sym", "const"):
        return node[1]
    if k == "add":
        return "(" + "+".join(map(canon, node[1])) + ")"
    if k == "mul":
        return "(" + "*".join(map(canon, node[1])) + ")"
    if k == "neg":
        return "-" + canon(node[1])
    if k == "inv":
        return "1/" + canon(node[1])
    if k == "pow":
        return f"({canon(node[1])})^({canon(node[2])})"
    if k == "root":
        return f"root({canon(node[1])},{canon(node[2])})"
    if k == "func":
        return f"{node[1]}({canon(node[2])})"
    if k == "log":
        return f"log({canon(node[1])}{',' + canon(node[2]) if node[2] is not None else ''})"
    return f"{k}(" + ",".join(canon(c) for c in node[1:]) + ")"


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
            raise _EvalError("exponent too large for sympy")
        if e is None and any(_contains_kind(node[2], kd) for kd in ("pow", "root", "func", "log", "fact")):
            raise _EvalError("nested non-rational exponent: not given to sympy")
        return sp.Pow(rec(node[1]), rec(node[2])) if k == "pow" else sp.root(rec(node[1]), rec(node[2]))
    if k == "fact":
        return sp.factorial(rec(node[1]))
    if k == "binom":
        return sp.binomial(rec(node[1]), rec(node[2]))
    if k == "func":
        fn = {"arcsin": "asin", "arccos": "acos", "arctan": "atan"}.get(node[1], node[1])
        return getattr(sp, fn)(rec(node[2]))
    if k == "log":
        return sp.log(rec(node[1])) if node[2] is None else sp.log(rec(node[1]), rec(node[2]))
    if k == "abs":
        return sp.Abs(rec(node[1]))
    if k in ("floor", "ceil"):
        return (sp.floor if k == "floor" else sp.ceiling)(rec(node[1]))
    raise _EvalError(k)


def _node_count(node) -> int:
    return len(canon(node))


def sympy_equal(a, b) -> bool | None:
    """``simplify(a - b) == 0`` for small expressions; None when it was not tried."""
    if _node_count(a) + _node_count(b) > 200 or any(
            _contains_kind(n, kd) for n in (a, b) for kd in ("fact", "binom", "floor", "ceil")):
        return None  # sympy is slow on these and our evaluator already covers them
    try:
        import sympy as sp

        diff = sp.simplify(_to_sympy(a, sp) - _to_sympy(b, sp))
        return bool(diff == 0)
    except (_EvalError, TypeError, ValueError, ZeroDivisionError, OverflowError, AttributeError):
        return None


# ----------------------------------------------------------------------------------------------- answer values
@dataclass(frozen=True)
class Scalar:
    node: tuple  # the AST
    rat: Fraction | None  # exact rational value, None when not rational
    huge: bool  # too large to evaluate: only a structural match counts
    canon: str  # structural form
    dec: tuple[int, int] | None  # (decimal places, significant digits) when the answer is a decimal literal
    pct: bool = False  # written with a percent sign


_CHOICE = re.compile(r"\(([A-Za-z])\)|([A-Z])\)?")
_CHOICE_PREFIX = re.compile(r"\(([A-Za-z])\)|([A-Za-z])(?:[\s:.)]|$)")
_WORDS = re.compile(r"(?=.*[A-Za-z]{3})[A-Za-z]+(?: [A-Za-z]+)*")
_REPEATING = re.compile(r"(\d*)\.(\d*)\\overline\{(\d+)\}")
_MATRIX = re.compile(r"[(\[]?\\begin\{([pbvBV]?matrix|array)\}(?:\{[^{}]*\})?(.*)\\end\{\1\}[)\]]?", re.S)
_THOUSANDS = re.compile(r"[-+]?\d{1,3}(?:,\d{3})+(?:\.\d+)?|[-+]?\d{1,3}(?: \d{3})+(?:\.\d+)?")
_MIXED = re.compile(r"(-?)(\d+)\s*\\frac\{(\d+)\}\{(\d+)\}|(-?)(\d+)\s+(\d+)/(\d+)")
_SIMPLE_LHS = re.compile(r"\(?\s*(?:[a-zA-Z]|\\[a-zA-Z]+)(?:_\{?\w+\}?)?'*(?:\^\{?-1\}?)?(?:\([a-zA-Z, ]*\))?"
                         r"(?:\s*,\s*(?:[a-zA-Z]|\\[a-zA-Z]+)(?:_\{?\w+\}?)?)*\s*\)?")
_OPEN, _CLOSE = "([{", ")]}"
_REL_OPS = "<>≤≥≠"


def split_top(s: str, seps: str) -> tuple[list[str], list[str]]:
    """Split ``s`` at characters of ``seps`` that are outside brackets; returns (parts, separators)."""
    if not any(c in s for c in seps):
        return [s], []
    parts, found, depth, start = [], [], 0, 0
    for i, ch in enumerate(s):
        if ch in _OPEN:
            depth += 1
        elif ch in _CLOSE:
            depth -= 1
        elif depth == 0 and ch in seps:
            parts.append(s[start:i])
            found.append(ch)
            start = i + 1
    parts.append(s[start:])
    return parts, found


def _encloses(s: str) -> bool:
    """Whether the bracket opening at s[0] closes at the last character (any of ``)]}`` closes any opener)."""
    depth = 0
    for i, ch in enumerate(s):
        if ch in _OPEN:
            depth += 1
        elif ch in _CLOSE:
            depth -= 1
            if depth == 0:
                return i == len(s) - 1
    return False


def _decimal_info(node) -> tuple[int, int] | None:
    if node[0] == "neg":
        node = node[1]
    if node[0] != "num" or "." not in node[2]:
        return None
    digits = node[2].replace(".", "").lstrip("0")
    return len(node[2].split(".", 1)[1]), len(digits)


def make_scalar(s: str, pct: bool = False) -> Scalar:
    toks = tokenize(s)
    if not toks:
        raise ParseError("empty expression")
    node = _Parser(toks).parse()
    if ast_depth(node) > 4 * MAX_DEPTH:
        raise Unjudgeable("expression nested too deeply")
    return scalar_from_node(node, pct)


def scalar_from_node(node, pct: bool = False) -> Scalar:
    try:
        rat, huge = rational(node), False
    except TooLarge:
        rat, huge = None, True
    return Scalar(node, rat, huge, str(rat) if rat is not None else canon(node), _decimal_info(node), pct)


def _text(s: str) -> tuple:
    return ("text", re.sub(r"\\[a-zA-Z]+|[\s{}\\]", "", s).lower())


def _leaf(s: str) -> tuple:
    if _WORDS.fullmatch(s) and not any(w.lower() in _MATH_WORDS for w in s.split()):
        return _text(s)  # "Yes", "no solution": words, not a product of symbols
    pct = s.endswith("%")
    try:
        return ("scalar", make_scalar(s[:-1] if pct else s, pct))
    except ParseError:
        return _text(s)


def _repeating_to_frac(m) -> str:
    """``0.1\\overline{6}`` -> ``(\\frac{1}{6})``: a repeating decimal as an exact fraction."""
    whole, fixed, rep = m.group(1) or "0", m.group(2), m.group(3)
    value = int(whole) + (Fraction(int(fixed or "0")) + Fraction(int(rep), 10 ** len(rep) - 1)) / 10 ** len(fixed)
    return f"(\\frac{{{value.numerator}}}{{{value.denominator}}})"


def _value(s: str, depth: int = 0) -> tuple:
    if depth > 8:
        raise Unjudgeable("answer nested too deeply")
    s = s.strip()
    if not s:
        return ("text", "")
    m = _CHOICE.fullmatch(s)
    if m:
        return ("choice", (m.group(1) or m.group(2)).upper())
    m = _MATRIX.fullmatch(s)
    if m:
        rows = [r for r in re.split(r"\\\\", m.group(2)) if r.strip()]
        cells = [split_top(r, "&")[0] for r in rows]
        if sum(map(len, cells)) > MAX_ITEMS * 4:
            raise Unjudgeable("matrix too large")
        return ("matrix", tuple(tuple(_value(c, depth + 1) for c in row) for row in cells))
    if _THOUSANDS.fullmatch(s):
        return _leaf(s.replace(",", "").replace(" ", ""))
    parts, _ = split_top(s, ",;")
    if len(parts) > 1:
        if len(parts) > MAX_ITEMS:
            raise Unjudgeable("too many elements")
        return ("list", tuple(_value(p, depth + 1) for p in parts))
    parts, _ = split_top(s, "=")
    if len(parts) > 1:
        lhs, rhs = parts[0].strip(), parts[-1].strip()
        simple = bool(_SIMPLE_LHS.fullmatch(lhs))
        return ("eq", _value(lhs, depth + 1), _value(rhs, depth + 1), simple)
    if "\\cup" in s:
        pieces = [p for p in re.split(r"\\cup(?![a-zA-Z])", s)]
        if len(pieces) > 1 and all(p.strip() for p in pieces):
            return ("union", tuple(_value(p, depth + 1) for p in pieces))
    if "\\pm" in s and s.count("\\pm") == 1 and "\\pmatrix" not in s:
        return ("list", (_value(s.replace("\\pm", "+"), depth + 1), _value(s.replace("\\pm", "-"), depth + 1)))
    parts, ops = split_top(s, _REL_OPS)
    if ops:
        if len(parts) > 4 or not all(p.strip() for p in parts):
            return _text(s)  # not an inequality anyone writes as an answer
        return ("rel", tuple(_value(p, depth + 1) for p in parts), tuple(ops))
    if s.startswith("\\{") and s.endswith("\\}") and _encloses(s[1:]):
        inner = s[2:-2].strip()
        items = split_top(inner, ",;")[0] if inner else []
        if len(items) > MAX_ITEMS:
            raise Unjudgeable("too many elements")
        return ("set", tuple(_value(p, depth + 1) for p in items))
    if s[0] in "([" and s[-1] in ")]" and _encloses(s):
        items = split_top(s[1:-1], ",")[0]
        if len(items) > 1:
            if len(items) > MAX_ITEMS:
                raise Unjudgeable("too many elements")
            return ("seq", s[0], s[-1], tuple(_value(p, depth + 1) for p in items))
    if "\\overline" in s:
        s = _REPEATING.sub(_repeating_to_frac, s)
    m = _MIXED.fullmatch(s)
    if m:
        g = [x for x in m.groups() if x is not None]
        sign, whole, num, den = g[0], int(g[1]), int(g[2]), int(g[3])
        if 0 < num < den:
            n = ("add", (("num", Fraction(whole), g[1]), ("mul", (("num", Fraction(num), g[2]),
                                                                   ("inv", ("num", Fraction(den), g[3]))))))
            return ("scalar", scalar_from_node(("neg", n) if sign else n))
    return _leaf(s)


@lru_cache(maxsize=8192)
def parse_answer(s: str) -> tuple:
    """The value of an answer string (see the module docstring); raises Unjudgeable."""
    return _value(clean(s))


def kind(value: tuple) -> str:
    return value[0]


# ----------------------------------------------------------------------------------------------- comparison
_POINTS = (0.8326, -1.2649, 1.9173, 0.3711, -0.6137, 2.4819, -2.0931, 1.3457)


def _check(deadline: float | None) -> None:
    if deadline is not None and time.monotonic() > deadline:
        raise BudgetExceeded("time budget exceeded while comparing")


def _close(a: complex, b: complex, tol: float) -> bool:
    d = abs(a - b)
    return d <= tol * max(abs(a), abs(b)) or d <= 1e-12


def _finite(v: complex) -> bool:
    return cmath.isfinite(v)


def _decimal_rule(x, y, o: Options, exact: bool) -> bool:
    """A decimal literal (>= decimal_min_sig significant digits) matches a non-decimal value it rounds/truncates."""
    for (vn, vr, vd), (wn, wr, wd) in ((x, y), (y, x)):
        if vd is None or wd is not None or vd[1] < o.decimal_min_sig:
            continue
        if exact:
            if abs(vr - wr) < Fraction(1, 10 ** vd[0]):
                return True
        else:
            try:
                a, b = evaluate(vn, {}), evaluate(wn, {})
            except (ArithmeticError, ValueError, _EvalError):
                continue
            if abs(b.imag) < 1e-12 and abs(a - b) < 10.0 ** -vd[0]:
                return True
    return False


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


_EVAL_ERRORS = (ArithmeticError, ValueError, _EvalError, KeyError)


def _numbers_equal(x, y, o: Options, deadline) -> bool:
    (xn, xr, _), (yn, yr, _) = x, y
    if xr is not None and yr is not None:
        return xr == yr or _decimal_rule(x, y, o, exact=True)
    if _contains(xn, INF) or _contains(yn, INF):
        return False  # infinities only match structurally (checked by the caller)
    syms = sorted(symbols(xn) | symbols(yn))
    if not syms:
        try:
            va, vb = evaluate(xn, {}), evaluate(yn, {})
            if _finite(va) and _finite(vb):
                return _close(va, vb, o.rel_tol) or _decimal_rule(x, y, o, exact=False)
            raise OverflowError
        except OverflowError:
            raise TooLarge("answer overflows floating point and is not written like the reference") from None
        except _EVAL_ERRORS:
            return False  # undefined (1/0, log 0) and not written like the reference
    agreed = overflowed = 0
    for p in range(len(_POINTS)):
        _check(deadline)
        env = {s: complex(_POINTS[(p + 3 * j) % len(_POINTS)] + 0.137 * j) for j, s in enumerate(syms)}
        try:
            va, vb = evaluate(xn, env), evaluate(yn, env)
        except OverflowError:
            overflowed += 1
            continue
        except _EVAL_ERRORS:
            continue
        if not (_finite(va) and _finite(vb)):
            overflowed += 1
            continue
        if not _close(va, vb, o.rel_tol):
            return False
        agreed += 1
        if agreed >= 3:
            return True
    if agreed >= 2:
        return True
    if overflowed:
        raise TooLarge("answer overflows floating point and is not written like the reference")
    _check(deadline)
    return bool(sympy_equal(xn, yn))


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
    for p in range(len(_POINTS)):
        _check(deadline)
        env = {s: complex(_POINTS[(p + 3 * j) % len(_POINTS)] + 0.137 * j) for j, s in enumerate(syms)}
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
        if agreed >= 3:
            return True
    return False


_FLIP = {"<": ">", ">": "<", "≤": "≥", "≥": "≤", "≠": "≠"}
_NEG_INF = ("scalar", scalar_from_node(("neg", INF)))
_POS_INF = ("scalar", scalar_from_node(INF))


def _normalize_rel(v):
    parts, ops = v[1], v[2]
    if all(op in "><≥≤" for op in ops) and all(op in ">≥" for op in ops):
        return parts[::-1], tuple(_FLIP[op] for op in ops[::-1])
    return parts, ops


def _rel_to_interval(v):
    parts, ops = _normalize_rel(v)
    if not all(op in "<≤" for op in ops):
        return None
    is_var = [p[0] == "scalar" and p[1].node[0] == "sym" for p in parts]
    if len(parts) == 2 and is_var[0]:
        return ("seq", "(", ")" if ops[0] == "<" else "]", (_NEG_INF, parts[1]))
    if len(parts) == 2 and is_var[1]:
        return ("seq", "(" if ops[0] == "<" else "[", ")", (parts[0], _POS_INF))
    if len(parts) == 3 and is_var[1]:
        return ("seq", "(" if ops[0] == "<" else "[", ")" if ops[1] == "<" else "]", (parts[0], parts[2]))
    return None


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
        return (m.group(1) or m.group(2)).upper() if m else None
    return None


def equal(r: tuple, c: tuple, o: Options, deadline=None) -> bool:
    """Whether candidate value ``c`` matches reference value ``r`` (see the module docstring for the rules)."""
    _check(deadline)
    kr, kc = r[0], c[0]
    if kr == "eq" and kc == "eq":
        if equal(r[1], c[1], o, deadline) and equal(r[2], c[2], o, deadline):
            return True
        if equal(r[1], c[2], o, deadline) and equal(r[2], c[1], o, deadline):
            return True
        return _equations_proportional(r, c, deadline)
    if kr == "eq":
        return r[3] and equal(r[2], c, o, deadline)
    if kc == "eq":
        return c[3] and equal(r, c[2], o, deadline)
    if kr == "choice" or kc == "choice":
        a, b = _choice_letter(r), _choice_letter(c)
        return a is not None and a == b
    if kr == "scalar" and kc == "scalar":
        return scalar_equal(r[1], c[1], o, deadline)
    if kr == "text" or kc == "text":
        return kr == kc and r[1] == c[1]
    if kr == "rel" and kc == "rel":
        (pr, opr), (pc, opc) = _normalize_rel(r), _normalize_rel(c)
        return opr == opc and _ordered(pr, pc, o, deadline)
    if kr == "rel" or kc == "rel":
        r = _rel_to_interval(r) if kr == "rel" else r
        c = _rel_to_interval(c) if kc == "rel" else c
        return r is not None and c is not None and r[0] == c[0] == "seq" and equal(r, c, o, deadline)
    if kr == "seq" and kc == "seq":
        return r[1] == c[1] and r[2] == c[2] and _ordered(r[3], c[3], o, deadline)
    if {kr, kc} == {"seq", "list"}:
        return _ordered(r[-1], c[-1], o, deadline)
    if kr in ("set", "list") and kc in ("set", "list") or kr == kc == "union":
        return _unordered(r[1], c[1], o, deadline)
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


def describe(value: tuple) -> str:
    """A short normalized form of a parsed value (for details)."""
    k = value[0]
    if k == "scalar":
        return value[1].canon + ("%" if value[1].pct else "")
    if k in ("text", "choice"):
        return value[1]
    if k == "seq":
        return value[1] + ",".join(map(describe, value[3])) + value[2]
    if k in ("set", "list", "union"):
        left, right = {"set": ("{", "}"), "list": ("", ""), "union": ("", "")}[k]
        return left + ("," if k != "union" else " U ").join(map(describe, value[1])) + right
    if k == "eq":
        return f"{describe(value[1])}={describe(value[2])}"
    if k == "rel":
        out = describe(value[1][0])
        for op, part in zip(value[2], value[1][1:]):
            out += op + describe(part)
        return out
    if k == "matrix":
        return "[" + ";".join(",".join(map(describe, row)) for row in value[1]) + "]"
    return k
