"""Find the final answer in a model's completion (one job: text in, answer substring out).

Three methods, tried in the order the verifier is configured with (default: boxed, answer_is; ``last_number``
only when a config names it, since a cut-off completion that merely mentions numbers has no final answer):

- ``boxed``: the content of the last ``\\boxed{...}`` (or ``\\fbox{...}``) whose braces close; nested braces and
  escaped ``\\{ \\}`` are handled. A truncated last box (never closed) or an empty one falls back to the box
  before it.
- ``answer_is``: the text after the last "answer is", "final answer:", "Answer:", "answer =" (case-insensitive);
  a ``$...$`` or ``\\(...\\)`` right after it is taken whole (unless another group is joined to it: "$3$ or $4$"
  is the answer ``3 or 4``), otherwise the rest of the line up to the end of the sentence, within 2,000
  characters (a numeral running past them is taken whole). Its sentence decides the rest: a phrase that only
  supposes or recalls an answer ("Suppose the answer is 12", "whether the answer is", "My previous answer is")
  or an answer the sentence rejects ("The answer is 12, which is wrong") is no answer; when the sentence offers
  another answer beside it ("$3$, or possibly $5$", "3, but it could also be 5") the whole sentence is the answer.
- ``last_number`` (opt-in): the last number in the text (thousands separators, decimals, ``a/b``, a Unicode minus
  and a trailing ``%`` are kept; a numeral of any length is taken whole).

Everything here is linear in the text length (``str.rfind`` and single-pass regexes), so megabyte completions do
not slow it down more than a few milliseconds.
"""
from __future__ import annotations

import re

METHODS = ("boxed", "answer_is", "last_number")  # every method there is
DEFAULT_METHODS = ("boxed", "answer_is")  # what a verifier uses unless configured: last_number is opt-in

_BOX_COMMANDS = ("\\boxed", "\\fbox")
_BARE_BOX = re.compile(r"[ \t]+([^\s$]+)")
_MAX_BOX_TRIES = 16  # how many earlier boxes to try when the last ones are truncated

_ANSWER_IS = re.compile(r"answer(?:\s*\*\*)?\s*(?:is\s*[:=]?|[:=])\s*(?:\*\*)?[ \t]*", re.IGNORECASE)
_SENTENCE_END = re.compile(r"\.(?=\s|$)|\n|,\s+(?:which|so|since|because|as|and|but|where)\b|\s+(?:because|since)\b")
_ANSWER_WINDOW = 2000  # characters after "answer is" looked at (a numeral running past them is taken whole)
_JOINED = re.compile(r"[ \t]*(?:,|\bor\b|\band\b)[ \t,]*(?:or\b|and\b)?[ \t]*(?:\$|\\\(|\\\[)")
_PERIOD_END = re.compile(r"\.(?=\s|$)|\n")
_LONG_NUMERAL = re.compile(r"(?:\$|\\\()?[ \t]*([-+]?\d[\d,]*(?:\.\d+)?)")
_NUMBER = re.compile(  # the sign may be Unicode's minus (−5)
    r"[-−]?\d{1,3}(?:,\d{3})+(?:\.\d+)?(?!\d)"  # 1,234,567.89
    r"|[-−]?\d+(?:\.\d+)?(?:/\d+)?"  # 12  3.5  3/4
    r"|[-−]?\.\d+"  # .5
)
_DIGIT = re.compile(r"\d")
_PERCENT_AFTER = re.compile(r"\s*\\?%")
_NUMERAL_CHARS = frozenset("0123456789.,/-−")
_NUMBER_TAIL = 4000  # last_number looks at this many trailing characters first


def braced(text: str, start: int) -> tuple[str, int] | None:
    """The content of the ``{...}`` group that starts at ``text[start]`` (after spaces) and the index after it.

    Escaped braces (``\\{``, ``\\}``) do not count. ``None`` when there is no group or it never closes.
    """
    n = len(text)
    i = start
    while i < n and text[i] in " \t":
        i += 1
    if i >= n or text[i] != "{":
        return None
    depth = 0
    j = i
    while j < n:
        ch = text[j]
        if ch == "\\":
            j += 2
            continue
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                return text[i + 1 : j], j + 1
        j += 1
    return None


