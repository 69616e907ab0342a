"""The ``math`` verifier: extract a completion's final answer and decide whether it equals the reference.

``task["answer"]`` is the reference (a string or a number; a reference that contains ``\\boxed{}`` is reduced to
the box's content). The reward is 1.0 for an equivalent answer and 0.0 otherwise.

Extraction (``extract``), in the configured order: last ``\\boxed{}``, "answer is ..."/"Answer: ...", and the
last number only when the config asks for it (``extract = ["boxed", "answer_is", "last_number"]``): a cut-off
completion that merely mentions numbers has no final answer. A completion with no answer at all is a legitimate
wrong answer: reward 0.0, status ``ok``, ``details["extracted"] = None``.

Equivalence (``equiv``): exact string match after normalization, then exact rational arithmetic, then
floating-point evaluation (relative tolerance ``rel_tol``; symbols probed at fixed and random points), then sympy's
``simplify`` as a last resort (only when neither side evaluates at any point, on small expressions with small
powers, and within the time budget). Policies: ``50%`` equals ``50`` and ``0.5`` (``percent``); a bare decimal
(or one in scientific notation) with at least ``decimal_min_sig`` significant digits equals a value it is the
rounding or the truncation of (``0.3333`` == ``1/3``, ``3.1416`` and ``3.1415`` == ``\\pi``; never ``0.3334`` or
``3.141595``; a program's float output of 12 digits or more may be off by its last unit), and a decimal
inside an expression is the exact number it writes (``1000000\\pi + 1.0`` is not ``1000000\\pi``); ``1,000`` is
a thousand but ``1,2`` and ``1, 000`` are lists; tuples are ordered; sets are unordered and ignore repeats
(``\\{1,1,2\\}`` == ``\\{1,2\\}``), bare lists are unordered multisets (``1, 1, 2`` != ``1, 2``); set algebra
(``\\cup``, ``\\cap``, ``\\setminus``) is carried out and ``\\mathbb{R}`` is ``(-\\infty, \\infty)``; interval brackets
must match; ``x = 3`` equals ``3``, and so does a true computation ending in it (``1+2=3``; ``2+2=5`` is neither 4
nor 5); ``\\text{}``, degrees, ``\\$`` and spacing commands are ignored, and so are
units beside a value (``5\\text{ cm}`` == ``5``, and ``5\\text{ cm} + 2\\text{ cm}`` == ``7``: one unit on every term;
``5\\text{ m} + 2\\text{ cm}`` is no number) unless both answers name theirs and they differ (``5 cm`` != ``5 m``; a
unit word we cannot name differs from any other unit not written the same way: ``5 nm`` != ``5 m``; scale words
count: ``5 \\text{ million}`` is 5000000); multiple-choice letters compare case-insensitively;
``\\max(3,5)``/``\\gcd``/``\\operatorname{lcm}`` are evaluated; ``3rd`` and ``\\text{third}`` are 3; a trailing
modulus is dropped and an integer reduced by it (``3 \\pmod{7}`` == 3, ``x \\equiv 10 \\pmod 7`` == 3); ``\\sin = 5``
is an equation about a function, not the answer 5; repeating decimals in any notation (``0.\\bar{3}``, ``0.(3)``,
``0.333...``; ``2.718281828...`` against an irrational reference is that decimal, going on), ratios (``3:4``),
ISO intervals (``]0, 1[``), "Option A", "(C) \\frac12" (choice C, whose content is 1/2), ``\\frac13 \\approx 0.333``
(the exact value or its rounding), ``f(2) = 5``, ``E[X] = 3``, ``\\frac{dy}{dx} = 2x`` (the named quantity's
value), ``|x - 1| < 2`` (an interval), overlapping inequalities in a list (their intersection), ``n!!`` (the
double factorial) and "The minimum value is 5" in a box are read as what they mean; answers
that agree only within ``rel_tol`` are checked at 50 digits, floors, maxima and factorials included
(``1000000\\pi + 1`` is not ``1000000\\pi``, nor is ``\\lfloor 1000000\\pi \\rfloor``; a ``rel_tol`` looser than the
default lets decimal literals approximate within it). A
completion that boxes several different answers (hedging: a box holding a box counts as both; a box taken back
before the next one, "that is wrong", is dropped, but not one kept beside it by a condition or an alternative,
"or if that is wrong", "it could also be"; a value offered beside the final answer, "\\boxed{3} (or maybe 5)",
"3 (or 5)", "5 works too", "\\boxed{8} (nine)", counts as another box, and so does an "answer is" statement after
the last box) scores 0 (``details["reason"]`` says so), unless
the reference has several items and the boxes are those items, one each (``\\boxed{2}`` and ``\\boxed{3}`` for
``2, 3``). See
``equiv``'s docstring for the full list.

"Answer is" phrases read words between ("The answer to this problem is therefore 42", "The answers are 2 and 3",
"The answer must be 42") and GSM8K's final line ("#### 72"); a money sign escaped inside ``$...$``
(``$\\$18$``) is no delimiter; cardinals and simple fractions in words ("forty-two", "one half") are numbers; two
values joined by "or" that are one value ("$\\frac72$, or $3.5$") are that value; a multiple of a matrix is each
entry multiplied; ``x \\ne 1, 2`` is the real line without 1 and 2. A box said not to be the answer ("The answer
isn't \\boxed{8}") scores 0.

A final answer the completion takes back after stating it ("\\boxed{12}. Wait, that's wrong.", "I made a
mistake", "on second thought") scores 0; one taken back before a later "answer is" statement gives way to it
(``extract.taken_back``, ``extract.replaced_by``).

Two plain numerals (``-12345``, ``1,234,567``, ``3.1400``) compare by their canonical digits, whatever their length
(thousands of digits are exact and linear in time; ``max_answer_chars`` does not apply to them).

Status ``invalid``: the task row has no ``answer``; the completion is oversized (``max_completion_chars``); the
extracted answer is oversized (``max_answer_chars``; plain numerals excepted), nested too deeply, or too large
to evaluate (``9^9^9^9``) without being written exactly like the reference. Status ``timeout``: the internal
``time_budget_s`` ran out (checked between steps; the engine's wall-clock kill is the hard limit). Status
``error``: a bug in here.
"""
from __future__ import annotations

