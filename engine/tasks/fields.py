"""Field mapping: a data source's rows put in the shape the verifiers read, declared in config.

Real datasets name their fields their own way: GSM8K has ``question`` and an ``answer`` whose final value follows
``####``; MATH hides the answer in the last ``\\boxed{}`` of a ``solution``; MBPP has ``text`` and ``test_list``;
APPS/CodeContests carry their cases as a JSON string. A :class:`FieldMap` says which field is which::

    [grpo]
    data = ["gsm8k.jsonl"]
    fields = { prompt = "question", answer = "answer", answer_after = "####" }

A mapped row is the source row plus the fields the verifiers read (``answer``, ``tests``, ``test_setup_code``,
``test``, ``entry_point``, ``inputs``/``outputs``, ``reference``), taken from the named fields. A row whose gold
answer cannot be taken out (the marker, box or regex is not there) is left out of training and reported: it
counts as a failure in the reference check (:mod:`raylign.engine.tasks.check`).
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, fields as dc_fields
from typing import Any, Mapping

from raylign.engine.errors import ConfigError

# Fields a reference solution is read from when `reference` is not named: HumanEval, MBPP, APPS/CodeContests.
REFERENCE_DEFAULTS = ("canonical_solution", "code", "solutions")


@dataclass(frozen=True)
class FieldMap:
    prompt: str = "prompt"  # the field the model is asked (a string or chat messages)
    answer: str = ""  # the field holding the gold answer ("" = `answer`, when the row has one)
    answer_after: str = ""  # the gold answer follows the last occurrence of this marker in it (GSM8K: "####")
    answer_boxed: bool = False  # the gold answer is the content of the field's last \boxed{} (MATH's solution)
    answer_regex: str = ""  # the gold answer is the last match of this regex (its first group, if it has one)
    tests: str = ""  # assert statements: a list, or one string of lines (MBPP's test_list is read as is)
    test_setup: str = ""  # code run before each assert (MBPP's test_setup_code is read as is)
    test: str = ""  # HumanEval: a test program defining check(candidate); with entry_point
    entry_point: str = ""  # HumanEval: the name of the function under test
    inputs: str = ""  # stdin of each case: a list, or a JSON string of one
    outputs: str = ""  # expected stdout of each case: a list, or a JSON string of one
    io: str = ""  # one field with {"inputs": [...], "outputs": [...]}, a dict or a JSON string (APPS input_output)
    reference: str = ""  # a reference solution, for the reference check ("" = canonical_solution, code or
    # solutions when the row has one; a math row's reference is its answer)

    def check(self, key: str) -> None:
        """Fail with a ConfigError naming ``key`` (e.g. ``grpo.fields``) when the mapping contradicts itself."""
        ways = [n for n, on in (("answer_after", bool(self.answer_after)), ("answer_boxed", self.answer_boxed),
                                ("answer_regex", bool(self.answer_regex))) if on]
        if len(ways) > 1:
            raise ConfigError(f"{key}: {' and '.join(ways)} are both set; choose one way to take out the answer")
        if self.answer_regex:
            try:
                re.compile(self.answer_regex)
            except re.error as exc:
                raise ConfigError(f"{key}.answer_regex: not a valid regex ({exc})") from None
        if not self.prompt:
            raise ConfigError(f"{key}.prompt is empty: name the field the model is asked")
        if self.io and (self.inputs or self.outputs):
            raise ConfigError(f"{key}: io and inputs/outputs are both set; name one or the other")

    def describe(self) -> str:
        """The non-default keys, as config would write them: ``{prompt = "question", answer_after = "####"}``."""
        default = FieldMap()
        shown = [f'{f.name} = {json.dumps(getattr(self, f.name))}' for f in dc_fields(self)
                 if getattr(self, f.name) != getattr(default, f.name)]
        return "{" + ", ".join(shown) + "}" if shown else "{} (rows used as they are)"


class Unmapped(ValueError):
    """A row whose gold answer or tests cannot be taken out under the mapping (left out, reported)."""


def _field(row: Mapping[str, Any], name: str, where: str) -> Any:
    """``row[name]`` with dotted names reaching into nested tables; a missing field fails naming both."""
    value: Any = row
    for part in name.split("."):
        if not isinstance(value, Mapping) or part not in value or value[part] is None:
            present = ", ".join(row) or "none"
            raise Unmapped(f"{where}: no field {name!r} (fields present: {present})")
        value = value[part]
    return value


def _json_list(value: Any, name: str, where: str) -> list:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise Unmapped(f"{where}: field {name!r} is a string but not JSON ({exc.msg})") from None
    if not isinstance(value, (list, tuple)):
        raise Unmapped(f"{where}: field {name!r} must be a list (or a JSON string of one), got "
                       f"{type(value).__name__}")
    return list(value)


def _lines(value: Any, name: str, where: str) -> list[str]:
    if isinstance(value, str):
        return [line for line in value.splitlines() if line.strip()]
    if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        return list(value)
    raise Unmapped(f"{where}: field {name!r} must be a list of strings or one string of lines")


def take_answer(text: Any, fields: FieldMap, name: str, where: str) -> Any:
    """The gold answer out of a field's value under ``fields``' answer rule (the value itself when none)."""
    if not (fields.answer_after or fields.answer_boxed or fields.answer_regex):
        return text
    text = str(text)
    if fields.answer_after:
        if fields.answer_after not in text:
            raise Unmapped(f"{where}: field {name!r} has no {fields.answer_after!r} marker")
        answer = text.rsplit(fields.answer_after, 1)[1].strip()
    elif fields.answer_boxed:
        from raylign.verifiers.math.extract import last_boxed

        answer = last_boxed(text)
        if answer is None:
            raise Unmapped(f"{where}: field {name!r} has no \\boxed{{}}")
        answer = answer.strip()
    else:
        found = None
        for found in re.finditer(fields.answer_regex, text):
            pass
        if found is None:
            raise Unmapped(f"{where}: field {name!r} has no match of answer_regex {fields.answer_regex!r}")
        answer = (found.group(1) if found.re.groups else found.group(0)).strip()
    if not answer:
        raise Unmapped(f"{where}: the answer taken out of field {name!r} is empty")
    return answer


def map_row(row: Mapping[str, Any], fields: FieldMap, where: str) -> dict[str, Any]:
    """The row with the verifiers' fields set from the ones ``fields`` names. Raises :class:`Unmapped`."""
    out = dict(row)
    answer_field = fields.answer or ("answer" if "answer" in row else "")
    if answer_field:
        out["answer"] = take_answer(_field(row, answer_field, where), fields, answer_field, where)
    elif fields.answer_after or fields.answer_boxed or fields.answer_regex:
        raise Unmapped(f"{where}: an answer rule is set but no `answer` field is named (and the row has none)")
    if fields.tests:
        out["tests"] = _lines(_field(row, fields.tests, where), fields.tests, where)
    if fields.test_setup:
        out["test_setup_code"] = str(_field(row, fields.test_setup, where))
    if fields.test:
        out["test"] = str(_field(row, fields.test, where))
    if fields.entry_point:
        out["entry_point"] = str(_field(row, fields.entry_point, where))
    if fields.io:
        io = _field(row, fields.io, where)
        if isinstance(io, str):
            try:
                io = json.loads(io)
            except json.JSONDecodeError as exc:
                raise Unmapped(f"{where}: field {fields.io!r} is a string but not JSON ({exc.msg})") from None
        if not isinstance(io, Mapping) or "inputs" not in io or "outputs" not in io:
            raise Unmapped(f"{where}: field {fields.io!r} must hold 'inputs' and 'outputs'")
        out["inputs"], out["outputs"] = list(io["inputs"]), list(io["outputs"])
    for key in ("inputs", "outputs"):
        name = getattr(fields, key)
        if name:
            out[key] = _json_list(_field(row, name, where), name, where)
        elif isinstance(out.get(key), str):  # a JSON string under the standard name
            out[key] = _json_list(out[key], key, where)
    reference = _reference(row, fields, where)
    if reference is not None:
        out["reference"] = reference
    return out


def _reference(row: Mapping[str, Any], fields: FieldMap, where: str) -> str | None:
    names = (fields.reference,) if fields.reference else tuple(n for n in REFERENCE_DEFAULTS if n in row)
    for name in names:
        value = _field(row, name, where)
        if name == "solutions" or isinstance(value, (list, tuple)) or (isinstance(value, str)
                                                                       and value.lstrip().startswith("[")):
            try:
                value = _json_list(value, name, where)[0] if value else None
            except (Unmapped, IndexError):
                value = value if isinstance(value, str) else None
        if isinstance(value, str) and value.strip():
            return value
    return None
