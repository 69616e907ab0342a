"""The wandb and mlflow observers (engine/observers/), driven through the run hooks with a fabricated metrics stream
in the order the driver calls them (no training run), each in its offline / local mode: nothing leaves the
machine. What they wrote is read back from W&B's offline run file and through MLflow's client."""
from __future__ import annotations

import glob
import json
import struct
from pathlib import Path

import pytest

from raylign.engine.config import build_config
from raylign.engine.errors import ConfigError
from raylign.engine.metrics import MetricsLog, write_plots
from raylign.engine.plugins import build_registry

STEPS = [{"loss": 1.0 / s, "reward/mean": 0.1 * s, "note": "text is not plotted", "ok": True} for s in (1, 2, 3)]
FINAL = {"eval_accuracy": 0.75, "stage_seconds": 12.5}


def fake_run(tmp_path: Path, observers: list[str], monkeypatch) -> tuple[Path, dict]:
    """run_start, three grpo steps through MetricsLog, stage_end, the plots, run_end: the driver's order."""
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("WANDB_DISABLE_GIT", "true")
    for var in ("WANDB_DIR", "WANDB_PROJECT", "MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_NAME"):
        monkeypatch.delenv(var, raising=False)
    registry = build_registry()
    cfg = build_config({"run": {"name": "obs", "output_dir": str(tmp_path / "runs"), "pipeline": ["grpo"],
                                "observers": observers}, "grpo": {"steps": 3, "group_size": 4}}, registry)
    run_dir = tmp_path / "runs" / "obs"
    run_dir.mkdir(parents=True)
    hook = registry.hook
    hook.raylign_run_start(config=cfg.resolved, run_dir=run_dir)
    metrics = MetricsLog(run_dir, hook, tensorboard="tensorboard" in cfg.run.observers)
    for step, m in enumerate(STEPS, start=1):
        metrics.log("grpo", step, m)
    metrics.close()
    hook.raylign_stage_end(stage="grpo", metrics=FINAL, model_dir=run_dir / "models" / "grpo")
    assert [p.name for p in write_plots(run_dir)] == ["grpo.png"]
    summary = {"stages": {"grpo": {"plugin": "grpo", "metrics": FINAL}}, "final_model": None}
    hook.raylign_run_end(summary=summary, run_dir=run_dir)
    return run_dir, cfg.resolved


# ---------------------------------------------------------------------------------------------- W&B offline files


def wandb_records(path: Path):
    """The records of a W&B run file: a 7-byte header (":W&B", magic, version), then LevelDB-log chunks in 32 KiB
    blocks (crc32 4 bytes, length 2, type 1: full, first, middle, last), each record a wandb Record protobuf."""
    from wandb.proto import wandb_internal_pb2 as pb

    data = path.read_bytes()
    assert data[:4] == b":W&B"
    pos, block, buf = 7, 32768, b""
    while pos + 7 <= len(data):
        if block - pos % block < 7:  # a block's tail too short for a chunk header is padding
            pos += block - pos % block
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos:pos + 7])
        if kind == 0:
            break
        buf += data[pos + 7:pos + 7 + length]
        pos += 7 + length
        if kind in (1, 4):
            rec = pb.Record()
            rec.ParseFromString(buf)
            buf = b""
            yield rec


def read_wandb(run_dir: Path) -> tuple[dict, list[dict], dict, list[str]]:
    """(config, history rows, summary, files) of the one offline W&B run under ``run_dir``."""
    (path,) = glob.glob(str(run_dir / "wandb" / "offline-run-*" / "run-*.wandb"))
    config, history, summary, files = {}, [], {}, []
    for rec in wandb_records(Path(path)):
        kind = rec.WhichOneof("record_type")
        if kind == "run":
            config.update({u.key: json.loads(u.value_json) for u in rec.run.config.update})
        elif kind == "config":
            config.update({u.key: json.loads(u.value_json) for u in rec.config.update})
        elif kind == "history":
            history.append({(i.key or "/".join(i.nested_key)): json.loads(i.value_json) for i in rec.history.item})
        elif kind == "summary":
            summary.update({(u.key or "/".join(u.nested_key)): json.loads(u.value_json) for u in rec.summary.update})
        elif kind == "files":
            files += [f.path for f in rec.files.files]
    return config, history, summary, files


