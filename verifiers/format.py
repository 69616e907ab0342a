"""Verifier ``format``: rewards replies that follow a required shape (a regular expression).

The pattern comes from the task row's ``format`` field, else the verifier's ``pattern`` option. Useful alone
(teach a reply format) or as a second reward beside ``math``/``code`` in a mixed dataset.
"""
from __future__ import annotations

import re

from raylign.engine import hookimpl
from raylign.verifiers import Verdict

MAX_CHARS = 100_000  # longer completions are not matched (regexes on megabytes can be slow)


class FormatVerifier:
    def __init__(self, pattern: str = r"^\S[\s\S]*[.!?]$", full_match: bool = True):
        self.pattern = pattern  # default: non-empty, ends a sentence
        self.full_match = full_match  # the whole (stripped) reply must match, not just a part of it
        self._cache: dict[str, re.Pattern] = {}

    def _compile(self, pattern: str) -> re.Pattern:
        if pattern not in self._cache:
            self._cache[pattern] = re.compile(pattern)
        return self._cache[pattern]

    def __call__(self, completion: str, task: dict) -> Verdict:
        pattern = task.get("format", self.pattern)
        if not isinstance(pattern, str):
            return Verdict(0.0, "invalid", f"task field 'format' must be a regex string, got {type(pattern).__name__}")
        if not isinstance(completion, str):
            return Verdict(0.0, "invalid", f"completion must be a string, got {type(completion).__name__}")
        try:
            rx = self._compile(pattern)
        except re.error as exc:
            return Verdict(0.0, "invalid", f"task field 'format' is not a valid regex: {exc}")
        if len(completion) > MAX_CHARS:
            return Verdict(0.0, "invalid", f"completion longer than {MAX_CHARS} characters")
        text = completion.strip()
        ok = rx.fullmatch(text) if self.full_match else rx.search(text)
        return Verdict(reward=1.0 if ok else 0.0, details={"pattern": pattern})


@hookimpl
def raylign_register_verifiers(register):
    register("format", FormatVerifier)
