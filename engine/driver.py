"""The driver: runs the pipeline of stages a config declares, each reading the previous stage's model dir."""
from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

from raylign.engine.checkpoint import CheckpointManager
from raylign.engine.config import Config, dumps_toml, load_config
from raylign.engine.errors import ConfigError, ModelError, RoleFailed
from raylign.engine.metrics import MetricsLog, read_summary, write_plots, write_summary
from raylign.engine.modeling import check_model_dir
from raylign.engine.plugins import Registry, get_registry
from raylign.engine.stage import StageContext


def prepare_run_dir(cfg: Config, resume: bool) -> Path:
    # absolute: actors on other nodes (or in other working directories) get the same path the driver means
    run_dir = (Path(cfg.run.output_dir) / cfg.run.name).absolute()
    if run_dir.exists() and any(run_dir.iterdir()) and not resume:
        raise ConfigError(
            f"run directory {run_dir} already exists: add --resume to continue it, or pick another name "
            f"with --set run.name=..."
        )
    if resume and not run_dir.exists():
        raise ConfigError(f"--resume: run directory {run_dir} does not exist (nothing to resume)")
    run_dir.mkdir(parents=True, exist_ok=True)
    saved = run_dir / "config.toml"
    text = dumps_toml(cfg.resolved)
    if resume and saved.exists() and saved.read_text() != text:
        (run_dir / f"config.{int(time.time())}.toml").write_text(saved.read_text())  # keep what ran before
    tmp = saved.with_suffix(".toml.tmp")
    tmp.write_text(text)
    tmp.replace(saved)
    return run_dir


def run_pipeline(cfg: Config, registry: Registry, resume: bool = False, address: str | None = None,
                 console=None) -> dict[str, Any]:
    """Run every stage of ``cfg``; return the summary (also written to ``summary.json``)."""
    from rich.console import Console

    from raylign.engine.cluster import init_ray
    from raylign.engine.placement import check_pins
    from raylign.engine.probe import answer_probes, print_probes

    console = console or Console()
    # A missing base model fails before the run dir or Ray exist (so fixing it does not need --resume).
    model: Path | None = check_model_dir(Path(cfg.run.base_model).absolute()) if cfg.run.base_model else None
    check_pins(cfg, address)  # so does a role pinned to a custom resource no node offers (engine/placement.py)
    run_dir = prepare_run_dir(cfg, resume)
    base_dir = cfg.base_dir
    hook = registry.hook
    init_ray(cfg.ray, address)
    hook.raylign_run_start(config=cfg.resolved, run_dir=run_dir)
    summary: dict[str, Any] = read_summary(run_dir) if resume else {}
    summary.setdefault("stages", {})
    metrics = MetricsLog(run_dir, hook, tensorboard="tensorboard" in cfg.run.observers)
    try:
        for spec in cfg.stages:
            out_dir = run_dir / "models" / spec.name
            done = summary["stages"].get(spec.name)
            stage_cls = registry.get("stages", spec.plugin)
            side = getattr(stage_cls, "side_model", False)  # Stage protocol: its model is not the next policy
            if resume and done and (out_dir / "config.json").exists():
                console.print(f"[dim]{spec.name}: done in an earlier attempt, skipped")
                model = model if side else out_dir
                continue
            if model is not None:
                check_model_dir(model)
            elif getattr(stage_cls, "needs_input_model", True):  # Stage protocol: absent means True
                raise ModelError(f"stage {spec.name!r} needs a model to start from: set run.base_model or put a "
                                 f"stage that builds one (e.g. 'scratch') before it")
            console.rule(f"[bold]stage {spec.name}[/] ({spec.plugin})")
            hook.raylign_stage_start(stage=spec.name, input_model=model, run_dir=run_dir)
            t0 = time.perf_counter()
            restarts = 0
            while True:  # a learner's death restarts the stage from its last checkpoint, within the budget
                ctx = StageContext(
                    name=spec.name, config=spec.config, engine=cfg, run_dir=run_dir, input_model=model,
                    output_model=out_dir, base_dir=base_dir,
                    checkpoints=CheckpointManager(run_dir / "checkpoints" / spec.name), metrics=metrics,
                    registry=registry, resume=resume or restarts > 0, console=console,
                )
                try:
                    final = dict(stage_cls().run(ctx) or {})
                    break
                except Exception as exc:
                    death = ctx.dead_learner(exc)
                    if death is None:
                        raise
                    budget = cfg.ray.learner_max_restarts
                    if restarts >= budget:
                        raise RoleFailed(f"stage {spec.name!r}: {death}; ray.learner_max_restarts={budget} "
                                         f"restarts already made, so the run stops (`raylign run --resume` "
                                         f"continues from the last checkpoint)") from exc
                    restarts += 1
                    console.print(f"[yellow]stage {spec.name}: {death}; restarting the stage from its last "
                                  f"checkpoint (restart {restarts} of ray.learner_max_restarts={budget})")
                finally:
                    ctx.close()
            check_model_dir(out_dir)  # a stage must leave its final model dir
            final["stage_seconds"] = round(time.perf_counter() - t0, 2)
            if restarts:
                final["learner_restarts"] = restarts
            probes = (answer_probes(out_dir, list(cfg.run.probes), cfg.run.probe_max_tokens)
                      if cfg.run.probes and not side else [])
            print_probes(console, spec.name, probes)
            summary["stages"][spec.name] = {"plugin": spec.plugin, "metrics": final, "probes": probes,
                                            "model_dir": str(out_dir)}
            write_summary(run_dir, summary)
            console.print(f"[green]{spec.name}[/] final metrics: " + json.dumps(final))
            hook.raylign_stage_end(stage=spec.name, metrics=final, model_dir=out_dir)
            write_plots(run_dir)
            model = model if side else out_dir
    finally:
        metrics.close()
    summary["final_model"] = str(model) if model else None
    write_summary(run_dir, summary)
    write_plots(run_dir)
    hook.raylign_run_end(summary=summary, run_dir=run_dir)
    console.print(f"[bold green]run finished[/]: {run_dir}  (final model: {model})")
    return summary


def run_command(args) -> int:
    registry = get_registry()
    cfg = load_config(args.config, registry, args.overrides)
    run_pipeline(cfg, registry, resume=args.resume, address=args.address)
    return 0
