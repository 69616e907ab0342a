"""Find the final answer in a model's completion (one job: text in, answer substring out).

Three methods, tried in the order the verifier is configured with (default: boxed, answer_is; ``last_number``
only when a config names it, since a cut-off completion that merely mentions numbers has no final answer):

- ``boxed``: the content of the last ``\\boxed{...}`` (or ``\\fbox{...}``) whose braces close; nested braces and
  escaped ``\\{ \\}`` are handled. A truncated last box (never closed) or an empty one falls back to the box
  before it.
- ``answer_is``: the text after the last "answer is", "final answer:", "Answer:", "answer =" (case-insensitive);
  a ``$...$`` or ``\\(...\\)`` right after it is taken whole (unless another group is joined to it: "$3$ or $4$"
  is the answer ``3 or 4``), otherwise the rest of the line up to the end of the sentence, within 2,000
  characters (a numeral running past them is taken whole). A phrase that only supposes, recalls or doubts an
  answer (right before "answer": "Suppose the answer is", "whether the answer is", "One might think the answer
  is", "My previous answer is", "A wrong answer is"), or whose answer is rejected right after it ("The answer is
  12, which is wrong"), is passed over for the phrase before it.
- ``last_number`` (opt-in): the last number in the text (thousands separators, decimals, ``a/b``, a Unicode minus
  and a trailing ``%`` are kept; a numeral of any length is taken whole).

Values offered beside the final answer ("$3$, or possibly $5$", "\\boxed{3} (or maybe 5)", "3, but it could also
be 5", "5 is also possible", "Alternatively, 5." at the start of the next sentence) are found by
``offered_beside``; the verifier judges each like a second box (an equal one, "or equivalently $\\frac{6}{2}$", is
no hedge). Between two boxes, a retraction said ("Wait, that's wrong") takes the first back; one only supposed
("or if that is wrong", "should that be wrong") or asked ("Wrong?"), or a second box offered as an alternative
("it could also be", "works too"), does not.

After the final answer: :func:`taken_back` says whether the completion takes it back ("Wait, that's wrong", "I
made a mistake", "scratch that"; not "wait" alone, nor words after another value, which are about that one);
:func:`answer_after` finds an "answer is" statement after the last box, which :func:`replaced_by` says replaces a
box taken back before it; :func:`box_continuation` is what continues a box's expression ("\\boxed{3}^{5}"). A
remark in brackets that ends an "answer is" sentence ("12 (rounded)") is not part of the answer.

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

# "The answer is 12", "Answer: 12", "The answer to this problem is therefore 12", "The answers are 2 and 3", "The
# answer must be 12", "**Final answer**\n\n12", GSM8K's "#### 12"
_ANSWER_IS = re.compile(
    r"answers?(?:\s+(?:to|for)\s+(?:(?:this|the|that|our)\s+(?:problem|question|exercise|puzzle)"
    r"|part\s*\(?[a-z0-9]{1,3}\)?))?(?:\s*\*\*)?\s*"
    r"(?:(?:is\s+still|is|are|equals|remains|becomes|ends\s+up\s+being|must\s+be|should\s+(?:therefore\s+|thus\s+)?be"
    r"|turns?\s+out\s+to\s+be"
    r"|works?\s+out\s+to(?:\s+be)?"
    r"|comes?\s+(?:out\s+)?to)(?![\w'’])\s*[:=]?|[:=])\s*(?:\*\*)?[ \t]*+"
    r"(?:,?[ \t]*+(?:therefore|thus|hence|then|clearly|simply|just|indeed|exactly|actually|obviously|definitely|"
    r"certainly|precisely|of\s+course|equal\s+to|given\s+by)\b[ \t]*+[,:]?[ \t]*+(?:\*\*)?[ \t]*+)?"
    r"|(?<=final\s)answer(?:\s*\*\*)?[ \t]*+(?:\*\*)?[ \t]*+\n\s*"  # "**Final answer**\n\n12"
    r"|(?:^|(?<=\n))[ \t]*+####[ \t]*+(?=(?:\*\*)?[-−+]?[ \t]*+(?:\$|\\\$|[€£¥])*[ \t]*+[-−+]?\.?\d[\d,]*+(?:\.\d+)?"
    r"(?:/\d+)?(?:\*\*)?[ \t]*+(?:\$|\\?%|[€£¥]|\(?(?-i:[a-z]{1,12}|[A-Z]{3})\)?)?[ \t]*+\.?[ \t]*+"
    r"(?:</s>|<\|im_end\|>|<\|endoftext\|>|<\|eot_id\|>)?[ \t]*+(?:\n|$))",  # GSM8K's final line, "#### 72": a number
    # alone on it, with its unit or money sign (a heading "#### 1. Setup" is none)
    re.IGNORECASE)
_SENTENCE_END = re.compile(r"\.(?=\s|$)|\n|;|,\s+(?:which|so|since|because|as|and|but|where|not)\b|\s+(?:because|since)\b"
                           r"|\s+(?:rather\s+than|instead\s+of|and\s+not)\b"
                           r"|,?\s+or\s+(?:equivalently|equally|in other words)\b|\s+\((?:or|i\.e\.)\s")
_SINGLE_CAPITAL = re.compile(r"\s+\(\s*[A-Z]\s*\)")
_ANSWER_WINDOW = 2000  # characters after "answer is" looked at (a numeral running past them is taken whole)
# a remark in brackets that ends the answer's sentence, after a space: words ("12 (rounded)", "5 (cm)"), a number
# ("twelve (12)", "1/4 (25%)"), a choice letter after a number ("12 (D)"); not a modulus ("10 (mod 7)" is 3), nor
# math with a variable ("2 (x + 1)"), nor the letter of "choice (D)"
_REMARK = re.compile(r"\s+\((?!\s*(?:\\[pb]?mod|mod)\b)(?=\s*[A-Z]\s*\)|[^()]*[A-Za-z]{2,}|[^()A-Za-z]*\))[^()]*\)"
                     r"[\s*`]*$")
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
    found = last_box(text)
    return None if found is None else found[0]


def last_box(text: str) -> tuple[str, int] | None:
    """:func:`last_boxed`'s content and where its box ends in ``text``."""
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
            return group
        if group is not None:  # an empty box is no answer: the box before it may be
            end = best
            continue
        m = _BARE_BOX.match(text, after)  # \\boxed 5: the word after it, whatever its length
        if m:
            return m.group(1), m.end()
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
                         r"wait|actually|correction|scratch that|doesn't work|does not work|on second thought|"
                         r"I take (?:that|it) back|hold on|(?:I|we) (?:missed|forgot|misread|overlooked|miscounted)"
                         r"|(?<!no\s)kidding)\b",
                         re.IGNORECASE)
