"""Normalize a math answer string before it is parsed (one job: raw answer text in, cleaned text out).

``clean`` maps Unicode math symbols to LaTeX, drops spacing and sizing commands (``\\left``, ``\\,``,
``\\displaystyle``), rewrites TeX's ``{a \\over b}`` as ``\\frac{a}{b}``, unwraps ``\\text{}``-like groups,
drops units after a value (``5 \\text{cm}``, ``60 \\mathrm{km/h}``, ``12 dollars``; scale words become factors:
``5 \\text{ million}``; a unit on a term of a sum stays, so ``5\\text{ m} + 2\\text{ cm}`` is not 7, unless every
term carries the same unit: ``5\\text{ cm} + 2\\text{ cm}`` is 7 cm), degree
marks, dollar signs and trailing periods, turns "and"/"or" into commas,
``x \\in S`` into ``S`` and ``1e5`` into ``1\\times10^{5}``; digits of any script become ASCII digits (a run of
superscripts one exponent: ``10⁻³``; vulgar fractions ``2½`` a mixed number; every dash a minus sign), a trailing
modulus (``3 \\pmod{7}``) is dropped (an integer reduced by it, the modulus kept as a unit ``mod7``), and a whole
answer ``3rd``/``3^{\\text{rd}}``/``third``/``three`` becomes ``3``; intervals with reversed (ISO) brackets become
``(0, 1)``-style ones (``]0, 1[``, ``[0, 1[``). ``units`` names the units an answer was written
with (the ``units`` module says which words are units). ``MATH_WORDS`` are the words that are never units or
plain text.
"""
from __future__ import annotations

import re
from functools import lru_cache

from raylign.verifiers.math.extract import braced
from raylign.verifiers.math.numerals import ascii_digits, plain_numeral
from raylign.verifiers.math.units import MATH_WORDS  # noqa: F401  (re-exported: values reads it here)
from raylign.verifiers.math.units import (in_sum, is_inches, is_unknown, marks, run_tokens, scale_of, settle,
                                          strip_tail_units, sum_items, unit_name)

_UNICODE = {"−": "-", "–": "-", "—": "-", "×": "\\times ", "·": "\\cdot ", "÷": "\\div ", "π": "\\pi ",
            "∞": "\\infty ", "√": "\\sqrt ", "°": "^\\circ ", "∪": "\\cup ",
            "\u00a0": " ", "\u2009": " ", "\u202f": " ", "⩽": "≤", "⩾": "≥", "∈": "\\in ", "∩": "\\cap ",
            "∖": "\\setminus ", "∅": "\\emptyset ", "ℝ": "\\mathbb{R}", "ℕ": "\\mathbb{N}", "ℤ": "\\mathbb{Z}",
            "ℚ": "\\mathbb{Q}", "ℂ": "\\mathbb{C}", "‐": "-", "‑": "-", "‒": "-", "﹣": "-", "－": "-", "＋": "+",
            "⁄": "/", "∕": "/", "≡": "\\equiv ", "≈": "\\approx ", "±": "\\pm ", "∓": "\\mp ",
            "∛": "\\sqrt[3]", "∜": "\\sqrt[4]", "⋅": "\\cdot ", "∗": "\\ast "}
_UNICODE.update({ch: f" {num}/{den}" for ch, num, den in (  # vulgar fractions: 2½ is the mixed number 2 1/2
    ("½", 1, 2), ("⅓", 1, 3), ("⅔", 2, 3), ("¼", 1, 4), ("¾", 3, 4), ("⅕", 1, 5), ("⅖", 2, 5), ("⅗", 3, 5),
    ("⅘", 4, 5), ("⅙", 1, 6), ("⅚", 5, 6), ("⅐", 1, 7), ("⅛", 1, 8), ("⅜", 3, 8), ("⅝", 5, 8), ("⅞", 7, 8),
    ("⅑", 1, 9), ("⅒", 1, 10))})
_UNICODE.update({ch: f"\\{name} " for ch, name in zip(
    "αβγδεζηθικλμνξπρστυφχψωΓΔΘΛΞΠΣΦΨΩϕϑ",
    "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi pi rho sigma tau upsilon phi chi psi "
    "omega Gamma Delta Theta Lambda Xi Pi Sigma Phi Psi Omega phi vartheta".split())})