def last_boxed(text: str) -> str | None:
    """The content of the last closed ``\\boxed{}``/``\\fbox{}``; ``\\boxed 5`` (no braces) gives ``5``."""
    end = len(text)
    for _ in range(_MAX_BOX_TRIES):
        best, cmd_len = -1, 0
        for cmd in _BOX_COMMANDS:
            k = text.rfind(cmd, 0, end)
            if k > best:
                best, cmd_len = k, len(cmd)
        if best < 0:
            return None
        after = best + cmd_len
        if after < len(text) and text[after].isalpha():  # \boxeda... is another command
            end = best
            continue
        group = braced(text, after)
        if group is not None and group[0].strip():
            return group[0]
        if group is not None:  # an empty box is no answer: the box before it may be
            end = best
            continue
        m = _BARE_BOX.match(text, after)  # \\boxed 5: the word after it, whatever its length
        if m:
            return m.group(1)
        end = best  # truncated box: try the one before
    return None


_BOX_TOKEN = re.compile(r"(\\(?:boxed|fbox)\s*\{)|\\(?:boxed|fbox)[ \t]+([^\s${}\\]+)|\\.|[{}]", re.S)


_INNER_BOX = re.compile(r"\\(?:boxed|fbox)\s*\{")


def all_boxed(text: str, max_chars: int, keep_outer: bool = False) -> list[tuple[int, int, str | None]]:
    """Every closed ``\\boxed{}``/``\\fbox{}`` in order, as ``(start, end, content)``; the content is ``None`` when
    longer than ``max_chars``.

    A box that holds another box is left out (the inner one counts) unless ``keep_outer`` (then its content is
    given with the inner boxes' commands dropped: ``\\boxed{5 \\text{ or } \\boxed{3}}`` says "5 or 3"); a box
    that never closes is left out. One pass over the text with a stack of open braces, so it stays linear however
    the boxes nest.
    """
    first = min((k for k in (text.find("\\boxed"), text.find("\\fbox")) if k >= 0), default=-1)
    if first < 0:
        return []
    found: list[tuple[int, int, str | None]] = []
    stack: list[list] = []  # [command start or -1 for a plain brace, content start, holds another box]
    for m in _BOX_TOKEN.finditer(text, first):
        if m.group(1):
            _mark_inner(stack)
            stack.append([m.start(), m.end(), False])
        elif m.group(2):
            _mark_inner(stack)
            found.append((m.start(), m.end(), m.group(2) if len(m.group(2)) <= max_chars else None))
        elif m.group(0) == "{":
            stack.append([-1, m.end(), False])
        elif m.group(0) == "}" and stack:
            start, content, inner = stack.pop()
            if start >= 0 and (keep_outer or not inner):
                size = m.start() - content
                body = text[content : m.start()] if size <= max_chars else None
                if inner and body is not None:
                    body = _INNER_BOX.sub("{", body)  # "5 or \boxed{3}": both answers, as the outer box says
                found.append((start, m.end(), body))
    found.sort()
    return found


def _mark_inner(stack: list[list]) -> None:
    for entry in reversed(stack):  # the nearest enclosing box holds another box
        if entry[0] >= 0:
            entry[2] = True
            return


_RETRACTION = re.compile(r"\b(?:wrong|incorrect|not (?:right|correct)|mistakes?|(?:an|my) error|erroneous|oops|"
                         r"wait|actually|correction|scratch that|doesn't work|does not work)\b", re.IGNORECASE)
# words that keep a box standing beside the next one: a condition or an alternative, not a correction ("or if
# that is wrong, \boxed{5}", "actually, it could also be \boxed{5}", "unless I made a mistake")
_STILL_STANDS = re.compile(r"\b(?:if|unless|in case|otherwise|could|might|may|maybe|perhaps|possibly|also|"
                           r"alternatively|either|or)\b", re.IGNORECASE)