# right before a box: a label that says it is the wrong one ("Wrong: \boxed{5}. Right: \boxed{3}.")
_LABELLED_WRONG = re.compile(r"\b(?:wrong|incorrect|not)(?:\s+answer)?\s*[:=]\s*\$?\s*$", re.IGNORECASE)
# a retraction word in a clause that only supposes it ("or if that is wrong", "should that be wrong", "unless I
# made a mistake") takes nothing back; nor does one asked ("Wrong? Then ...")
_CONDITIONAL = re.compile(r"\b(?:if|whether|should|unless|in case|in the event|suppos(?:e|ing)|otherwise|lest)\b"
                          r"|^\s*were\b",
                          re.IGNORECASE)
_CLAUSE_END = re.compile(r"[.;:!?\n]|,\s")
# the next box offered beside the first, not instead of it: in the clause that leads to it ("it could also be
# \boxed{5}"), after it ("\boxed{5} works too"), or anywhere between ("both work")
_ALTERNATIVE_BEFORE = re.compile(r"\b(?:also|too|as well|alternatively|either|or|possibly|perhaps|maybe|"
                                 r"(?:could|might|may) (?:also |even )?be)\b", re.IGNORECASE)
_ALTERNATIVE_AFTER = re.compile(r"[\s$).,]{0,6}(?:(?:also\s+)?works?(?:\s+too|\s+as\s+well)?|(?:is|are)\s+also\s+"
                                r"(?:correct|valid|possible|an?\s+answer))\b", re.IGNORECASE)
_BOTH = re.compile(r"\bboth (?:work|are|hold|valid|correct|possible|answers|of them)\b", re.IGNORECASE)


_BETWEEN = 2000  # characters before the next box that are read for a retraction


def _said(text: str, m: re.Match, bounds: list[int], not_said: re.Pattern | None = None) -> bool:
    """Whether the words ``m`` found in ``text`` are said: not in a clause that only supposes them (``bounds``:
    where ``text``'s clauses end; ``not_said``: more words that keep them from being said), nor asked ("Wrong?")."""
    import bisect
    k = bisect.bisect_right(bounds, m.start())
    clause = text[bounds[k - 1] if k else 0 : m.start()]
    if _CONDITIONAL.search(clause) or (not_said is not None and not_said.search(clause)):
        return False
    return not text[m.end():m.end() + 3].lstrip().startswith("?")