_UNICODE_RE = re.compile("|".join(map(re.escape, _UNICODE)))
_UNICODE_ROOT = re.compile(r"([√∛∜])\s*(\d+(?:\.\d+)?)")  # √12 is the root of 12 (not √1 times 2)
_ROOT_INDEX = {"√": "", "∛": "[3]", "∜": "[4]"}
_SUPERSCRIPT = re.compile("[⁺⁻]?[⁰¹²³⁴⁵⁶⁷⁸⁹]+")
_SUPERSCRIPT_ASCII = str.maketrans("⁺⁻⁰¹²³⁴⁵⁶⁷⁸⁹", "+-0123456789")
# (pattern, replacement, triggers): a pattern is tried only when one of its triggers (a substring every match of it
# holds) is in the text at that point: most answers hold none of the commands below, and 45 substitutions that
# find nothing cost more than the rest of the normalization
_SUBS = [(re.compile(p), r, t) for p, r, t in [
    (r"\\(?:left|right)\.", "", ("\\left", "\\right")),
    (r"\\(?:left|right|[bB]igg?[lr]?)(?![a-zA-Z])", "", ("\\left", "\\right", "\\big", "\\Big")),
    (r"\\(?:displaystyle|textstyle|scriptstyle|limits|nolimits)(?![a-zA-Z])", "", ("style", "limits")),
    (r"(?<!\\)\\[,;:]", " ", ("\\,", "\\;", "\\:")), (r"(?<!\\)\\!", "", ("\\!",)),
    (r"(?<!\\)\\ ", " ", ("\\ ",)),  # thin spaces part words (km\\,h)
    (r"\\q?quad(?![a-zA-Z])", " ", ("quad",)), (r"~", " ", ("~",)),
    (r"\\Bbb\s*\{?\s*([A-Z])\s*\}?", r"\\mathbb{\1}", ("\\Bbb",)),  # plain TeX's blackboard bold: \Bbb R, \Bbb{R}
    (r"\\[dtc]frac(?![a-zA-Z])", r"\\frac", ("frac",)), (r"\\[dt]binom(?![a-zA-Z])", r"\\binom", ("binom",)),
    (r"\\(frac|binom)\s*([0-9a-zA-Z])\s*([0-9a-zA-Z])", r"\\\1{\2}{\3}", ("\\frac", "\\binom")),  # \frac12
    (r"\\(frac|binom)\s*(\{[^{}]*\})\s*([0-9a-zA-Z])", r"\\\1\2{\3}", ("\\frac", "\\binom")),
    (r"\\(frac|binom)\s*([0-9a-zA-Z])\s*(\{)", r"\\\1{\2}\3", ("\\frac", "\\binom")),
    (r"\\sqrt\s*([0-9a-zA-Z])", r"\\sqrt{\1}", ("\\sqrt",)),
    (r"\\(?:leqslant|leq|le)(?![a-zA-Z])", "≤", ("\\le",)), (r"\\(?:geqslant|geq|ge)(?![a-zA-Z])", "≥", ("\\ge",)),
    (r"\\(?:neq|ne)(?![a-zA-Z])", "≠", ("\\ne",)), (r"\\lt(?![a-zA-Z])", "<", ("\\lt",)),
    (r"\\gt(?![a-zA-Z])", ">", ("\\gt",)),
    (r"\\approx(?![a-zA-Z])", "≈", ("\\approx",)),  # x \approx 3.14 states a value; \pi \approx 3.14 is pi
    (r"(\d\s*)\\Omega(?![a-zA-Z])", r"\1\\text{ ohm}", ("\\Omega",)),  # 5\,\Omega: ohms
    (r"(\d\s*)\\mu\s*\\(?:text|mathrm|rm)\s*\{\s*([A-Za-z]+)\s*\}", r"\1\\text{ u\2}", ("\\mu",)),  # 5\,\mu\text{m}
    (r"(\\(?:sin|cos|tan|cot|sec|csc)\s*(?:\^\s*(?:\{[^{}]*\}|\d)\s*)?\(?\s*)(\d+(?:\.\d+)?)\s*"
     r"(?:\^\s*\{?\s*\\circ\s*\}?|\\degree(?![a-zA-Z]))", r"\1(\2\\pi/180)",
     ("\\circ", "\\degree")),  # \sin 30^\circ: degrees in radians
    (r"(?:\^\s*\{\s*\\circ\s*\}|\^\s*\\circ|\\circ|\\degree)\s*([CF])(?![a-zA-Z])", r" \1",
     ("\\circ", "\\degree")),  # 5^\circ C: a temperature
    (r"\^\s*\{\s*\\circ\s*\}|\^\s*\\circ(?![a-zA-Z])|\\circ(?![a-zA-Z])|\\degree(?![a-zA-Z])", "",
     ("\\circ", "\\degree")),
    (r"\\(?:operatorname|mathrm|textrm|text)\s*\{\s*(max|min|gcd|lcm)\s*\}(?=\s*(?:\(|\\\{))", r"\\\1",
     ("\\operatorname", "\\mathrm", "\\text")),  # \operatorname{lcm}(
    (r"\\(?:SI|qty)\s*\{([^{}]*)\}\s*\{(?:[^{}]|\{[^{}]*\})*\}", r"\1", ("\\SI", "\\qty")),  # siunitx
    (r"\\num\s*\{([^{}]*)\}", r"\1", ("\\num",)),
    (r"\\%", "%", ("\\%",)), (r"\\\$|\$", "", ("$",)), (r"\{,\}", ",", ("{,}",)),
    (r"\\langle(?![a-zA-Z])", "(", ("\\langle",)), (r"\\rangle(?![a-zA-Z])", ")", ("\\rangle",)),
    (r"\\lbrace(?![a-zA-Z])", r"\\{", ("\\lbrace",)), (r"\\rbrace(?![a-zA-Z])", r"\\}", ("\\rbrace",)),
    (r"\\lbrack(?![a-zA-Z])", "[", ("\\lbrack",)), (r"\\rbrack(?![a-zA-Z])", "]", ("\\rbrack",)),
    (r"\\(?:lvert|rvert|vert|mid)(?![a-zA-Z])", "|", ("vert", "\\mid")),
    (r"\\(?:emptyset|varnothing)(?![a-zA-Z])", r"\\{\\}", ("\\emptyset", "\\varnothing")),
    (r"\s+percent\b", "%", ("percent",)), (r"<=", "≤", ("<=",)), (r">=", "≥", (">=",)), (r"!=", "≠", ("!=",)),
]]
_PLAIN_SUBS = [sub for sub in _SUBS if sub[2][0] in ("~", "$", "{,}", "percent", "<=", ">=", "!=")]  # no backslash
_TEXT_CMD = re.compile(r"\\(text|textbf|textit|textrm|textnormal|textsf|mbox|mathrm|mathbf|mathit|mathsf|"
                       r"boldsymbol|bm|operatorname)\s*\{")