import re
import time
from collections.abc import Mapping
from fractions import Fraction

from raylign.engine import hookimpl
from raylign.verifiers import Verdict
from raylign.verifiers.math.equiv import (MACHINE_SIG, BudgetExceeded, Options, Unjudgeable, clean, describe, equal,
                                          kind, parse_answer)
from raylign.verifiers.math.extract import (DEFAULT_METHODS, METHODS, answer_after, box_continuation, every_box,
                                            extract_answer, final_answer_end, final_boxes, last_boxed, negated_box,
                                            offered_beside, replaced_by, taken_back)
from raylign.verifiers.math.normalize import units
from raylign.verifiers.math.numerals import int_text, plain_numeral
from raylign.verifiers.math.parse import symbols
from raylign.verifiers.math.units import units_differ
from raylign.verifiers.math.values import ellipsis_cut

_MAX_DISTINCT_BOXES = 16  # more distinct boxed answers than this is hedging without looking closer
_SHOWN = 400  # characters of an answer that details show
_MAX_EXACT_DIGITS = 13_000  # longer numerals are only compared with numerals (evaluate.MAX_BITS is ~12,000 digits)


def _order(value) -> tuple[str, ...]:
    order = tuple(m.strip() for m in value.split(",")) if isinstance(value, str) else tuple(value)
    unknown = [m for m in order if m not in METHODS]
    if unknown or not order:
        raise ValueError(f"extract must name methods among {METHODS}, got {value!r}")
    return order


def _float_text(x: float) -> str:
    """A float reference as text: a whole number's digits (``5``, ``1152921504606846976``), unless its shortest repr
    is a short mantissa and exponent (``1e+300``, not the binary expansion's ``1000...052504...``)."""
    if not x.is_integer():
        return repr(x)
    text = repr(x)
    mantissa = text.split("e")[0].replace(".", "").replace("-", "").strip("0")
    return text if "e" in text and len(mantissa) <= 12 else str(int(x))