def _retracted(text: str, end: int, following: tuple[int, int, str | None]) -> bool:
    """Whether the box that ends at ``end`` is taken back before the ``following`` one: a retraction word said, not
    supposed or asked, and the following box not offered beside it. Linear: the clause boundaries of the text
    between (its last ``_BETWEEN`` characters) are found once."""
    between = text[max(end, following[0] - _BETWEEN):following[0]]
    bounds = [c.end() for c in _CLAUSE_END.finditer(between)]
    if not any(_said(between, m, bounds) for m in _RETRACTION.finditer(between)):
        return False
    last_clause = bounds[-1] if bounds else 0
    return not (_ALTERNATIVE_BEFORE.search(between, last_clause) or _BOTH.search(between)
                or _ALTERNATIVE_AFTER.match(text, following[1]))


def final_boxes(text: str, max_chars: int) -> list[str | None]:
    """The contents of the boxes a completion stands by: every closed box except those it takes back before
    the next one ("\\boxed{3}, but that is wrong. Correct: \\boxed{7}" stands by 7 only; "\\boxed{3}, or if that
    is wrong, \\boxed{5}" and "\\boxed{3}. Actually, it could also be \\boxed{5}" stand by both). A box holding
    another box stands for what it says, both answers ("\\boxed{5 \\text{ or } \\boxed{3}}"). ``None`` for an
    oversized box. Several different answers here are hedging."""
    boxes = all_boxed(text, max_chars, keep_outer=True)
    kept = []
    for (start, end, content), following in zip(boxes, boxes[1:] + [None]):
        if following is not None and following[0] > end and _retracted(text, end, following):
            continue
        if following is not None and _LABELLED_WRONG.search(text, max(0, start - 40), start):
            continue  # "Wrong: \boxed{5}. Right: \boxed{3}." (the last box is the answer whatever its label)
        kept.append(content)
    return kept


def every_box(text: str, max_chars: int) -> list[str | None]:
    """The contents of every closed box, taken back or not (``None`` for an oversized one)."""
    return [content for _, _, content in all_boxed(text, max_chars, keep_outer=True)]


# right after the final box, the displayed expression goes on ("\boxed{3}^{5}", "$\boxed{2}\sqrt3$"): the answer
# shown is the box and what follows it, up to the end of its math group
_CONTINUES = re.compile(r"(?=[\^_0-9/]|!(?=[!$^}]|\\[)\]])|[ \t]*\\(?:sqrt|cdot|times|pi|frac|dfrac)(?![a-zA-Z])"
                        r"|[a-zA-Z](?=\s*[$^_]|\\[)\]]))")  # ("\boxed{5}!" at a sentence's end is an exclamation)
_MATH_GROUP_END = re.compile(r"\$|\\\)|\\\]|\n|\.(?=\s|$)|,\s|;")
_CONTINUATION = 200  # characters of a continuation taken at most


def box_continuation(text: str, end: int) -> str:
    """What continues the expression of the box that ends at ``end`` ("^{5}" after "\\boxed{3}"), or ""."""
    if not _CONTINUES.match(text, end):
        return ""
    stop = _MATH_GROUP_END.search(text, end, end + _CONTINUATION)
    return text[end : stop.start() if stop else min(len(text), end + _CONTINUATION)]


# right before "answer" (the phrase's start): words that only suppose, recall or doubt an answer ("Suppose the
# answer is", "whether the answer is", "One might think the answer is", "My previous answer is", "A wrong answer is")
_SUPPOSED = re.compile(
    r"(?:\b(?:suppose|supposing|assume|assuming|if|whether|hypothetically|(?:I|we)\s+doubt|unlikely|maybe|perhaps|"
    r"imagine|let(?:'s|\s+us)\s+(?:say|assume|suppose|pretend)|guess(?:ed)?(?:\s+was)?|(?:I|we)\s+expect)\b[,:]?\s+"
    r"(?:for\s+(?:the\s+sake\s+of\s+)?(?:a\s+)?(?:contradiction|argument)\s*,?\s+)?"
    r"(?:(?:instead|now|again)\s+)?(?:that\s+)?"
    r"|(?:^|[.!?\n]\s*)say,?\s+(?:that\s+)?"  # "Say the answer is 12. Then ..."
    r"|\b(?:it'?s|it\s+is|it\s+was)\s+(?:not\s+(?:true|the\s+case)|false|untrue)\s+that\s+"
    r"|\bmistakes?\s+(?:is|are|would\s+be)\s+to\s+(?:say|think|claim|conclude|assume)\s+(?:that\s+)?"
    r"|\b(?:problem|question|book|textbook|key|students?|people|someone|others|many|they|he|she)\s+"
    r"(?:(?:would|might|often|usually|may)\s+)?(?:says?|said|claims?|claimed|states?|stated|thinks?|thought|"
    r"believes?|believed)\s+(?:that\s+)?"
    r"|\b(?:might|could|may)\s+(?:think|say|claim|guess|expect|believe)\s+(?:that\s+)?"
    r"|\b(?<!I\s)(?<!we\s)would\s+(?:think|say|claim|guess|expect|believe)\s+(?:that\s+)?"
    r"|\btempting\s+to\s+say\s+(?:that\s+)?|\b(?:check|verify|test)\s+(?:if|whether|that)\s+"
    r"|\b(?:previous|earlier|initial|naive|naïve|wrong|incorrect|tempting|obvious|intuitive|careless|not)\s+)"
    r"(?:(?:the|my|our|an?|this|that|one)\s+)?(?:(?:final|correct|right)\s+)?$", re.IGNORECASE)
