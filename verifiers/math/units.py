"""Units after a value (one job: recognize them and name them): ``5\\text{ cm}``, ``60 \\mathrm{km/h}``,
``9.8 m/s^2``, ``12 square feet``, ``\\$5``, ``30^\\circ``.

A *unit run* is unit words joined by spaces, ``/``, ``\\cdot``, ``*`` or "per", each with an optional power
(``^2``, ``^{-1}``). Unit words are the known units (``KNOWN``: ``cm``, ``km``, ``s``, ``N``...) and, in a
``\\text{}``-like group or after a space, any word of three letters or more that is neither a math word
(``MATH_WORDS``) nor a connecting word (``CONNECTORS``: ``and``, ``for``, ``real``...), so ``x \\text{ for } x > 0``
keeps its words. Scale words are not units: ``5 \\text{ million}`` is ``5\\times 10^{6}``.
"in" is a connecting word except where it stands alone as the unit that ends a value's item: ``6\\text{ in}``,
``6 in``, ``12\\text{ sq in}`` are inches; ``5 in total`` and ``x \\text{ in } [0, 1]`` are words.

``run_tokens`` says whether a text is a unit run; ``strip_tail_units`` drops the bare unit run that ends an answer
or an item of it (``5 cm``, ``(3 cm, 4 cm)``), but not one on a term of a sum (``in_sum``: ``5 + 2 cm`` is not 7;
``sum_items`` finds the sums, whose terms ``normalize`` may add when all carry one unit); ``unit_name`` names a run
(``km/h`` -> ``kph``, ``?`` when unknown);
``units_differ`` says whether two answers' named units disagree (``5 cm`` and ``5 m``, ``\\$5`` and ``5 cents``).
"""
from __future__ import annotations

import re

_COUNTED = {"numbers", "integers", "solutions", "primes", "roots", "pairs", "triples", "digits", "divisors",
            "factors", "zeros", "points", "values", "terms"}  # plural nouns a count names after its number
MATH_WORDS = {"pi", "sqrt", "sin", "cos", "tan", "cot", "sec", "csc", "log", "ln", "exp", "arcsin", "arccos",
              "arctan", "sinh", "cosh", "tanh", "inf", "infty", "infinity", "frac", "oo"}
CONNECTORS = set("""and or for if iff when where with without is are the of to at all any no not none only such that
then than otherwise else each every so but since because both either neither yes true false undefined impossible
real reals number numbers integer integers rational irrational complex natural positive negative nonnegative
solution solutions infinitely many infinite exist exists does do there from by on as be it its even odd prime
primes set empty except unless until while less more greater equal equals between also in up down left right
times plus minus over divided constant some arbitrary root roots mod modulo gcd lcm max min det maybe perhaps
possibly probably alternatively else instead otherwise""".split())
SCALES = {"hundred": "10^{2}", "thousand": "10^{3}", "million": "10^{6}", "billion": "10^{9}",
          "trillion": "10^{12}", "dozen": "12"}
_MODIFIERS = {"square": "2", "sq": "2", "cubic": "3", "cu": "3"}

_SPELLED = {  # canonical name: the ways it is written
    "mm": "mm millimeter millimeters millimetre millimetres", "cm": "cm centimeter centimeters centimetre centimetres",
    "m": "m meter meters metre metres", "km": "km kilometer kilometers kilometre kilometres",
    "in": "in inch inches", "ft": "ft foot feet", "yd": "yd yard yards", "mi": "mi mile miles",
    "mg": "mg milligram milligrams", "g": "g gram grams gm", "kg": "kg kilogram kilograms kgs",
    "lb": "lb lbs pound pounds", "oz": "oz ounce ounces", "ton": "ton tons tonne tonnes",
    "ms": "ms millisecond milliseconds", "s": "s sec secs second seconds", "min": "min mins minute minutes",
    "h": "h hr hrs hour hours", "day": "day days", "week": "week weeks wk wks", "month": "month months",
    "year": "year years yr yrs", "ml": "ml mL milliliter milliliters millilitre millilitres cc",
    "l": "l L liter liters litre litres", "gal": "gal gallon gallons", "mph": "mph", "kph": "kph kmh kmph",
    "N": "N newton newtons", "J": "J joule joules", "kJ": "kJ kilojoule kilojoules", "W": "W watt watts",
    "kW": "kW kilowatt kilowatts", "V": "V volt volts", "A": "A amp amps ampere amperes", "Pa": "Pa pascal pascals",
    "Hz": "Hz hertz", "K": "K kelvin kelvins", "deg": "deg degree degrees", "rad": "rad rads radian radians",
    "$": "dollar dollars usd", "cent": "cent cents",
}
KNOWN: dict[str, str] = {}
for _canon, _forms in _SPELLED.items():
    for _form in _forms.split():
        KNOWN[_form] = _canon