def _reference_text(answer) -> str:
    if isinstance(answer, bool):
        return str(answer)
    if isinstance(answer, int):
        return int_text(answer)  # thousands of digits: past Python's int-to-str limit
    if isinstance(answer, Fraction):
        return str(answer) if max(answer.numerator.bit_length(), answer.denominator.bit_length()) < 10_000 else (
            int_text(answer.numerator) + "/" + int_text(answer.denominator))
    if isinstance(answer, float):
        return _float_text(answer)
    text = str(answer)
    if "\\boxed" in text or "\\fbox" in text:
        text = last_boxed(text) or text
    return text


class MathVerifier:
    """Scores a completion against ``task["answer"]``; instantiated once per worker.

    :param extract: extraction methods in order (``boxed``, ``answer_is``, ``last_number``), a tuple or a comma
        string; default ``boxed, answer_is`` (``last_number`` is opt-in); a task row may override it with its
        own ``extract`` field.
    :param rel_tol: relative tolerance for values that are not both exact rationals.
    :param decimal_min_sig: significant digits a decimal needs to match a value it rounds/truncates to.
    :param percent: ``both`` (50% == 50 == 0.5), ``number`` (50% == 50) or ``fraction`` (50% == 0.5).
    :param max_completion_chars: longer completions are ``invalid``.
    :param max_answer_chars: longer extracted answers (and references) are ``invalid``.
    :param time_budget_s: internal budget per verification; past it the verdict is ``timeout``.
    """

    def __init__(self, extract=DEFAULT_METHODS, rel_tol: float = 1e-6, decimal_min_sig: int = 4,
                 percent: str = "both", max_completion_chars: int = 1_000_000, max_answer_chars: int = 1000,
                 time_budget_s: float = 1.0):
        if percent not in ("both", "number", "fraction"):
            raise ValueError(f"percent must be 'both', 'number' or 'fraction', got {percent!r}")
        self.extract = _order(extract)
        self.options = Options(rel_tol=rel_tol, decimal_min_sig=decimal_min_sig, percent=percent)
        self.approximate = Options(rel_tol=rel_tol, decimal_min_sig=1, percent=percent)  # a restatement's decimals
        self.max_completion_chars = max_completion_chars
        self.max_answer_chars = max_answer_chars
        self.time_budget_s = time_budget_s
        # sympy (the last-resort equivalence check) is imported by the first comparison that needs it, after
        # the budget check that precedes it: most verdicts never do, and a cold `raylign verify math` stays fast

    @staticmethod
    def reference_completion(task: Mapping) -> str | None:
        """A completion that states the row's own answer (boxed, after "The answer is"), for the reference check
        that runs before training: a row whose field mapping is wrong fails it."""
        if not isinstance(task, Mapping) or task.get("answer") is None:
            return None
        reference = _reference_text(task["answer"])
        problem = _not_an_answer(reference)
        if problem:
            raise ValueError(f"the answer {_shown(reference)[:80]!r} {problem}")
        return f"The answer is \\boxed{{{reference}}}."

    def __call__(self, completion: str, task: dict) -> Verdict:
        if not isinstance(task, Mapping) or task.get("answer") is None:
            return Verdict(0.0, "invalid", "task row has no 'answer' field (the reference answer)", {})
        if not isinstance(completion, str):
            return Verdict(0.0, "invalid", f"completion must be a string, got {type(completion).__name__}", {})
        if len(completion) > self.max_completion_chars:
            return Verdict(0.0, "invalid", f"completion longer than {self.max_completion_chars} characters",
                           {"completion_chars": len(completion)})
        deadline = time.monotonic() + self.time_budget_s
        try:
            order = _order(task["extract"]) if task.get("extract") else self.extract
            extracted, method = extract_answer(completion, order)
        except ValueError as exc:
            return Verdict(0.0, "invalid", str(exc), {})
        details = {"extracted": extracted, "method": method}
        if extracted is None:
            return Verdict(0.0, "ok", None, {**details, "reason": "no answer found"})
        extracted, method, end, also = _final_statement(completion, extracted, method)
        details = {"extracted": extracted, "method": method}
        if end is not None and taken_back(completion, end):
            return Verdict(0.0, "ok", None, {**details, "reason": "the completion takes its answer back"})
        if method == "boxed" and end is not None and negated_box(completion, _box_start(completion, end), end):
            return Verdict(0.0, "ok", None, {**details, "reason": "the completion says its box is not the answer"})
        reference = _reference_text(task["answer"])
        extracted = self._one_of_equals(extracted, deadline)
        if len(extracted) > _SHOWN:
            details["extracted"] = _shown(extracted)
        for name, text in (("extracted answer", extracted), ("reference answer", reference)):
            if len(text) > self.max_answer_chars and plain_numeral(_numeral_part(text)) is None:  # numerals: any length
                return Verdict(0.0, "invalid", f"{name} longer than {self.max_answer_chars} characters",
                               {**details, "extracted": extracted[:200]})
        try:
            same, reason = self._judge(reference, extracted, details, deadline)
            if same:
                hedge = self._hedge(completion, reference, extracted, deadline, end, also)
                if hedge:
                    same, reason = False, "boxes several different answers (hedging)"
                    details["boxed"] = hedge
            if not same:
                together = self._boxes_together(completion, reference, deadline)
                if together is not None:
                    same, reason = True, "its boxes together are the answer (one item each)"
                    details.pop("boxed", None)
                    details["extracted"] = _shown(together)
        except Unjudgeable as exc:
            return Verdict(0.0, "invalid", str(exc), details)
        except BudgetExceeded as exc:
            return Verdict(0.0, "timeout", str(exc), details)
        except RecursionError:
            return Verdict(0.0, "invalid", "answer nested too deeply", details)
        except MemoryError:
            return Verdict(0.0, "invalid", "answer too large", details)
        except Exception as exc:  # a bug in here: say so instead of scoring it silently
            return Verdict(0.0, "error", f"{type(exc).__name__}: {exc}", details)
        if reason:
            details["reason"] = reason
        return Verdict(1.0 if same else 0.0, "ok", None, details)

    def _judge(self, reference: str, extracted: str, details: dict, deadline: float,
               options: Options | None = None) -> tuple[bool, str | None]:
        ref_num, cand_num = plain_numeral(reference), plain_numeral(extracted)
        if ref_num is not None and cand_num is not None and ref_num != cand_num and "." in ref_num \
                and _machine_float(cand_num):  # 0.30000000000000004 for 0.3: a double's rounding of it
            gap, ref = abs(Fraction(cand_num) - Fraction(ref_num)), abs(Fraction(ref_num))
            same = gap <= ref / 2 ** 50  # (a double's rounding, not a digit off: 0.1234567890124 is not ...123)
            details["normalized"] = {"answer": _shown(ref_num), "extracted": _shown(cand_num)}
            return same, "a program's floating-point output of the number" if same else None
        if ref_num is not None and cand_num is not None and (ref_num == cand_num or not _machine_float(cand_num)):
            # two plain numbers, however long: compare their digits (a program's float output, 12.000000000000002,
            # goes on to the decimal rule)
            details["normalized"] = {"answer": _shown(ref_num), "extracted": _shown(cand_num)}
            return ref_num == cand_num, "same number" if ref_num == cand_num else None
        for num in (ref_num, cand_num):
            if num is not None and len(num) > _MAX_EXACT_DIGITS:
                raise Unjudgeable(f"a {len(num)}-digit number against an expression: past what is computed exactly")
        ref_clean, cand_clean = clean(reference), clean(extracted)
        details["normalized"] = {"answer": _shown(ref_clean), "extracted": _shown(cand_clean)}
        if ref_clean == cand_clean and ref_clean:
            same, reason = True, "same normalized text"
        else:
            ref_value, cand_value = parse_answer(reference), parse_answer(extracted)
            details["normalized"] = {"answer": _shown(describe(ref_value)), "extracted": _shown(describe(cand_value))}
            details["kind"] = {"answer": kind(ref_value), "extracted": kind(cand_value)}
            same, reason = equal(ref_value, cand_value, options or self.options, deadline), None
        if not same and _irrational(reference):
            cut = ellipsis_cut(cand_clean)  # "2.718281828..." for e: the digits go on, they do not repeat
            if cut is not None:
                same, reason = self._judge(reference, cut, {}, deadline)[0], "a decimal that goes on, not one that repeats"
        ref_units, cand_units = units(reference), units(extracted)
        if same and units_differ(ref_units, cand_units):
            details["units"] = {"answer": sorted(ref_units), "extracted": sorted(cand_units)}
            return False, "different units"
        return same, reason

    def _one_of_equals(self, extracted: str, deadline: float) -> str:
        """An answer of two values joined by "or" that are the same value ("$\\frac{7}{2}$, or $3.5$", "$\\sqrt2$, or
        $1.41$": a decimal may round it) is that value, as first written; anything else as it is (two different
        values joined by "or" stay a list)."""
        m = _OR_JOINED.fullmatch(extracted)
        if m is None or len(extracted) > self.max_answer_chars:
            return extracted
        left, right = m.group(1).strip(), m.group(2).strip()
        try:
            a, b = parse_answer(left), parse_answer(right)
            same = kind(a) == kind(b) == "scalar" and equal(a, b, self.approximate, deadline)
        except (Unjudgeable, BudgetExceeded, RecursionError, MemoryError, ArithmeticError, ValueError):
            return extracted
        if not same:
            return extracted
        return right if plain_numeral(left) and "." in left and not plain_numeral(right) else left  # (the exact
        # one: "1.41 or \\sqrt2" is \\sqrt2)

    def _boxes_together(self, completion: str, reference: str, deadline: float) -> str | None:
        """The boxes' contents joined as one list, when a reference of several items (``2, 3``, ``\\{2, 3\\}``,
        ``(2, 3)``; not an interval ``[2, 3]``) is answered one item per box (``the roots are \\boxed{2} and \\boxed{3}``) and the list
        equals it; else None. Each distinct box must be one item, as many boxes as the reference has items: boxing
        every item of the answer is not hedging between answers, boxing a wrong one beside them still fails."""
        if completion.count("\\boxed") + completion.count("\\fbox") < 2:
            return None
        ref_value = parse_answer(reference)
        items = ref_value[1] if ref_value[0] in ("list", "set") else ref_value[3] if _is_tuple(ref_value) else ()
        if len(items) < 2:
            return None
        for boxes in (final_boxes(completion, self.max_answer_chars), every_box(completion, self.max_answer_chars)):
            joined = self._items_boxed(reference, boxes, items, deadline)
            if joined is not None:  # (every box, when one was "taken back" for another item: "Hold on, there is
                return joined  # another root: \\boxed{-3}")
        return None

    def _items_boxed(self, reference: str, boxes: list, items: tuple, deadline: float) -> str | None:
        """The boxes joined as the reference's list when they are its items, one each; else None."""
        forms: dict = {}
        for box in boxes:
            if box is None:
                return None
            if box.strip():
                forms.setdefault(_box_form(box), box.strip())
            if len(forms) > len(items):
                return None
        values = [parse_answer(box) for box in forms.values()]
        if len(forms) != len(items) or any(kind(v) in ("list", "seq", "set") for v in values) or any(
                equal(v, w, self.options, deadline) for i, v in enumerate(values) for w in values[i + 1:]):
            return None  # a box of several items, or one value boxed twice (\frac12 and 0.5): not one item each
        joined = ", ".join(forms.values())
        if len(joined) > self.max_answer_chars or not self._judge(reference, joined, {}, deadline)[0]:
            return None
        return joined

    def _hedge(self, completion: str, reference: str, extracted: str, deadline: float,
               end: int | None = None, also: tuple[str, ...] = ()) -> list[str]:
        """The distinct answers when the completion stands by several that are not all the reference (hedging:
        ``\\boxed{3} ... \\boxed{5}``; ``The answer is $3$, or possibly $5$``), else ``[]``. The same answer
        boxed twice, in any form (``\\frac12``, ``0.5``), is one answer; so is a single box, whatever the
        configured extraction took instead; a box taken back before the next one ("that is wrong") is no longer
        an answer; a value offered beside the final answer in its sentence (``extract.offered_beside``), or a
        later "answer is" statement (``also``), counts like another box. ``end``: where the final answer ends."""
        offered = [(value, False) for value in also] + (offered_beside(completion, end) if end is not None else [])
        answer_units = (units(extracted) or _units_after(completion, end)) if offered else frozenset()
        for value, plain in offered:
            if plain and units(value) != answer_units:
                continue  # "\frac{\pi}{2} (or $90^\circ$)", "\boxed{90} (or 1.5 hours)": the answer in other units
                # (a value offered there is never credited: the box alone is judged)
            try:  # restated after a plain "or", a decimal may approximate it to any places ("\sqrt2 (or 1.41)")
                same = len(value) <= self.max_answer_chars and self._judge(
                    reference, value, {}, deadline, self.approximate if plain else self.options)[0]
            except (Unjudgeable, RecursionError, MemoryError):
                same = False
            if not same:
                return [_shown(completion[max(0, end - 40):end]), _shown(value)]
        if completion.count("\\boxed") + completion.count("\\fbox") < 2:
            return []
        boxes = final_boxes(completion, max(self.max_answer_chars, len(extracted)))
        forms: dict = {}
        for box in boxes:
            if box is None or box.strip():
                key = None if box is None else (_box_form(box), units(box))
                forms.setdefault(key, box)
                if len(forms) > _MAX_DISTINCT_BOXES:
                    break
        if len(forms) < 2:
            return []
        shown = [_shown(f[0]) if f is not None else "<oversized>" for f in list(forms)[:_MAX_DISTINCT_BOXES]]
        if None in forms or len(forms) > _MAX_DISTINCT_BOXES:
            return shown
        named = {unit for _, unit in forms} - {frozenset()}  # each box's units, already in its key
        if any(units_differ(a, b) for a in named for b in named):
            return [_shown(box) for box in forms.values()]  # 7 cm and 7 m: one number, two answers
        for box in forms.values():
            if len(box) > self.max_answer_chars and plain_numeral(box) is None:
                return shown
            try:
                if not self._judge(reference, box, {}, deadline)[0]:
                    return shown
            except (Unjudgeable, RecursionError, MemoryError):
                return shown
        return []