_SUPPOSED_WINDOW = 80
# right after the answer: the completion rejects it ("The answer is 12, which is wrong", "12... no, that's not
# right", "12, but that contradicts the constraint")
_REJECTED = re.compile(
    r"[\s,;:.…)]*(?:no[\s,.!]+)?(?:(?:but|and|which|so)\s+)?"
    r"(?:(?:(?:this|that|it|which)\s*(?:'s|\s+is|\s+was|\s+seems|\s+looks|\s+would\s+be)|is|was)\s+"
    r"(?:wrong|incorrect|false|not\s+(?:right|correct|the\s+answer))\b"
    r"|(?:this|that|it|which)\s+(?:contradicts|leads\s+to\s+a\s+contradiction|is\s+a\s+contradiction))",
    re.IGNORECASE)
_END_TOKENS = re.compile(r"(?:\s*(?:</s>|<\|(?:im_end|endoftext|eot_id|end)\|>))+\s*$")  # a model's end-of-text token
_STATEMENT_END = re.compile(r"(?<!\.)\.(?!\.)(?=\s|$)|\n")  # a sentence's end (an ellipsis does not end one)


def answer_is(text: str) -> str | None:
    """The answer stated after the last "answer is" / "Answer:" phrase that states one: a phrase that only
    supposes, recalls or doubts an answer (:data:`_SUPPOSED`) is passed over for the one before it, and an
    answer the completion rejects right after stating it (:data:`_REJECTED`) is passed over too."""
    found = answer_is_at(text)
    return None if found is None else found[0]


def answer_is_at(text: str) -> tuple[str, int] | None:
    """:func:`answer_is`'s answer and where it ends in ``text``."""
    found = answer_is_span(text)
    return None if found is None else (found[0], found[2])


_NOT_THIS = re.compile(r"(?:not|neither)\b", re.IGNORECASE)
_BUT_THEN = re.compile(r",?\s*\bbut\s+(?:rather\s+)?|[,.;]\s*(?:it\s+is|it['’]s|rather,?)\s+", re.IGNORECASE)


class _At:
    """Where a statement's answer starts, for :func:`_stated` (which reads only ``end()``)."""

    def __init__(self, end: int) -> None:
        self._end = end

    def end(self) -> int:
        return self._end


def answer_is_span(text: str) -> tuple[str, int, int] | None:
    """:func:`answer_is`'s answer, where its phrase starts and where the answer ends in ``text``."""
    phrases = list(_ANSWER_IS.finditer(text))  # one forward pass: each phrase found once, where it starts
    for last in reversed(phrases):
        if _SUPPOSED.search(text, max(0, last.start() - _SUPPOSED_WINDOW), last.start()):
            continue
        rest = text[last.end() : last.end() + _ANSWER_WINDOW]
        answer, end = _stated(text, last, rest)
        if answer is None:
            return None
        if _NOT_THIS.match(answer):  # "The answer is not 12, it is 13", "... neither 3 nor 4 but 5"
            then = _BUT_THEN.search(rest, 0, 300)
            if then is None:
                return None
            answer, end = _stated(text, _At(last.end() + then.end()), rest[then.end():])
            if answer is None:
                return None
            end += then.end()
        stop = _STATEMENT_END.search(rest, end)
        if _REJECTED.match(rest[end : stop.start() if stop else len(rest)]):
            continue
        return answer, last.start(), last.end() + end
    return None


