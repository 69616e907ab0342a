"""Observer ``wandb``: the run in Weights & Biases (``[run] observers = [..., "wandb"]``, the ``observers`` extra).

One W&B run per raylign run, named after ``run.name``; its config is the resolved config. Each stage's metrics
are logged as ``<stage>/<metric>`` against their own step axis ``<stage>/step`` (stages restart at step 1; W&B's
own step only grows); each stage's final metrics go to the summary as ``<stage>/final/<metric>``, and the run's
PNG plots are logged as images ``plots/<stage>`` at the end.

Where it goes is W&B's own settings: ``WANDB_PROJECT`` (default "raylign"), ``WANDB_ENTITY``, ``WANDB_MODE``
(``offline`` writes the run under ``<run dir>/wandb/`` only; ``wandb sync`` uploads it later), ``WANDB_DIR``
(default: the run directory), ``WANDB_API_KEY``.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping

from raylign.engine import hookimpl
from raylign.engine.observers import Session, numeric, plot_files, require, selected

OBSERVER_NAME = "wandb"
OBSERVER_REQUIRES = "wandb"

_session: Session | None = None


@hookimpl
def raylign_run_start(config: Mapping[str, Any], run_dir: Path) -> None:
    global _session
    _session = None
    if not selected(config, OBSERVER_NAME):
        return
    wandb = require(OBSERVER_REQUIRES, OBSERVER_NAME)
    run = wandb.init(project=os.environ.get("WANDB_PROJECT", "raylign"), name=config["run"].get("name"),
                     dir=os.environ.get("WANDB_DIR") or str(run_dir), config=dict(config),
                     tags=["raylign"], reinit="finish_previous")
    _session = Session(OBSERVER_NAME, run)


def _log_step(s: Session, stage: str, step: int, metrics: Mapping[str, Any]) -> None:
    if stage not in s.defined:  # each stage's metrics are plotted against its own step
        s.handle.define_metric(f"{stage}/step")
        s.handle.define_metric(f"{stage}/*", step_metric=f"{stage}/step")
        s.defined.add(stage)
    s.handle.log({f"{stage}/step": step, **{f"{stage}/{k}": v for k, v in numeric(metrics).items()}})


@hookimpl
def raylign_step_end(stage: str, step: int, metrics: Mapping[str, float]) -> None:
    if _session is not None:
        _session.call(_log_step, stage, step, metrics)


def _log_final(s: Session, stage: str, metrics: Mapping[str, Any]) -> None:
    s.handle.summary.update({f"{stage}/final/{k}": v for k, v in numeric(metrics).items()})


@hookimpl
def raylign_stage_end(stage: str, metrics: Mapping[str, float], model_dir: Path) -> None:
    if _session is not None:
        _session.call(_log_final, stage, metrics)


def _finish(s: Session, run_dir: Path) -> None:
    import wandb

    plots = {f"plots/{p.stem}": wandb.Image(str(p)) for p in plot_files(run_dir)}
    if plots:
        s.handle.log(plots)
    s.handle.finish()
    wandb.teardown()  # finish() returns before wandb-core has flushed the run file; teardown waits for it


@hookimpl
def raylign_run_end(summary: Mapping[str, Any], run_dir: Path) -> None:
    global _session
    if _session is not None:
        _session.call(_finish, run_dir)
        _session = None
