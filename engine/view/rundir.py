"""A run directory as JSON for ``raylign view``, read while the run writes it (stdlib only: no torch, no Ray).

JSONL files are followed incrementally (:class:`Tail`): each refresh parses only the whole lines appended since
the last one, and starts over (a new ``generation``) when the file was truncated or replaced, as a resumed run
does to ``metrics.jsonl`` and ``rollouts/<stage>.jsonl``.
"""
from __future__ import annotations

import json
import math
import threading
import time
import tomllib
from pathlib import Path
from typing import Any

ACTIVE_S = 300.0  # a stage whose run directory changed this recently counts as running


class Tail:
    """The parsed lines of a growing JSONL file; ``generation`` changes whenever it starts over."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.rows: list[dict[str, Any]] = []
        self.generation = 0
        self._offset = 0
        self._ino: int | None = None

    def refresh(self) -> bool:
        """Read what was appended; True when something changed."""
        try:
            st = self.path.stat()
        except FileNotFoundError:
            if self.rows or self._offset:
                self._reset(None)
                return True
            return False
        changed = False
        if st.st_ino != self._ino or st.st_size < self._offset:
            self._reset(st.st_ino)
            changed = True
        if st.st_size == self._offset:
            return changed
        with open(self.path, "rb") as fh:
            fh.seek(self._offset)
            data = fh.read(st.st_size - self._offset)
        end = data.rfind(b"\n") + 1  # a torn last line waits for its end
        for line in data[:end].splitlines():
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(row, dict):
                self.rows.append(_finite(row))
        self._offset += end
        return changed or end > 0

    def _reset(self, ino: int | None) -> None:
        self.rows, self._offset, self._ino = [], 0, ino
        self.generation += 1


def _finite(row: dict[str, Any]) -> dict[str, Any]:
    """NaN and infinities are not JSON: the page gets them as null."""
    return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in row.items()}


class RunDir:
    """Everything the page shows, read from ``run_dir`` on demand (thread-safe)."""

    def __init__(self, run_dir: Path):
        self.path = Path(run_dir)
        self.metrics = Tail(self.path / "metrics.jsonl")
        self._rollouts: dict[str, Tail] = {}
        self._lock = threading.Lock()

    # ------------------------------------------------------------------------------------------ reading
    def _json(self, name: str) -> dict[str, Any]:
        try:
            return json.loads((self.path / name).read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return {}

    def _config(self) -> dict[str, Any]:
        try:
            return tomllib.loads((self.path / "config.toml").read_text())
        except (FileNotFoundError, tomllib.TOMLDecodeError):
            return {}

    def rollout_stages(self) -> list[str]:
        folder = self.path / "rollouts"
        return sorted(p.stem for p in folder.glob("*.jsonl")) if folder.is_dir() else []

    def _tail(self, stage: str) -> Tail:
        if stage not in self._rollouts:
            self._rollouts[stage] = Tail(self.path / "rollouts" / f"{stage}.jsonl")
        tail = self._rollouts[stage]
        tail.refresh()
        return tail

    def _updated(self, stage: str | None = None) -> float:
        paths = [self.path / "metrics.jsonl", self.path / "summary.json", self.path / "config.toml"]
        if stage:
            paths += [self.path / "rollouts" / f"{stage}.jsonl", self.path / "checkpoints" / stage]
        return max((p.stat().st_mtime for p in paths if p.exists()), default=0.0)

    # ------------------------------------------------------------------------------------------ endpoints
    def run(self) -> dict[str, Any]:
        """The pipeline, each stage's status, final metrics and probe answers."""
        with self._lock:
            self.metrics.refresh()
            rows = list(self.metrics.rows)
        config, summary = self._config(), self._json("summary.json")
        done = summary.get("stages", {})
        names = list(config.get("run", {}).get("pipeline", []))
        for r in rows:  # an older or odd run: stages seen in the metrics count too
            if r.get("stage") not in names and r.get("stage") is not None:
                names.append(r["stage"])
        names += [n for n in done if n not in names]
        last_step: dict[str, int] = {}
        for r in rows:
            if isinstance(r.get("step"), (int, float)):
                last_step[r["stage"]] = max(last_step.get(r["stage"], 0), int(r["step"]))
        finished = "final_model" in summary
        now = time.time()
        stages, current = [], True
        for name in names:
            section = config.get(name, {}) if isinstance(config.get(name), dict) else {}
            info = done.get(name)
            if info is not None:
                status = "done"
            elif current and not finished:
                status = "running" if now - self._updated(name) < ACTIVE_S else "stopped"
                current = False
            else:
                status = "pending"
            steps = section.get("steps")
            stages.append({
                "name": name, "plugin": (info or {}).get("plugin") or section.get("plugin", name), "status": status,
                "metrics": (info or {}).get("metrics", {}), "probes": (info or {}).get("probes", []),
                "model_dir": (info or {}).get("model_dir"), "last_step": last_step.get(name),
                "steps": steps if isinstance(steps, int) else None,
                "rollouts": (self.path / "rollouts" / f"{name}.jsonl").exists(),
            })
        return {"name": self.path.name, "run_dir": str(self.path.resolve()), "finished": finished,
                "final_model": summary.get("final_model"), "stages": stages,
                "updated": self._updated(), "now": now}

    def metrics_since(self, since: int, generation: int | None) -> dict[str, Any]:
        """The metrics rows after the first ``since`` (all of them when ``generation`` is not the current one)."""
        with self._lock:
            self.metrics.refresh()
            gen = self.metrics.generation
            start = since if generation == gen else 0
            rows = self.metrics.rows[start:]
            total = len(self.metrics.rows)
        return {"generation": gen, "reset": start == 0, "rows": rows, "total": total}

    def rollout_index(self, stage: str) -> dict[str, Any]:
        """The whole blocks of a stage's rollouts: step, kind, samples, reward mean, statuses, length mean."""
        with self._lock:
            tail = self._tail(stage)
            blocks: dict[tuple, dict[str, Any]] = {}
            for r in tail.rows:
                key = (r.get("step"), r.get("kind"))
                b = blocks.setdefault(key, {"step": key[0], "kind": key[1], "n": 0, "of": r.get("of"),
                                            "reward_sum": 0.0, "length_sum": 0, "statuses": {},
                                            "weights_version": r.get("weights_version")})
                b["n"] += 1
                b["reward_sum"] += float(r.get("reward") or 0.0)
                b["length_sum"] += int(r.get("length") or 0)
                b["statuses"][r.get("status")] = b["statuses"].get(r.get("status"), 0) + 1
            out = []
            for b in blocks.values():
                if b["n"] != b["of"]:
                    continue  # a block being written (or torn): shown once whole
                n, reward_sum, length_sum = b.pop("n"), b.pop("reward_sum"), b.pop("length_sum")
                out.append({**b, "reward_mean": reward_sum / n, "length_mean": length_sum / n})
            return {"stage": stage, "generation": tail.generation, "blocks": out}

    def rollouts(self, stage: str, step: int, kind: str) -> list[dict[str, Any]]:
        """The records of one block."""
        with self._lock:
            rows = [r for r in self._tail(stage).rows if r.get("step") == step and r.get("kind") == kind]
        return rows if rows and len(rows) == rows[0].get("of") else []

    def prompt_history(self, stage: str, kind: str, group: int) -> list[dict[str, Any]]:
        """Group ``group`` of every ``kind`` block: for evals (the same held-out prompts in the same order each
        time) one prompt's answers step after step."""
        with self._lock:
            return [r for r in self._tail(stage).rows if r.get("kind") == kind and r.get("group") == group]


def find_run_dir(path: str) -> Path:
    """``path`` itself, or ``runs/<path>`` when that is the run directory meant."""
    p = Path(path)
    for cand in (p, Path("runs") / path):
        if cand.is_dir() and any((cand / f).exists() for f in ("config.toml", "metrics.jsonl", "summary.json")):
            return cand
    return p