# after the final answer: words that take it back ("Wait, that's not right", "I made a mistake", "scratch that",
# "no, it's 15", "it should be 15"). "Wait" or "Actually" alone do not: "Wait, let me check: 3 x 4 = 12" keeps it.
_TAKEN_BACK = re.compile(
    r"\(\s*(?:wrong|incorrect|false|not\s+(?:right|correct))\s*\)"  # "The answer is 12 (wrong)."
    r"|\b(?:(?:that|this|it|which|(?:my|the|this|that)\s+answer)\s*(?:'s|’s|\s+is|\s+was)\s+(?:wrong|incorrect|"
    r"not\s+(?:quite\s+)?(?:right|correct)|a\s+mistake|off(?:\s+by\s+\w+)?)"
    r"|(?:that|this|it)\s+(?:can'?t|cannot|can\s+not|couldn'?t)\s+be\s+(?:right|correct)"
    r"|(?:that|this|it)\s+(?:doesn'?t|does\s+not)\s+(?:seem|look)\s+(?:right|correct)"
    r"|(?:I|we)\s+(?:made|make|have\s+made)\s+(?:a\s+|an\s+)?(?:mistake|error|miscalculation)(?![^.\n]*\bcorrected\b)"
    r"|(?:I|we)\s+(?:miscalculated|messed\s+up|got\s+it\s+wrong)"
    r"|scratch\s+that|on\s+second\s+thought|I\s+take\s+(?:that|it)\s+back"
    r"|(?<!no\s)(?:just\s+)?kidding|j/k|disregard\s+(?:that|this|the\s+above)|nah"
    r"|no\s*,\s*(?:it'?s|it\s+is|the\s+(?:correct\s+)?answer\s+is)(?!\s+(?:fine|correct|right|ok(?:ay)?)\b)"
    r"|it\s+should\s+(?:be|have\s+been)(?=\s*\$?\s*[-−\d\\(])"  # "it should be 15" (not "should be noted")
    r"|oops(?!,?\s+typo))\b", re.IGNORECASE)
_AFTER_GROUP = re.compile(r"[\s*]*(?:\$\$?|\\[)\]])?[\s*]*(?:(?:,\s*not|rather\s+than|instead\s+of|and\s+not)\s+[^.;,\n]*)?")
# (the answer's closing "$", and the value it is said over: "12, not 13. Scratch that: 13." takes 12 back)
_NOT_SAID = re.compile(r"\b(?:don'?t|do\s+not|didn'?t)\s+think\b|\bdoubt\b|\bnot\s+sure\b", re.IGNORECASE)
_TAKEN_BACK_WINDOW = 600  # characters after the final answer read for words that take it back
_OTHER_VALUE = re.compile(r"\d|\$|\\\(|\\\[|\\boxed|\\fbox|\([A-J]\)|\b(?:option|choice)\b|\bpart\s*\(",
                          re.IGNORECASE)  # (a value, another option "(A)", another part "(b)")


def taken_back(text: str, end: int) -> bool:
    """Whether the completion takes back the final answer that ends at ``end`` after stating it ("\\boxed{12}.
    Wait, that's wrong."): words of :data:`_TAKEN_BACK` said within ``_TAKEN_BACK_WINDOW`` characters, before any
    other value is named (words after one are about it), in a clause that does not only suppose them ("if that is
    wrong, ...", "I don't think that's wrong") or ask them ("Is that wrong?")."""
    window = text[end : end + _TAKEN_BACK_WINDOW]
    if _TAKEN_BACK.search(window) is None:
        return False
    bounds = [c.end() for c in _CLAUSE_END.finditer(window)]
    other = _OTHER_VALUE.search(window, _AFTER_GROUP.match(window).end())  # words after another value are about
    # that one ("Our guess was 10, but that was wrong."; the "$" closing the answer's own group is none)
    for m in _TAKEN_BACK.finditer(window):  # that was wrong.")
        if other is not None and m.start() >= other.start():
            break
        if _said(window, m, bounds, _NOT_SAID):
            return True
    return False


# right before the final box: words that say it is not the answer ("The answer isn't $\boxed{8}$")
_NEGATED = re.compile(
    r"(?:\banswers?(?:\s*,\s*\w+\s*,)?\s+(?:(?:is|are|was)(?:\s+(?:definitely|certainly|clearly|surely))?\s+"
    r"(?:not|never|no\s+longer)"
    r"|(?:isn|aren|wasn)['’]t)(?:\s+equal\s+to)?"
    r"|\banswers?\s+(?:cannot|can['’]t|could\s*n['’]t|could\s+not)\s+(?:possibly\s+)?be"
    r"|\b(?:(?:don|didn)['’]?t|do\s+not|did\s+not)\s+think\s+(?:that\s+)?the\s+(?:final\s+)?answer\s+is"
    r"|\bnot\s+the\s+case\s+that\s+the\s+(?:final\s+)?answer\s+is"
    r"|\b(?:cannot|can['’]t)\s+conclude\s+that\s+the\s+(?:final\s+)?answer\s+is)"
    r"\s*[:=]?\s*\**\s*(?:\$+|\\[\[(])?\s*(?:[A-Za-z]\s*=\s*)?$", re.IGNORECASE)
# right after the final box: "\boxed{8} is not the answer"
_NOT_THE_ANSWER = re.compile(r"[\s$).,*]*(?:is|was)(?:\s+not|n['’]t)\s+(?:(?:the|my)\s+(?:final\s+|correct\s+|right\s+)?"
                             r"answer|right|correct)\b|[\s$).,*]*(?:is|was)\s+(?:wrong|incorrect)\b", re.IGNORECASE)