_UNIT_POWER = re.compile(r"\s*\^\s*(?:\{\s*-?\s*\d\s*\}|-?\d)")
_UNIT_CMDS = {"text", "textrm", "textnormal", "textsf", "textit", "textbf", "mbox", "mathrm"}
_UNIT_CHAIN = re.compile(r"\s*(/|\\cdot(?![a-zA-Z])|\*|·)?\s*(?=\\(?:text|textrm|textnormal|mbox|mathrm)\s*\{)")
_NOT_A_VALUE = "=+-*/^_({[,;<>&≤≥≠"  # a group after one of these is not a unit of a value
_ITEM_END = re.compile(r"\s*(?:\^|[,;)\]=+\-&]|\\\}|$)")  # what may follow a unit that ends its item
_SEPARATOR_WORDS = re.compile(r"\s*,?\s+(?:and|or)\s+")  # "2, 3 and 4", "2, or 3"
_SPACES = re.compile(r"\s+")
_EACH = re.compile(r"(?<=\S)\s+(?:each|apiece)\s*$")
_BASE_TEN = re.compile(r"^(-?\d+(?:\.\d+)?)\s*_\s*\{?\s*10\s*\}?$")
_IN_PREFIX = re.compile(r"^(?:[a-zA-Z]|\\[a-zA-Z]+)(?:_\{?\w+\}?)?\s*\\in\s*")  # x, \theta, x_1 \in [0, 1]
_SCI = re.compile(r"^([-+]?\d+(?:\.\d+)?)[eE]([-+]?\d+)$")
# a trailing modulus: 3 \pmod{7}, 3 \pmod 7, 3 \mod 7, 3 (\text{mod } 7) (cleaned to "3 (mod 7)"), 3 (\bmod 7)
_MODULUS = re.compile(r"\s*(\()?\s*(?:\\[pb]?mod(?![a-zA-Z])|\{\s*mod\s*\}|(?<![A-Za-z\\])mod(?![a-zA-Z]))\s*"
                      r"(?:\{\s*([^{}]+?)\s*\}|([A-Za-z0-9]+|\\[A-Za-z]+))\s*(?(1)\))\s*$")