def final_boxes(text: str, max_chars: int) -> list[str | None]:
    """The contents of the boxes a completion stands by: every closed box except those it takes back before
    the next one ("\\boxed{3}, but that is wrong. Correct: \\boxed{7}" stands by 7 only; "\\boxed{3}, or if that
    is wrong, \\boxed{5}" stands by both). A box holding another box stands for what it says, both answers
    ("\\boxed{5 \\text{ or } \\boxed{3}}"). ``None`` for an oversized box. Several different answers here are
    hedging."""
    boxes = all_boxed(text, max_chars, keep_outer=True)
    kept = []
    for (_, end, content), following in zip(boxes, boxes[1:] + [None]):
        if following is not None and following[0] > end:
            between = text[end:following[0]]
            if _RETRACTION.search(between) and not _STILL_STANDS.search(between):
                continue
        kept.append(content)
    return kept


# before "answer is" in its sentence: a phrase that only supposes or recalls an answer ("Suppose the answer is 12",
# "whether the answer is 12", "My previous answer is 12")
_SUPPOSED = re.compile(r"\b(?:suppose|supposing|assume|assuming|if|whether|previous|earlier|initial|guess|"
                       r"check|verify|test)\b[^.\n]*$", re.IGNORECASE)
# after the answer in its sentence: the completion rejects it ("The answer is 12, which is wrong")
_REJECTED = re.compile(r"\b(?:wrong|incorrect|not (?:right|correct|the answer)|a mistake|an error|erroneous|"
                       r"contradicts?|contradiction)\b", re.IGNORECASE)
# after the answer in its sentence: another answer offered beside it ("$3$, or possibly $5$", "3, but it could
# also be 5", "$3$; $5$ is also possible", "$3$/$5$")
_VALUE = r"(?:\$|\\\(|\\\[|[-−]?\.?\d)"
_ALSO_OFFERED = re.compile(
    rf"\b(?:or(?:\s+(?:maybe|possibly|perhaps|else|rather|even))?|alternatively|possibly|perhaps|maybe)\b[\s:,]*"
    rf"(?:it\s+(?:is|could\s+be|might\s+be)\s*)?{_VALUE}"
    rf"|\b(?:could|might|may)\s+(?:also\s+|even\s+)?be\s*{_VALUE}"
    rf"|\b(?:also|equally)\s+(?:possible|valid|correct|works?|an answer)\b"
    rf"|\band\s+(?:also\s+)?{_VALUE}|^\s*/\s*{_VALUE}", re.IGNORECASE)


def answer_is(text: str) -> str | None:
    """The answer stated after the last "answer is" / "Answer:" phrase; None when that phrase only supposes or
    recalls an answer, or its sentence rejects it. When its sentence offers another answer beside it, the whole
    sentence is the answer (which names two)."""
    last = None
    for last in _ANSWER_IS.finditer(text):  # one forward pass: each phrase is tried once, where it starts
        pass
    if last is None:
        return None
    line_start = max(text.rfind("\n", 0, last.start()), text.rfind(". ", 0, last.start()) + 1, 0)
    if _SUPPOSED.search(text, line_start, last.start()):
        return None
    rest = text[last.end() : last.end() + _ANSWER_WINDOW]
    answer, end = _stated(text, last, rest)
    if answer is None:
        return None
    period = _PERIOD_END.search(rest, end)
    tail = rest[end : period.start() if period else len(rest)]
    if _REJECTED.search(tail):
        return None
    if _ALSO_OFFERED.search(tail):
        whole = rest[: period.start() if period else len(rest)]
        for mark in ("$$", "$", "\\(", "\\)", "\\[", "\\]"):
            whole = whole.replace(mark, " ")
        return " ".join(whole.split()).strip("*").strip() or None
    return answer


