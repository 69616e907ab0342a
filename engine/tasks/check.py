"""The check before training: are the rewards right, and is the task neither solved already nor out of reach?

1. **Reference check.** A sample of rows is scored with its own reference as the completion: a math row's gold
   answer, a code row's reference solution. A wrong field mapping (the answer with its working left in, the
   wrong field, no tests) scores these 0, and the stage stops with one line naming the source, the mapping and
   a failing row, instead of training on rewards that are all zero.
2. **Starting solve rates.** The starting model answers a sample of rows greedily and with ``k`` samples; the
   share solved either way shows a task that is too easy or too hard before hours are spent.

A verifier says what a reference completion is through an optional ``reference_completion(task) -> str | None``
attribute, which raises ``ValueError`` saying why when the row's reference cannot be a right answer (the
built-in ``math`` verifier boxes the answer, and refuses one that reads as working, prose or a question);
without one, a row's ``reference`` field (set by the field mapping from ``canonical_solution``, ``code`` or
``solutions``) is the completion. Rows with neither are not checked. Everything here takes plain callables, so
the stage (rollout and reward fleets) and ``raylign data check`` (in-process model, local verifier pool) run the
same code.
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

from raylign.engine.errors import DataError
from raylign.engine.types import Verdict

Score = Callable[[list[dict[str, Any]]], list[Verdict]]  # [{"completion", "task"}] -> verdicts
Generate = Callable[[list[list[int]], int, float], list[list[str]]]  # (prompt ids, n, temperature) -> texts
SOLVED = 1.0 - 1e-6  # a reward at least this counts as solved (all of a code row's tests)


@dataclass
class CheckReport:
    checked: int = 0  # rows scored with their reference (unmapped rows in the sample included)
    passed: int = 0
    no_reference: int = 0  # sampled rows without a reference completion (not checked)
    failing: str = ""  # one failing row, described on one line
    solve_rows: int = 0  # rows the starting model answered
    solve_greedy: float | None = None  # share solved by its greedy answer
    solve_at_k: float | None = None  # share solved by at least one of k samples
    k: int = 0

    @property
    def pass_share(self) -> float | None:
        return self.passed / self.checked if self.checked else None

    def metrics(self) -> dict[str, float]:
        """The numbers a stage reports (``check_reference_pass``, ``check_solve_greedy``, ``check_solve_at_k``)."""
        out = {}
        if self.pass_share is not None:
            out["check_reference_pass"] = self.pass_share
        if self.solve_greedy is not None:
            out["check_solve_greedy"] = self.solve_greedy
            out["check_solve_at_k"] = self.solve_at_k
        return out

    def line(self) -> str:
        parts = []
        if self.checked:
            parts.append(f"reference check {self.passed}/{self.checked} pass")
        elif self.no_reference:
            parts.append(f"reference check skipped ({self.no_reference} sampled rows have no reference completion)")
        if self.solve_greedy is not None:
            parts.append(f"starting model solves {self.solve_greedy:.1%} greedily and {self.solve_at_k:.1%} with "
                         f"{self.k} samples ({self.solve_rows} rows)")
        return "; ".join(parts)


def reference_completion(verifier: Any, row: Mapping[str, Any]) -> str | None:
    """The completion that should pass ``row`` under ``verifier``, or None when there is no reference."""
    make = getattr(verifier, "reference_completion", None)
    if make is not None:
        return make(row)
    ref = row.get("reference")
    return ref if isinstance(ref, str) and ref.strip() else None


def _shown(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _why(verdict: Verdict) -> str:
    why = verdict.error or verdict.details.get("reason") or ""
    failures = verdict.details.get("failures")
    if not why and failures:
        why = f"failures {_shown(failures, 120)}"
    return f"reward {verdict.reward:g}, status {verdict.status}" + (f", {why}" if why else "")


def _answer_in_prompt(item: Mapping[str, Any]) -> str | None:
    """A gold answer of some length that the prompt itself contains: the question's field named as the answer."""
    answer = item["row"].get("answer")
    if not isinstance(answer, str) or len(answer.strip()) < 12:
        return None
    asked = " ".join(m["content"] for m in item.get("messages", []) if m.get("role") == "user"
                     and isinstance(m.get("content"), str))
    if answer.strip() in asked:
        return f"the answer {_shown(answer.strip())} is the prompt's own text (is `answer` the question's field?)"
    return None