_ONE_LETTER = {"m", "s", "g", "h", "l", "L", "N", "J", "W", "V", "A", "K", "C", "F"}  # C, F after a degree mark
_RATES = {"km/h": "kph", "mi/h": "mph"}

_POWER = r"\^\s*(?:\{\s*-?\s*\d\s*\}|-?\d)"
_TOKEN = re.compile(rf"\s*(?:([A-Za-z]+)\.?|({_POWER})|(/|\\cdot(?![a-zA-Z])|\*|·))\s*")
_TAIL = re.compile(rf"(?<![A-Za-z\\])[A-Za-z]+\.?(?:\s*{_POWER})?"
                   rf"(?:(?:\s*(?:/|\\cdot(?![a-zA-Z])|\*|·)\s*|\s+)[A-Za-z]+\.?(?:\s*{_POWER})?)*\s*$")
_LETTER = re.compile(r"[A-Za-z]")
_BOUNDARY = re.compile(r"\s*(?:[,;)\]]|\\\}|$)")
_DEGREE_MARK = re.compile(r"\^\s*\{?\s*\\circ|\\circ(?![a-zA-Z])|\\degree(?![a-zA-Z])|°")
_MONEY_MARK = re.compile(r"\\\$")
_MAX_RUN = 80  # characters a bare unit run may span


def _word_ok(word: str, strong: bool) -> bool:
    """Whether ``word`` can be a unit word: ``strong`` inside a ``\\text{}``-like group or after a space."""
    low = word.lower()
    if low in SCALES or low in _MODIFIERS or low == "per":
        return True
    if low == "in":
        return strong  # inches, where the run is "in" alone (``run_tokens``); elsewhere "in" is a word
    if low in ("min", "mins"):
        return True  # minutes after a value (5 min); \\min(3, 5) is a command, never a unit run
    if low == "sec":
        return strong  # seconds in a \\text{} group or after a space (5 sec); \\sec x is a command
    if low in _COUNTED and strong:
        return True  # "128 \\text{ integers}": what was counted, a unit of the count (not the set of integers)
    if low in CONNECTORS or low in MATH_WORDS:
        return False
    if len(word) == 1:
        return word in _ONE_LETTER
    if len(word) == 2:
        return word in KNOWN or low in KNOWN or strong
    return strong


def run_tokens(text: str, strong: bool = True) -> list[str] | None:
    """The tokens of ``text`` when all of it is one unit run (words, ``/``, powers), else None."""
    tokens, pos = [], 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None or m.end() == pos:
            return None
        pos = m.end()
        word, power, join = m.groups()
        if word is not None:
            if not _word_ok(word, strong):
                return None
            tokens.append(word)
        elif power is not None:
            if not tokens or not tokens[-1][0].isalpha():
                return None
            tokens.append("^" + re.sub(r"[\s{}^]", "", power))
        elif join == "/":
            tokens.append("/")
    words = [t for t in tokens if t[0].isalpha()]
    if not words or all(w.lower() in ("per", "square", "sq", "cubic", "cu") for w in words):
        return None
    if any(w.lower() == "in" for w in words) and sum(w.lower() not in _MODIFIERS for w in words) > 1:
        return None  # "in" is inches only on its own (6 in, 12 sq in, 4 in^2): "in total", "in meters" are words
    return tokens


def is_inches(tokens: list[str]) -> bool:
    """Whether a unit run is inches: "in" is a unit only where the run ends the value's item (``6\\text{ in}``,
    not ``x \\text{ in } [0, 1]``)."""
    return any(t.lower() == "in" for t in tokens)


def scale_of(tokens: list[str]) -> tuple[str, list[str]]:
    """``(\\times 10^{6}..., the rest)`` for a run that starts with scale words (``million dollars``)."""
    scale = ""
    while tokens and tokens[0].lower() in SCALES:
        scale += "\\times " + SCALES[tokens[0].lower()]
        tokens = tokens[1:]
    return scale, tokens


def _stem(word: str) -> str:
    """The same for a word's singular and plural: a final ``s`` (not ``ss``), then ``ie`` -> ``y``, then a final
    ``e`` dropped (horses/horse -> hors, boxes/box -> box, cherries/cherry -> cherry, classes/class -> class)."""
    if len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
        word = word[:-1]
    if word.endswith("ie"):
        word = word[:-2] + "y"
    if len(word) > 3 and word.endswith("e"):
        word = word[:-1]
    return word


