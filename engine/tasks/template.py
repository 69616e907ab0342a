"""Prompt templates: what the model is asked, built from a row's fields, with a system message and few-shot turns.

    [grpo]
    template = "{question}\\nEnd with: The answer is <number>."
    system = "You are a careful solver."
    few_shot = [{ question = "What is 2+3?", response = "2+3 = 5. The answer is 5." }]

``{name}`` is the row's field (``{metadata.expression}`` reaches into a table; a list becomes its lines, a table
its JSON); ``{{`` and ``}}`` are literal braces, and braces around anything that is not a field name stay as
they are, so ``\\boxed{}`` needs no escaping. A few-shot example is a table of the same fields plus ``response``
(the assistant's reply), rendered with the same template. The result is a list of chat messages; the engine
renders it with the model's chat template when it has one, and as plain text when it has none.
"""
from __future__ import annotations

import json
import re
from typing import Any, Mapping, Sequence

from raylign.engine.errors import ConfigError, DataError

_PLACEHOLDER = re.compile(r"\{\{|\}\}|\{([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z0-9_]+)*)\}")


def placeholders(template: str) -> list[str]:
    """The field names a template uses, in order."""
    return [m.group(1) for m in _PLACEHOLDER.finditer(template) if m.group(1)]


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, (list, tuple)) and all(isinstance(v, (str, int, float)) for v in value):
        return "\n".join(str(v) for v in value)
    if isinstance(value, (Mapping, list, tuple)):
        return json.dumps(value, ensure_ascii=False, default=str)
    return str(value)


def fill(template: str, row: Mapping[str, Any], where: str) -> str:
    """``template`` with each ``{field}`` replaced by the row's value; a missing field fails naming it."""

    def sub(m: re.Match) -> str:
        if m.group(0) == "{{":
            return "{"
        if m.group(0) == "}}":
            return "}"
        value: Any = row
        for part in m.group(1).split("."):
            if not isinstance(value, Mapping) or part not in value:
                raise DataError(f"{where}: the template names field {m.group(1)!r}, which the row does not have "
                                f"(fields present: {', '.join(row) or 'none'})")
            value = value[part]
        return _text(value)

    return _PLACEHOLDER.sub(sub, template)


def check_few_shot(examples: Sequence[Mapping[str, Any]], key: str) -> None:
    for i, ex in enumerate(examples):
        if not isinstance(ex.get("response"), str) or not ex["response"].strip():
            raise ConfigError(f"{key}[{i}]: a few-shot example needs a `response` (the assistant's reply)")


def build_messages(row: Mapping[str, Any], prompt_field: str, template: str, system: str,
                   few_shot: Sequence[Mapping[str, Any]], where: str) -> list[dict[str, str]]:
    """The chat messages for one row: system, few-shot turns, then the row's prompt (templated or as it is)."""

    def user(r: Mapping[str, Any], at: str) -> str | list:
        if template:
            return fill(template, r, at)
        if prompt_field not in r or r[prompt_field] is None:
            raise DataError(f"{at}: missing field {prompt_field!r}, the prompt (fields.prompt) (fields present: "
                            f"{', '.join(r) or 'none'})")
        prompt = r[prompt_field]
        if not isinstance(prompt, (str, list)):
            raise DataError(f"{at}: field {prompt_field!r} must be str or list, got {type(prompt).__name__}")
        return prompt

    msgs: list[dict[str, str]] = [{"role": "system", "content": system}] if system else []
    for i, ex in enumerate(few_shot):
        shown = user(ex, f"few_shot[{i}]")
        if not isinstance(shown, str):
            raise DataError(f"few_shot[{i}]: the example's prompt must be a string")
        msgs += [{"role": "user", "content": shown}, {"role": "assistant", "content": ex["response"]}]
    prompt = user(row, where)
    if isinstance(prompt, str):
        return msgs + [{"role": "user", "content": prompt}]
    turns = [dict(m) for m in prompt]
    if turns and turns[0].get("role") == "system":  # the row's own system message wins over `system`
        return [turns[0]] + msgs[1 if system else 0:] + turns[1:]
    return msgs + turns
