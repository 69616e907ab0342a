"""Observer ``mlflow``: the run in MLflow tracking (``[run] observers = [..., "mlflow"]``, the ``observers`` extra).

One MLflow run per raylign run, named after ``run.name`` (tag ``raylign.run_dir`` holds the run directory). The
resolved config is logged twice: as params (dotted keys, ``grpo.steps``) and whole as the artifact
``config.toml``. Each step's metrics are ``<stage>/<metric>`` at that step; each stage's final metrics
``<stage>/final/<metric>``; at the end the run's PNG plots go to the artifact folder ``plots/`` and
``summary.json`` beside them.

Where it goes: ``MLFLOW_TRACKING_URI`` (a server, ``databricks``, ...), else a local file store in
``<output_dir>/mlruns`` (``mlflow ui --backend-store-uri <that folder>`` shows it; MLflow 3 keeps the file store
in maintenance and asks for ``MLFLOW_ALLOW_FILE_STORE=true``, which this observer sets for that default);
``MLFLOW_EXPERIMENT_NAME`` (default "raylign"). A run that stops before its end is marked FAILED at exit.
"""
from __future__ import annotations

import atexit
import json
import os
import re
import time
from pathlib import Path
from typing import Any, Mapping

from raylign.engine import hookimpl
from raylign.engine.observers import Session, flatten, numeric, plot_files, require, selected

OBSERVER_NAME = "mlflow"
OBSERVER_REQUIRES = "mlflow"

_session: Session | None = None
_MAX_PARAM = 6000  # MLflow's limit on a param value's length
_BATCH = 100  # MLflow's limit on params per log_batch


def tracking_uri(run_dir: Path) -> str:
    """``MLFLOW_TRACKING_URI``, else a file store beside the run directories (``<output_dir>/mlruns``)."""
    uri = os.environ.get("MLFLOW_TRACKING_URI", "")
    if uri:
        return uri
    os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    return (Path(run_dir).resolve().parent / "mlruns").as_uri()


@hookimpl
def raylign_run_start(config: Mapping[str, Any], run_dir: Path) -> None:
    global _session
    _session = None
    if not selected(config, OBSERVER_NAME):
        return
    require(OBSERVER_REQUIRES, OBSERVER_NAME)
    from mlflow.entities import Param
    from mlflow.tracking import MlflowClient

    from raylign.engine.config import dumps_toml

    client = MlflowClient(tracking_uri=tracking_uri(run_dir))
    name = os.environ.get("MLFLOW_EXPERIMENT_NAME", "raylign")
    exp = client.get_experiment_by_name(name)
    exp_id = exp.experiment_id if exp else client.create_experiment(name)
    run = client.create_run(exp_id, run_name=config["run"].get("name"), tags={"raylign.run_dir": str(run_dir)})
    run_id = run.info.run_id
    params = [Param(re.sub(r"[^\w\-. /]", "_", k)[:250], v[:_MAX_PARAM]) for k, v in flatten(config).items()]
    for i in range(0, len(params), _BATCH):
        client.log_batch(run_id, params=params[i:i + _BATCH])
    client.log_text(run_id, dumps_toml(config), "config.toml")
    _session = Session(OBSERVER_NAME, (client, run_id))


def _log(s: Session, metrics: Mapping[str, float], step: int) -> None:
    from mlflow.entities import Metric

    client, run_id = s.handle
    now = int(time.time() * 1000)
    client.log_batch(run_id, metrics=[Metric(k, v, now, step) for k, v in metrics.items()])


@hookimpl
def raylign_step_end(stage: str, step: int, metrics: Mapping[str, float]) -> None:
    if _session is not None:
        _session.call(_log, {f"{stage}/{k}": v for k, v in numeric(metrics).items()}, step)


@hookimpl
def raylign_stage_end(stage: str, metrics: Mapping[str, float], model_dir: Path) -> None:
    if _session is not None:
        _session.call(_log, {f"{stage}/final/{k}": v for k, v in numeric(metrics).items()}, 0)


def _finish(s: Session, summary: Mapping[str, Any], run_dir: Path) -> None:
    client, run_id = s.handle
    plots = plot_files(run_dir)
    for p in plots:
        client.log_artifact(run_id, str(p), "plots")
    client.log_text(run_id, json.dumps(summary, indent=2, default=str), "summary.json")
    client.set_terminated(run_id, "FINISHED")


@hookimpl
def raylign_run_end(summary: Mapping[str, Any], run_dir: Path) -> None:
    global _session
    if _session is not None:
        if not _session.call(_finish, summary, run_dir):
            _mark_failed()  # observing stopped part-way: the MLflow run is incomplete
        _session = None


@atexit.register
def _mark_failed() -> None:
    """A run that ended without ``raylign_run_end`` (an error, Ctrl-C), or whose observing failed, is FAILED in
    MLflow, not left RUNNING."""
    handle = _session and (_session.handle or _session.broken)
    if handle:
        try:
            client, run_id = handle
            client.set_terminated(run_id, "FAILED")
        except Exception:  # noqa: BLE001
            pass