def _final_statement(completion: str, extracted: str, method: str) -> tuple[str, str, int | None, tuple[str, ...]]:
    """The answer the completion ends by stating, its method, where it ends in the completion, and the other
    answers it states beside it. A box whose expression goes on is the expression shown ("\\boxed{3}^{5}" is
    3^5); an "answer is" statement after the last box replaces the box when the box is taken back before it
    ("\\boxed{12}. Actually, the answer is 15."), else it is judged beside it ("\\boxed{3} ... Final Answer: 5"
    names two answers)."""
    end = final_answer_end(completion, method)
    if end is None or method not in ("boxed", "answer_is"):
        return extracted, method, end, ()
    if method != "boxed":
        return extracted, method, end, ()
    more = box_continuation(completion, end)
    extracted, end = extracted + more, end + len(more)
    later = answer_after(completion, end)
    if later is None or not later[0].strip():
        return extracted, method, end, ()
    restated = _RESTATING.sub("", later[0].strip())
    if replaced_by(completion, end, later) and not (restated and _PROSE.search(restated) and not _DIGIT.search(restated)):
        return restated or later[0].strip(), "answer_is", later[2], ()  # (not by words: "I forgot to mention that
        # the answer is in dollars")
    if not restated or _PROSE.search(restated):  # "the answer is consistent with the estimate": words, no answer
        return extracted, method, end, ()
    return extracted, method, end, (restated,)