_ISO_INTERVAL = re.compile(r"([\[\]])([^\[\]{}]*,[^\[\]{}]*)([\[\]])")  # ]0, 1[ is (0, 1); [0, 1[ is [0, 1)
_LEADING_EQ = re.compile(r"^(?:=|\\equiv(?![a-zA-Z]))\s*(?=[^=\s])")  # "= 5" is 5
_LAST_INTEGER = re.compile(r"(^|=)\s*(-?\d+)$")
_EQUIV = re.compile(r"\\equiv(?![a-zA-Z])|≡")
_ORDINAL = re.compile(r"(\d+)\s*(?:\^\s*)?(?:\{\s*)*(?:\\(?:rm|mathrm|text|textrm|textsuperscript|underline)(?![a-zA-Z])\s*)?(?:\{\s*)*"
                      r"(st|nd|rd|th)\s*(?:\}\s*)*")
_NUMBER_WORDS = {w: str(n) for n, w in enumerate(  # positions; cardinals are read by _number_in_words
    "first second third fourth fifth sixth seventh eighth ninth tenth eleventh twelfth".split(), 1)}


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


def _unit_group(s: str, m, inner: str, end: int, names: set[str]) -> tuple[str, int] | None:
    """When the ``\\text{}``-like group ``m`` (content ``inner``, ending at ``end``) is a unit after a value,
    with the unit groups chained to it (``\\text{km}/\\text{h}``) and a power (``^2``): what replaces them (a
    scale such as ``\\times 10^{6}``, or a space) and where they end; the unit's name goes to ``names``."""
    if m.group(1) not in _UNIT_CMDS:
        return None
    before = s[: m.start()].rstrip()
    if not before or before[-1] in _NOT_A_VALUE or before.endswith("\\{"):
        return None
    tokens = run_tokens(inner)
    if tokens is None or (is_inches(tokens) and not _ITEM_END.match(s, end)):
        return None
    while True:
        power = _UNIT_POWER.match(s, end)
        if power:
            tokens.append("^" + re.sub(r"[\s{}^]", "", power.group(0)))
            end = power.end()
        chain = _UNIT_CHAIN.match(s, end)
        nxt = _TEXT_CMD.match(s, chain.end()) if chain else None
        group = braced(s, nxt.end() - 1) if nxt else None
        more = run_tokens(group[0]) if group else None
        if not more:
            break
        tokens += (["/"] if chain.group(1) == "/" else []) + more
        end = group[1]
    scale, rest = scale_of(tokens)
    if rest and (in_sum(s, m.start(), -1) or in_sum(s, end, 1)):
        return None  # 5 m + 2 cm is not 7: a unit beside a sum stays in the answer (scale words still scale)
    if rest:
        names.add(unit_name(rest))
    return (scale + " " if scale else " "), end


def _strip_text_commands(s: str, names: set[str]) -> str:
    """Unwrap ``\\text{}``-like groups: a whole-answer group is its content; a unit group after a value is
    dropped (with a following power, and its name goes to ``names``); "and"/"or" become commas."""
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
        unit = None
        if core.lower() in ("and", "or", ",", ""):
            repl = ","
            if not core:
                repl = ""
        elif (unit := _unit_group(s, m, inner, end, names)) is not None:
            repl, end = unit
        else:
            repl = "{" + inner + "}" if m.group(1) in ("mathbf", "boldsymbol", "bm", "mathrm") else inner
        s = s[: m.start()] + repl + s[end:]
        pos = m.start() + len(repl) if repl not in (" ", ",", "") and unit is None else m.start()
    return s