def unknown_name(word: str) -> str:
    """The name of a unit word that is not a known unit: ``?`` and its stem (``boxes`` and ``box`` are ``?box``),
    in lower case but for abbreviations of up to three letters, whose case may be a prefix's (``MW`` is not
    ``mW``), so that two such words are the same unit only when they are the same word."""
    return "?" + (word if len(word) <= 3 else _stem(word.lower()))


def is_unknown(name: str) -> bool:
    return "?" in name


_TEMPERATURES = {"celsius": "C", "centigrade": "C", "fahrenheit": "F"}
# words that describe a quantity without being part of its unit: "5 years old", "3 m long", "10 km away"
_UNIT_ADJECTIVES = {"old", "long", "tall", "wide", "high", "deep", "away", "apart", "total", "each", "thick"}
_POSTFIX_POWERS = {"squared": 2, "cubed": 3}


def _known(t: str) -> str | None:
    low = t.lower()
    return KNOWN.get(t) or (KNOWN.get(low) if len(t) > 2 or not t.startswith("M") else None) \
        or _TEMPERATURES.get(low) or (t if t in ("C", "F") else None)


def unit_name(tokens: list[str]) -> str:
    """A canonical name for a unit run, from the power of each unit: ``km/h``, ``km h^{-1}`` and "kilometers per
    hour" are ``kph``, ``square feet``, ``feet squared`` and ``ft^2`` are ``ft^2``, ``m/s^2`` is ``m/s^2``; a word
    that is not a known unit is a unit of its own, ``?<word>`` (:func:`unknown_name`: ``square units`` and
    ``units^2`` are ``?unit^2``); words that only describe the quantity (``old``, ``long``) are left out."""
    powers: dict[str, int] = {}
    sign, modifier, last = 1, 1, None
    for t in tokens:
        low = t.lower()
        if t == "/" or low == "per":
            sign = -1
        elif t.startswith("^"):
            if last is not None:
                powers[last] += int(t[1:]) * (1 if powers[last] > 0 else -1) - (1 if powers[last] > 0 else -1)
        elif low in _MODIFIERS:
            modifier = int(_MODIFIERS[low])
        elif low in _POSTFIX_POWERS:
            if last is not None:
                powers[last] *= _POSTFIX_POWERS[low]
        elif low in _UNIT_ADJECTIVES:
            continue
        else:
            name = _known(t) or unknown_name(t)
            powers[name] = powers.get(name, 0) + sign * modifier
            last, modifier = name, 1
    for scale in ("C", "F"):  # "degrees Celsius" is what a degree mark and C are (``settle``)
        if powers == {"deg": 1, scale: 1}:
            return "deg" + scale
    up = [u + (f"^{p}" if p != 1 else "") for u, p in sorted(powers.items()) if p > 0]
    down = [u + (f"^{-p}" if p != -1 else "") for u, p in sorted(powers.items()) if p < 0]
    text = "*".join(up) + ("/" + "*".join(down) if down else "")
    return _RATES.get(text, text)


_PROSE = re.compile(r"\s*[A-Za-z]{2,}\.?(?:\s+[A-Za-z]{2,}\.?)+\s*")


def _prose(text: str) -> bool:
    """Two or more plain words (two letters or more each, no math word, no scale): a sentence going on after the
    value, which is not part of the answer."""
    if not _PROSE.fullmatch(text):
        return False
    words = [w.lower() for w in re.findall(r"[A-Za-z]+", text)]
    return not any(w in MATH_WORDS or w in SCALES or w in _OFFERING for w in words)


# words that offer another value: a sentence with one is not prose to drop ("5 maybe six" names two answers)
_OFFERING = {"and", "or", "maybe", "perhaps", "possibly", "probably", "else", "alternatively", "otherwise"}


_VALUE_END = set("0123456789)]}%.") | set("abcdfghijklmnopqrstuvwxyzABCDFGHIJKLMNOPQRSTUVWXYZ")


def in_sum(s: str, pos: int, step: int) -> bool:
    """Whether the term that ends (``step`` -1, scanning left from ``pos``) or starts (``step`` 1, scanning right)
    at ``pos`` is added to or subtracted from another, within its item: a ``+``/``-`` outside brackets before the
    next ``,``, ``;``, ``=`` or enclosing bracket, that is not a sign (``-5``, ``10^-3``, ``1e-5``)."""
    depth, i = 0, pos - 1 if step < 0 else pos
    opens, closes = ("([{", ")]}") if step > 0 else (")]}", "([{")
    while 0 <= i < len(s):
        ch = s[i]
        if ch in opens:
            depth += 1
        elif ch in closes:
            if depth == 0:
                return False
            depth -= 1
        elif depth == 0 and ch in ",;=&":
            return False
        elif depth == 0 and ch in "+-":
            before = s[:i].rstrip()
            if before and before[-1] in _VALUE_END and not (before[-1] in "eE" and before[-2:-1].isdigit()):
                return True
        i += step
    return False


