"""What a stage is, and the services the engine hands it (``StageContext``).

A stage plugin registers a class with a ``config_cls`` (its frozen config dataclass) and a ``run(ctx)`` method
that trains, writes ``ctx.output_model`` and returns its final eval metrics. The loop lives in the stage; the
engine supplies the roles (learner, rollout fleet, reward fleet), checkpoints, metrics and progress.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Mapping, Protocol

from raylign.engine.checkpoint import CheckpointManager
from raylign.engine.config import Config, RunConfig
from raylign.engine.metrics import MetricsLog


class Stage(Protocol):
    config_cls: ClassVar[type]  # a frozen dataclass: the stage's [section]

    def run(self, ctx: "StageContext") -> Mapping[str, float]:
        """Train; write the final HF model dir to ``ctx.output_model``; return final eval metrics."""


@dataclass
class Resume:
    """Where an interrupted stage continues: after ``step``, with the stage's saved ``state``."""

    step: int
    state: dict[str, Any]
    path: Path


@dataclass
class StageContext:
    name: str  # the stage's name in the pipeline
    config: Any  # the stage's own frozen config
    engine: Config  # the whole config (engine sections: ray, rollout, rewards)
    run_dir: Path
    input_model: Path | None  # the previous stage's model dir (or run.base_model)
    output_model: Path  # where the stage writes its final model dir
    base_dir: Path  # relative data paths resolve against this (the config file's folder)
    checkpoints: CheckpointManager
    metrics: MetricsLog
    registry: Any  # raylign.engine.plugins.Registry
    resume: bool = False  # continue from the latest checkpoint if there is one
    console: Any = None  # rich Console
    _actors: list = field(default_factory=list)
    _closers: list = field(default_factory=list)

    @property
    def run(self) -> RunConfig:
        return self.engine.run

    @property
    def seed(self) -> int:
        return self.engine.run.seed

    # ---------------------------------------------------------------------------------------------- roles
    def start_learner(self, model_dir: Path, optim, total_steps: int, trainable: bool = True):
        """A learner actor on ``model_dir``; killed when the stage ends."""
        from raylign.engine.learner import LearnerSpec, start_learner

        ray_cfg = self.engine.ray
        spec = LearnerSpec(model_dir=str(model_dir), optim=optim, total_steps=total_steps, seed=self.seed,
                           device=self.run.device, torch_threads=ray_cfg.learner_threads, trainable=trainable)
        handle = start_learner(spec, num_cpus=ray_cfg.learner_num_cpus, num_gpus=ray_cfg.learner_num_gpus)
        self._actors.append(handle)
        return handle

    def start_rollout_fleet(self, model_dir: Path):
        """A vLLM rollout fleet serving ``model_dir`` (``[rollout]`` section); shut down when the stage ends."""
        from raylign.engine.rollout import RolloutFleet

        fleet = RolloutFleet(model_dir, self.engine.rollout, seed=self.seed)
        self._closers.append(fleet.shutdown)
        return fleet

    def start_reward_fleet(self, default_verifier: str | None, verifier_options: Mapping[str, Any] | None = None):
        """The verifier pool (``[rewards]`` section); shut down when the stage ends."""
        from raylign.engine.rewards import RewardFleet

        fleet = RewardFleet(self.engine.rewards, default_verifier=default_verifier,
                            verifier_options=dict(verifier_options or {}),
                            procs_per_actor=self.engine.rewards.procs_per_worker)
        self._closers.append(fleet.shutdown)
        return fleet

    # ---------------------------------------------------------------------------------------------- state
    def log(self, step: int, metrics: Mapping[str, Any]) -> None:
        self.metrics.log(self.name, step, metrics)

    def resume_point(self) -> Resume | None:
        """The latest complete checkpoint when resuming (metrics after it are dropped), else None."""
        if not self.resume:
            return None
        latest = self.checkpoints.latest()
        if latest is None:
            return None
        step, path = latest
        self.metrics.truncate_after(self.name, step)
        return Resume(step=step, state=CheckpointManager.read_state(path), path=path)

    def save_checkpoint(self, step: int, learner, state: Mapping[str, Any]) -> Path:
        """Atomically checkpoint the learner (model, optimizer, scheduler, RNG) and the stage's ``state``."""
        import ray

        path = self.checkpoints.save(step, dict(state), lambda tmp: ray.get(learner.save_state.remote(str(tmp))))
        self.registry.hook.raylign_checkpoint_saved(stage=self.name, step=step, path=path)
        return path

    def restore(self, learner, resume: Resume) -> None:
        import ray

        ray.get(learner.load_state.remote(str(resume.path)))

    def progress(self, total: int, start: int = 0) -> "Progress":
        return Progress(self, total, start)

    def close(self) -> None:
        import ray

        for close in reversed(self._closers):
            try:
                close()
            except Exception as exc:  # shutting down must not hide the stage's own error
                if self.console:
                    self.console.print(f"[yellow]warning: shutdown failed: {exc!r}")
        for actor in self._actors:
            try:
                ray.kill(actor)
            except Exception:
                pass
        self._closers.clear()
        self._actors.clear()


class Progress:
    """A rich progress bar for one stage's steps, showing a few live metrics."""

    def __init__(self, ctx: StageContext, total: int, start: int):
        from rich.progress import BarColumn, MofNCompleteColumn, Progress as RichProgress, TextColumn, TimeRemainingColumn

        self._p = RichProgress(TextColumn(f"[bold]{ctx.name}"), BarColumn(), MofNCompleteColumn(),
                               TimeRemainingColumn(), TextColumn("{task.fields[info]}"),
                               console=ctx.console, transient=False)
        self._task = self._p.add_task(ctx.name, total=total, completed=start, info="")
        self._t0 = time.perf_counter()

    def __enter__(self) -> "Progress":
        self._p.start()
        return self

    def update(self, step: int, **shown: float) -> None:
        info = "  ".join(f"{k}={v:.4g}" for k, v in shown.items())
        self._p.update(self._task, completed=step, info=info)

    def __exit__(self, *exc) -> None:
        self._p.stop()