def negated_box(text: str, start: int, end: int) -> bool:
    """Whether the box from ``start`` to ``end`` is said not to be the answer ("The answer isn't \\boxed{8}",
    "\\boxed{8} is not the answer"): words whose subject is the answer, never "x cannot be \\boxed{3}"."""
    return _NEGATED.search(text, max(0, start - 80), start) is not None or _NOT_THE_ANSWER.match(text, end) is not None


def answer_after(text: str, end: int) -> tuple[str, int, int] | None:
    """An "answer is" statement that starts after ``end`` (the final box's end): ``(answer, start, its end)``. It
    restates the boxed answer, corrects it ("\\boxed{12}. Actually, the answer is 15."), or names another one
    beside it ("\\boxed{3} ... Final Answer: 5")."""
    found = answer_is_span(text[end:]) if _ANSWER_IS.search(text, end) else None
    if found is None:
        return None
    return found[0], end + found[1], end + found[2]


def replaced_by(text: str, end: int, later: tuple[str, int, int]) -> bool:
    """Whether the answer ending at ``end`` is taken back before the ``later`` statement (see :func:`_retracted`)."""
    return _retracted(text, end, (later[1], later[2], later[0]))


def _stated(text: str, last: re.Match, rest: str) -> tuple[str | None, int]:
    """The answer right after the phrase ``last`` (``rest``: the text after it) and where it ends in ``rest``."""
    head = rest.split("\n\n", 1)[0]
    boxed = last_boxed(head)
    if boxed is not None:
        boxes = all_boxed(head, len(head))
        return boxed, (boxes[-1][1] if boxes else len(head))
    delimited = _delimited(rest)
    if delimited is not None and delimited[0] is not None:
        return delimited
    m = _SENTENCE_END.search(rest)
    if m is None and len(text) > last.end() + _ANSWER_WINDOW:
        numeral = _long_numeral(text, last.end())
        if numeral is not None:
            return numeral, len(rest)
    end = m.start() if m else len(rest)
    remark = _REMARK.search(rest, 0, end)
    if remark is not None and rest[: remark.start()].strip() and (
            not _SINGLE_CAPITAL.match(rest, remark.start()) or _DIGIT.search(rest, 0, remark.start())):
        end = remark.start()  # "12 (rounded)", "12 (since 3 x 4 = 12)": the remark is not the answer (nor a hedge
        # it holds: offered_beside reads it after the answer's end)
    answer = _END_TOKENS.sub("", rest[:end]).strip().strip("*").strip().strip("`").strip()
    if answer.endswith("!") and not answer.endswith("!!") and _DIGIT.search(answer[-2:-1] or "") \
            and "$" not in rest[:end] and rest[end:end + 1] in ("", " ", "\n", "\t"):
        answer = answer[:-1]  # "The answer is 12!": an exclamation in prose, not a factorial
    return (answer or None), end


# values offered beside the final answer, in the rest of its sentence or as the whole next one, with words of doubt:
# "or possibly $5$", "(or maybe 5)", "but it could also be 5", "5 is also possible", "Possibly 5." Each is judged like
# a second box (an equal one is no hedge). A plain "or" is a restatement ("90 minutes, or 1.5 hours"), not a doubt.
_NUMBER_WORD = (r"(?:zero|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|thirteen|fourteen|fifteen|"
                r"sixteen|seventeen|eighteen|nineteen|twenty|thirty|forty|fifty|sixty|seventy|eighty|ninety|hundred)")
_VALUE = (r"\(?\s*+(?:\$\$(?P<dd>(?:[^$\\]|\\.)+)\$\$|\$(?P<d>(?:[^$\\]|\\.)+)\$|\\\((?P<p>.+?)\\\)"
          r"|(?P<c>[-−]?(?:\d+(?:\.\d+)?)?\\[A-Za-z]+(?:\{[^{}]*\}|\d+|[A-Za-z]\b|\s*\\\{[^{}]*\\\})*)"  # -\frac12, 2\pi
          r"|(?P<n>[-−]?\d[\d,]*(?:\.\d+)?(?:/\d+)?%?(?![.,]?\d)(?:[ \t]+(?!(?:if|when|for|as|is|are|and|or|but|"
          r"otherwise|also|too|works?|would|could|might|may)\b)[A-Za-z]{1,12}\.?(?=\s*(?:[.!?;,)}]|$)))?)"  # (a numeral
          # whole, never its first digits; with its unit word: "5 cm")
          r"|(?P<l>\b[A-J]\b)|(?P<y>\b(?:yes|no)\b)|(?P<w>\b" + _NUMBER_WORD + r"\b))\s*\)?")
