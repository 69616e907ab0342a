"""Answers that reasoning-gym's own checkers pay for although they are wrong (one job: refuse them before the
checker scores them, so that a policy trained on these datasets cannot learn them).

Each was seen scoring 1.0 upstream (reasoning-gym 0.1.19): ``nan`` for ``complex_arithmetic`` and a list of
``NaN`` for ``number_sorting`` (a NaN compares as no difference); constants the number check cannot see in
``countdown`` (``0e0``, ``0x135``, ``pi - pi``); any four numbers making 24 in ``puzzle24`` (the puzzle's numbers
are never compared, and 24.5 counts as 24); the integral restated in the integration datasets (its derivative is
the integrand); any non-empty answer in ``game_of_life_halting``. A refused answer scores 0 with its reason.
"""
from __future__ import annotations

import ast
import re
from collections import Counter
from fractions import Fraction
from typing import Any, Mapping

_NON_FINITE = re.compile(r"(?<![A-Za-z])(?:nan|inf(?:inity)?)(?![A-Za-z])", re.IGNORECASE)
_ARITHMETIC = re.compile(r"[\d\s+\-*/()]+")
_INTEGERS = re.compile(r"\d+")


def refused(dataset: str, answer: str, entry: Mapping[str, Any]) -> str | None:
    """Why ``answer`` to the row ``entry`` of ``dataset`` is wrong whatever the upstream checker says, or None."""
    reference = str(entry.get("answer", ""))
    meta = entry.get("metadata") if isinstance(entry.get("metadata"), Mapping) else {}
    if _NON_FINITE.search(answer) and not _NON_FINITE.search(reference):
        return "not a finite number"
    if dataset in ("countdown", "puzzle24"):
        if not _ARITHMETIC.fullmatch(answer.strip()):
            return "only decimal integers, + - * / and brackets"
        used, given = Counter(int(t) for t in _INTEGERS.findall(answer)), _counts(meta.get("numbers"))
        if given is None or used != given:
            return "not exactly the numbers given"
        if dataset == "puzzle24" and _exact(answer) != 24:
            return "not exactly 24"
    if "integration" in dataset and "Integral" in answer and "Integral" not in reference:
        return "the integral restated, not an antiderivative"
    if dataset == "game_of_life_halting" and answer.strip().lower() not in ("true", "false"):
        return "neither True nor False"
    return None


def _counts(numbers) -> Counter | None:
    try:
        return Counter(int(n) for n in numbers)
    except (TypeError, ValueError):
        return None


def _exact(text: str) -> Fraction | None:
    """The exact value of integers combined by + - * / and brackets, or None."""
    def value(node):
        if isinstance(node, ast.Constant) and type(node.value) is int:
            return Fraction(node.value)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.UAdd, ast.USub)):
            v = value(node.operand)
            return -v if isinstance(node.op, ast.USub) else v
        if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Sub, ast.Mult, ast.Div)):
            a, b = value(node.left), value(node.right)
            if isinstance(node.op, ast.Div):
                return a / b
            return a + b if isinstance(node.op, ast.Add) else a - b if isinstance(node.op, ast.Sub) else a * b
        raise ValueError(type(node).__name__)
    try:
        return value(ast.parse(text.strip(), mode="eval").body)
    except (SyntaxError, ValueError, ZeroDivisionError, RecursionError, MemoryError):
        return None


__all__ = ["refused"]
