"""The plugin surface: registration through ``register`` callbacks, name clashes, unknown names, misspelled hooks,
the observer hooks during a real (tiny) pipeline run, ``raylign plugins``, and the hook docs themselves.

Every test builds a fresh plugin manager; the pipeline run is shared by the observer tests (one per module).
"""
from __future__ import annotations

import inspect
import re
import subprocess
import sys
import types
from pathlib import Path

import pytest

from raylign.engine import hookimpl, hookspecs
from raylign.engine.errors import PluginError
from raylign.engine.plugins import KINDS, build_registry

DATA = Path(__file__).parent / "data"
RAYLIGN = str(Path(sys.executable).with_name("raylign"))


def _module(name: str, **hooks) -> types.ModuleType:
    """A plugin module built on the fly (its name is the plugin name the registry reports)."""
    mod = types.ModuleType(name)
    for hook_name, fn in hooks.items():
        fn.__name__ = hook_name
        setattr(mod, hook_name, hookimpl(fn))
    return mod


# ---------------------------------------------------------------------------------------------- registration


class EchoStage:
    config_cls = type("EchoConfig", (), {})


def _verifier(completion: str, task: dict) -> float:
    return float(completion == task.get("answer"))


def test_every_registration_hook_receives_a_register_callback():
    calls = []

    def make(kind):
        def hook(register):
            calls.append(kind)
            register(f"my_{kind}_a", f"{kind}-a")
            register(f"my_{kind}_b", f"{kind}-b")  # one plugin, many registrations
        return hook

    plugin = _module("my_plugin", **{f"raylign_register_{kind}": make(kind) for kind in KINDS})
    reg = build_registry(extra_plugins=[plugin], entry_points=False)
    assert sorted(calls) == sorted(KINDS)
    for kind in KINDS:
        assert reg.names(kind) == [f"my_{kind}_a", f"my_{kind}_b"]
        assert reg.get(kind, f"my_{kind}_b") == f"{kind}-b"
    entries = [e for e in reg.all()]
    assert {e.plugin for e in entries} == {"my_plugin"}
    assert {e.package for e in entries} == {"<local>"}  # not from a distribution


def test_extra_plugins_sit_beside_the_built_ins():
    plugin = _module("extra", raylign_register_stages=lambda register: register("echo", EchoStage),
                     raylign_register_verifiers=lambda register: register("same", _verifier))
    reg = build_registry(extra_plugins=[plugin])
    assert {"scratch", "pretrain", "sft", "echo"} <= set(reg.names("stages"))
    assert reg.get("stages", "echo") is EchoStage
    assert reg.get("verifiers", "same")("x", {"answer": "x"}) == 1.0
    by_name = {e.name: e for e in reg.all() if e.kind == "stages"}
    assert by_name["pretrain"].package == "raylign" and by_name["pretrain"].plugin == "pretrain"
    assert by_name["echo"].package == "<local>" and by_name["echo"].plugin == "extra"


def test_registries_are_isolated():
    plugin = _module("only_here", raylign_register_stages=lambda register: register("echo", EchoStage))
    assert "echo" in build_registry(extra_plugins=[plugin]).names("stages")
    assert "echo" not in build_registry().names("stages")


def test_duplicate_names_fail_naming_both_plugins():
    mine = _module("my_dup", raylign_register_stages=lambda register: register("pretrain", EchoStage))
    with pytest.raises(PluginError) as info:
        build_registry(extra_plugins=[mine])
    msg = str(info.value)
    assert "stage 'pretrain' is registered twice" in msg
    assert "'pretrain' (raylign)" in msg and "'my_dup' (<local>)" in msg

    a = _module("plug_a", raylign_register_verifiers=lambda register: register("v", _verifier))
    b = _module("plug_b", raylign_register_verifiers=lambda register: register("v", _verifier))
    with pytest.raises(PluginError, match=r"verifier 'v' is registered twice.*plug_[ab].*plug_[ab]"):
        build_registry(extra_plugins=[a, b], entry_points=False)


def test_duplicates_within_one_plugin_fail_too():
    def hook(register):
        register("x", 1)
        register("x", 2)

    with pytest.raises(PluginError, match="loss 'x' is registered twice"):
        build_registry(extra_plugins=[_module("twice", raylign_register_losses=hook)], entry_points=False)


