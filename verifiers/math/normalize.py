"""Normalize a math answer string before it is parsed (one job: raw answer text in, cleaned text out).

``clean`` maps Unicode math symbols to LaTeX, drops spacing and sizing commands (``\\left``, ``\\,``,
``\\displaystyle``), rewrites TeX's ``{a \\over b}`` as ``\\frac{a}{b}``, unwraps ``\\text{}``-like groups, drops trailing units (``5 \\text{cm}``, ``12 dollars``),
degree marks, dollar signs and trailing periods, turns "and"/"or" into commas, ``x \\in S`` into ``S`` and
``1e5`` into ``1\\times10^{5}``. ``MATH_WORDS`` are the words that are never units or plain text.
"""
from __future__ import annotations

import re
from functools import lru_cache

from raylign.verifiers.math.extract import braced

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
MATH_WORDS = {"pi", "sqrt", "sin", "cos", "tan", "cot", "sec", "csc", "log", "ln", "exp", "arcsin", "arccos",
              "arctan", "sinh", "cosh", "tanh", "inf", "infty", "infinity", "frac", "oo"}
_UNITS = {"cm", "mm", "km", "kg", "mg", "ml", "ft", "in", "yd", "mi", "mph", "kph", "sec", "min", "hr", "hrs",
          "hours", "days", "cents", "dollars", "units", "degrees", "deg", "inches", "feet", "meters", "miles",
          "minutes", "seconds", "years", "pounds", "lbs", "oz", "grams", "liters", "gallons", "people"}
_UNIT_WORDS = re.compile(r"^(?P<head>.*?[\d}).|])(?P<sep>\s*)(?P<units>(?:[A-Za-z]{2,}\.?)(?:\s+[A-Za-z]{2,}\.?)*)"
                         r"(?:\^\{?[23]\}?)?$")
_SEPARATOR_WORDS = re.compile(r"\s+(?:and|or)\s+")
_IN_PREFIX = re.compile(r"^[a-zA-Z]\s*\\in\s*")
_SCI = re.compile(r"^([-+]?\d+(?:\.\d+)?)[eE]([-+]?\d+)$")


_OVER = re.compile(r"\\(over|choose)(?![a-zA-Z])")
_GROUP_OPEN, _GROUP_CLOSE = "{([", "})]"
_GROUP_STOP = ",;=<>≤≥≠&"  # where a group of a written answer ends, outside brackets (TeX would go on)
_MAX_OVERS = 32


def _over_group(s: str, k: int, end: int) -> tuple[int, int]:
    """The group around the ``\\over`` that spans ``s[k:end]``: the innermost brackets (braces, parentheses,
    square brackets, escaped or not) holding it, cut at separators outside brackets; ``(start, stop)``."""
    start, depth = 0, 0
    for i in range(k - 1, -1, -1):
        ch = s[i]
        if ch in _GROUP_CLOSE:
            depth += 1
        elif ch in _GROUP_OPEN:
            if depth == 0:
                start = i + 1
                break
            depth -= 1
        elif depth == 0 and ch in _GROUP_STOP:
            start = i + 1
            break
    stop, depth = len(s), 0
    for j in range(end, len(s)):
        ch = s[j]
        if ch in _GROUP_OPEN:
            depth += 1
        elif ch in _GROUP_CLOSE:
            if depth == 0:
                stop = j - 1 if s[j - 1] == "\\" and j - 1 >= end else j
                break
            depth -= 1
        elif depth == 0 and (ch in _GROUP_STOP or s.startswith("\\\\", j)):
            stop = j
            break
    return start, stop


def _over_to_frac(s: str) -> str:
    """TeX's ``{a \\over b}`` (and ``{n \\choose k}``): everything before it in its group over everything after,
    rewritten as ``\\frac{a}{b}`` (``\\binom{n}{k}``)."""
    for _ in range(_MAX_OVERS):
        m = _OVER.search(s)
        if m is None:
            break
        start, stop = _over_group(s, m.start(), m.end())
        num, den = s[start : m.start()].strip(), s[m.end() : stop].strip()
        cmd = "\\frac" if m.group(1) == "over" else "\\binom"
        s = s[:start] + f"{cmd}{{{num}}}{{{den}}}" + s[stop:]
    return s


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
                and core.lower() not in MATH_WORDS:
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
    if "\\over" in s or "\\choose" in s:
        s = _over_to_frac(s)
    if "\\" in s:
        s = _strip_text_commands(s)
    s = _SEPARATOR_WORDS.sub(",", s)
    s = re.sub(r"\s+", " ", s).strip().rstrip(".").strip()
    m = _UNIT_WORDS.match(s)
    if m and not any(w.lower().rstrip(".") in MATH_WORDS for w in m.group("units").split()):
        if m.group("sep") or m.group("units").lower().rstrip(".") in _UNITS:
            s = m.group("head").rstrip()
    s = _IN_PREFIX.sub("", s)
    m = _SCI.match(s)
    if m:
        s = f"{m.group(1)}\\times10^{{{m.group(2)}}}"
    return s.strip().rstrip(".").strip()
