"""Session-wide fixtures: one local Ray with a fixed CPU count, one tiny model built from scratch."""
from __future__ import annotations

import os
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