_VALUE_END = r"(?=\s*(?:[.!?;,)}]|$))"
# "or" alone offers another value when nothing follows it in its clause: "3 (or 5)", "\boxed{3} or 5", "A. Or B."
# ("90 minutes, or 1.5 hours" restates it in other units: the value is followed by a word)
_OFFERED_AFTER = re.compile(
    r"(?:(?P<plain>\bor|\bi\.\s?e\.|\bthat\s+is)\b\s*+,?\s*+(?=[$\\(\d\w−-])"
    r"|\bor\s*+,?\s*+(?:maybe|possibly|perhaps|probably|likely|else|is\s+it|rather)"
    r"|\b(?:possibly|perhaps|maybe|probably|likely)|\balt(?:ernative(?:ly)?)?\s*+[:.,]"
    r"|\b(?:could|might|may)\s+(?:also\s+|even\s+)?be|\band\s+also|^\s*+/(?=\s*+\$)|^[\s$]*+(?:,|\band\b)(?=\s*+[$\d−-]))"
    r"\s*+,?\s*+"
    + _VALUE + _VALUE_END, re.IGNORECASE)
_DOUBTED = re.compile(r"\(\s*" + _VALUE + r"\s*\?\s*\)")  # "12 (13?)"
# right after the answer, a number in words in brackets: "\boxed{8} (eight)" restates it, "(nine)" names another
_WORDS_BESIDE = re.compile(r"[\s$*]*[(\[]\s*(?:i\.\s?e\.,?\s*)?(?P<plain>)(?P<w>" + _NUMBER_WORD + r"(?:[ -]+(?:"
                           + _NUMBER_WORD + r"|and|a|half|halves|thirds?|quarters?|fourths?|fifths?|sixths?|sevenths?|"
                           r"eighths?|ninths?|tenths?|thousand|million))*)"
                           r"\s*[)\]]", re.IGNORECASE)  # "(nine)", "[nine]" (not "(two hours)": other units)
# a value said to work as well ("5 is also a valid answer", "5 works too", "5 would also work"), or the other case
# of a split ("3 when n is odd, 5 otherwise", "3 (or 5 if n is odd)")
_OFFERED_BEFORE = re.compile(
    _VALUE + r"\s+(?:(?:is|are)\s+also\s+(?:possible|plausible|valid|correct|acceptable|an?\s+(?:answer|solution)"
    r"|an?\s+(?:possible|plausible|valid|correct|acceptable)\s+(?:answer|solution))"
    r"|(?:is|are)\s+(?:also\s+)?(?:another|an\s+alternative|one\s+more|a\s+second)\s+(?:possibility|option|"
    r"answer|solution|candidate)|(?:is|are)\s+(?:possible|plausible|valid|correct|acceptable)\s+(?:too|as\s+well)"
    r"|(?:(?:would|will|does|could|might|may)\s+)?also\s+works?|works?\s+(?:too|as\s+well)"
    r"|otherwise|(?:in\s+)?the\s+other\s+case|if\s|when\s|for\s+(?:odd|even)|as\s+a\s+close\s+second"
    r"|is\s+(?:right|correct)\b(?!\s+too))\b", re.IGNORECASE)
# the whole next sentence offers or corrects to another value: "Or 5.", "Maybe it's 13.", "Actually, 13.", "No, 13.",
# "I meant 13.", "Correction: 13.", "It could also be 5.", "Another possibility is 5.", "Probably 13.", "13?"
_CORRECTING = (r"(?:or(?:\s+rather)?|rather|alternatively|possibly|perhaps|maybe|probably|likely|actually|no|nope|"
               r"correction|erratum|edit|sorry|i\s+mean|i\s+meant|then\s+again|wait|hmm+|um+|well|but|so|and|"
               r"i\s+think|i'?m\s+not\s+sure|final(?:\s+answer)?|result|solution|therefore|thus|hence)")
_NEXT_OFFER = re.compile(
    r"\s*\(?\s*(?:(?:" + _CORRECTING + r")\b[\s,:;.!—-]*){0,4}"
    r"(?:(?:it|this|that|the\s+(?:correct\s+|right\s+|final\s+)?(?:answer|value|result))\s*"
    r"(?:'s|’s|\s+is|\s+(?:could|might|may|should)\s+(?:also\s+|even\s+)?(?:be|read))\s*"
    r"|another\s+(?:possibility|option|answer|candidate)\s+is\s+|is\s+it\s+)?"
    + _VALUE + r"(?:\s+is\s+(?:right|correct|the\s+answer))?\s*[.!?]?\s*\)?\s*(?:\n|$)", re.IGNORECASE)
