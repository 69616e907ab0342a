"""A third-party stage, exactly as a user would ship one: a package of its own that declares
``[project.entry-points.raylign]``, pip-installed into a throwaway environment (``make_plugin_env``: the shared
one is never touched), listed by that environment's ``raylign plugins`` with its package name, validated and run
by its ``raylign run`` after the built-in ``scratch`` stage (learner actor included: the actor rebuilds its
plugin manager from the same entry points).
"""
from __future__ import annotations

import importlib.metadata
import json
import re
import subprocess
import textwrap
import tomllib
from pathlib import Path

import pytest

from conftest import make_plugin_env, write_plugin_project

DATA = Path(__file__).parent / "data"
DIST = "raylign-mystage"

MODULE = '''
"""Stage ``mystage``: a few next-token steps on one sentence, then the model dir (a third-party plugin)."""
from dataclasses import dataclass, field

import torch

from raylign.engine import hookimpl
from raylign.engine.optim import OptimConfig
from raylign.engine.types import TrainBatch


@dataclass(frozen=True)
class MyStageConfig:
    steps: int = 2  # optimizer steps
    text: str = "The cat sits by the lake."  # what it trains on
    optim: OptimConfig = field(default_factory=lambda: OptimConfig(lr=1e-3, warmup_steps=0))


class MyStage:
    config_cls = MyStageConfig

    def run(self, ctx):
        from raylign.engine.modeling import load_tokenizer

        cfg = ctx.config
        tok = load_tokenizer(ctx.input_model)
        ids = tok([cfg.text] * 2, return_tensors="pt")["input_ids"]
        loss_mask = torch.ones(ids.shape, dtype=torch.float32)
        loss_mask[:, 0] = 0.0
        batch = TrainBatch(ids, torch.ones_like(ids), loss_mask)
        learner = ctx.start_learner(ctx.input_model, cfg.optim, cfg.steps)
        for step in range(1, cfg.steps + 1):
            metrics = learner.train_step([batch], "next_token")
            ctx.log(step, metrics)
        learner.save_model(ctx.output_model)
        return {"final_loss": metrics["loss"], "mystage_ran": 1.0}


@hookimpl
def raylign_register_stages(register):
    register("mystage", MyStage)
'''

CONFIG = """
[run]
name = "third"
output_dir = "{out}"
pipeline = ["scratch", "mystage"]
probes = ["Hi?"]
probe_max_tokens = 4

[ray]
num_cpus = 4

[scratch]
corpus = ["{data}/engine_pre.jsonl"]
vocab_size = 320
size = {{ hidden_size = 32, num_layers = 1, num_heads = 2, num_kv_heads = 1, intermediate_size = 64 }}

[mystage]
steps = 3
"""


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> str:
    """The ``raylign`` command of a throwaway environment that has the package installed."""
    src = write_plugin_project(tmp_path_factory.mktemp("mystage_src"), DIST, "mystage", "raylign_mystage",
                               textwrap.dedent(MODULE))
    return str(make_plugin_env(tmp_path_factory.mktemp("mystage_env"), src) / "raylign")


def test_the_shared_environment_never_sees_the_package(installed):
    assert DIST not in {d.metadata["Name"] for d in importlib.metadata.distributions()}


def test_raylign_plugins_lists_the_third_party_stage(installed):
    out = subprocess.run([installed, "plugins"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    rows = [[c.strip() for c in re.split(r"[│┃]", line) if c.strip()] for line in out.stdout.splitlines()]
    assert ["stage", "mystage", "mystage", DIST] in rows, out.stdout
    assert ["stage", "pretrain", "pretrain", "raylign"] in rows


def test_its_config_section_is_validated_like_a_built_in(installed, tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text(CONFIG.format(out=tmp_path / "runs", data=DATA))
    out = subprocess.run([installed, "run", str(cfg), "--set", "mystage.stepz=1"], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode != 0
    assert "unknown config key mystage.stepz. Did you mean mystage.steps?" in out.stderr
    assert "Traceback" not in out.stderr


def test_pipeline_runs_the_third_party_stage(installed, tmp_path):
    from transformers import AutoModelForCausalLM

    cfg = tmp_path / "c.toml"
    cfg.write_text(CONFIG.format(out=tmp_path / "runs", data=DATA))
    out = subprocess.run([installed, "run", str(cfg)], capture_output=True, text=True, timeout=400)
    assert out.returncode == 0, out.stderr[-3000:]
    run_dir = tmp_path / "runs" / "third"
    summary = json.loads((run_dir / "summary.json").read_text())
    assert list(summary["stages"]) == ["scratch", "mystage"]
    mine = summary["stages"]["mystage"]
    assert mine["plugin"] == "mystage" and mine["metrics"]["mystage_ran"] == 1.0
    assert mine["metrics"]["final_loss"] > 0
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [(r["stage"], r["step"]) for r in rows] == [("mystage", 1), ("mystage", 2), ("mystage", 3)]
    assert rows[-1]["loss"] < rows[0]["loss"]
    model = AutoModelForCausalLM.from_pretrained(str(run_dir / "models" / "mystage"))
    assert model.config.model_type == "qwen2"
    saved = tomllib.loads((run_dir / "config.toml").read_text())
    assert saved["mystage"] == {"plugin": "mystage", "steps": 3, "text": "The cat sits by the lake.",
                                "optim": saved["mystage"]["optim"]}
    assert saved["mystage"]["optim"]["lr"] == 1e-3
