"""DESIGN 3 (CLI): ``raylign verify`` and ``raylign plugins`` start without torch, vLLM, transformers or Ray.

The real commands run in subprocesses with a ``sitecustomize`` on ``PYTHONPATH`` that notes, in a log file,
every import of a watched module by any process of the command: the CLI itself, the verifier pool's zygote
(which loads every plugin's registration module) and the workers it forks. A watched raylign module that those
processes must import is the control that the hook ran where it matters.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

RAYLIGN = str(Path(sys.executable).with_name("raylign"))
HEAVY = ("torch", "vllm", "transformers", "ray")
CONTROL = "raylign.verifiers.math.verifier"  # imported wherever the entry points are loaded

WATCHER = textwrap.dedent('''
    """Test hook: log "pid module" for each watched import (names in RAYLIGN_TEST_WATCH) to RAYLIGN_TEST_WATCH_LOG."""
    import os
    import sys

    _LOG = os.environ.get("RAYLIGN_TEST_WATCH_LOG")
    _WATCHED = set(filter(None, os.environ.get("RAYLIGN_TEST_WATCH", "").split(",")))


    class _Watch:
        def find_spec(self, name, path=None, target=None):
            if _LOG and name in _WATCHED:
                with open(_LOG, "a") as f:
                    f.write(f"{os.getpid()} {name}\\n")
            return None  # never changes what is imported


    if _LOG:
        sys.meta_path.insert(0, _Watch())
''')


def run_watched(args: list[str], tmp_path: Path) -> tuple[subprocess.CompletedProcess, int, list, float]:
    """Run ``raylign ARGS`` watched; returns (result, its pid, [(pid, module)] imports seen, wall seconds)."""
    hook = tmp_path / "hook"
    hook.mkdir(exist_ok=True)
    (hook / "sitecustomize.py").write_text(WATCHER)
    log = tmp_path / "imports.log"
    log.write_text("")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(hook), os.environ.get("PYTHONPATH")])),
           "RAYLIGN_TEST_WATCH": ",".join((*HEAVY, CONTROL)), "RAYLIGN_TEST_WATCH_LOG": str(log)}
    t0 = time.monotonic()
    proc = subprocess.Popen([RAYLIGN, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            cwd=tmp_path)
    out, err = proc.communicate(timeout=300)
    wall = time.monotonic() - t0
    seen = [(int(pid), name) for pid, name in (line.split() for line in log.read_text().splitlines())]
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err), proc.pid, seen, wall


def _rows(path: Path, rows: list[dict]) -> str:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


@pytest.mark.parametrize("verifier,row", [
    ("math", {"completion": r"The answer is \boxed{42}", "answer": "42"}),
    ("code", {"completion": "def f():\n    return 1\n", "tests": ["assert f() == 1"]}),
])
def test_verify_imports_no_heavy_module_in_any_process(tmp_path, verifier, row):
    src = _rows(tmp_path / "in.jsonl", [row])
    result, pid, seen, wall = run_watched(["verify", verifier, "--input", src, "--output", "out.jsonl",
                                           "--workers", "1"], tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads((tmp_path / "out.jsonl").read_text())["reward"] == 1.0
    assert [(p, name) for p, name in seen if name in HEAVY] == []
    assert any(name == CONTROL and p != pid for p, name in seen), seen  # the hook ran in the pool's processes
    print(f"raylign verify {verifier}, one row, cold: {wall:.2f} s")


def test_plugins_imports_no_heavy_module(tmp_path):
    result, pid, seen, wall = run_watched(["plugins"], tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "grpo" in result.stdout and "math" in result.stdout
    assert [(p, name) for p, name in seen if name in HEAVY] == []
    assert (pid, CONTROL) in seen  # every entry point was loaded in the command's own process
    print(f"raylign plugins, cold: {wall:.2f} s")