def test_wandb_offline_gets_steps_config_and_plots(tmp_path, monkeypatch):
    run_dir, resolved = fake_run(tmp_path, ["tensorboard", "wandb"], monkeypatch)
    config, history, summary, files = read_wandb(run_dir)
    assert config["run"]["name"] == "obs" and config["grpo"]["steps"] == 3 and config["run"]["observers"] == [
        "tensorboard", "wandb"]
    assert {k: v for k, v in config.items() if k != "_wandb"} == json.loads(json.dumps(resolved))
    steps = [(h["grpo/step"], h["grpo/loss"], h["grpo/reward/mean"]) for h in history if "grpo/loss" in h]
    assert steps == [(s, pytest.approx(m["loss"]), pytest.approx(m["reward/mean"])) for s, m in enumerate(STEPS, 1)]
    assert not any("grpo/note" in h or "grpo/ok" in h for h in history)  # text and booleans are not metrics
    assert summary["grpo/final/eval_accuracy"] == 0.75
    (plot,) = [f for f in files if f.startswith("media/images/plots/grpo")]
    assert (Path(glob.glob(str(run_dir / "wandb" / "offline-run-*"))[0]) / "files" / plot).stat().st_size > 1000
    assert (run_dir / "tensorboard").is_dir()


def test_mlflow_file_store_gets_steps_config_and_plots(tmp_path, monkeypatch):
    run_dir, _ = fake_run(tmp_path, ["mlflow"], monkeypatch)
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=(tmp_path / "runs" / "mlruns").as_uri())
    (run,) = client.search_runs([client.get_experiment_by_name("raylign").experiment_id])
    assert run.info.status == "FINISHED" and run.info.run_name == "obs"
    assert run.data.tags["raylign.run_dir"] == str(run_dir)
    history = client.get_metric_history(run.info.run_id, "grpo/loss")
    assert sorted((m.step, m.value) for m in history) == [(s, pytest.approx(m["loss"])) for s, m in enumerate(STEPS, 1)]
    assert "grpo/note" not in run.data.metrics and run.data.metrics["grpo/final/eval_accuracy"] == 0.75
    assert run.data.params["grpo.steps"] == "3" and run.data.params["run.name"] == "obs"
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)} | {
        a.path for a in client.list_artifacts(run.info.run_id, "plots")}
    assert {"config.toml", "summary.json", "plots/grpo.png"} <= artifacts
    local = Path(client.download_artifacts(run.info.run_id, "config.toml", str(tmp_path / "dl")))
    assert 'name = "obs"' in local.read_text()
    assert not (run_dir / "tensorboard").exists()  # tensorboard is an observer like the others: not chosen here


def test_default_is_tensorboard_only(tmp_path, monkeypatch):
    run_dir, resolved = fake_run(tmp_path, ["tensorboard"], monkeypatch)
    assert resolved["run"]["observers"] == ["tensorboard"]
    assert (run_dir / "tensorboard").is_dir()
    assert not (run_dir / "wandb").exists() and not (tmp_path / "runs" / "mlruns").exists()
    cfg = build_config({"run": {"pipeline": ["grpo"]}}, build_registry())
    assert cfg.run.observers == ("tensorboard",)


def test_unknown_or_missing_observer_fails_at_config(monkeypatch):
    registry = build_registry()
    with pytest.raises(ConfigError, match=r"run.observers\[1\] = 'wandbb' is not an observer; known: tensorboard, "
                                          r"mlflow, wandb"):
        build_config({"run": {"pipeline": ["grpo"], "observers": ["tensorboard", "wandbb"]}}, registry)
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "mlflow" else real(name, *a))
    with pytest.raises(ConfigError, match=r"needs the mlflow package: pip install 'raylign\[observers\]'"):
        build_config({"run": {"pipeline": ["grpo"], "observers": ["mlflow"]}}, registry)


def test_a_failing_observer_warns_once_and_never_ends_the_run(tmp_path, monkeypatch, capsys):
    from raylign.engine.observers import mlflow_observer

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(mlflow_observer, "_log", broken)
    fake_run(tmp_path, ["mlflow"], monkeypatch)
    err = capsys.readouterr().err
    assert err.count("observer 'mlflow' failed (OSError: disk full); it stops observing this run") == 1
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=(tmp_path / "runs" / "mlruns").as_uri())
    (run,) = client.search_runs([client.get_experiment_by_name("raylign").experiment_id])
    assert run.info.status == "FAILED"  # not left RUNNING
