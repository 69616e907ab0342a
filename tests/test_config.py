"""Config: TOML → frozen dataclasses, ``--set`` overrides, errors that name the dotted path, TOML round trip."""
from __future__ import annotations

import dataclasses
import tomllib
from pathlib import Path

import pytest

from raylign.engine.config import (Config, RayConfig, RunConfig, apply_overrides, build_config, dumps_toml,
                                   load_config, parse_override)
from raylign.engine.errors import ConfigError
from raylign.engine.optim import OptimConfig
from raylign.engine.plugins import build_registry
from raylign.plugins.pretrain import PretrainConfig
from raylign.plugins.scratch import ScratchConfig

TOML = """
[run]
name = "cfgtest"
pipeline = ["scratch", "pretrain"]
seed = 3

[ray]
num_cpus = 4

[scratch]
corpus = ["pre.jsonl"]
vocab_size = 512
size = { hidden_size = 64, num_layers = 2 }

[pretrain]
data = ["pre.jsonl", "more/*.txt"]
steps = 20
block_size = 64

[pretrain.optim]
lr = 0.002
warmup_steps = 5
"""


@pytest.fixture
def registry():
    return build_registry(entry_points=True)  # a fresh manager per test


@pytest.fixture
def cfg_file(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text(TOML)
    return path


def _error(registry, data) -> str:
    with pytest.raises(ConfigError) as info:
        build_config(data, registry)
    return str(info.value)


def _base() -> dict:
    return tomllib.loads(TOML)


# ---------------------------------------------------------------------------------------------- loading


def test_toml_becomes_frozen_dataclasses(registry, cfg_file):
    cfg = load_config(cfg_file, registry)
    assert isinstance(cfg, Config)
    assert cfg.source == str(cfg_file)
    assert cfg.run == RunConfig(name="cfgtest", pipeline=("scratch", "pretrain"), seed=3)
    assert cfg.ray == RayConfig(num_cpus=4)
    assert [(s.name, s.plugin) for s in cfg.stages] == [("scratch", "scratch"), ("pretrain", "pretrain")]
    scratch, pre = cfg.stages[0].config, cfg.stages[1].config
    assert isinstance(scratch, ScratchConfig) and isinstance(pre, PretrainConfig)
    assert scratch.size.hidden_size == 64 and scratch.size.num_heads == 4  # the rest keeps its defaults
    assert pre.data == ("pre.jsonl", "more/*.txt")  # lists become tuples (hashable, immutable)
    assert pre.optim == OptimConfig(lr=0.002, warmup_steps=5)
    assert pre.eval_every == PretrainConfig().eval_every
    for obj in (cfg, cfg.run, cfg.ray, pre, pre.optim, scratch.size):
        with pytest.raises(dataclasses.FrozenInstanceError):
            obj.seed = 1  # type: ignore[misc]


def test_a_stage_can_run_another_plugin_under_its_own_name(registry):
    data = {"run": {"pipeline": ["warmup", "pretrain"]},
            "warmup": {"plugin": "pretrain", "steps": 3}, "pretrain": {"steps": 5}}
    cfg = build_config(data, registry)
    assert [(s.name, s.plugin, s.config.steps) for s in cfg.stages] == [("warmup", "pretrain", 3),
                                                                        ("pretrain", "pretrain", 5)]
    assert cfg.resolved["warmup"]["plugin"] == "pretrain"


# ---------------------------------------------------------------------------------------------- overrides


@pytest.mark.parametrize("text, parts, value", [
    ("run.seed=7", ["run", "seed"], 7),
    ("pretrain.optim.lr=1e-4", ["pretrain", "optim", "lr"], 1e-4),
    ("run.name=my-run", ["run", "name"], "my-run"),  # not TOML: taken as a string
    ('run.name="quoted"', ["run", "name"], "quoted"),
    ('run.pipeline=["scratch", "sft"]', ["run", "pipeline"], ["scratch", "sft"]),
    ("rollout.enforce_eager=false", ["rollout", "enforce_eager"], False),
    ("run.name=a=b", ["run", "name"], "a=b"),
])
def test_parse_override(text, parts, value):
    assert parse_override(text) == (parts, value)


@pytest.mark.parametrize("bad", ["run.seed", "seed=1", "=1"])
def test_malformed_override(bad):
    with pytest.raises(ConfigError, match="--set"):
        parse_override(bad)


def test_overrides_change_ints_floats_strings_lists_and_nested_tables(registry, cfg_file):
    cfg = load_config(cfg_file, registry, [
        "run.seed=11",
        "pretrain.steps=7",
        "pretrain.optim.lr=1e-4",
        "pretrain.optim.beta2=1",  # an int where a float is expected is widened
        "run.name=override-name",
        'pretrain.data=["a.jsonl", "b.jsonl"]',
        "scratch.size.num_layers=3",
        "ray.num_gpus=0",
        'run.probes=["hi"]',
    ])
    pre = cfg.stages[1].config
    assert cfg.run.seed == 11 and cfg.run.name == "override-name" and cfg.run.probes == ("hi",)
    assert pre.steps == 7 and pre.data == ("a.jsonl", "b.jsonl")
    assert pre.optim.lr == 1e-4 and pre.optim.warmup_steps == 5  # the rest of the table is kept
    assert pre.optim.beta2 == 1.0 and isinstance(pre.optim.beta2, float)
    assert cfg.stages[0].config.size.num_layers == 3 and cfg.stages[0].config.size.hidden_size == 64
    assert cfg.ray.num_gpus == 0


def test_override_creates_missing_sections(registry, cfg_file):
    cfg = load_config(cfg_file, registry, ["rollout.num_workers=3"])
    assert cfg.rollout.num_workers == 3


def test_override_through_a_scalar_fails(registry):
    with pytest.raises(ConfigError, match="run.seed.*not a table|seed is not a table"):
        apply_overrides({"run": {"seed": 1}}, ["run.seed.x=2"])


# ---------------------------------------------------------------------------------------------- errors


def test_unknown_key_names_dotted_path_and_suggests(registry, cfg_file):
    with pytest.raises(ConfigError) as info:
        load_config(cfg_file, registry, ["pretrain.stpes=3"])
    msg = str(info.value)
    assert "unknown config key pretrain.stpes. Did you mean pretrain.steps?" in msg


@pytest.mark.parametrize("section, key, suggestion", [
    ("run", "pipline", "run.pipeline"),
    ("ray", "num_cpu", "ray.num_cpus"),
    ("scratch", "vocab", "scratch.vocab_size"),
])
def test_unknown_engine_and_stage_keys(registry, section, key, suggestion):
    data = _base()
    data.setdefault(section, {})[key] = 1
    msg = _error(registry, data)
    assert f"unknown config key {section}.{key}." in msg and f"Did you mean {suggestion}?" in msg


def test_unknown_nested_key(registry):
    data = _base()
    data["pretrain"]["optim"]["learning_rate"] = 0.1
    data["pretrain"]["optim"].pop("lr")
    msg = _error(registry, data)
    assert "unknown config key pretrain.optim.learning_rate" in msg
    data = _base()
    data["scratch"]["size"]["hiden_size"] = 8
    assert "Did you mean scratch.size.hidden_size?" in _error(registry, data)


@pytest.mark.parametrize("override, path, words", [
    ("pretrain.steps=ten", "pretrain.steps", "expected an integer"),
    ("pretrain.steps=2.5", "pretrain.steps", "expected an integer"),
    ("pretrain.steps=true", "pretrain.steps", "expected an integer"),
    ("pretrain.optim.lr=fast", "pretrain.optim.lr", "expected a number"),
    ("run.name=3", "run.name", "expected a string"),
    ("pretrain.data=x.jsonl", "pretrain.data", "expected a list"),
    ("pretrain.data=[1]", "pretrain.data[0]", "expected a string"),
    ("rollout.enforce_eager=1", "rollout.enforce_eager", "expected true or false"),
    ("scratch.size=5", "scratch.size", "expected a table"),
    ('ray.num_gpus="two"', "ray.num_gpus", "expected"),
])
def test_wrong_type_names_the_path(registry, cfg_file, override, path, words):
    with pytest.raises(ConfigError) as info:
        load_config(cfg_file, registry, [override])
    msg = str(info.value)
    assert msg.startswith(f"{path}:") and words in msg, msg


def test_literal_choices(registry, cfg_file):
    with pytest.raises(ConfigError) as info:
        load_config(cfg_file, registry, ["run.device=gpu"])
    assert "run.device: must be one of ['auto', 'cpu', 'cuda'], got 'gpu'" in str(info.value)
    with pytest.raises(ConfigError) as info:
        load_config(cfg_file, registry, ["pretrain.optim.schedule=cosin"])
    assert "pretrain.optim.schedule" in str(info.value) and "did you mean 'cosine'?" in str(info.value)
    assert load_config(cfg_file, registry, ["run.device=cpu"]).run.device == "cpu"


def test_unknown_section_suggests_the_stage(registry):
    data = _base()
    data["pretrian"] = data.pop("pretrain")
    msg = _error(registry, data)
    assert "unknown config section [pretrian]" in msg and "Did you mean [pretrain]?" in msg
    data = _base()
    data["rolout"] = {"num_workers": 2}
    assert "Did you mean [rollout]?" in _error(registry, data)


def test_missing_pipeline(registry):
    data = _base()
    del data["run"]["pipeline"]
    assert "run.pipeline is empty" in _error(registry, data)
    assert "run.pipeline is empty" in _error(registry, {})


def test_unknown_stage_in_pipeline_lists_known_stages(registry):
    from raylign.engine.errors import PluginError

    data = _base()
    data["run"]["pipeline"] = ["scratch", "pretrian"]
    data["pretrian"] = data.pop("pretrain")
    with pytest.raises(PluginError) as info:
        build_config(data, registry)
    msg = str(info.value)
    assert "unknown stage 'pretrian'" in msg and "Did you mean 'pretrain'?" in msg
    assert "pretrain" in msg.split("Known:")[1] and "scratch" in msg.split("Known:")[1]


def test_stage_named_twice(registry):
    data = _base()
    data["run"]["pipeline"] = ["pretrain", "pretrain"]
    del data["scratch"]
    assert "names a stage twice" in _error(registry, data)


def test_missing_config_file(registry, tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.toml", registry)


def test_invalid_toml_names_the_file(registry, tmp_path):
    path = tmp_path / "broken.toml"
    path.write_text("[run\nname = 1\n")
    with pytest.raises(ConfigError, match="broken.toml"):
        load_config(path, registry)


# ---------------------------------------------------------------------------------------------- round trip


def test_resolved_config_round_trips_through_toml(registry, cfg_file):
    cfg = load_config(cfg_file, registry, ['run.probes=["a \\"quoted\\" probe", "line\\nbreak"]'])
    text = dumps_toml(cfg.resolved)
    data = tomllib.loads(text)
    assert data == _plain(cfg.resolved)
    # Every default is written out: the file alone reproduces the run.
    assert data["pretrain"]["optim"]["beta1"] == 0.9 and data["rollout"]["max_model_len"] == 512
    again = build_config(data, registry)
    assert again.run == cfg.run and again.ray == cfg.ray and again.rollout == cfg.rollout
    assert again.stages == cfg.stages
    assert dumps_toml(again.resolved) == text


def _plain(obj):
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    return obj


def test_dumps_toml_handles_awkward_keys_and_values():
    data = {"a": {"weird key": 1, "x.y": "v", "b": True, "f": 0.1, "lst": [1, 2], "n": {"deep": {"z": "q"}}}}
    assert tomllib.loads(dumps_toml(data)) == data


EXAMPLES = sorted((Path(__file__).resolve().parents[1] / "examples").glob("*.toml"))


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_example_configs_validate_and_name_existing_data(path, registry):
    """Every shipped example is a valid config whose data files exist (paths resolve against its folder)."""
    cfg = load_config(path, registry)
    for spec in cfg.stages:
        for key in ("data", "eval_data", "corpus"):
            for name in getattr(spec.config, key, ()) or ():
                assert (path.parent / name).is_file(), f"{path.name}: [{spec.name}] {key} names missing {name}"
