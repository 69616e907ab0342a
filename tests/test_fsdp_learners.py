"""Sharded data-parallel learners (``[ray] learner_strategy = "fsdp2"``): 2 FSDP2 ranks give what 1 learner gives.

Real Ray actors, a real gloo group and torch's FSDP2 on CPU against one plain learner (in this process: no actor to
start), on the session's tiny model (tied embeddings, so the
sync's alias is exercised): the same three steps as tests/test_dp_learners.py leave the same parameters and
metrics, forward-only calls with fewer micro-batches than ranks (empty passes keep the ranks in step), the weight
sync gathers one whole copy (rank 0's; the other rank keeps nothing), a critic (two FSDP roots: its body and its
head) scores and trains the same, and a checkpoint written by the sharded group is a single learner's file: it
restores the group and a plain learner alike, and the next step is the same on both.
"""
from __future__ import annotations

import json

import pytest
import torch

from test_dp_learners import TOL, _max_diff, _sequences, _spec, _steps


def _sharded(model_dir, head: str = "lm", pack: str = "none"):
    """A 2-rank FSDP2 group behind one handle."""
    from dataclasses import replace

    from raylign.engine.learner_group import start_learner_group
    from raylign.engine.learner_handle import LearnerHandle
    from raylign.engine.plugins import build_registry

    actors = start_learner_group(replace(_spec(model_dir, head, pack), strategy="fsdp2"), 2, num_cpus=0.5)
    return LearnerHandle(actors, build_registry(), role="policy" if head == "lm" else "critic", head=head)


def _plain(model_dir, head: str = "lm", pack: str = "none"):
    """One plain learner in this process (the same spec; this process keeps its torch threads)."""
    from raylign.engine.learner import Learner

    threads = torch.get_num_threads()
    try:
        return Learner(_spec(model_dir, head, pack))
    finally:
        torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def lm_pair(ray_session, tiny_model_dir):
    """One plain learner and a 2-rank FSDP2 group on the tiny model (shared by this module's lm tests)."""
    two = _sharded(tiny_model_dir)
    yield _plain(tiny_model_dir), two
    two.kill()


def _flat(parts) -> tuple[dict[str, torch.Tensor], list]:
    """The tensors of a flat sync's parts (FlatWeights, or ObjectRefs of them), and the parts."""
    import ray

    from raylign.engine.flat_weights import flat_tensors

    parts = [p if hasattr(p, "entries") else ray.get(p) for p in parts]
    return {name: t.clone() for name, t in flat_tensors(parts)}, parts


def test_two_fsdp2_learners_take_the_same_update_as_one_and_sync_one_copy(lm_pair, tiny_model_dir, tmp_path):
    import ray

    from raylign.engine.modeling import load_model, load_tokenizer

    batch = _sequences(load_tokenizer(tiny_model_dir))
    one, two = lm_pair
    assert not one.sharded and two.sharded
    w0 = one.weights()
    assert _max_diff(w0, ray.get(two.weights_ref())) == 0.0  # the gathered start is the same model
    for micro, loss, options in _steps(batch):  # the last step: one micro-batch, rank 1 runs an empty pass
        m1 = one.train_step(micro, loss, options)
        m2 = two.train_step(micro, loss, options)
        assert m1.keys() == m2.keys()
        for k in m1.keys() - {"learner_seconds"}:
            assert m2[k] == pytest.approx(m1[k], rel=TOL, abs=TOL), (loss, k, m1[k], m2[k])
    assert two.version == 3

    w1, w2 = one.weights(), ray.get(two.weights_ref())
    assert _max_diff(w1, w0) > 100 * TOL and _max_diff(w2, w1) < TOL  # moved, and as far on 2 shards as on 1
    assert ray.get(two._followers) == [None]  # the sync's one copy: rank 1 took part in the gathers, kept none

    flat1, _ = _flat([one.weights_flat("auto", i, 3) for i in range(3)])  # the flat transport, in parts, as a sync sends it
    flat2, parts = _flat(two.weights_flat_refs("auto", 3))
    assert flat2.keys() == w1.keys() and _max_diff(flat2, flat1) < TOL
    assert parts[0].aliases == {"lm_head.weight"}  # tied weights travel once
    assert sum(p.nbytes for p in parts) == sum(t.numel() * 4 for k, t in w1.items() if k != "lm_head.weight")

    for micro in (batch.micro_batches(2), batch.micro_batches(6)):  # 3 and 1 micro-batches over 2 ranks
        lp1, lp2 = one.token_logprobs(list(micro)), two.token_logprobs(micro)
        assert max(float((a - b).abs().max()) for a, b in zip(lp1, lp2)) < TOL
        e1, e2 = one.eval_loss(micro, "next_token"), two.eval_loss(micro, "next_token")
        assert e2["tokens"] == e1["tokens"] and e2["loss"] == pytest.approx(e1["loss"], rel=TOL)
    canary = batch.input_ids[0, :12].tolist()
    assert two.sequence_logprobs(canary) == pytest.approx(one.sequence_logprobs(canary), abs=TOL)
    assert two.generate(["What is 12+30?"], 6) == one.generate(["What is 12+30?"], 6)

    out = two.save_model(tmp_path / "model")  # an HF dir of the plain class, loadable as any other
    assert json.loads((out / "config.json").read_text())["architectures"] == ["Qwen2ForCausalLM"]
    saved = load_model(out).state_dict()
    assert _max_diff({k: saved[k] for k in w2}, w2) == 0.0


