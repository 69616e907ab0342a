"""The example third-party verifier package (examples/verifier-plugin), pip-installed into a throwaway
environment (``make_plugin_env``; the shared one is never touched), then seen there by a fresh registry, by
``raylign plugins``, by ``raylign verify`` and by the reward fleet's actors (which rebuild their registry from
entry points, and run that environment's interpreter).
"""
from __future__ import annotations

import importlib.metadata
import json
import subprocess
import textwrap
from pathlib import Path

import pytest

from conftest import make_plugin_env

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "verifier-plugin"
DIST = "raylign-shout"


@pytest.fixture(scope="module")
def env(tmp_path_factory) -> Path:
    """The ``bin`` folder (``python``, ``raylign``) of a throwaway environment with the package installed."""
    return make_plugin_env(tmp_path_factory.mktemp("shout_env"), EXAMPLE)


def run(env: Path, program: str, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    proc = subprocess.run([str(env / program), *args], capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    return proc


def test_the_shared_environment_never_sees_the_package(env):
    assert DIST not in {d.metadata["Name"] for d in importlib.metadata.distributions()}


def test_registry_and_plugins_command_see_the_package(env):
    script = textwrap.dedent("""
        import json
        from raylign.engine.plugins import build_registry
        reg = build_registry()
        entry = reg.entries["verifiers"]["shout"]
        print(json.dumps({"names": reg.names("verifiers"), "from": [entry.package, entry.plugin]}))
    """)
    got = json.loads(run(env, "python", "-c", script).stdout.splitlines()[-1])
    assert {"shout", "shout_ratio"} <= set(got["names"]) and got["from"] == [DIST, "shout"]
    out = run(env, "raylign", "plugins").stdout
    lines = [line for line in out.splitlines() if "shout" in line]
    assert any("shout_ratio" in line and DIST in line for line in lines), out


def test_raylign_verify_scores_with_the_plugin(env, tmp_path):
    src = tmp_path / "shout.jsonl"
    src.write_text('{"completion": "HELLO", "n": 1}\n{"completion": "hello", "n": 2}\n')
    out = tmp_path / "out.jsonl"
    run(env, "raylign", "verify", "shout", "--input", str(src), "--output", str(out), "--workers", "1")
    got = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(g["n"], g["reward"], g["status"], g["error"]) for g in got] == [(1, 1.0, "ok", None),
                                                                          (2, 0.0, "ok", None)]


FLEET_SCRIPT = textwrap.dedent("""
    import json
    import sys

    import ray

    from raylign.engine.cluster import actor_env
    from raylign.engine.config import RayConfig, RewardsConfig
    from raylign.engine.rewards import RewardFleet

    # Join the session's Ray; this job's actors run this environment's interpreter.
    ray.init(address=sys.argv[1], runtime_env={"py_executable": sys.executable, "env_vars": actor_env(RayConfig())})
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
    print(json.dumps([[v.reward, v.status, v.details] for v in verdicts]))
""")


def test_reward_fleet_routes_to_the_plugin(env, ray_session):
    address = ray_session.get_runtime_context().gcs_address
    got = json.loads(run(env, "python", "-c", FLEET_SCRIPT, address).stdout.splitlines()[-1])
    assert [(r, s) for r, s, _ in got] == [(1.0, "ok"), (0.0, "ok"), (0.5, "ok"), (0.0, "invalid")]
    assert got[2][2] == {"letters": 4, "upper": 2}