_UNIT_HINT = re.compile(r"\\(?:text|textrm|textnormal|textsf|textit|textbf|mbox|mathrm)\s*\{|[\d}] +[A-Za-z]")
_MAX_SUMS = 16  # sums looked at in one answer


def _term_unit(term: str) -> tuple[str, str] | None:
    """``(the term without its unit, the unit's name)`` when one term of a sum carries exactly one known unit
    (``5\\text{ cm}`` -> ``("5", "cm")``), else None."""
    names: set[str] = set()
    value = _strip_text_commands(term, names) if "\\" in term else term
    value, tail = strip_tail_units(_SPACES.sub(" ", value).strip())
    names |= tail
    if len(names) != 1 or any(is_unknown(n) for n in names) or not value.strip():
        return None
    return value.strip(), next(iter(names))


def _same_unit_sums(s: str, names: set[str]) -> str:
    """A sum whose every term carries the same unit is the sum of the values in that unit: ``5\\text{ cm} +
    2\\text{ cm}`` is 7 (in cm, which goes to ``names``). A sum with different units, or with a unit on some terms
    only, is left alone: ``5\\text{ m} + 2\\text{ cm}`` and ``5\\text{ cm} + 2`` are not 7."""
    if ("+" not in s and "-" not in s) or not _UNIT_HINT.search(s):
        return s
    done: list[int] = []  # starts of the sums rewritten (right to left: the positions before them still hold)
    for start, end, ops in sorted(sum_items(s), reverse=True)[:_MAX_SUMS]:
        if any(start <= d < end for d in done):
            continue  # holds a sum already rewritten
        bounds = [start, *ops, end]
        terms = []
        for a, b in zip(bounds, bounds[1:]):
            term = _term_unit(s[a + (a != start) : b])
            if term is None or (terms and term[1] != terms[0][1]):
                break
            terms.append(term)
        else:
            names.add(terms[0][1])
            joined = terms[0][0] + "".join(s[op] + value for op, (value, _) in zip(ops, terms[1:]))
            s = s[:start] + joined + s[end:]
            done.append(start)
    return s


def _ordinal_suffix(n: int) -> str:
    return "th" if n % 100 in (11, 12, 13) else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")


def _ordinal(s: str) -> str:
    """A whole answer that is a position or a number word as its number: ``3rd``, ``3^{rd}``, ``3^\\text{rd}``,
    ``third``, ``three`` -> ``3``. The suffix must be the number's own (``3th`` stays as written)."""
    m = _ORDINAL.fullmatch(s)
    if m and s.count("{") == s.count("}") and m.group(2) == _ordinal_suffix(int(m.group(1))):
        return m.group(1)
    word = s.lower().removeprefix("the ")
    return _NUMBER_WORDS.get(word) or (_number_in_words(word) if word[:1].isalpha() else None) or s


_SMALL = {w: n for n, w in enumerate("zero one two three four five six seven eight nine ten eleven twelve thirteen "
                                     "fourteen fifteen sixteen seventeen eighteen nineteen".split())}
_TENS = {w: 10 * n for n, w in enumerate("twenty thirty forty fifty sixty seventy eighty ninety".split(), 2)}
_SCALES = {"thousand": 10**3, "million": 10**6, "billion": 10**9}
_PARTS = {"half": 2, "halves": 2, "third": 3, "thirds": 3, "quarter": 4, "quarters": 4, "fourth": 4, "fourths": 4,
          "fifth": 5, "fifths": 5, "sixth": 6, "sixths": 6, "seventh": 7, "sevenths": 7, "eighth": 8, "eighths": 8,
          "ninth": 9, "ninths": 9, "tenth": 10, "tenths": 10}
_WORDS_SHAPE = re.compile(r"[a-z]+(?:(?:[ -]+|(?:(?<=hundred)|(?<=thousand)|(?<=million)|(?<=billion)), *)[a-z]+){0,11}")


