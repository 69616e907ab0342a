"""Metrics: ``metrics.jsonl`` (one object per logged step), TensorBoard events, PNG plots, ``summary.json``."""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Mapping


class MetricsLog:
    """Appends step metrics to ``metrics.jsonl`` and TensorBoard (unless ``tensorboard`` is false: ``[run]
    observers`` without it), and calls the ``raylign_step_end`` hook."""

    def __init__(self, run_dir: Path, hook=None, tensorboard: bool = True):
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / "metrics.jsonl"
        self.hook = hook
        self.tensorboard = tensorboard
        self._tb = None

    def _writer(self):
        if self._tb is None:
            from torch.utils.tensorboard import SummaryWriter

            self._tb = SummaryWriter(log_dir=str(self.run_dir / "tensorboard"))
        return self._tb

    def truncate_after(self, stage: str, step: int) -> None:
        """On resume: drop lines of ``stage`` logged after ``step`` (they will be logged again)."""
        if not self.path.exists():
            return
        keep = []
        for line in self.path.read_text().splitlines():
            try:
                obj = json.loads(line)
            except json.JSONDecodeError:
                continue  # a torn last line from a crash
            if obj.get("stage") == stage and obj.get("step", 0) > step:
                continue
            keep.append(line)
        tmp = self.path.with_suffix(".jsonl.tmp")
        tmp.write_text("".join(k + "\n" for k in keep))
        os.replace(tmp, self.path)

    def log(self, stage: str, step: int, metrics: Mapping[str, Any]) -> None:
        clean = {k: (float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else v)
                 for k, v in metrics.items()}
        with open(self.path, "a") as fh:
            fh.write(json.dumps({"stage": stage, "step": step, **clean}) + "\n")
        if self.tensorboard:
            w = self._writer()
            for k, v in clean.items():
                if isinstance(v, float):
                    w.add_scalar(f"{stage}/{k}", v, step)
        if self.hook is not None:
            self.hook.raylign_step_end(stage=stage, step=step, metrics=clean)

    def close(self) -> None:
        if self._tb is not None:
            self._tb.flush()
            self._tb.close()
            self._tb = None


def read_metrics(run_dir: Path) -> list[dict[str, Any]]:
    path = Path(run_dir) / "metrics.jsonl"
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            pass
    return out


def write_plots(run_dir: Path) -> list[Path]:
    """One PNG per stage with its loss-like curves (every metric whose name holds 'loss', 'reward', 'pass',
    'accuracy', 'score' or is 'kl'). A stage that logs ``eval_rm_score`` with ``kl`` (ppo, dpo) gets one more
    panel: the reward model's and the gold judge's scores of its held-out answers against the KL to the
    reference, where reward hacking shows as the two curves parting."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = read_metrics(run_dir)
    stages: dict[str, list[dict]] = {}
    for r in rows:
        stages.setdefault(r["stage"], []).append(r)
    written = []
    plot_dir = Path(run_dir) / "plots"
    plot_dir.mkdir(exist_ok=True)
    for stage, rs in stages.items():
        keys = sorted({k for r in rs for k, v in r.items() if isinstance(v, (int, float)) and (
            k == "kl" or any(s in k for s in ("loss", "reward", "pass", "accuracy", "score")))})
        scores_vs_kl = [r for r in rs if isinstance(r.get("eval_rm_score"), (int, float))
                        and isinstance(r.get("kl"), (int, float))]
        if not keys:
            continue
        panels = len(keys) + (1 if scores_vs_kl else 0)
        fig, axes = plt.subplots(panels, 1, figsize=(7, 2.4 * panels), squeeze=False)
        for ax, key in zip(axes[:, 0], keys):
            pts = [(r["step"], r[key]) for r in rs if key in r]
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="." if len(pts) < 30 else None)
            ax.set_title(f"{stage}: {key}", fontsize=9)
            ax.set_xlabel("step", fontsize=8)
            ax.grid(alpha=0.3)
        if scores_vs_kl:
            _plot_scores_vs_kl(axes[-1, 0], stage, scores_vs_kl)
        fig.tight_layout()
        out = plot_dir / f"{stage}.png"
        fig.savefig(out, dpi=90)
        plt.close(fig)
        written.append(out)
    return written


def _plot_scores_vs_kl(ax, stage: str, rs: list[dict]) -> None:
    rs = sorted(rs, key=lambda r: r["kl"])
    kl = [r["kl"] for r in rs]
    ax.plot(kl, [r["eval_rm_score"] for r in rs], marker="o", color="tab:blue", label="reward model")
    ax.set_ylabel("reward model score", fontsize=8, color="tab:blue")
    gold = [(r["kl"], r["eval_gold_score"]) for r in rs if isinstance(r.get("eval_gold_score"), (int, float))]
    if gold:
        twin = ax.twinx()
        twin.plot([g[0] for g in gold], [g[1] for g in gold], marker="s", color="tab:orange", label="gold judge")
        twin.set_ylabel("gold score", fontsize=8, color="tab:orange")
    ax.set_title(f"{stage}: held-out scores against KL to the reference", fontsize=9)
    ax.set_xlabel("KL (per reply)", fontsize=8)
    ax.grid(alpha=0.3)


def write_summary(run_dir: Path, summary: Mapping[str, Any]) -> None:
    path = Path(run_dir) / "summary.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(summary, indent=2))
    os.replace(tmp, path)


def read_summary(run_dir: Path) -> dict[str, Any]:
    path = Path(run_dir) / "summary.json"
    return json.loads(path.read_text()) if path.exists() else {}
