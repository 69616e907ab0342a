"""Session-wide fixtures: one local Ray with a fixed CPU count, one tiny model built from scratch."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

RAY_CPUS = 8  # logical CPUs of the test cluster (over-subscribed on a 2-core machine on purpose)

CORPUS = [
    "What is an LLM? An LLM is a large language model that predicts the next token.",
    "What is 12+30? 12+30 is 42.",
    "The quick brown fox jumps over the lazy dog.",
    "def add(a, b):\n    return a + b\n",
] * 50


@pytest.fixture(scope="session")
def ray_session():
    """The session's local Ray (started once)."""
    from raylign.engine.cluster import init_ray
    from raylign.engine.config import RayConfig

    ray = init_ray(RayConfig(num_cpus=RAY_CPUS))
    yield ray
    ray.shutdown()


def make_tiny_model(directory: Path, seed: int = 0, vocab_size: int = 384) -> Path:
    """A random-weight Qwen2 with a BPE tokenizer trained on CORPUS, saved in HF format."""
    from raylign.engine.modeling import ModelSize, build_qwen2, save_model_dir
    from raylign.engine.tokenizer import train_bpe

    tok = train_bpe(CORPUS, vocab_size)
    size = ModelSize(hidden_size=64, num_layers=2, num_heads=2, num_kv_heads=1, intermediate_size=128,
                     max_position_embeddings=512)
    model = build_qwen2(size, tok, seed=seed)
    return save_model_dir(model, tok, directory)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """A session-wide tiny from-scratch model directory (read-only: copy it before changing it)."""
    return make_tiny_model(tmp_path_factory.mktemp("tiny") / "model")


LAUNCHER = """#!{python}
import sys
from importlib.metadata import entry_points

(script,) = entry_points(group="console_scripts", name="raylign")
sys.exit(script.load()())
"""


def frozen_learners(dirs: dict[str, Path], **actor_options) -> dict:
    """A frozen (scoring-only) learner actor per model dir, keyed like ``dirs``, each with that key as its role
    (weight-sync tests push their weights to the engines); ``actor_options`` go to ``start_learner``."""
    from raylign.engine.learner import LearnerSpec, start_learner
    from raylign.engine.learner_handle import LearnerHandle
    from raylign.engine.optim import OptimConfig
    from raylign.engine.plugins import build_registry

    handles = {}
    for name, path in dirs.items():
        spec = LearnerSpec(model_dir=str(path), optim=OptimConfig(), total_steps=1, seed=0, device="cpu",
                           torch_threads=1, trainable=False)
        handles[name] = LearnerHandle(start_learner(spec, **actor_options), build_registry(), role=name,
                                      trainable=False)
    return handles


def make_plugin_env(directory: Path, *projects: Path) -> Path:
    """A throwaway environment in ``directory`` that sees this one's packages (torch, vLLM, raylign) and has
    ``projects`` (source trees of plugin packages) pip-installed into it alone; returns its ``bin`` folder, which
    holds ``python`` and a ``raylign`` command. Tests install plugins here, never into the shared environment.

    A venv without pip whose site-packages has a ``.pth`` that adds this environment's site-packages after its
    own; the projects are copied first, so builds leave no files in the repository. Ray actors started by a
    process of this environment run its interpreter, so they load the same entry points.
    """
    venv = Path(directory) / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    bin_dir = venv / "bin"
    own = subprocess.run([bin_dir / "python", "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                         capture_output=True, text=True, check=True, timeout=60).stdout.strip()
    base = sysconfig.get_paths()["purelib"]
    Path(own, "_raylign_test_base.pth").write_text(f"import site; site.addsitedir({base!r})\n")
    (bin_dir / "raylign").write_text(LAUNCHER.format(python=bin_dir / "python"))
    (bin_dir / "raylign").chmod(0o755)
    for i, project in enumerate(projects):
        copy = Path(directory) / f"src{i}" / Path(project).name
        shutil.copytree(project, copy)
        proc = subprocess.run([bin_dir / "python", "-m", "pip", "--disable-pip-version-check", "--no-input",
                               "install", "-q", "--no-deps", "--no-build-isolation", "--ignore-installed",
                               str(copy)], capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stdout + proc.stderr
    return bin_dir


# ---------------------------------------------------------------------------------------------- CLI runs
# A run started in a session of its own, so that a crash can be simulated by killing its whole process group
# (driver and its local Ray): no clean-up code runs, as on a machine crash.


def start_run(raylign: str, workdir: Path, args: list[str], log: str) -> subprocess.Popen:
    """``raylign run cfg.toml *args`` in ``workdir``; stdout/stderr in ``workdir/<log>.out`` / ``.err``."""
    out = open(workdir / f"{log}.out", "w")
    err = open(workdir / f"{log}.err", "w")
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "RAY_DEDUP_LOGS": "0"}
    return subprocess.Popen([raylign, "run", "cfg.toml", *args], cwd=workdir, stdout=out, stderr=err, env=env,
                            start_new_session=True)


def kill_run(proc: subprocess.Popen) -> None:
    """SIGKILL the run's whole process group."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait(timeout=60)


def finish_run(proc: subprocess.Popen, workdir: Path, log: str, timeout: float) -> None:
    """Wait for the run; fail the test with the tail of its stderr if it did not exit 0."""
    try:
        rc = proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        kill_run(proc)
        raise
    if rc != 0:
        pytest.fail(f"raylign run ({log}) exited {rc}:\n{(workdir / f'{log}.err').read_text()[-3000:]}")


def write_plugin_project(directory: Path, dist: str, entry: str, module: str, source: str) -> Path:
    """A one-module plugin package ``dist`` (its ``module`` declared as entry point ``entry`` of the ``raylign``
    group) in ``directory/dist``, ready for :func:`make_plugin_env`."""
    src = Path(directory) / dist
    src.mkdir(parents=True)
    (src / "pyproject.toml").write_text(PLUGIN_PYPROJECT.format(dist=dist, entry=entry, module=module))
    (src / f"{module}.py").write_text(source)
    return src


PLUGIN_PYPROJECT = """
[build-system]
requires = ["setuptools>=61"]
build-backend = "setuptools.build_meta"

[project]
name = "{dist}"
version = "0.0.1"
description = "a throwaway raylign plugin (raylign's test suite installs it into a temporary environment)"

[project.entry-points.raylign]
{entry} = "{module}"

[tool.setuptools]
py-modules = ["{module}"]
"""