def reference_check(rows: Sequence[Mapping[str, Any]], unmapped: Sequence[tuple[str, str]],
                    verifier_of: Callable[[Mapping[str, Any]], Any], score: Score, n: int, seed: int,
                    report: CheckReport) -> None:
    """Score ``n`` sampled rows (and unmapped rows, which fail) with their reference; fills ``report``."""
    pool = [("row", r) for r in rows] + [("unmapped", u) for u in unmapped]
    picked = sorted(random.Random(seed).sample(range(len(pool)), min(n, len(pool))))
    samples, sampled_rows = [], []
    for i in picked:
        kind, item = pool[i]
        if kind == "unmapped":
            report.checked += 1
            report.failing = report.failing or f"{item[1]}"
            continue
        echo = _answer_in_prompt(item)
        if echo:
            report.checked += 1
            report.failing = report.failing or f"{item['where']}: {echo}"
            continue
        try:
            completion = reference_completion(verifier_of(item["row"]), item["row"])
        except ValueError as exc:  # the verifier says the row's reference cannot be right (prose, working)
            report.checked += 1
            report.failing = report.failing or f"{item['where']}: {exc}"
            continue
        if completion is None:
            report.no_reference += 1
            continue
        samples.append({"completion": completion, "task": item["row"]})
        sampled_rows.append(item)
    for item, sample, verdict in zip(sampled_rows, samples, score(samples) if samples else []):
        report.checked += 1
        if verdict.reward >= SOLVED:
            report.passed += 1
        elif not report.failing:
            row = item["row"]
            gold = f"answer {_shown(row['answer'])}, " if "answer" in row else ""
            report.failing = (f"{item['where']}: {gold}reference {_shown(sample['completion'])} scored "
                              f"{_why(verdict)}")


def solve_rates(rows: Sequence[Mapping[str, Any]], generate: Generate, score: Score, n: int, k: int, seed: int,
                report: CheckReport) -> None:
    """The share of ``n`` sampled rows the starting model solves greedily and with ``k`` samples."""
    picked = [rows[i] for i in sorted(random.Random(seed + 1).sample(range(len(rows)), min(n, len(rows))))]
    if not picked:
        return
    ids = [r["ids"] for r in picked]
    greedy = generate(ids, 1, 0.0)
    sampled = generate(ids, k, 1.0) if k > 0 else [[] for _ in picked]
    samples = [{"completion": t, "task": r["row"]} for r, ts in zip(picked, greedy) for t in ts[:1]]
    samples += [{"completion": t, "task": r["row"]} for r, ts in zip(picked, sampled) for t in ts]
    verdicts = score(samples)
    g = [v.reward >= SOLVED for v in verdicts[: len(picked)]]
    s = [v.reward >= SOLVED for v in verdicts[len(picked):]]
    report.solve_rows, report.k = len(picked), k
    report.solve_greedy = sum(g) / len(picked)
    report.solve_at_k = sum(any(s[i * k:(i + 1) * k]) or g[i] for i in range(len(picked))) / len(picked) if k else (
        report.solve_greedy)


def require_pass(report: CheckReport, min_pass: float, key: str, sources: str) -> None:
    """Stop (DataError, one line) when fewer than ``min_pass`` of the checked rows passed."""
    share = report.pass_share
    if share is not None and share < min_pass:
        raise DataError(f"{key}: reference check failed: {report.passed}/{report.checked} rows of {sources} pass "
                        f"with their own reference (needs {min_pass:.0%}, {key}.check.min_pass); e.g. "
                        f"{report.failing}".replace("\n", " "))