_SPACES = re.compile(r"\s*")
_OFFER_HINT = re.compile(r"or\b|alt|possib|plausib|perhaps|maybe|probabl|likely|could|might|may\b|also|/|works?\b|"
                         r"otherwise|other\s+case|another|too\b|as\s+well|valid|correct|one\s+more|a\s+second|\?|"
                         r"i\.\s?e\.|that\s+is|if\s|when\s|actually|rather|no\b|nope|correction|erratum|edit|sorry|"
                         r"mean|meant|wait|think|should|right|second|final|result|solution|therefore|thus|hence|,|"
                         r"\band\b", re.IGNORECASE)


def offered_beside(text: str, end: int) -> list[tuple[str, bool]]:
    """The values offered beside an answer that ends at ``end``, with words of doubt: in the rest of its sentence,
    or as the whole of the next one, each as ``(value, plain)``; ``plain`` when only "or" offers it (it may be
    the answer restated: "\\frac{\\pi}{2} (or $90^\\circ$)", "\\sqrt2 (or 1.41)"). Linear in the text: a
    bounded window is read."""
    window = text[end : end + _ANSWER_WINDOW]
    if not _OFFER_HINT.search(window, 0, 400) and not _WORDS_BESIDE.match(window):
        return []
    stop = _STATEMENT_END.search(window)
    tail = window[: stop.start() if stop else len(window)]
    found = [*_OFFERED_AFTER.finditer(tail), *_OFFERED_BEFORE.finditer(tail), *_DOUBTED.finditer(tail)]
    words = _WORDS_BESIDE.match(tail)
    if words is not None:
        found.append(words)
    for _ in range(2):  # the next sentence, and the one after it when the next names no value ("I'm not sure.")
        if stop is None:
            break
        start = _SPACES.match(window, stop.end()).end()
        nxt_end = _STATEMENT_END.search(window, start)
        sentence = window[: nxt_end.end() if nxt_end else len(window)]
        nxt = _NEXT_OFFER.match(sentence, start)
        if nxt is not None:
            found.append(nxt)
        found += list(_OFFERED_BEFORE.finditer(sentence, start))  # "The answer is 3. But 5 works too."
        if _OTHER_VALUE.search(sentence, start):
            break
        stop = nxt_end
    values = []
    for m in found:
        value = next(v for v in (m.group(g) for g in ("dd", "d", "p", "c", "n", "l", "y", "w") if g in m.re.groupindex)
                     if v is not None)
        value = value.rstrip(".")
        value = value.strip()
        if value:
            values.append((value, "plain" in m.re.groupindex and m.group("plain") is not None))
    return values


def final_answer_end(text: str, method: str | None) -> int | None:
    """Where the answer that ``method`` extracted ends in ``text`` (the last closed box for ``boxed``)."""
    if method == "boxed":
        found = last_box(text)
        return None if found is None else found[1]
    if method == "answer_is":
        found = answer_is_at(text)
        return None if found is None else found[1]
    return None


def _delimited(rest: str) -> tuple[str | None, int] | None:
    """The ``$...$`` (``\\(...\\)``, ...) group an answer starts with and where it ends in ``rest``; when another
    group is joined to it ("$3$ or $4$": the sentence is the answer, and it names two), that sentence. None when
    there is no group."""
    for left, right in (("$$", "$$"), ("$", "$"), ("\\(", "\\)"), ("\\[", "\\]")):
        if rest.startswith(left):
            k = _closing(rest, right, len(left))
            if k > 0:
                if _JOINED.match(rest, k + len(right)):
                    return _joined_groups(rest)
                return rest[len(left) : k].strip(), k + len(right)
    return None


def _closing(text: str, right: str, start: int) -> int:
    """Where the delimiter ``right`` that closes a group opened before ``start`` is, or -1: a ``$`` escaped as money
    (``$\\$18$``) closes nothing."""
    k = text.find(right, start)
    while k > 0 and right[0] == "$" and text[k - 1] == "\\":
        i = k - 1
        while i > 0 and text[i - 1] == "\\":
            i -= 1
        if (k - i) % 2 == 0:  # "\\$": an escaped backslash, then the delimiter
            break
        k = text.find(right, k + 1)
    return k


_MONEY = re.compile(r"\\\$")


def _joined_groups(rest: str) -> tuple[str | None, int]:
    """The sentence of math groups joined by "or"/"and"/commas, delimiters removed ("$3$ or $4$" -> "3 or 4"),
    and where it ends."""
    m = _PERIOD_END.search(rest)
    end = m.start() if m else len(rest)
    sentence = _MONEY.sub("\0", rest[:end])  # (an escaped dollar is money, no delimiter)
    for mark in ("$$", "$", "\\(", "\\)", "\\[", "\\]"):
        sentence = sentence.replace(mark, " ")
    return sentence.replace("\0", "\\$").strip() or None, end


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
           "last_number", "braced", "taken_back", "answer_after", "replaced_by", "box_continuation", "negated_box",
           "every_box"]
