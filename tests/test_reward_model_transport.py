"""Reward-model actors get their model through Ray's object store, never from a path on the driver's disk.

The driver puts the model directory (config, tokenizer files, weights, ``reward_stats.json``) into the object
store; the directory is then deleted, so an actor that opened the driver's path would fail to start. The actors'
scores must equal those of the same model loaded in this process with plain transformers.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from raylign.engine.model_files import put_model_dir, ship_model_option
from raylign.engine.rewards.providers import ProviderPool

STATS = {"mean": 0.25, "std": 2.0}
SAMPLES = [{"completion": "An LLM is a large language model.", "task": {"prompt": "What is an LLM?"}},
           {"completion": "42.", "task": {"prompt": [{"role": "user", "content": "What is 12+30?"}]}},
           {"completion": "x", "task": {}},  # no prompt: invalid, not a score
           {"completion": "The quick brown fox jumps over the lazy dog.", "task": {"prompt": "What is a fox?"}},
           {"completion": "def add(a, b):\n    return a + b", "task": {"prompt": "Write add."}}]


@pytest.fixture(scope="module")
def reward_model_dir(tiny_model_dir, tmp_path_factory) -> Path:
    """A sequence-classification model with one label (the tiny model's body, a seeded random head) and the
    stats file the ``reward_model`` stage writes beside it."""
    from raylign.engine.modeling import load_tokenizer, load_value_model, save_model_dir

    out = save_model_dir(load_value_model(tiny_model_dir, seed=3), load_tokenizer(tiny_model_dir),
                         tmp_path_factory.mktemp("rm") / "reward_model")
    (out / "reward_stats.json").write_text(json.dumps(STATS))
    return out


@torch.no_grad()
def transformers_scores(model_dir: Path) -> list[float | None]:
    """Each sample's normalized score from ``AutoModelForSequenceClassification`` in this process: the chat
    encoded as the provider encodes it, cut after the reply's end marker, one unpadded sequence per forward."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from raylign.engine.chat_format import conversation, encode_conversation, reply_end

    tok = AutoTokenizer.from_pretrained(str(model_dir))
    model = AutoModelForSequenceClassification.from_pretrained(str(model_dir), dtype=torch.float32).eval()
    out: list[float | None] = []
    for s in SAMPLES:
        prompt = s["task"].get("prompt")
        if prompt is None:
            out.append(None)
            continue
        ids, mask = encode_conversation(tok, conversation(prompt, s["completion"]))
        ids = ids[: reply_end(tok, ids, mask) + 1]
        assert ids[-1] != model.config.pad_token_id  # so transformers pools at the last token, as the provider reads
        raw = float(model(input_ids=torch.tensor([ids])).logits[0, 0])
        out.append((raw - STATS["mean"]) / STATS["std"])
    return out


def check_scores(verdicts, expected) -> None:
    assert [v.status for v in verdicts] == ["ok", "ok", "invalid", "ok", "ok"]
    got = [v.reward if v.status == "ok" else None for v in verdicts]
    assert got[2] is None and expected[2] is None
    assert [g for g in got if g is not None] == pytest.approx([e for e in expected if e is not None], abs=1e-5)


def test_reward_actors_score_a_model_that_left_the_driver_disk(ray_session, reward_model_dir, tmp_path):
    src = shutil.copytree(reward_model_dir, tmp_path / "rm")
    expected = transformers_scores(src)
    files = put_model_dir(src)
    assert {"config.json", "model.safetensors", "reward_stats.json"} <= set(files)
    shutil.rmtree(src)  # only the object store has the model now: an actor that opened the path could not start
    pool = ProviderPool("reward_model", {"model": files, "batch_size": 2}, replicas=2, num_cpus=0.5, batch_size=2)
    try:
        where = ray_session.get([a.__ray_call__.remote(lambda self: str(self.model_dir)) for a in pool.actors])
        assert all(Path(w).name.startswith("raylign-provider-") for w in where)
        check_scores(pool.score(SAMPLES), expected)
    finally:
        pool.shutdown()
    assert not any(Path(w).exists() for w in where)  # the actors removed their copies


def test_a_model_dir_option_is_shipped_and_a_hub_id_is_not(ray_session, reward_model_dir):
    shipped = ship_model_option({"model": str(reward_model_dir), "normalize": True})
    assert shipped["normalize"] is True and set(shipped["model"]) == {p.name for p in reward_model_dir.iterdir()}
    assert all(isinstance(ref, ray_session.ObjectRef) for ref in shipped["model"].values())
    assert ship_model_option({"model": "org/not-a-local-dir"}) == {"model": "org/not-a-local-dir"}
    assert ship_model_option({"other": 1}) == {"other": 1}
    # a path, as a stage passes it, reaches the actor as its own local copy
    pool = ProviderPool("reward_model", {"model": str(reward_model_dir)}, num_cpus=0.5)
    try:
        [where] = ray_session.get([a.__ray_call__.remote(lambda self: str(self.model_dir)) for a in pool.actors])
        assert Path(where) != reward_model_dir and not (Path(where) / "model.safetensors").exists()
        check_scores(pool.score(SAMPLES), transformers_scores(reward_model_dir))
    finally:
        pool.shutdown()