def _box_start(completion: str, end: int) -> int:
    """Where the last box command before ``end`` starts (-1: none)."""
    return max(completion.rfind("\\boxed", 0, end), completion.rfind("\\fbox", 0, end))


_UNIT_WORD_AFTER = re.compile(r"[$\s]*([A-Za-z]{1,20})\b")


def _units_after(completion: str, end: int | None) -> frozenset:
    """The units named by the word right after an answer written without them ("$\\boxed{90}$ minutes")."""
    m = None if end is None else _UNIT_WORD_AFTER.match(completion, end)
    return units("1 " + m.group(1)) if m else frozenset()


_OR_JOINED = re.compile(r"([^,]+?)\s*,?\s*(?:\bor\b|\\text\s*\{\s*or\s*\})\s*([^,]+)")
_RESTATING = re.compile(r"^(?:(?:indeed|therefore|thus|hence|so|clearly|still|also|again|definitely|certainly|"
                        r"exactly|simply|then|just|really|verified|confirmed)\b[\s,:]*)+", re.IGNORECASE)
_PROSE = re.compile(r"(?<![\\A-Za-z])[A-Za-z]{4,}")  # a word of four letters or more that is no command
_DIGIT = re.compile(r"\d")


_UNIT_TAIL = re.compile(r"\s*(?:\\(?:text|mathrm|textrm|mbox)\s*\{[^{}]*\}|[A-Za-z]+\.?)\s*$")


