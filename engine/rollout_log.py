"""Rollouts in the run directory: ``rollouts/<stage>.jsonl``, a sample of each step's groups with their verdicts.

One JSON object per completion (``kind`` "train": a sampled group of a training step; "eval": a greedy answer
on a held-out prompt):

    step, kind, weights_version, group, sample, of, prompt, completion, reward, terms, status, error, details,
    advantage, length, truncated, kept, task  (+ whatever a stage adds, e.g. ppo's ``kl`` and ``gold_score``)

``of`` is the number of records the step's block holds. A step's block is written with one ``write`` on an
``O_APPEND`` descriptor and fsynced, so a block is whole unless the machine died inside that write; a torn or
short block can then only be the file's last, and :meth:`RolloutLog.open` drops it. A ``(step, kind)`` block is
written once: on resume :meth:`RolloutLog.truncate_after` drops the blocks after the checkpoint step (like
``metrics.jsonl``), and a block already in the file (the "before" eval a resumed stage runs again) is skipped.

Sizes are bounded: prompt and completion keep their first ``max_chars`` characters (``*_chars`` then gives the
full length), details and task fields are cut to ``max_chars // 4`` characters per string, 16 items per list or
dict, depth 4. No torch, no Ray: ``raylign view`` reads these files with the same module.
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

from raylign.engine.types import RolloutGroup

KINDS = ("train", "eval")
_ITEMS = 16  # items kept per list / keys per dict in bounded values
_DEPTH = 4  # nesting kept in bounded values


# ---------------------------------------------------------------------------------------------- records


def bound(value: Any, chars: int, depth: int = _DEPTH) -> Any:
    """``value`` as plain JSON data no larger than about ``chars`` per string, ``_ITEMS`` per container."""
    if value is None or isinstance(value, (bool, int)):
        return value
    if isinstance(value, float):
        return value if value == value and abs(value) != float("inf") else str(value)
    if isinstance(value, str):
        return value if len(value) <= chars else value[:chars] + f"… [{len(value) - chars} more chars]"
    if depth <= 0:
        return bound(repr(value), chars, 1)
    if isinstance(value, dict):
        items = list(value.items())
        out = {str(k): bound(v, chars, depth - 1) for k, v in items[:_ITEMS]}
        if len(items) > _ITEMS:
            out["…"] = f"{len(items) - _ITEMS} more keys"
        return out
    if isinstance(value, (list, tuple)):
        out = [bound(v, chars, depth - 1) for v in value[:_ITEMS]]
        if len(value) > _ITEMS:
            out.append(f"… {len(value) - _ITEMS} more items")
        return out
    if hasattr(value, "tolist"):  # numpy / torch scalars and arrays
        return bound(value.tolist(), chars, depth)
    return bound(repr(value), chars, 1)


def prompt_text(prompt: Any) -> str:
    """A row's prompt as text: a string as is, chat messages as ``role: content`` lines."""
    if isinstance(prompt, str):
        return prompt
    if isinstance(prompt, list):
        return "\n".join(f"{m.get('role', '?')}: {m.get('content', '')}" if isinstance(m, dict) else str(m)
                         for m in prompt)
    return "" if prompt is None else str(prompt)


def _cut(text: str, chars: int) -> tuple[str, int | None]:
    return (text, None) if len(text) <= chars else (text[:chars], len(text))