def _number_in_words(text: str) -> str | None:
    """An English cardinal written in words as its numeral (``forty-two`` -> ``42``, ``one hundred and five`` ->
    ``105``, ``two thousand`` -> ``2000``), or a simple fraction (``one half``, ``a third``, ``three quarters`` ->
    ``3/4``); None for anything else."""
    text = text.replace(",a half", " and a half")  # (after the list separators' cleaning)
    if len(text) > 120 or not _WORDS_SHAPE.fullmatch(text):
        return None
    words = [w for w in re.split(r"[ ,-]+", text) if w != "and"]  # (a comma only after a scale: "one hundred,
    # five" is "one hundred and five" after the list separators' cleaning)
    if len(words) > 2 and words[-2:] == ["a", "half"]:  # "one and a half"
        whole = _number_in_words(" ".join(words[:-2]))
        return None if whole is None or "/" in whole else f"{2 * int(whole) + 1}/2"
    if len(words) == 2 and words[0] in ("a", "an", "one", *_SMALL) and words[1] in _PARTS:
        count = 1 if words[0] in ("a", "an") else _SMALL[words[0]]
        if (count == 1) != words[1].endswith("s") or words[1] == "halves" and count == 1:
            return f"{count}/{_PARTS[words[1]]}"
        return None
    total = current = 0
    last = None  # the kind of the previous word: a cardinal reads small, tens, hundred, scale, each in its place
    for w in words:
        if w in _SMALL and last in (None, "tens", "hundred", "scale") and not (last == "tens" and _SMALL[w] >= 10):
            if last == "tens" and _SMALL[w] == 0:
                return None
            current += _SMALL[w]
            last = "small"
        elif w in _TENS and last in (None, "hundred", "scale"):
            current += _TENS[w]
            last = "tens"
        elif w == "hundred" and last in ("small", "tens") and 0 < current < 100:  # "twelve hundred" too
            current *= 100
            last = "hundred"
        elif w in _SCALES and last in ("small", "tens", "hundred") and 0 < current < 1000:
            total += current * _SCALES[w]
            current, last = 0, "scale"
        else:
            return None
    return str(total + current) if last is not None else None


def _modulus(s: str, names: set[str]) -> str:
    """An answer followed by its modulus is its residue: ``3 \\pmod{7}`` is 3, ``x \\equiv 10 \\pmod 7`` is ``x = 3``
    and ``17 \\pmod{12}`` is 5 (an integer is reduced, ``10 \\bmod 7`` is 3 as well; a symbol is kept). The modulus
    goes to ``names`` as a unit (``mod7``), so two answers that both name one must name the same."""
    m = _MODULUS.search(s)
    if m is None or not s[: m.start()].strip():
        return s
    modulus = re.sub(r"\s+", "", m.group(2) or m.group(3))
    names.add("mod" + modulus)
    before = _EQUIV.sub("=", s[: m.start()]).strip()
    sides = before.split("=")
    if len(sides) == 2 and sides[1].strip() and not re.search(r"(?<!\\)[A-Za-z]", sides[0]) \
            and _true_congruence(sides[0], sides[1], modulus):
        before = sides[1].strip()  # "2^{10} \equiv 2 \pmod 7": a number's residue, stated (a false one stays
        # the equation it is: "2^{10} \equiv 3" is not 3)
    return _residue(before, modulus)


_POWER = re.compile(r"\s*(\d{1,50})\s*(?:\^\s*\{?\s*(\d{1,50})\s*\}?)?\s*")


def _true_congruence(left: str, right: str, modulus: str) -> bool:
    """Whether ``left`` (an integer or a power of one) is ``right`` modulo ``modulus``; True when it cannot tell."""
    a, b = _POWER.fullmatch(left), _POWER.fullmatch(right)
    if a is None or b is None or not modulus.isdigit() or int(modulus) == 0 or len(modulus) > 50:
        return True
    m = int(modulus)
    value = pow(int(a.group(1)), int(a.group(2) or 1), m)
    return value == pow(int(b.group(1)), int(b.group(2) or 1), m)


def _residue(s: str, modulus: str) -> str:
    """``s`` with its final integer reduced modulo ``modulus`` when both are integers (``x = 10``, ``7`` -> ``x = 3``)."""
    m = _LAST_INTEGER.search(s)
    if m is None or not modulus.isdigit() or int(modulus) == 0 or len(m.group(2)) > 1000 or len(modulus) > 1000:
        return s
    return s[: m.start(2)] + str(int(m.group(2)) % int(modulus))