def _numeral_part(text: str) -> str:
    """``text`` without a unit after it (``5736 digits \\text{ ways}``): a numeral with its unit is exempt from
    ``max_answer_chars`` like a bare one."""
    m = _UNIT_TAIL.search(text, max(0, len(text) - 200))
    text = text[: m.start()] if m else text
    return text[2:] if text.startswith("\\$") else text  # "\\$1,000,...": money


def _irrational(reference: str) -> bool:
    """Whether the reference is a number no repeating decimal equals (a constant without a rational value)."""
    try:
        value = parse_answer(reference)
    except Unjudgeable:
        return False
    return value[0] == "scalar" and value[1].rat is None and not value[1].huge and not symbols(value[1].node)


def _machine_float(numeral: str) -> bool:
    """Whether a plain numeral is a decimal of ``MACHINE_SIG`` significant digits or more (a program's output)."""
    return "." in numeral and len(numeral) < 40 and \
        len(numeral.replace("-", "").replace(".", "").lstrip("0")) >= MACHINE_SIG


def _is_tuple(value) -> bool:
    """Whether a parsed value is a tuple, ``(2, 3)``, rather than an interval with a bracket (``[2, 3]``, ``(2, 3]``):
    an interval is no list of items that boxes could name one by one."""
    return value[0] == "seq" and value[1] == "(" and value[2] == ")"