def group_records(groups: Sequence[RolloutGroup], max_chars: int = 2000,
                  advantages: Sequence[Sequence[float]] | Any = None,
                  extras: Sequence[Sequence[dict]] | None = None, first_group: int = 0) -> list[dict[str, Any]]:
    """One record per completion of ``groups`` (``group`` counts from ``first_group``). ``advantages[g][i]`` and
    ``extras[g][i]`` (more fields) are optional, aligned with the groups' completions."""
    if advantages is not None and hasattr(advantages, "tolist"):
        advantages = advantages.tolist()
    detail_chars = max(16, max_chars // 4)
    out = []
    for g, group in enumerate(groups):
        prompt, prompt_chars = _cut(prompt_text(group.task.get("prompt")), max_chars)
        task = {k: v for k, v in group.task.items() if k != "prompt"}
        task = bound(task, detail_chars) if task else None
        for i, (c, v) in enumerate(zip(group.completions, group.verdicts)):
            text, text_chars = _cut(c.text, max_chars)
            details = dict(v.details)
            terms = details.pop("terms", None)
            rec: dict[str, Any] = {
                "group": first_group + g, "sample": i, "weights_version": c.weights_version,
                "prompt": prompt, "completion": text, "reward": v.reward,
                "terms": bound(terms, detail_chars) if terms else None, "status": v.status,
                "error": bound(v.error, detail_chars), "details": bound(details, detail_chars) if details else None,
                "advantage": None, "length": len(c.token_ids), "truncated": c.truncated, "kept": group.keep[i],
                "task": task,
            }
            if prompt_chars is not None:
                rec["prompt_chars"] = prompt_chars
            if text_chars is not None:
                rec["completion_chars"] = text_chars
            if advantages is not None:
                rec["advantage"] = float(advantages[g][i])
            if extras is not None:
                rec.update(bound(extras[g][i], detail_chars))
            out.append(rec)
    return out


# ---------------------------------------------------------------------------------------------- the file


def read_records(path: Path) -> Iterator[dict[str, Any]]:
    """Every complete, parseable line of a rollouts file (a torn last line is skipped)."""
    path = Path(path)
    if not path.exists():
        return
    with open(path, "rb") as fh:
        for line in fh:
            if not line.endswith(b"\n"):
                break
            try:
                yield json.loads(line)
            except json.JSONDecodeError:
                continue


def whole_blocks(records: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The records of complete blocks (a run of consecutive records of one ``(step, kind)`` holding ``of``
    records), the first block of each ``(step, kind)`` only."""
    out: list[dict[str, Any]] = []
    seen: set[tuple] = set()
    block: list[dict[str, Any]] = []

    def close() -> None:
        key = (block[0].get("step"), block[0].get("kind"))
        if key not in seen and len(block) == block[0].get("of"):
            out.extend(block)
            seen.add(key)

    for r in records:
        if block and (r.get("step"), r.get("kind")) != (block[0].get("step"), block[0].get("kind")):
            close()
            block = []
        block.append(r)
    if block:
        close()
    return out


class RolloutLog:
    """Appends whole steps of rollout records to ``<run_dir>/rollouts/<stage>.jsonl``.

    :param groups_per_step: training groups kept per step (the first ones: the prompt order is already a seeded
        shuffle), -1 = all, 0 = none.
    :param eval_prompts: held-out answers kept per eval, -1 = all, 0 = none.
    :param max_chars: characters kept of a prompt or completion (details: a quarter of it per string).
    """

    def __init__(self, run_dir: Path, stage: str, groups_per_step: int = 4, eval_prompts: int = -1,
                 max_chars: int = 2000):
        self.path = Path(run_dir) / "rollouts" / f"{stage}.jsonl"
        self.stage = stage
        self.groups_per_step = groups_per_step
        self.eval_prompts = eval_prompts
        self.max_chars = max_chars
        self.seconds = 0.0  # time spent building and writing records (the cost a step pays)
        self.writes = 0
        self._written: set[tuple[int, str]] | None = None  # (step, kind) blocks in the file

    # ------------------------------------------------------------------------------------------ state
    def open(self) -> None:
        """Load which blocks the file holds, dropping a torn or short last block (a crash inside a write)."""
        records = list(read_records(self.path))
        whole = whole_blocks(records)
        if len(whole) != len(records) or (self.path.exists() and not self._ends_with_newline()):
            self._rewrite(whole)
        self._written = {(r["step"], r["kind"]) for r in whole}

    def truncate_after(self, step: int) -> None:
        """On resume: drop every block after ``step`` (those steps run again)."""
        kept = [r for r in whole_blocks(read_records(self.path)) if r.get("step", 0) <= step]
        if self.path.exists():
            self._rewrite(kept)
        self._written = {(r["step"], r["kind"]) for r in kept}

    def _ends_with_newline(self) -> bool:
        size = self.path.stat().st_size
        if size == 0:
            return True
        with open(self.path, "rb") as fh:
            fh.seek(size - 1)
            return fh.read(1) == b"\n"

    def _rewrite(self, records: list[dict[str, Any]]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".jsonl.tmp")
        with open(tmp, "w") as fh:
            fh.write("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.path)

    # ------------------------------------------------------------------------------------------ writing
    def sample(self, groups: Sequence[Any], kind: str) -> int:
        """How many of ``groups`` this log keeps for a block of ``kind``."""
        keep = self.groups_per_step if kind == "train" else self.eval_prompts
        return len(groups) if keep < 0 else min(keep, len(groups))

    def log(self, step: int, groups: Sequence[RolloutGroup], kind: str = "train", advantages: Any = None,
            extras: Sequence[Sequence[dict]] | None = None) -> float:
        """Write the sampled records of ``groups`` as step ``step``'s ``kind`` block; returns the seconds taken
        (0 when nothing is kept or the block is already in the file)."""
        if kind not in KINDS:
            raise ValueError(f"rollout kind must be one of {KINDS}, got {kind!r}")
        t0 = time.perf_counter()
        if self._written is None:
            self.open()
        n = self.sample(groups, kind)
        if n == 0 or (step, kind) in self._written:
            return 0.0
        if advantages is not None and hasattr(advantages, "tolist"):
            advantages = advantages.tolist()
        records = group_records(groups[:n], self.max_chars, advantages[:n] if advantages is not None else None,
                                extras[:n] if extras is not None else None)
        self.write_block(step, kind, records)
        seconds = time.perf_counter() - t0
        self.seconds += seconds
        return seconds

    def write_block(self, step: int, kind: str, records: list[dict[str, Any]]) -> None:
        """Append ``records`` as one block: a single write of all its lines, then fsync."""
        if self._written is None:
            self.open()
        if (step, kind) in self._written or not records:
            return
        head = {"step": step, "kind": kind}
        data = "".join(json.dumps({**head, **r, "of": len(records)}, ensure_ascii=False) + "\n"
                       for r in records).encode()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            view = memoryview(data)
            while view:  # one write() for a regular file; the loop only guards against a short write
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)
        self._written.add((step, kind))
        self.writes += 1
