"""Atomic checkpoints: each is written into ``step_N.tmp/`` and renamed to ``step_N/`` once complete.

A directory without the ``COMPLETE`` marker, or still named ``.tmp``, is never taken for a checkpoint, so an
interrupted write cannot look complete. The driver's own state (step, data position) goes in ``state.json``;
the learner writes its model, optimizer, scheduler and RNG into the same directory before the rename.
"""
from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path
from typing import Any, Callable

MARKER = "COMPLETE"
_NAME = re.compile(r"^step_(\d{8})$")


class CheckpointManager:
    """Checkpoints of one stage under ``<run>/checkpoints/<stage>/``."""

    def __init__(self, directory: Path, keep: int = 2):
        self.dir = Path(directory)
        self.keep = keep  # complete checkpoints kept (older ones are removed)
        self.dir.mkdir(parents=True, exist_ok=True)
        for leftover in self.dir.glob("*.tmp"):  # an interrupted write from an earlier attempt
            shutil.rmtree(leftover, ignore_errors=True)

    def complete(self) -> list[tuple[int, Path]]:
        found = []
        for p in self.dir.iterdir():
            m = _NAME.match(p.name)
            if m and (p / MARKER).is_file():
                found.append((int(m.group(1)), p))
        return sorted(found)

    def latest(self) -> tuple[int, Path] | None:
        done = self.complete()
        return done[-1] if done else None

    def save(self, step: int, state: dict[str, Any], write: Callable[[Path], None]) -> Path:
        """Write a checkpoint for ``step``: ``write(tmp_dir)`` adds the learner's files, then the rename."""
        final = self.dir / f"step_{step:08d}"
        tmp = self.dir / f"step_{step:08d}.tmp"
        if tmp.exists():
            shutil.rmtree(tmp)
        tmp.mkdir(parents=True)
        write(tmp)
        (tmp / "state.json").write_text(json.dumps(state, indent=1))
        for f in tmp.iterdir():
            if f.is_file():
                with open(f, "rb") as fh:
                    os.fsync(fh.fileno())
        (tmp / MARKER).write_text(str(step))
        if final.exists():
            shutil.rmtree(final)
        os.rename(tmp, final)
        for _, old in self.complete()[: -self.keep]:
            shutil.rmtree(old, ignore_errors=True)
        return final

    @staticmethod
    def read_state(path: Path) -> dict[str, Any]:
        return json.loads((Path(path) / "state.json").read_text())
