"""Observers: plugins that watch a run from elsewhere (Weights & Biases, MLflow), beside the run directory's own
``metrics.jsonl`` and TensorBoard events.

An observer is a plugin like any other: a module declared in the ``raylign`` entry-point group that implements
the run-lifecycle hooks of :mod:`raylign.engine.hookspecs` (``raylign_run_start``, ``raylign_step_end``,
``raylign_stage_end``, ``raylign_run_end``). Every registered plugin receives those hooks; an observer acts only
when the run's config chooses it by name::

    [run]
    observers = ["tensorboard", "wandb", "mlflow"]   # default: ["tensorboard"]

A module says it is an observer with two attributes, which config validation reads (an unknown name, or a chosen
observer whose package is missing, fails before the run starts):

    OBSERVER_NAME = "wandb"      # its name in [run] observers
    OBSERVER_REQUIRES = "wandb"  # the module it imports when chosen (never at plugin load: every actor loads it)

An observer receives the same per-step metrics ``metrics.jsonl`` gets, the fully resolved config at run start,
each stage's final metrics, and at run end the PNG plots of ``<run>/plots/``. After the run has started, an
observer that fails (a network error, a full disk) prints one warning and stops observing; it never ends the run.
"""
from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import Any, Callable, Mapping

from raylign.engine.errors import ConfigError


def selected(config: Mapping[str, Any], name: str) -> bool:
    """Whether the run's resolved config chooses observer ``name`` in ``[run] observers``."""
    return name in ((config.get("run") or {}).get("observers") or ())


def require(module: str, observer: str):
    """Import ``module`` for ``observer``, or fail with the command that installs it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ConfigError(f"run.observers chooses {observer!r} but {module} is not installed: "
                          f"pip install 'raylign[observers]' (or pip install {module})") from exc


def numeric(metrics: Mapping[str, Any]) -> dict[str, float]:
    """The metrics an observer can plot: numbers (not booleans), finite."""
    return {k: float(v) for k, v in metrics.items()
            if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(float(v))}


def flatten(data: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """``{"grpo": {"steps": 2}}`` -> ``{"grpo.steps": "2"}`` (lists kept whole, as text)."""
    out: dict[str, str] = {}
    for k, v in data.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping):
            out.update(flatten(v, key + "."))
        else:
            out[key] = str(v)
    return out


def plot_files(run_dir: Path) -> list[Path]:
    """The run's PNG plots (written by ``engine.metrics.write_plots``)."""
    return sorted((Path(run_dir) / "plots").glob("*.png"))


class Session:
    """One observed run: ``call(fn, ...)`` runs an observer's step; the first failure warns and ends observing."""

    def __init__(self, name: str, handle: Any) -> None:
        self.name = name
        self.handle = handle  # the observer's run object (wandb Run, MLflow run id...); None once it failed
        self.broken: Any = None  # the handle it had when it failed (to close the run as failed)
        self.defined: set[str] = set()  # per-observer bookkeeping (e.g. stages whose step metric is defined)

    def call(self, fn: Callable, *args: Any) -> bool:
        if self.handle is None:
            return False
        try:
            fn(self, *args)
            return True
        except Exception as exc:  # noqa: BLE001 - an observer never ends a run
            print(f"raylign: warning: observer {self.name!r} failed ({type(exc).__name__}: {exc}); "
                  f"it stops observing this run", file=sys.stderr)
            self.broken, self.handle = self.handle, None
            return False