def test_empty_name_fails():
    plugin = _module("nameless", raylign_register_stages=lambda register: register("", EchoStage))
    with pytest.raises(PluginError, match="nameless.*empty"):
        build_registry(extra_plugins=[plugin], entry_points=False)


def test_unknown_name_lists_known_ones_with_a_suggestion():
    reg = build_registry()
    with pytest.raises(PluginError) as info:
        reg.get("stages", "pretrian")
    msg = str(info.value)
    assert msg.startswith("unknown stage 'pretrian'. Did you mean 'pretrain'?")
    known = msg.split("Known: ")[1]
    assert {"pretrain", "scratch", "sft"} <= set(known.split(", "))
    with pytest.raises(PluginError, match="unknown loss 'zzz'. Known: .*next_token"):
        reg.get("losses", "zzz")
    empty = build_registry(entry_points=False)
    with pytest.raises(PluginError, match=r"Known: \(none\)"):
        empty.get("verifiers", "math")


def test_misspelled_hook_fails_at_start():
    typo = _module("typo_plugin", raylign_register_stage=lambda register: None)  # missing the final "s"
    with pytest.raises(PluginError) as info:
        build_registry(extra_plugins=[typo])
    assert "typo_plugin" in str(info.value) and "raylign_register_stage" in str(info.value)


def test_misspelled_hook_argument_fails_at_start():
    bad = _module("bad_args", raylign_register_stages=lambda reg: None)  # the spec's argument is `register`
    with pytest.raises(PluginError, match="bad_args"):
        build_registry(extra_plugins=[bad])


def test_a_registration_hook_that_raises_names_its_plugin():
    def hook(register):
        raise ValueError("boom")

    with pytest.raises(PluginError, match="plugin 'broken' failed in raylign_register_sandboxes: ValueError"):
        build_registry(extra_plugins=[_module("broken", raylign_register_sandboxes=hook)], entry_points=False)