def _stated(text: str, last: re.Match, rest: str) -> tuple[str | None, int]:
    """The answer right after the phrase ``last`` (``rest``: the text after it) and where it ends in ``rest``."""
    boxed = last_boxed(rest.split("\n\n", 1)[0])
    if boxed is not None:
        k = rest.rfind(boxed)
        return boxed, (k + len(boxed) + 1 if k >= 0 else len(rest.split("\n\n", 1)[0]))
    delimited = _delimited(rest)
    if delimited is not None:
        k = rest.find(delimited)
        close = rest.find("$", k + len(delimited)) if rest.startswith("$") else k + len(delimited)
        return delimited, max(close + 1, k + len(delimited)) if k >= 0 else len(rest)
    m = _SENTENCE_END.search(rest)
    if m is None and len(text) > last.end() + _ANSWER_WINDOW:
        numeral = _long_numeral(text, last.end())
        if numeral is not None:
            return numeral, len(rest)
    answer = (rest[: m.start()] if m else rest).strip().strip("*").strip()
    return (answer or None), (m.start() if m else len(rest))


def _delimited(rest: str) -> str | None:
    """The ``$...$`` (``\\(...\\)``, ...) group an answer starts with; None when there is none, or when another
    group is joined to it ("$3$ or $4$": the sentence is the answer, and it names two)."""
    for left, right in (("$$", "$$"), ("$", "$"), ("\\(", "\\)"), ("\\[", "\\]")):
        if rest.startswith(left):
            k = rest.find(right, len(left))
            if k > 0:
                if _JOINED.match(rest, k + len(right)):
                    return _joined_groups(rest)
                return rest[len(left) : k].strip()
    return None


def _joined_groups(rest: str) -> str | None:
    """The sentence of math groups joined by "or"/"and"/commas, delimiters removed ("$3$ or $4$" -> "3 or 4")."""
    m = _PERIOD_END.search(rest)
    sentence = rest[: m.start()] if m else rest
    for mark in ("$$", "$", "\\(", "\\)", "\\[", "\\]"):
        sentence = sentence.replace(mark, " ")
    return sentence.strip() or None


def _long_numeral(text: str, start: int) -> str | None:
    """A numeral (``$`` before it allowed) that runs past the answer window: taken whole, so that thousands of
    digits after "the answer is" are neither cut to the window's length nor matched by their first digits."""
    m = _LONG_NUMERAL.match(text, start)
    if m is None or m.end() < start + _ANSWER_WINDOW:
        return None
    return m.group(1)


def _numeral_start(text: str, i: int) -> int:
    """Where the run of numeral characters that holds ``text[i]`` begins (a numeral of any length is taken whole)."""
    while i > 0 and text[i - 1] in _NUMERAL_CHARS:
        i -= 1
    return i


def last_number(text: str) -> str | None:
    """The last number in the text, with a percent sign if one follows it."""
    start, stop = max(0, len(text) - _NUMBER_TAIL), len(text)
    if start > 0 and _DIGIT.search(text, start) is None:  # no digit near the end: find the last one quickly
        m = _DIGIT.search(text[::-1])
        if m is None:
            return None
        end = stop = len(text) - m.start()  # nothing after the last digit is scanned again
        start = _numeral_start(text, end - 1)
    last = None
    for last in _NUMBER.finditer(text, start, stop):
        pass
    if last is None:
        return None
    if last.start() == start and start > 0 and text[start - 1] in _NUMERAL_CHARS:  # began before the window
        for last in _NUMBER.finditer(text, _numeral_start(text, start), last.end()):
            pass
    pct = _PERCENT_AFTER.match(text, last.end())
    return last.group(0) + ("%" if pct else "")


_EXTRACTORS = {"boxed": last_boxed, "answer_is": answer_is, "last_number": last_number}


def extract_answer(text: str, order=DEFAULT_METHODS) -> tuple[str | None, str | None]:
    """``(answer, method)`` from the first method in ``order`` that finds one; ``(None, None)`` otherwise."""
    for method in order:
        try:
            fn = _EXTRACTORS[method]
        except KeyError:
            raise ValueError(f"unknown extraction method {method!r}; known: {', '.join(METHODS)}") from None
        found = fn(text)
        if found is not None and found.strip():
            return found.strip(), method
    return None, None


__all__ = ["DEFAULT_METHODS", "METHODS", "all_boxed", "final_boxes", "extract_answer", "last_boxed", "answer_is",
           "last_number", "braced"]
