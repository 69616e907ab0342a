"""Turn a cleaned answer into a *value* (one job: answer text in, typed value out), and describe values.

A value is a tuple whose first item names its kind:

- ``("scalar", Scalar)``: one expression (``Scalar`` holds its AST, exact value and how it was written);
- ``("seq", open, close, items)``: a tuple or an interval, brackets kept (``(0,1]``);
- ``("set", items)`` for ``\\{...\\}``; ``("list", items)`` for a bare ``1, 2`` or ``a \\pm b`` (``a \\mp b``);
- ``("union", items)``: intervals or sets joined by ``\\cup``; ``("setop", op, a, b)``: ``cup``/``cap``/``minus``
  of two set-like values (``\\{1,2\\} \\setminus \\{1\\}``, ``\\mathbb{R} - \\{0\\}``);
- ``("named", letter, qualifier)``: ``\\mathbb{R}``, ``\\mathbb{Z}^+`` (qualifier ``pos``), ``\\mathbb{R}_{\\ge 0}``
  (``nonneg``), "all real numbers" ("all real numbers except 1" is ``\\mathbb{R} \\setminus \\{1\\}``); a set's
  ``\\ldots`` item is ``("ellipsis",)``;
- ``("matrix", rows)``: ``\\begin{pmatrix}...`` (any matrix or array environment);
- ``("eq", lhs, rhs, simple, middle)``: an equation, ``simple`` when the left side is a plain variable (``5 = x``
  is read as ``x = 5``); ``middle`` holds the steps of a chain between them (``x = 2+3 = 5``) that are not plain
  variables (``x = y = 3`` names two);
- ``("rel", parts, ops)``: an inequality chain;
- ``("choice", letter)``: a multiple-choice letter; ``("text", words)``: lower-cased text.

Whole answers ``1,000`` (thousands), ``2\\frac{1}{2}`` (mixed numbers) and repeating decimals (``0.\\overline{3}``,
``0.\\bar{3}``, ``0.\\dot{3}``, ``0.(3)``, ``0.333...``) are numbers, and so is a ratio of two numbers (``3:4`` is
3/4; ``10:30`` reads as a time and stays text); "Option A" is the choice letter A; "no solution" (and "no real
solutions") is the empty set. Sizes are checked: at most ``MAX_ITEMS`` elements, 8 levels of nesting.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache

from raylign.verifiers.math.evaluate import exact_work, rational
from raylign.verifiers.math.normalize import MATH_WORDS, clean
from raylign.verifiers.math.numerals import fraction_text
from raylign.verifiers.math.parse import ParseError, TooLarge, Unjudgeable, canon, parse_expr

MAX_ITEMS = 64  # elements of a tuple/set/matrix


@dataclass(frozen=True)
class Scalar:
    node: tuple  # the AST
    rat: Fraction | None  # exact rational value, None when not rational
    huge: bool  # too large to evaluate: only a structural match counts
    canon: str  # structural form
    dec: tuple[int, int] | None  # (decimal places, significant digits) when the answer is a decimal literal
    pct: bool = False  # written with a percent sign


_CHOICE = re.compile(r"\(([A-Za-z])\)|([A-Z])\)?")
_NAMED_CHOICE = re.compile(r"(?:option|choice|answer(?: is)?)\s*[:.]?\s*(?:\(([A-Za-z])\)|(?<=[\s:.])([A-Za-z]))\.?",
                           re.IGNORECASE)  # "Option A", "Answer: (B)"
_NO_SOLUTION = {"no solution", "no solutions", "no real solution", "no real solutions", "there is no solution",
                "there are no solutions", "there are no real solutions", "no real roots", "no roots", "no real root"}
_WORDS = re.compile(r"(?=.*[A-Za-z]{3})[A-Za-z]+(?: [A-Za-z]+)*")
_SHORT_WORDS = {"no", "ok"}  # answers of two letters that are words, not products (``on`` is not ``no``)
_REPEATING = re.compile(r"(\d*)\.(\d*)\\(?:overline|bar|dot)\s*(?:\{(\d+)\}|(\d))")  # 0.\overline{3}, 0.\dot 3
_DOTTED = re.compile(r"(\d*)\.(\d*)\\dot\s*(?:\{(\d)\}|(\d))(\d*)\\dot\s*(?:\{(\d)\}|(\d))")  # 0.\dot{1}4285\dot{7}
_PAREN_REPEAT = re.compile(r"(-?)(\d*)\.(\d*)\((\d+)\)")  # 0.1(6), a whole answer
_ELLIPSIS_DECIMAL = re.compile(r"(-?\d*)\.(\d+)\s*(?:\.\.\.|\\ldots|\\cdots|\\dots|…)")  # 0.333..., a whole answer
# (vmatrix and Vmatrix are a determinant and a norm: numbers, not the matrix)
_AFTER_MATRIX = re.compile(r"\s*(/|\\cdot|\\times)\s*([^=,;&\\]{1,60}|\\[dt]?frac\s*\{[^{}]*\}\s*\{[^{}]*\}|\\frac\d\d)\s*")
_MATRIX_FACTOR = re.compile(r"\s*([^=,;&]{1,100}?)\s*(?:\\cdot|\\times)?\s*")  # before a matrix: a number multiplying it
_MATRIX = re.compile(r"[(\[]?\\begin\{([pbB]?matrix|array)\}(?:\{[^{}]*\})?(.*)\\end\{\1\}[)\]]?", re.S)
_THOUSANDS = re.compile(r"[-+]?\d{1,3}(?:,\d{3})+(?:\.\d+)?|[-+]?\d{1,3}(?: \d{3})+(?:\.\d+)?")
# a mixed number: 2\frac{1}{2}, 2 \frac12, 2{1 \over 2} (cleaned to 2{\frac{1}{2}}) or 2 1/2, a whole answer only
_MIXED = (re.compile(r"(-?)(\d+)\s*(\{\s*)?\\frac\{(\d+)\}\{(\d+)\}(?(3)\s*\})"),
          re.compile(r"(-?)(\d+)\s+()(\d+)/(\d+)"))
_SIMPLE_LHS = re.compile(r"\(?\s*(?:[a-zA-Z]|\\[a-zA-Z]+)(?:_\{?\w+\}?)?'*(?:\^\{?-1\}?)?(?:\([a-zA-Z, ]*\))?"
                         r"(?:\s*,\s*(?:[a-zA-Z]|\\[a-zA-Z]+)(?:_\{?\w+\}?)?)*\s*\)?")
# a quantity the answer names before its value: a function at a point (f(2), Var(X), P(A), f'(2); of the commands
# only those that name a quantity: \det(A), not \sin(x)), an expectation (E[X]), a decorated or starred symbol
# (\bar{x}, \vec{v}, \mathbf{v} cleaned to {v}, x^*, \Delta x), a derivative (\frac{dy}{dx}), an integral, sum, product
# or limit
_FUNCTION_AT = re.compile(r"(?:[dfghpqrFGHPQRENTSV]|[A-Z][a-z]+|\\(?P<cmd>[a-zA-Z]+))'*\s*\((?:[^()]|\([^()]*\))*\)")
_QUANTITY_COMMANDS = {"det", "var", "cov", "pr", "tr", "rank", "operatorname", "sigma", "phi", "varphi", "tau", "mu",
                      "omega", "pi", "lambda"}  # (d(360) = 24, \sigma(12) = 28, \phi(10) = 4 name a value)
_QUANTITY_FORMS = re.compile(
    r"(?:[A-Z]|\\mathbb\s*\{?\s*E\s*\}?)\s*\[[^\[\]=]*\]"
    r"|\\(?:bar|hat|vec|tilde|widehat|widetilde|overline|dot|ddot)\s*\{?\s*[a-zA-Z](?:_\{?\w+\}?)?\s*\}?"
    r"|\{\s*[a-zA-Z]\s*\}|[a-zA-Z](?:_\{?\w+\}?)?\s*\^\s*\{?\s*\*\s*\}?|\\Delta\s*[a-zA-Z]|\\det\s*[A-Z]?"
    r"|\\frac\s*\{\s*d(?:\^\{?\d\}?)?\s*[a-zA-Z]?\s*\}\s*\{\s*d\s*[a-zA-Z](?:\^\{?\d\}?)?\s*\}"
    r"|\\(?:int|iint|oint|sum|prod|lim)(?![a-zA-Z]).*")
# words that name the quantity, then its value: "The minimum value is 5" (in a box)
_STATED_IN_WORDS = re.compile(r"(?:the\s+)?[A-Za-z][A-Za-z ]{1,60}?\s+(?:is|are|equals)\s+(?=[^A-Za-z]|[A-Za-z]\b)(.+)",
                              re.IGNORECASE)
# a choice letter with its content: "(C) \frac{1}{2}" is choice C (the text path reads the letter)
_LABELLED_CHOICE = re.compile(r"\(([A-J])\)\s+\S.*")
_ANOTHER_LABEL = re.compile(r"\([A-J]\)")
_TEXT_SYNONYMS = {"dne": "doesnotexist", "doesn'texist": "doesnotexist"}
_QUANTITY = re.compile(r"(?:m\s*)?\\(?:angle|measuredangle)\s*[A-Z]{1,3}|\\overline\s*\{\s*[A-Z]{2}\s*\}|"
                       r"\|\s*[A-Z]{2}\s*\||[A-Z]{2,3}|"
                       r"\{?\s*(?=[^{}]*(?:[A-Za-z]{4}|[A-Z][a-z]{2}))[A-Za-z]+(?: [A-Za-z]+)*\s*\}?")
_PM = re.compile(r"\\(?:pm|mp)(?![a-zA-Z])")
_EXCEPT = re.compile(r"(.+?)\s*,?\s*\b(?:except|other than|but not|excluding)\s+(?:for\s+)?(?:[a-zA-Z]\s*=\s*)?(.+)",
                     re.IGNORECASE)
_OPEN, _CLOSE = "([{", ")]}"
_REL_OPS = "<>≤≥≠"
_NAMED = re.compile(r"\\mathbb\s*\{\s*([RNZQC])\s*\}|\\mathbb\s*([RNZQC])|\\([RNZQC])(?![a-zA-Z])|"
                    r"\\(reals|Reals|naturals|Naturals|integers|Integers|rationals|Rationals|complexes|Complexes)"
                    r"(?![a-zA-Z])")
_NAMED_LETTER = {"reals": "R", "naturals": "N", "integers": "Z", "rationals": "Q", "complexes": "C"}
_QUALIFIERS = {"": "", "+": "pos", ">0": "pos", "+*": "pos", "*+": "pos", "≥0": "nonneg", "+0": "nonneg",
               "0+": "nonneg", "0": "nonneg", "≥1": "pos", ">-1": "nonneg", "-": "neg", "<0": "neg", "≤0": "nonpos",
               "-0": "nonpos", "0-": "nonpos", "*": "nonzero", "≠0": "nonzero"}
_SCRIPTS = re.compile(r"(?:\s*[\^_]\s*(?:\{[^{}]*\}|[^\s{}\\]))*\s*")  # ^+, _{\ge 0}, ^{*}_0
_NAMED_WORDS = {"all real numbers": "R", "real numbers": "R", "all reals": "R", "the real numbers": "R",
                "all real values": "R", "any real number": "R", "every real number": "R", "all integers": "Z",
                "integers": "Z", "the integers": "Z", "all complex numbers": "C", "all rational numbers": "Q"}
_SPACES = re.compile(r"\s+")
_TEXT_DROPS = re.compile(r"[\s{}\\]")
_BUILDER = re.compile(r"[a-zA-Z](?:\s*\\in\s*\\mathbb\s*\{?R\}?)?\s*(?:\||:)\s*(.+)")
_ELLIPSIS = {"\\ldots", "\\dots", "\\cdots", "...", "…", "\\dotsc", "\\dotsb"}
_SET_OPS = (("\\cup", "cup"), ("\\cap", "cap"), ("\\setminus", "minus"), ("\\backslash", "minus"),
            ("-", "minus"))


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
    """The scalar value of a cleaned expression; raises ParseError when it is not one."""
    return scalar_from_node(parse_expr(s), pct)


def scalar_from_node(node, pct: bool = False) -> Scalar:
    try:
        rat, huge = rational(node), False
    except TooLarge:
        rat, huge = None, True
    return Scalar(node, rat, huge, fraction_text(rat) if rat is not None else canon(node), _decimal_info(node), pct)


_FORMATTING = {"text", "textbf", "textit", "textrm", "textnormal", "textsf", "texttt", "mbox", "mathrm", "mathbf",
               "mathit", "mathsf", "mathtt", "boldsymbol", "bm", "operatorname", "emph", "underline", "displaystyle",
               "textstyle", "left", "right", "rm", "bf", "it", "hbox"}
_COMMAND_SYNONYMS = {"ldots": "...", "cdots": "...", "dots": "...", "dotsc": "...", "dotsb": "...", "cdot": "*",
                     "times": "*", "ast": "*", "rightarrow": "⟨to⟩", "longrightarrow": "⟨to⟩"}
_COMMAND = re.compile(r"\\([a-zA-Z]+)")


def _command_text(m) -> str:
    name = m.group(1)
    if name in _FORMATTING or name in _COMMAND_SYNONYMS:
        return _COMMAND_SYNONYMS.get(name, "")
    return "⟨" + name.lower() + "⟩"  # \\in t is not \\int


def _text(s: str) -> tuple:
    """Text compared as text: lower case, no spaces or braces, formatting commands dropped, every other command kept
    by name (``\\int_0^1 x`` is not ``\\sum_0^1 x``, ``\\forall x`` not ``\\exists x``)."""
    s = _COMMAND.sub(_command_text, s.replace("…", "...")) if "\\" in s or "…" in s else s
    text = _TEXT_DROPS.sub("", s.lower())
    return ("text", _TEXT_SYNONYMS.get(text, text))


def _leaf(s: str) -> tuple:
    if (_WORDS.fullmatch(s) and not any(w.lower() in MATH_WORDS for w in s.split())) or s.lower() in _SHORT_WORDS:
        return _text(s)  # "Yes", "no solution", "No": words, not a product of symbols
    pct = s.endswith("%")
    try:
        return ("scalar", make_scalar(s[:-1] if pct else s, pct))
    except ParseError:
        return _text(s)


def _fraction_text(whole: str, fixed: str, rep: str) -> str:
    """``whole.fixed(rep)(rep)...`` as an exact fraction in brackets: ``("0", "1", "6")`` -> ``(\\frac{1}{6})``."""
    value = int(whole or "0") + (Fraction(int(fixed or "0")) + Fraction(int(rep), 10 ** len(rep) - 1)) / 10 ** len(fixed)
    return f"(\\frac{{{value.numerator}}}{{{value.denominator}}})"


def _period(digits: str) -> tuple[str, str] | None:
    """``(fixed, repeating)`` when ``digits`` end with a block written at least twice (``1666`` -> ``("1", "6")``,
    ``142857142857`` -> ``("", "142857")``); None when no block repeats (``14159``)."""
    for p in range(1, len(digits) // 2 + 1):
        block = digits[-p:]
        if digits.endswith(block * 2):
            end = len(digits)
            while end >= p and digits[end - p : end] == block:
                end -= p
            return digits[:end], block
    return None


def _repeating_decimal(s: str) -> str:
    """A repeating decimal written any way as an exact fraction: ``0.\\overline{3}``, ``0.\\bar{3}``, ``0.3\\dot{3}``,
    ``0.\\dot{1}4285\\dot{7}``, ``0.1(6)`` and ``0.1666...`` (the block written twice repeats); a decimal with an
    ellipsis and no repeating block (``3.14159...``) is that decimal, truncated."""
    if "\\dot" in s:
        s = _DOTTED.sub(lambda m: _fraction_text(m.group(1), m.group(2), (m.group(3) or m.group(4)) + m.group(5) + (
            m.group(6) or m.group(7))), s)
    if "\\" in s:
        s = _REPEATING.sub(lambda m: _fraction_text(m.group(1), m.group(2), m.group(3) or m.group(4)), s)
    m = _PAREN_REPEAT.fullmatch(s)
    if m:
        return m.group(1) + _fraction_text(m.group(2), m.group(3), m.group(4))
    m = _ELLIPSIS_DECIMAL.fullmatch(s)
    if m and len(m.group(2)) <= 200:
        period = _period(m.group(2))
        if period is None:
            return f"{m.group(1)}.{m.group(2)}"
        sign, whole = ("-", m.group(1)[1:]) if m.group(1).startswith("-") else ("", m.group(1))
        return sign + _fraction_text(whole, *period)
    return s


def ellipsis_cut(s: str) -> str | None:
    """The decimal itself, when ``s`` (cleaned) is a decimal whose digits happen to end in a repeated block followed
    by an ellipsis (``2.718281828...``: read as 2.71828(1828) repeating): the other reading, "and so on", for a
    reference no repeating decimal can equal; None for any other answer."""
    m = _ELLIPSIS_DECIMAL.fullmatch(s.strip())
    if m is None or len(m.group(2)) > 200 or _period(m.group(2)) is None:
        return None
    return f"{m.group(1)}.{m.group(2)}"


def _named(s: str) -> tuple | None:
    """``("named", letter, qualifier)`` for ``\\mathbb{R}``, ``\\R``, ``\\mathbb{Z}^+``, ``\\mathbb{R}_{\\ge 0}``...,
    and for "all real numbers"; None otherwise."""
    word = _NAMED_WORDS.get(_SPACES.sub(" ", s.strip().lower())) if s[:1].isalpha() else None
    if word:
        return ("named", word, "")
    m = _NAMED.match(s)
    if m is None:
        return None
    letter = next(g for g in m.groups() if g)
    letter = _NAMED_LETTER.get(letter.lower(), letter)
    rest = s[m.end():]
    if not _SCRIPTS.fullmatch(rest):
        return None
    rest = re.sub(r"[\s{}^_]", "", rest)
    if rest not in _QUALIFIERS:
        return None
    qual = _QUALIFIERS[rest]
    if letter == "N" and qual == "neg":
        return None
    return ("named", letter, "pos" if letter == "N" and qual == "nonzero" else qual)


def _named_except(s: str, depth: int) -> tuple | None:
    """"all real numbers except 1" (or "other than", "excluding"): the named set without the points listed."""
    m = _EXCEPT.fullmatch(s)
    named = _named(m.group(1)) if m else None
    if named is None:
        return None
    items = split_top(m.group(2), ",;")[0]
    if len(items) > MAX_ITEMS:
        raise Unjudgeable("too many elements")
    return ("setop", "minus", named, ("set", tuple(_value(p, depth + 1) for p in items)))


def _set_operand(s: str) -> bool:
    s = s.strip()
    return (s.startswith("\\{") and s.endswith("\\}")) or _named(s) is not None


def _split_set_ops(s: str) -> tuple[list[str], list[str]]:
    """Split ``s`` at set operators outside brackets; a ``-`` counts only beside a braced or named set."""
    parts, ops, texts, depth, start, i = [], [], [], 0, 0, 0
    while i < len(s):
        ch = s[i]
        if ch in _OPEN:
            depth += 1
        elif ch in _CLOSE:
            depth -= 1
        elif depth == 0:
            for text, op in _SET_OPS:
                if s.startswith(text, i) and not (text[0] == "\\" and s[i + len(text) : i + len(text) + 1].isalpha()):
                    parts.append(s[start:i])
                    ops.append(op)
                    texts.append(text)
                    i += len(text)
                    start = i
                    break
            else:
                i += 1
                continue
            continue
        i += 1
    parts.append(s[start:])
    merged_parts, merged_ops = [parts[0]], []
    for op, part, text in zip(ops, parts[1:], texts):
        if text == "-" and not (merged_parts[-1].strip() and (_set_operand(merged_parts[-1]) or _set_operand(part))):
            merged_parts[-1] += "-" + part  # a minus sign, not a set difference
        else:
            merged_parts.append(part)
            merged_ops.append(op)
    return merged_parts, merged_ops


def _set_expression(s: str, depth: int) -> tuple | None:
    """``A \\cup B``, ``A \\cap B``, ``A \\setminus B``, ``A - B`` (intersection binds first, the others left to
    right; brackets group): a union of plain parts is ``("union", parts)``, anything else ``("setop", op, a, b)``."""
    if not any(text in s for text, _ in _SET_OPS[:4]) and not (
            "-" in s and ("\\{" in s or _NAMED.search(s))):
        return None
    parts, ops = _split_set_ops(s)
    if not ops:
        if s[0] == "(" and s[-1] == ")" and _encloses(s):
            inner = _split_set_ops(s[1:-1])
            return _set_expression(s[1:-1], depth + 1) if inner[1] else None
        return None
    if not all(p.strip() for p in parts):
        return None
    if len(parts) > MAX_ITEMS:
        raise Unjudgeable("too many sets")
    values = [_value(p, depth + 1) for p in parts]
    if all(op == "cup" for op in ops):
        return ("union", tuple(values))
    terms, low_ops = [values[0]], []
    for op, v in zip(ops, values[1:]):
        if op == "cap":
            terms[-1] = ("setop", "cap", terms[-1], v)
        else:
            terms.append(v)
            low_ops.append(op)
    node = terms[0]
    for op, v in zip(low_ops, terms[1:]):
        node = ("setop", op, node, v)
    return node


def _value(s: str, depth: int = 0) -> tuple:
    if depth > 8:
        raise Unjudgeable("answer nested too deeply")
    s = s.strip()
    if not s:
        return ("text", "")
    m = _CHOICE.fullmatch(s) or _NAMED_CHOICE.fullmatch(s)
    if m:
        return ("choice", (m.group(1) or m.group(2)).upper())
    named = _named(s) or _named_except(s, depth)
    if named:
        return named
    if s.lower() in _NO_SOLUTION:
        return ("set", ())  # "no solution" is the empty solution set
    m = _MATRIX.fullmatch(s)
    scalar = None
    k = s.find("\\begin{")
    if m is None and k > 0 and len(s) - k > 20:  # a multiple of a matrix: "\frac{1}{5}\begin{pmatrix}3\\4\end{pmatrix}"
        m = _MATRIX.fullmatch(s, k)
        scalar = _MATRIX_FACTOR.fullmatch(s, 0, k)
        m = m if scalar is not None else None
    after = None
    if m is None and k == 0:  # a matrix divided or multiplied after it: "\begin{pmatrix}3\\4\end{pmatrix}/5"
        head = _MATRIX.match(s)
        after = _AFTER_MATRIX.fullmatch(s, head.end()) if head is not None else None
        m = head if after is not None else None
    if m:
        rows = [r for r in re.split(r"\\\\", m.group(2)) if r.strip()]
        cells = [split_top(r, "&")[0] for r in rows]
        if scalar is not None:  # each entry times the factor ("-" alone: negated)
            factor = scalar.group(1).strip()
            cells = [[f"-({c})" if factor == "-" else f"({factor})\\cdot({c})" for c in row] for row in cells]
        if after is not None:  # each entry divided or multiplied by it
            op = "/" if after.group(1) == "/" else "\\cdot"
            cells = [[f"({c}){op}({after.group(2).strip()})" for c in row] for row in cells]
        if sum(map(len, cells)) > MAX_ITEMS * 4:
            raise Unjudgeable("matrix too large")
        return ("matrix", tuple(tuple(_value(c, depth + 1) for c in row) for row in cells))
    if _THOUSANDS.fullmatch(s):
        return _leaf(s.replace(",", "").replace(" ", ""))
    parts, _ = split_top(s, ",;")
    if len(parts) > 1:
        if len(parts) > MAX_ITEMS:
            raise Unjudgeable("too many elements")
        items = []
        for p in parts:
            v = _value(p, depth + 1)
            pm = v[0] == "list" and ("\\pm" in p or "\\mp" in p)
            items.extend(v[1] if pm else [v])  # "\\pm 1, \\pm 2" is the four values 1, -1, 2, -2
        return ("list", tuple(items))
    parts, _ = split_top(s, "=")
    if len(parts) > 1:
        if len(parts) > MAX_ITEMS:
            raise Unjudgeable("too many '=' in one answer")
        lhs, rhs = parts[0].strip(), parts[-1].strip()
        simple = _names_a_value(lhs)
        if not simple and len(parts) == 2 and _names_a_value(rhs):
            lhs, rhs, simple = rhs, lhs, True  # 5 = x is x = 5
        middle = tuple(_value(p, depth + 1) for p in parts[1:-1] if not _names_a_value(p.strip()))
        return ("eq", _value(lhs, depth + 1), _value(rhs, depth + 1), simple, middle)
    if "≈" in s:  # \frac13 \approx 0.333 is the exact value, its approximation checked; x \approx 3.14 is 3.14
        parts = split_top(s, "≈")[0]
        lhs, rhs = parts[0].strip(), parts[-1].strip()
        if not lhs:
            return _value(rhs, depth + 1)
        if len(parts) == 2 and rhs:
            if _names_a_value(lhs):
                return _value(rhs, depth + 1)
            left, right = _value(lhs, depth + 1), _value(rhs, depth + 1)
            if _approximates(right, left):
                return ("approx", left, right)  # the exact value, and its rounding (a reference may be either)
            return ("approx", right, left) if _approximates(left, right) else _text(s)  # 1.4142 \approx \sqrt{2}
        return _text(s)
    expression = _set_expression(s, depth)
    if expression is not None:
        return expression
    if ("\\pm" in s or "\\mp" in s) and len(_PM.findall(s)) == 1:  # \pm or \mp, not \pmod or \pmatrix
        return ("list", (_value(_PM.sub("+", s), depth + 1), _value(_PM.sub("-", s), depth + 1)))
    parts, ops = split_top(s, _REL_OPS)
    if ops:
        if len(parts) > 4 or not all(p.strip() for p in parts):
            return _text(s)  # not an inequality anyone writes as an answer
        return ("rel", tuple(_value(p, depth + 1) for p in parts), tuple(ops))
    if s.startswith("\\{") and s.endswith("\\}") and _encloses(s[1:]):
        inner = s[2:-2].strip()
        m = _BUILDER.fullmatch(inner)
        if m:  # \{x \mid x > 0\}: the condition's interval; \{x : x \in \mathbb{R}\}: the set
            return _value(m.group(1), depth + 1)
        items = split_top(inner, ",;")[0] if inner else []
        if len(items) > MAX_ITEMS:
            raise Unjudgeable("too many elements")
        return ("set", tuple(("ellipsis",) if p.strip() in _ELLIPSIS else _value(p, depth + 1) for p in items))
    if s[0] in "([" and s[-1] in ")]" and _encloses(s):
        items = split_top(s[1:-1], ",")[0]
        if len(items) > 1:
            if len(items) > MAX_ITEMS:
                raise Unjudgeable("too many elements")
            return ("seq", s[0], s[-1], tuple(_value(p, depth + 1) for p in items))
    if "." in s:
        s = _repeating_decimal(s)
    mixed = _mixed_number(s) or _ratio(s)
    if mixed is not None:
        return mixed
    if s.endswith("%"):
        mixed = _mixed_number(s[:-1].strip())  # 33\frac13\% is a third
        if mixed is not None:
            return ("scalar", scalar_from_node(mixed[1].node, True))
    labelled = _LABELLED_CHOICE.fullmatch(s)
    if labelled and not _ANOTHER_LABEL.search(s, 3):  # "(C) \frac12": choice C, whose content is 1/2
        return ("choice", labelled.group(1), _value(s[labelled.end(1) + 1:], depth + 1))
    if labelled:
        return _text(s)  # "(A) alternatively (C)": two choices, none
    words = _STATED_IN_WORDS.fullmatch(s)
    if words and _WORDS.fullmatch(s[: words.start(1)].strip()):
        return _value(words.group(1), depth + 1)
    return _leaf(s)


def _approximates(approx: tuple, exact: tuple) -> bool:
    """Whether a number written after ``\\approx`` is the exact value before it rounded, or truncated, to its
    places (``\\frac13 \\approx 0.333``, not ``0.3334``; ``\\pi \\approx 3.14``; an integer to its units)."""
    if approx[0] != "scalar" or exact[0] != "scalar" or approx[1].huge or exact[1].huge or approx[1].rat is None:
        return False
    node = approx[1].node[1] if approx[1].node[0] == "neg" else approx[1].node
    if node[0] != "num":
        return False  # a number written out (0.333, 3), not another expression (\frac13 \approx 0.5 is no approximation)
    if exact[1].rat is not None:  # exactly, where the exact value is rational
        a, e = approx[1].rat, exact[1].rat
        unit = Fraction(1, 10 ** approx[1].dec[0]) if approx[1].dec and approx[1].dec[0] >= 0 else Fraction(1)
        return abs(a - e) <= unit / 2 or ((a >= 0) == (e >= 0) and abs(a) <= abs(e) and abs(e - a) < unit)
    from raylign.verifiers.math.evaluate import EvalError, evaluate
    try:
        e = evaluate(exact[1].node, {})
    except (EvalError, ArithmeticError, ValueError, KeyError):
        return False
    if e.imag or not math.isfinite(e.real):
        return False
    a, e = float(approx[1].rat), e.real
    unit = 10.0 ** -(approx[1].dec[0] if approx[1].dec else 0)
    slack = 1e-9 * max(abs(e), unit)  # floating point's own rounding
    return abs(a - e) <= unit / 2 + slack or ((a >= 0) == (e >= 0) and abs(a) <= abs(e) + slack and abs(e - a) < unit)


def _names_a_value(side: str) -> bool:
    """Whether one side of an equation names the quantity the other gives: a plain variable or function
    (``x``, ``f(x)``, ``a_n``), or a named quantity: a figure's segment or angle (``AB``, ``\\overline{AB}``,
    ``\\angle ABC``, ``m\\angle A``) or words (``\\text{Area}``; a word of four letters or more, or a capitalised
    one: ``xyz`` is a product). ``2x``, ``xyz`` or ``x + y`` is a condition instead, and a function or constant
    (``\\sin = 5``, ``\\log = 2``, ``\\pi = 3``) names nothing."""
    function = _FUNCTION_AT.fullmatch(side)
    if function:  # f(2), \det(A) name a value; \sin(x) = 5 is an equation about sin
        return function.group("cmd") is None or function.group("cmd").lower() in _QUANTITY_COMMANDS
    if _QUANTITY_FORMS.fullmatch(side):
        return True
    if _SIMPLE_LHS.fullmatch(side):
        return not _names_an_operation(side)
    return bool(_QUANTITY.fullmatch(side)) and not any(w.lower() in MATH_WORDS for w in re.findall(r"[A-Za-z]+", side))


_OPERATIONS = MATH_WORDS | {"max", "min", "gcd", "lcm", "det", "arg", "dim", "ker", "deg", "lim", "sum", "prod",
                             "int", "mod", "pmod", "bmod", "infty", "emptyset", "varnothing", "exp"}


def _names_an_operation(side: str) -> bool:
    """Whether a would-be variable is a function or constant's command (``\\sin``, ``\\log``, ``\\pi``): ``\\sin = 5``
    names no quantity, it is an equation about a function."""
    return any(name in _OPERATIONS for name in re.findall(r"\\([a-zA-Z]+)", side))


_CLOCK = re.compile(r"\d{1,2}\s*:\s*\d{2}")


def _ratio(s: str) -> tuple | None:
    """A whole answer ``a : b`` of two numbers (``3:4``, ``1 : 2``) is the ratio's value ``a/b``; None otherwise
    (``x : y``, three terms, or what reads as a time of day: ``10:30`` is not ``7:21``)."""
    if s.count(":") != 1 or _CLOCK.fullmatch(s):
        return None
    left, right = (_leaf(part.strip()) for part in s.split(":"))
    if left[0] != "scalar" or right[0] != "scalar" or left[1].rat is None or not right[1].rat or left[1].pct or right[1].pct:
        return None
    return ("scalar", scalar_from_node(("mul", (left[1].node, ("inv", right[1].node)))))


def _mixed_number(s: str) -> tuple | None:
    """A whole answer written as a mixed number, ``2\\frac{1}{2}`` or ``2 1/2``, as its value (5/2); None otherwise.

    An integer followed by a *proper* fraction is a mixed number, as math-verify (latex2sympy2's
    ``interpret_as_mixed_fractions``) and the MATH answers that use it (``6\\frac{1}{4}``) read it; a product is
    written with an operator (``2 \\cdot \\frac12``). An improper fraction after an integer (``2\\frac{3}{2}``)
    is not a mixed number anyone writes: it stays a product (3), where math-verify would read 7/2."""
    for pattern in _MIXED:
        m = pattern.fullmatch(s)
        if m is None:
            continue
        sign, whole, _, num, den = m.groups()
        if not 0 < int(num) < int(den):
            return None
        n = ("add", (("num", Fraction(int(whole)), whole), ("mul", (("num", Fraction(int(num)), num),
                                                                     ("inv", ("num", Fraction(int(den)), den))))))
        return ("scalar", scalar_from_node(("neg", n) if sign else n))
    return None


@lru_cache(maxsize=8192)
def parse_answer(s: str) -> tuple:
    """The value of an answer string (see the module docstring); raises Unjudgeable. The exact values of all its
    scalars share one budget (``evaluate.exact_work``): past it a scalar is too large to compute."""
    with exact_work():
        return _value(clean(s))


def kind(value: tuple) -> str:
    return value[0]


def describe(value: tuple) -> str:
    """A short normalized form of a parsed value (for details)."""
    k = value[0]
    if k == "scalar":
        return value[1].canon + ("%" if value[1].pct else "")
    if k in ("text", "choice"):
        return value[1]
    if k == "approx":
        return describe(value[1]) + "≈" + describe(value[2])
    if k == "seq":
        return value[1] + ",".join(map(describe, value[3])) + value[2]
    if k == "named":
        return "\\mathbb{" + value[1] + "}" + (f"_{value[2]}" if value[2] else "")
    if k == "setop":
        return f"({describe(value[2])} {value[1]} {describe(value[3])})"
    if k == "ellipsis":
        return "..."
    if k in ("set", "list", "union"):
        left, right = {"set": ("{", "}"), "list": ("", ""), "union": ("", "")}[k]
        return left + ("," if k != "union" else " U ").join(map(describe, value[1])) + right
    if k == "eq":
        return "=".join(map(describe, (value[1], *value[4], value[2])))
    if k == "rel":
        out = describe(value[1][0])
        for op, part in zip(value[2], value[1][1:]):
            out += op + describe(part)
        return out
    if k == "matrix":
        return "[" + ";".join(",".join(map(describe, row)) for row in value[1]) + "]"
    return k
