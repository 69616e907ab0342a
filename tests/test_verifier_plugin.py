"""The example third-party verifier package (examples/verifier-plugin): pip-installed into this venv, then
seen by a fresh registry, by ``raylign plugins``, by ``raylign verify`` and by the reward fleet's actors (which
rebuild their registry from entry points, so the fleet is created after the install). Uninstalled at the end.
"""
from __future__ import annotations

import importlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from raylign.engine.config import RewardsConfig
from raylign.engine.plugins import build_registry, get_registry

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "verifier-plugin"
DIST = "raylign-shout"


def pip(*args: str) -> None:
    proc = subprocess.run([sys.executable, "-m", "pip", "--disable-pip-version-check", "-q", *args],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.fixture(scope="module")
def shout_installed(tmp_path_factory):
    copy = tmp_path_factory.mktemp("plugin") / "verifier-plugin"  # builds leave no files in the repo
    shutil.copytree(EXAMPLE, copy)
    pip("install", "--no-deps", "--no-build-isolation", str(copy))
    importlib.invalidate_caches()
    get_registry.cache_clear()  # this process may have built its registry before the install
    try:
        yield
    finally:
        pip("uninstall", "-y", DIST)
        importlib.invalidate_caches()
        get_registry.cache_clear()


def raylign(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "raylign.engine.cli", *args], capture_output=True, text=True,
                          timeout=300)


def test_registry_and_plugins_command_see_the_package(shout_installed):
    reg = build_registry()
    assert {"shout", "shout_ratio"} <= set(reg.names("verifiers"))
    entry = reg.entries["verifiers"]["shout"]
    assert (entry.package, entry.plugin) == (DIST, "shout")
    proc = raylign("plugins")
    assert proc.returncode == 0, proc.stderr
    lines = [line for line in proc.stdout.splitlines() if "shout" in line]
    assert any("shout_ratio" in line and DIST in line for line in lines), proc.stdout


def test_raylign_verify_scores_with_the_plugin(shout_installed, tmp_path):
    src = tmp_path / "shout.jsonl"
    src.write_text('{"completion": "HELLO", "n": 1}\n{"completion": "hello", "n": 2}\n')
    out = tmp_path / "out.jsonl"
    proc = raylign("verify", "shout", "--input", str(src), "--output", str(out), "--workers", "1")
    assert proc.returncode == 0, proc.stderr
    got = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(g["n"], g["reward"], g["status"], g["error"]) for g in got] == [(1, 1.0, "ok", None),
                                                                          (2, 0.0, "ok", None)]


def test_reward_fleet_routes_to_the_plugin(shout_installed, ray_session):
    from raylign.engine.rewards import RewardFleet

    fleet = RewardFleet(RewardsConfig(num_workers=1, timeout_s=30.0), default_verifier="shout",
                        verifier_options={"shout_ratio": {"min_letters": 3}}, procs_per_actor=1)
    try:
        verdicts = fleet.score([
            {"completion": "LOUD", "task": {}},
            {"completion": "quiet", "task": {}},
            {"completion": "HAlf", "task": {"verifier": "shout_ratio"}},
            {"completion": "Hi", "task": {"verifier": "shout_ratio"}},  # fewer than min_letters=3
        ])
    finally:
        fleet.shutdown()
    assert [(v.reward, v.status) for v in verdicts] == [(1.0, "ok"), (0.0, "ok"), (0.5, "ok"), (0.0, "invalid")]
    assert verdicts[2].details == {"letters": 4, "upper": 2}