def _box_form(box: str) -> str:
    """What two boxes must share to be the same answer written twice: a plain numeral's canonical digits, else the
    cleaned text (``_hedge`` adds the box's units)."""
    return plain_numeral(box) or clean(box)


_WORD = re.compile(r"(?<![\\A-Za-z])[A-Za-z]{2,}")


def _not_an_answer(reference: str) -> str | None:
    """Why a reference reads as working, prose or a question rather than a final answer (None when it does
    not): what a wrong field mapping gives (GSM8K's whole solution, MATH's solution text, the question)."""
    if "####" in reference or re.search(r"<<[^>]*>>", reference):
        return "still holds its working (a '####' or '<<...>>' marker): take the final answer out of it"
    words = len(_WORD.findall(reference))
    if "\n" in reference.strip() and words >= 3:
        return "spans several lines of text: it reads as working, not a final answer"
    if reference.rstrip().endswith("?") and words >= 3:
        return "is a question, not an answer"
    if words >= 6:
        return f"reads as prose ({words} words), not a final answer"
    return None


def _shown(text: str) -> str:
    """Text as details show it: long numerals and forms are cut (the verdict travels in logs)."""
    return text if len(text) <= _SHOWN else f"{text[:_SHOWN // 2]}...({len(text)} characters)...{text[-20:]}"


@hookimpl
def raylign_register_verifiers(register):
    register("math", MathVerifier)


__all__ = ["MathVerifier", "raylign_register_verifiers"]
