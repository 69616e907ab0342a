"""``raylign verify NAME --input IN.jsonl [--output OUT.jsonl]``: score a JSONL file with one verifier.

Every input line gets one output line, in the same order: the input's fields plus ``reward``, ``status``,
``error`` and ``details``. Verifications run in parallel in killable worker processes (the same pool the reward
fleet uses; no Ray, so it starts fast), each under a hard deadline. The output file is written to
``OUT.jsonl.tmp`` and renamed only when complete.
"""
from __future__ import annotations

import json
import os
import sys
from collections import Counter
from pathlib import Path
from typing import Any, Sequence

from raylign.engine import data
from raylign.engine.config import RewardsConfig
from raylign.engine.errors import DataError
from raylign.engine.rewards.pool import VerifierPool
from raylign.engine.types import Verdict


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """The rows of a JSONL file (blank lines skipped); a bad line fails naming the file and line."""
    if not Path(path).is_file():
        raise DataError(f"{path}: no such file")
    try:
        return [row for _, row in data.read_jsonl(Path(path))]
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: cannot read: {exc}") from None


def _write(lines: Sequence[str], output: str | None) -> None:
    if output is None:
        sys.stdout.write("".join(lines))
        sys.stdout.flush()
        return
    out = Path(output)
    tmp = out.with_name(out.name + ".tmp")
    try:
        tmp.write_text("".join(lines), encoding="utf-8")
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)


def _line(obj) -> str:
    """A JSON line, readable as UTF-8: ASCII escapes where the text holds a lone surrogate (legal in JSON)."""
    line = json.dumps(obj, ensure_ascii=False, default=repr) + "\n"
    try:
        line.encode("utf-8")
    except UnicodeEncodeError:
        line = json.dumps(obj, ensure_ascii=True, default=repr) + "\n"
    return line


def run_verify(name: str, input_path: str, output: str | None = None, workers: int = 0, timeout_s: float = 10.0,
               plugins: Sequence[str] = (), entry_points: bool = True) -> list[Verdict]:
    """Score ``input_path`` with verifier ``name`` and write the output; returns the verdicts.

    ``plugins``/``entry_points`` are as in :class:`VerifierPool` (tests pass their own verifiers).
    """
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    rows = read_jsonl(Path(input_path))  # fail on a malformed line before any work starts
    workers = max(1, min(workers or os.cpu_count() or 1, len(rows) or 1))
    console = Console(stderr=True)
    with VerifierPool(workers=workers, timeout_s=timeout_s, memory_mb=RewardsConfig().memory_mb,
                      plugins=plugins, entry_points=entry_points) as pool:
        info = pool.load(name)  # unknown name / failing constructor: PluginError now
        if info.get("backend_name"):
            console.print(f"raylign verify: {name!r} runs code in the {info['backend_name']!r} sandbox backend")
        items = [(name, row.get("completion"), row) for row in rows]
        with Progress(TextColumn(f"verify {name}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                      console=console) as progress:
            bar = progress.add_task("verify", total=len(items))
            verdicts = pool.verify_many(items, on_done=lambda _: progress.advance(bar))
    lines = [_line({**row, **v.to_dict()}) for row, v in zip(rows, verdicts)]
    _write(lines, output)
    counts = Counter(v.status for v in verdicts)
    mean = sum(v.reward for v in verdicts) / len(verdicts) if verdicts else 0.0
    console.print(f"raylign verify: {len(verdicts)} rows, mean reward {mean:.4f}, "
                  + ", ".join(f"{s} {counts[s]}" for s in ("ok", "invalid", "timeout", "error")))
    return verdicts


def verify_command(args) -> int:
    run_verify(args.name, args.input, args.output, workers=args.workers, timeout_s=args.timeout)
    return 0