def _iso_intervals(s: str) -> str:
    """Intervals written with reversed brackets (ISO 31-11, French: ``]0, 1[``, ``[0, 1[``), alone or joined by
    ``\\cup``, in parentheses: ``(0, 1)``, ``[0, 1)``."""
    parts = s.split("\\cup")
    rewritten = []
    for part in parts:
        m = _ISO_INTERVAL.fullmatch(part.strip())
        if m is None:
            return s
        rewritten.append(("(" if m.group(1) == "]" else "[") + m.group(2) + (")" if m.group(3) == "[" else "]"))
    return " \\cup ".join(rewritten)


def _end_period(s: str) -> str:
    """``s`` without the period (or the stray comma, semicolon) that ends a sentence; an ellipsis
    (``1, 2, 3, ...``) is kept."""
    s = s.strip()
    return s if s.endswith("...") else s.rstrip(".,;").strip()


def _normalize(s: str) -> tuple[str, frozenset]:
    """The cleaned answer and the names of the units it was written with (see ``units``)."""
    s = s.strip()
    if not s:
        return s, frozenset()
    names = marks(s)
    s = ascii_digits(s)
    if not s.isascii():  # (every key of _UNICODE is a non-ASCII character)
        s = _SUPERSCRIPT.sub(lambda m: "^{" + m.group(0).translate(_SUPERSCRIPT_ASCII) + "}", s)
        s = _UNICODE_ROOT.sub(lambda m: f"\\sqrt{_ROOT_INDEX[m.group(1)]}{{{m.group(2)}}}", s)
        s = _UNICODE_RE.sub(lambda m: _UNICODE[m.group(0)], s)
    for left, right in (("\\(", "\\)"), ("\\[", "\\]"), ("$$", "$$")):
        if s.startswith(left) and s.endswith(right) and len(s) >= len(left) + len(right):
            s = s[len(left) : len(s) - len(right)]
    for pattern, repl, triggers in _SUBS if "\\" in s else _PLAIN_SUBS:
        for trigger in triggers:
            if trigger in s:
                s = pattern.sub(repl, s)
                break
    if "\\over" in s or "\\choose" in s:
        s = _over_to_frac(s)
    s = _same_unit_sums(s, names)
    if "\\" in s:
        s = _strip_text_commands(s, names)
    s = _SEPARATOR_WORDS.sub(",", s)
    s = _end_period(_SPACES.sub(" ", s))
    s = _LEADING_EQ.sub("", s) if s[:1] == "=" or "\\equiv" in s[:8] else s
    s = _ordinal(_modulus(s, names) if "mod" in s else s)
    if "]" in s[:1] or "[" in s[-1:]:
        s = _iso_intervals(s)
    s = _EACH.sub("", s) if "each" in s or "apiece" in s else s  # "$40 each"
    s, tail = strip_tail_units(s)
    names |= tail
    if tail and s[:1].isalpha():
        s = _ordinal(s)  # "twelve dollars"
    s = _IN_PREFIX.sub("", s.strip())
    if "_" in s:
        s = _BASE_TEN.sub(r"\1", s)  # 11_{10}: eleven written in base ten
    m = _SCI.match(s)
    if m:
        s = f"{m.group(1)}\\times10^{{{m.group(2)}}}"
    return _end_period(s), settle(names)


_normalized = lru_cache(maxsize=16384)(_normalize)


def clean(s: str) -> str:
    """Normalize an answer string: spacing, delimiters, text/units, degrees, dollars, trailing periods."""
    return _normalized(s)[0]


def units(s: str) -> frozenset:
    """The canonical names of the units an answer is written with (``5\\text{ cm}`` -> ``{"cm"}``, ``30^\\circ``
    -> ``{"deg"}``); a name starting with ``?`` stands for unit words we cannot name (``units.unknown_name``)."""
    return _normalized(s)[1]


def _clear_caches() -> None:
    _normalized.cache_clear()
    plain_numeral.cache_clear()


clean.cache_clear = units.cache_clear = _clear_caches  # one cache behind both: each answer is normalized once