def test_raylign_plugins_lists_built_ins_with_their_package():
    out = subprocess.run([RAYLIGN, "plugins"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    rows = {}
    for line in out.stdout.splitlines():
        cells = [c.strip() for c in re.split(r"[│┃|]", line) if c.strip()]
        if len(cells) == 4:
            rows[(cells[0], cells[1])] = (cells[2], cells[3])
    for stage in ("scratch", "pretrain", "sft"):
        assert rows[("stage", stage)] == (stage, "raylign")
    assert rows[("loss", "next_token")][1] == "raylign"
    assert rows[("advantage estimator", "grpo")][1] == "raylign"


# ---------------------------------------------------------------------------------------------- hook docs


def _specs():
    return [(name, fn) for name, fn in inspect.getmembers(hookspecs, inspect.isfunction)
            if hasattr(fn, "raylign_spec")]


def test_hookspecs_are_documented():
    specs = _specs()
    assert len(specs) >= 13  # 6 registration hooks + 7 observers
    for name, fn in specs:
        assert name.startswith("raylign_"), name
        doc = inspect.getdoc(fn)
        assert doc and len(doc.splitlines()[0]) > 10, f"{name} has no docstring"
        params = list(inspect.signature(fn).parameters)
        assert params, f"{name} takes no arguments"
        for p in params:
            assert re.search(rf":param {p}:\s*\S", doc), f"{name}: the docstring has no ':param {p}:'"
        documented = re.findall(r":param (\w+):", doc)
        assert documented == params, f"{name}: documents {documented}, the signature has {params}"
        sig = inspect.signature(fn)
        assert all(v.annotation is not inspect.Parameter.empty for v in sig.parameters.values()), name
        assert sig.return_annotation is not inspect.Signature.empty, f"{name} has no return annotation"


def test_every_hook_spec_is_registered_with_pluggy():
    from raylign.engine.plugins import build_plugin_manager

    pm = build_plugin_manager(entry_points=False)
    for name, _ in _specs():
        assert getattr(pm.hook, name).spec is not None, name
    for kind in KINDS:
        assert hasattr(pm.hook, f"raylign_register_{kind}")


# Each hook and the test that calls it through the engine (the test implements the hook and asserts on what it
# received). A new hookspec without an entry here fails test_every_hook_has_a_test_that_calls_it.
HOOK_TESTS = {
    "raylign_register_stages": "test_plugins.py::test_every_registration_hook_receives_a_register_callback",
    "raylign_register_verifiers": "test_plugins.py::test_every_registration_hook_receives_a_register_callback",
    "raylign_register_reward_providers": "test_plugins.py::test_every_registration_hook_receives_a_register_callback",
    "raylign_register_losses": "test_plugins.py::test_every_registration_hook_receives_a_register_callback",
    "raylign_register_advantage_estimators":
        "test_plugins.py::test_every_registration_hook_receives_a_register_callback",
    "raylign_register_sandboxes": "test_plugins.py::test_every_registration_hook_receives_a_register_callback",
    "raylign_register_tasks": "test_tasks.py::test_a_third_party_task_plugin_is_used_by_name",
    "raylign_run_start": "test_plugins.py::test_run_start_and_end",
    "raylign_stage_start": "test_plugins.py::test_stage_start_and_end",
    "raylign_step_end": "test_plugins.py::test_step_end",
    "raylign_checkpoint_saved": "test_plugins.py::test_checkpoint_saved",
    "raylign_weights_synced": "test_grpo.py::test_short_grpo_run_raises_reward",
    "raylign_stage_end": "test_plugins.py::test_stage_start_and_end",
    "raylign_run_end": "test_plugins.py::test_run_start_and_end",
}


def test_every_hook_has_a_test_that_calls_it():
    specs = {name for name, _ in _specs()}
    missing = sorted(specs - set(HOOK_TESTS))
    assert not missing, f"hooks without a test that calls them (add one and list it in HOOK_TESTS): {missing}"
    assert not set(HOOK_TESTS) - specs, "HOOK_TESTS names a hook that no longer exists"
    here = Path(__file__).parent
    for hook, where in HOOK_TESTS.items():
        file, test = where.split("::")
        source = (here / file).read_text()
        assert re.search(rf"^(async )?def {test}\(", source, re.M), f"{hook}: {where} does not exist"
        # the module implements the hook (a hookimpl method, or a register hook built for the test)
        implemented = f"def {hook}(" in source or (hook.startswith("raylign_register_") and "raylign_register_{kind}" in source)
        assert implemented, f"{hook}: {file} never implements it"


# ---------------------------------------------------------------------------------------------- observers


class Observer:
    """Records every observer hook call (pluggy only ever passes keyword arguments)."""

    def __init__(self):
        self.calls: list[tuple[str, dict]] = []

    def _rec(self, name, **kw):
        self.calls.append((name, kw))

    @hookimpl
    def raylign_run_start(self, config, run_dir):
        self._rec("run_start", config=config, run_dir=run_dir)

    @hookimpl
    def raylign_stage_start(self, stage, input_model, run_dir):
        self._rec("stage_start", stage=stage, input_model=input_model, run_dir=run_dir)

    @hookimpl
    def raylign_step_end(self, stage, step, metrics):
        self._rec("step_end", stage=stage, step=step, metrics=dict(metrics))

    @hookimpl
    def raylign_checkpoint_saved(self, stage, step, path):
        self._rec("checkpoint_saved", stage=stage, step=step, path=Path(path), complete=(Path(path) / "COMPLETE").is_file())

    @hookimpl
    def raylign_stage_end(self, stage, metrics, model_dir):
        self._rec("stage_end", stage=stage, metrics=dict(metrics), model_dir=Path(model_dir),
                  has_config=(Path(model_dir) / "config.json").is_file())

    @hookimpl
    def raylign_run_end(self, summary, run_dir):
        self._rec("run_end", summary=summary, run_dir=run_dir)

    def named(self, name):
        return [kw for n, kw in self.calls if n == name]


PIPELINE_TOML = """
[run]
name = "observed"
output_dir = "{out}"
pipeline = ["scratch", "pretrain"]
probes = ["Hi?"]
probe_max_tokens = 4

[scratch]
corpus = ["{data}/engine_pre.jsonl"]
vocab_size = 320
size = {{ hidden_size = 32, num_layers = 1, num_heads = 2, num_kv_heads = 1, intermediate_size = 64 }}

[pretrain]
data = ["{data}/engine_pre.jsonl"]
steps = 4
block_size = 32
batch_size = 4
micro_batch_size = 2
eval_every = 2
eval_blocks = 4
checkpoint_every = 2
log_every = 1
"""


@pytest.fixture(scope="module")
def observed(tmp_path_factory, ray_session):
    from rich.console import Console

    from raylign.engine.config import load_config
    from raylign.engine.driver import run_pipeline

    tmp = tmp_path_factory.mktemp("observed")
    path = tmp / "observed.toml"
    path.write_text(PIPELINE_TOML.format(out=tmp / "runs", data=DATA))
    obs = Observer()
    registry = build_registry(extra_plugins=[obs])
    cfg = load_config(path, registry)
    summary = run_pipeline(cfg, registry, console=Console(quiet=True))
    return obs, summary, tmp / "runs" / "observed"


def test_observer_hook_order(observed):
    obs, _, _ = observed
    order = [n for n, _ in obs.calls if n != "step_end"]
    assert order == ["run_start", "stage_start", "stage_end", "stage_start", "checkpoint_saved",
                     "stage_end", "run_end"]


def test_run_start_and_end(observed):
    obs, summary, run_dir = observed
    (start,), (end,) = obs.named("run_start"), obs.named("run_end")
    assert start["run_dir"] == run_dir
    assert start["config"]["run"]["pipeline"] == ["scratch", "pretrain"]
    assert start["config"]["pretrain"]["steps"] == 4
    assert end["run_dir"] == run_dir and end["summary"] == summary
    assert set(end["summary"]["stages"]) == {"scratch", "pretrain"}


def test_stage_start_and_end(observed):
    obs, summary, run_dir = observed
    starts, ends = obs.named("stage_start"), obs.named("stage_end")
    assert [s["stage"] for s in starts] == ["scratch", "pretrain"]
    assert starts[0]["input_model"] is None  # scratch builds the model
    assert starts[1]["input_model"] == run_dir / "models" / "scratch"
    assert all(s["run_dir"] == run_dir for s in starts)
    assert [e["stage"] for e in ends] == ["scratch", "pretrain"]
    assert all(e["has_config"] for e in ends), "stage_end comes after the model dir is written"
    assert ends[1]["model_dir"] == run_dir / "models" / "pretrain"
    assert ends[1]["metrics"] == summary["stages"]["pretrain"]["metrics"]
    assert "eval_loss" in ends[1]["metrics"] and "parameters" in ends[0]["metrics"]


def test_step_end(observed):
    obs, _, run_dir = observed
    steps = obs.named("step_end")
    assert {s["stage"] for s in steps} == {"pretrain"}
    train = [s for s in steps if "loss" in s["metrics"]]
    assert [s["step"] for s in train] == [1, 2, 3, 4]
    assert all(isinstance(v, float) for s in train for k, v in s["metrics"].items())
    from raylign.engine.metrics import read_metrics

    logged = read_metrics(run_dir)
    assert [(r["step"], r.get("loss")) for r in logged] == [(s["step"], s["metrics"].get("loss")) for s in steps]


def test_checkpoint_saved(observed):
    obs, _, run_dir = observed
    (ck,) = obs.named("checkpoint_saved")
    assert ck["stage"] == "pretrain" and ck["step"] == 2
    assert ck["path"] == run_dir / "checkpoints" / "pretrain" / "step_00000002"
    assert ck["complete"], "the hook fires after the atomic rename"


def test_raylign_plugins_starts_without_importing_torch_vllm_or_ray():
    """DESIGN 3 (CLI): ``raylign plugins`` starts without torch or vLLM: registering the built-ins imports
    neither (nor Ray, nor transformers; they are imported where a stage, loss or estimator runs)."""
    import json

    code = ("import json, sys\nfrom raylign.engine.cli import main\nrc = main(['plugins'])\n"
            "print(json.dumps([rc, sorted(m for m in ('torch', 'vllm', 'ray', 'transformers') if m in sys.modules)]))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    *listing, last = out.stdout.splitlines()
    assert json.loads(last) == [0, []]
    listed = {tuple(c.strip() for c in re.split(r"[│┃|]", line) if c.strip())[:2] for line in listing}
    expected = [("stage", "scratch"), ("stage", "pretrain"), ("stage", "sft"), ("stage", "grpo"),
                ("verifier", "math"), ("verifier", "code"), ("loss", "policy_gradient"),
                ("advantage estimator", "grpo")]
    assert [e for e in expected if e not in listed] == [], out.stdout