def _binary(s: str, i: int, start: int) -> bool:
    """Whether the ``+``/``-`` at ``i`` joins two terms (a value ends before it, after ``start``), not a sign."""
    j = i - 1
    while j >= start and s[j] == " ":
        j -= 1
    return j >= start and s[j] in _VALUE_END


def sum_items(s: str) -> list[tuple[int, int, list[int]]]:
    """The items of ``s`` that are sums or differences of terms (``5 cm + 2 cm``, ``(3 m - 1 m, 4)``): each stretch
    between ``,;=&``, a relation or its enclosing brackets whose own level joins terms with ``+``/``-`` (not
    signs), as ``(start, end, positions of those operators)``. Items nest (brackets) or are disjoint. One pass."""
    found: list[tuple[int, int, list[int]]] = []
    stack: list[list] = [[0, []]]  # per open bracket: where its current item starts, its operators
    for i, ch in enumerate(s):
        if ch in "([{":
            stack.append([i + 1, []])
        elif ch in ")]}" and len(stack) > 1:
            start, ops = stack.pop()
            if ops:
                found.append((start, i, ops))
        elif ch in ",;=&<>≤≥≠":
            start, ops = stack[-1]
            if ops:
                found.append((start, i, ops))
            stack[-1] = [i + 1, []]
        elif ch in "+-" and _binary(s, i, stack[-1][0]):
            stack[-1][1].append(i)
    found += [(start, len(s), ops) for start, ops in stack if ops]  # items of unclosed brackets end with the text
    return found


def strip_tail_units(s: str) -> tuple[str, set[str]]:
    """Drop the bare unit run (``5 cm``, ``60 km/h``) that ends the answer or an item of it, after a value.

    Bare runs are held to more than ``\\text{}`` groups: the value must end in a digit, a closing bracket, ``%``
    or ``.``; a one-letter unit or an unknown word needs a space before it."""
    names: set[str] = set()
    if not _LETTER.search(s):
        return s, names
    pos = 0
    while pos <= len(s):
        b = _BOUNDARY.search(s, pos)
        if b is None:
            break
        end = b.start()
        m = _TAIL.search(s, max(0, end - _MAX_RUN), end)
        while m is not None:
            head = s[: m.start()].rstrip()
            spaced = m.start() > len(head)
            tokens = run_tokens(m.group(0), strong=spaced)
            if tokens and head and head[-1] in "0123456789})]|.%" and (spaced or all(
                    len(t) > 1 for t in tokens if t[0].isalpha())) and not (
                    scale_of(tokens)[1] and in_sum(s, len(head), -1)):
                scale, rest = scale_of(tokens)
                if rest:
                    names.add(unit_name(rest))
                s = head + scale + s[end:]
                end = len(head) + len(scale)
                break
            if tokens is None and spaced and head and head[-1] in "0123456789})]|%" and _prose(m.group(0)):
                s = head + s[end:]  # "138 much to Cairo", "5 so we are done": words after the value, not units
                end = len(head)
                break
            m = _TAIL.search(s, m.start() + 1, end)
        pos = max(b.end(), end + 1) if m is None else end + 1
    return s, names


def marks(s: str) -> set[str]:
    """The units an answer states by a mark rather than a word: degrees (``30^\\circ``), dollars (``\\$5``)."""
    found = set()
    if _DEGREE_MARK.search(s):
        found.add("deg")
    if _MONEY_MARK.search(s):
        found.add("$")
    return found


def settle(names: set[str]) -> frozenset:
    """A degree mark followed by ``C``/``F`` is a temperature."""
    if "deg" in names and names & {"C", "F"}:
        names = {("deg" + n if n in ("C", "F") else n) for n in names if n != "deg"}
    return frozenset(names)


def units_differ(a: frozenset, b: frozenset) -> bool:
    """Whether two answers both name their units and they disagree (a degree mark goes with a temperature in
    degrees). A unit we cannot name (``5 nm``, ``5 kN``, ``5 hectares``) is the same as another only when written
    the same way: beside a known unit, or another unknown one, it differs (an answer without units never does)."""
    if not a or not b or a == b or any(u in ("C", "F") for u in a | b):
        return False
    if any(is_unknown(u) for u in a | b):
        return True
    plain = lambda u: frozenset("deg" if x.startswith("deg") else x for x in u)  # noqa: E731
    return not (plain(a) == plain(b) and ({"deg"} in (a, b)))


__all__ = ["CONNECTORS", "KNOWN", "MATH_WORDS", "SCALES", "in_sum", "is_inches", "is_unknown", "marks", "run_tokens",
           "scale_of", "settle", "strip_tail_units", "sum_items", "unit_name", "units_differ"]