def test_two_fsdp2_critics_score_and_train_as_one(ray_session, tiny_model_dir):
    """A value learner calls its body and its head, not the model's forward: each is its own FSDP root."""
    import ray

    from raylign.engine.modeling import load_tokenizer

    batch = _sequences(load_tokenizer(tiny_model_dir))
    g = torch.Generator().manual_seed(1)
    batch.extras = {"returns": torch.randn(batch.input_ids.shape, generator=g),
                    "old_values": 0.1 * torch.randn(batch.input_ids.shape, generator=g)}
    micro = batch.micro_batches(2)
    one, two = _plain(tiny_model_dir, "value", "sort"), _sharded(tiny_model_dir, "value", "sort")
    try:
        for mbs in (micro, batch.micro_batches(6)):
            v1, v2 = one.values(mbs), two.values(mbs)
            assert max(float((a - b).abs().max()) for a, b in zip(v1, v2)) < TOL
        options = {"clip": 0.2, "norm_tokens": batch.loss_tokens}
        m1, m2 = one.train_step(micro, "value_clipped", options), two.train_step(micro, "value_clipped", options)
        for k in m1.keys() - {"learner_seconds"}:
            assert m2[k] == pytest.approx(m1[k], rel=TOL, abs=TOL), k
        assert _max_diff(one.weights(), ray.get(two.weights_ref())) < TOL
    finally:
        two.kill()


def test_a_sharded_checkpoint_is_a_single_learners_and_restores_either_strategy(lm_pair, tiny_model_dir, tmp_path):
    """The group writes learner.pt from whole tensors (rank 0); a plain learner and the group both restore it
    (weights, AdamW moments, schedule, version) and take the same next step."""
    import ray

    from raylign.engine.modeling import load_tokenizer

    batch = _sequences(load_tokenizer(tiny_model_dir))
    (micro, loss, options), (micro2, loss2, options2) = _steps(batch)[:2]
    one, two = lm_pair
    two.train_step(micro, loss, options)
    two.save_state(tmp_path)
    state = torch.load(tmp_path / "learner.pt", map_location="cpu", weights_only=False)
    assert not any(type(t).__name__ == "DTensor" for t in state["model"].values())
    moments = [s["exp_avg"] for s in state["optimizer"]["state"].values()]
    assert moments and not any(type(t).__name__ == "DTensor" for t in moments)
    whole = sum(t.numel() for k, t in state["model"].items() if k != "lm_head.weight")  # tied to the embeddings
    assert sum(m.numel() for m in moments) == whole  # every parameter's moments, whole (not one rank's shards)

    two.train_step(micro2, loss2, options2)  # past the checkpoint, then back
    version = two.version
    assert two.load_state(tmp_path) == one.load_state(str(tmp_path)) == version - 1
    m2, m1 = two.train_step(micro2, loss2, options2), one.train_step(micro2, loss2, options2)
    for k in m1.keys() - {"learner_seconds"}:
        assert m2[k] == pytest.approx(m1[k], rel=TOL, abs=TOL), k
    assert _max_diff(ray.get(two.weights_ref()), one.weights()) < TOL

    one.train_step(micro, loss, options)  # and the other way: the plain learner's checkpoint into the group
    (tmp_path / "plain").mkdir()
    one.save_state(str(tmp_path / "plain"))
    two.load_state(tmp_path / "plain")
    assert _max_diff(ray.get(two.weights_ref()), one.weights()) == 0.0


def test_an_unknown_strategy_fails_naming_the_key():
    from raylign.engine.config import build_config
    from raylign.engine.errors import ConfigError
    from raylign.engine.plugins import build_registry

    with pytest.raises(ConfigError, match=r"ray\.learner_strategy"):
        build_config({"run": {"name": "x", "pipeline": ["sft"], "base_model": "m"},
                      "ray": {"learners": 2, "learner_strategy": "zero3"}, "sft": {"data": ["a.jsonl"]}},
                     build_registry())


def test_plan_counts_a_sharded_learners_memory_per_rank(tmp_path):
    """An ~8B model trained on 4 GPUs: 120 GiB of weights, gradients and AdamW state is a full copy per rank with
    ddp (it does not fit a 80 GiB GPU) and a quarter per rank with fsdp2 (it does)."""
    from raylign.engine.cluster_view import ClusterView, Gpu, Node
    from raylign.engine.config import build_config
    from raylign.engine.plan import plan_stages, problems, render
    from raylign.engine.plugins import build_registry

    big = tmp_path / "big"  # a config.json alone (no weights): counted by the formula
    big.mkdir()
    (big / "config.json").write_text(json.dumps({
        "model_type": "llama", "hidden_size": 4096, "num_hidden_layers": 32, "num_attention_heads": 32,
        "num_key_value_heads": 8, "intermediate_size": 14336, "vocab_size": 128256, "tie_word_embeddings": False,
        "torch_dtype": "bfloat16"}))
    node = Node("gpu0", {"CPU": 32, "GPU": 4}, None, 512.0, (Gpu("NVIDIA A100", 80.0),) * 4)
    registry = build_registry()
    learners = {}
    for strategy in ("ddp", "fsdp2"):
        cfg = build_config({"run": {"pipeline": ["sft"], "base_model": str(big)}, "sft": {"data": ["a.jsonl"]},
                            "ray": {"learners": 4, "learner_num_gpus": 1, "learner_strategy": strategy}}, registry)
        (sft,) = plan_stages(cfg, registry, ClusterView("test", (node,)))
        (learners[strategy],) = sft.roles
        assert learners[strategy].actors == 4
        needs = [p for p in problems([sft]) if "learner needs" in p]
        assert bool(needs) == (strategy == "ddp"), needs
    params = sft.model.params
    assert learners["ddp"].memory == params * 16 and learners["fsdp2"].memory == params * 16 / 4
    assert "sharded over the 4 fsdp2 ranks" in render([sft], ClusterView("test", (node,)))
