"""The ``collective`` weight sync (``rollout.weight_transport = "collective"``): the learner's rank 0 broadcasts
its packed weights to every engine worker in a process group of their own (engine/weight_group.py).

On this CPU machine the group is gloo, tested for real: real Ray, real vLLM engines, real learner actors. The
NCCL variant (GPU engines) is the last test, which runs only where CUDA sees two GPUs.

- fleet level: a 2-engine fleet synced by a frozen learner (the same weights as the flat sync, to float
  rounding; bfloat16; the group formed once per learner, not per sync), by a 2-rank FSDP2 group (only rank 0,
  which gathers the weights, is in the weight group), and a worker SIGKILLed and replaced (every rank joins a
  fresh group on a fresh port, the replacement gets the current weights from the learner's kept buffers, and
  the next sync uses the new group);
- a short GRPO run with the collective transport whose every per-step metric but timings equals the same run's
  with the flat transport, the canary passing each step.
"""
from __future__ import annotations

import json
import logging
import os
import signal
import time
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from raylign.engine.config import RolloutConfig, from_dict
from raylign.engine.errors import ConfigError
from raylign.engine.flat_weights import pack_weights
from raylign.engine.weight_group import CollectivePayload, plan_buckets
from raylign.engine.weight_sync import (CollectiveTransport, FlatTransport, ShmFileTransport, push_weights,
                                        select_transport)

from conftest import frozen_learners, make_tiny_model

PROBES = [[5, 40, 41, 42, 300, 301, 9, 17, 200, 100, 7], [12, 13, 14, 15, 16, 17, 18, 19, 20]]


# ---------------------------------------------------------------------------------------------- no engine


def test_the_key_selects_the_transport_and_auto_keeps_todays():
    assert isinstance(select_transport(RolloutConfig()), FlatTransport)
    assert isinstance(select_transport(RolloutConfig(num_gpus=1)), ShmFileTransport)
    cpu = select_transport(RolloutConfig(weight_transport="collective"))
    gpu = select_transport(RolloutConfig(weight_transport="collective", num_gpus=1))
    assert isinstance(cpu, CollectiveTransport) and (cpu.backend, gpu.backend) == ("gloo", "nccl")
    assert isinstance(select_transport(RolloutConfig(weight_transport="shm_file")), ShmFileTransport)


def test_impossible_transport_combinations_are_one_line_config_errors():
    from raylign.engine.config import build_config
    from raylign.engine.plugins import build_registry

    with pytest.raises(ConfigError, match=r"rollout.weight_transport: must be one of"):
        from_dict(RolloutConfig, {"weight_transport": "nccl"}, "rollout")
    with pytest.raises(ConfigError, match=r"^rollout: weight_transport = 'flat' .* tensor_parallel_size = 2"):
        from_dict(RolloutConfig, {"weight_transport": "flat", "tensor_parallel_size": 2, "num_gpus": 2}, "rollout")
    with pytest.raises(ConfigError, match=r"^rollout: weight_transport = 'collective' .* num_gpus = 0.5"):
        from_dict(RolloutConfig, {"weight_transport": "collective", "num_gpus": 0.5}, "rollout")
    data = {"run": {"pipeline": ["grpo"]}, "rollout": {"weight_transport": "collective", "num_gpus": 1},
            "grpo": {"data": ["x.jsonl"]}}
    with pytest.raises(ConfigError, match=r"^rollout.weight_transport = 'collective' .* ray.learner_num_gpus = 1") as e:
        build_config(data, build_registry())
    assert "\n" not in str(e.value)
    data["ray"] = {"learner_num_gpus": 1, "placement": "colocated"}
    with pytest.raises(ConfigError, match=r"^rollout.weight_transport = 'collective' .* ray.placement = 'colocated'"):
        build_config(data, build_registry())


def test_buckets_cover_every_byte_once_and_cut_between_tensors():
    state = {"a": torch.randn(10, 10), "b": torch.randn(30), "tied": None, "c": torch.randn(5, 4),
             "steps": torch.tensor([1, 2, 3])}
    state["tied"] = state["a"]
    fw = pack_weights(state)
    sizes = tuple((d, b.nbytes // getattr(torch, d).itemsize) for d, b in fw.buffers.items())
    buckets = plan_buckets(sizes, fw.entries, fw.aliases, bucket_bytes=4 * 120)
    assert buckets == (("float32", 0, 100), ("float32", 100, 150), ("int64", 0, 3))  # a alone, then b + c
    one = plan_buckets(sizes, fw.entries, fw.aliases, bucket_bytes=4)  # smaller than any tensor: one per tensor
    assert [b[2] - b[1] for b in one] == [100, 30, 20, 3]
    payload = CollectivePayload(fw.entries, fw.aliases, sizes, buckets, version=1)
    assert payload.nbytes == fw.nbytes and payload.only([2]).load_ranks == {2}


# ---------------------------------------------------------------------------------------------- real engines


def engine_dir(directory: Path, seed: int) -> Path:
    from raylign.engine.rollout import check_engine_model

    return check_engine_model(make_tiny_model(directory, seed=seed))


@pytest.fixture(scope="module")
def dirs(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("weight_group")
    return {"base": engine_dir(root / "base", seed=0), "other": engine_dir(root / "other", seed=1)}


@pytest.fixture(scope="module")
def learners(ray_session, dirs):
    handles = frozen_learners(dirs, num_cpus=0.5)
    yield handles
    for h in handles.values():
        h.kill()


@pytest.fixture(scope="module")
def fleet(ray_session, dirs):
    from raylign.engine.rollout import RolloutFleet

    cfg = RolloutConfig(num_workers=2, num_cpus=1.0, kv_cache_gb=1, max_model_len=256, max_num_seqs=16,
                        weight_transport="collective", max_restarts=2)
    f = RolloutFleet(dirs["base"], cfg, seed=0)
    yield f
    f.shutdown()


def engine_logprobs(fleet) -> list[list[list[float]]]:
    """Per worker, its engine's logprobs of each probe sequence (temperature 1), as the canary reads them."""
    import ray

    return [[ray.get(w.prompt_logprobs.remote(ids)) for ids in PROBES] for w in fleet.workers]


def max_diff(engines: list[list[list[float]]], reference: list[list[float]]) -> float:
    return max(abs(x - y) for per_engine in engines for u, v in zip(per_engine, reference) for x, y in zip(u, v))


@pytest.mark.vllm
def test_collective_sync_gives_every_engine_the_learners_logprobs(fleet, learners, dirs):
    from raylign.engine.modeling import load_model

    transport = fleet.transport
    assert isinstance(transport, CollectiveTransport) and transport.backend == "gloo"
    before = engine_logprobs(fleet)
    report = push_weights(learners["other"], fleet)
    assert report.transport == "collective" and report.version == fleet.version == learners["other"].version
    assert report.canary_max_abs_diff is not None and report.canary_max_abs_diff < 1e-4
    assert 0 < report.learner_seconds <= report.seconds < fleet.cfg.sync_deadline_s
    assert report.bytes == pack_weights(load_model(dirs["other"]).state_dict()).nbytes  # each byte once
    group = transport.group
    assert group.world == 3 and transport.formed == 1  # the learner and the 2 engines
    reference = [learners["other"].sequence_logprobs(ids) for ids in PROBES]
    after = engine_logprobs(fleet)
    assert max_diff(after, reference) < 1e-4  # every engine serves the learner's weights, to float rounding
    assert max(abs(a - b) for e in range(2) for u, v in zip(after[e], before[e]) for a, b in zip(u, v)) > 1e-2

    push_weights(learners["other"], fleet)  # the same learner again: the same group, not a new one
    assert transport.group is group and transport.formed == 1
    report = push_weights(learners["base"], fleet)  # another learner: it becomes rank 0 of a fresh group
    assert transport.formed == 2 and transport.group.port != group.port and report.canary_max_abs_diff < 1e-4


@pytest.mark.vllm
def test_bfloat16_collective_sync_halves_the_bytes(fleet, learners, dirs):
    from raylign.engine.modeling import load_model

    cfg = fleet.cfg
    full = push_weights(learners["base"], fleet).bytes
    fleet.cfg = replace(cfg, sync_dtype="bfloat16")
    try:
        report = push_weights(learners["other"], fleet)
    finally:
        fleet.cfg = cfg
    assert report.bytes * 2 == full and report.canary_max_abs_diff <= cfg.canary_tolerance
    rounded = load_model(dirs["other"]).eval()
    with torch.no_grad():
        for p in rounded.parameters():
            p.copy_(p.to(torch.bfloat16).float())
    reference = [hf_logprobs(rounded, ids) for ids in PROBES]
    assert max_diff(engine_logprobs(fleet), reference) < 1e-4  # the learner's weights rounded to bf16, exactly


@torch.no_grad()
def hf_logprobs(model, token_ids: list[int]) -> list[float]:
    from raylign.engine.ops import token_logprobs

    ids = torch.tensor([token_ids])
    return token_logprobs(model(input_ids=ids).logits, ids)[0, 1:].tolist()


@pytest.mark.vllm
def test_an_fsdp2_group_broadcasts_from_rank_0_alone(ray_session, fleet, dirs):
    """Two FSDP2 ranks hold shards: both take part in the gather, rank 0 alone joins the weight group."""
    from raylign.engine.learner import LearnerSpec
    from raylign.engine.learner_group import start_learner_group
    from raylign.engine.learner_handle import LearnerHandle
    from raylign.engine.optim import OptimConfig
    from raylign.engine.plugins import build_registry

    spec = LearnerSpec(model_dir=str(dirs["other"]), optim=OptimConfig(), total_steps=1, seed=0, device="cpu",
                       torch_threads=1, strategy="fsdp2")
    handle = LearnerHandle(start_learner_group(spec, 2, num_cpus=0.25), build_registry(), role="policy")
    try:
        assert handle.sharded
        report = push_weights(handle, fleet)
        assert report.transport == "collective" and report.canary_max_abs_diff < 1e-4
        assert fleet.transport.group.learner == handle.actors[0] and fleet.transport.group.world == 3
    finally:
        fleet.transport.close()  # the learner is killed next: leave its group first
        handle.kill()


@pytest.mark.vllm
def test_a_sync_issued_while_the_fleet_generates_waits_for_it(fleet, learners):
    """As with max_staleness > 0: the engines serve one call at a time, so the broadcast starts on each engine once
    its generation is done; the generation keeps the version it started with, the sync then lands whole."""
    import threading

    push_weights(learners["base"], fleet)
    version = fleet.version
    out = {}
    gen = threading.Thread(target=lambda: out.update(groups=fleet.generate([[5, 40, 41, 42]] * 8, n=4, max_tokens=48,
                                                                          seed=1)))
    gen.start()
    time.sleep(0.5)
    report = push_weights(learners["other"], fleet)
    gen.join(timeout=120)
    assert report.canary_max_abs_diff < 1e-4 and report.version == fleet.version
    assert {c.weights_version for g in out["groups"] for c in g} == {version}  # sampled before the load


@pytest.mark.vllm
def test_a_replaced_worker_joins_a_fresh_group_and_gets_the_current_weights(fleet, learners):
    transport = fleet.transport
    push_weights(learners["other"], fleet)
    old = transport.group
    version, restarts, formed = fleet.version, fleet.restarts, transport.formed
    os.kill(fleet.info[1]["pid"], signal.SIGKILL)
    time.sleep(1.0)
    groups = fleet.generate([[5, 40, 41, 42]] * 4, n=2, max_tokens=4, seed=3)  # worker 1 replaced on the way
    assert len(groups) == 4 and fleet.restarts == restarts + 1
    log = fleet.restart_log[-1]
    assert log["version"] == version and log["canary_max_abs_diff"] < 1e-4  # the learner's kept buffers
    assert transport.formed == formed + 1 and transport.group is not old and transport.group.port != old.port
    assert transport.group.serves(learners["other"].actor, fleet.workers)
    reference = [learners["other"].sequence_logprobs(ids) for ids in PROBES]
    assert max_diff(engine_logprobs(fleet), reference) < 1e-4  # both engines: the new one and the one kept

    report = push_weights(learners["base"], fleet)  # the next sync: every rank of a fresh group, new weights
    assert report.canary_max_abs_diff < 1e-4 and transport.formed == formed + 2
    assert max_diff(engine_logprobs(fleet), [learners["base"].sequence_logprobs(ids) for ids in PROBES]) < 1e-4


# ---------------------------------------------------------------------------------------------- a GRPO run


GRPO_CONFIG = """
[run]
name = "{name}"
output_dir = "{out}"
seed = 1
pipeline = ["grpo"]
base_model = "{model}"
probes = []

[ray]
num_cpus = 8

[rollout]
max_model_len = 256
weight_transport = "{transport}"
max_staleness = {staleness}

[rewards]
num_workers = 1
timeout_s = 10.0

[grpo]
data = ["{data}"]
eval_data = ["{data}"]
fields = {{ prompt = "text" }}
eval_size = 4
verifier = "format"
steps = 2
prompts_per_step = 4
group_size = 4
micro_batch_size = 16
max_new_tokens = 6
checkpoint_every = 0
optim = {{ lr = 3e-3, warmup_steps = 0, schedule = "constant", weight_decay = 0.0 }}
"""


@pytest.mark.vllm
@pytest.mark.slow
@pytest.mark.parametrize("staleness", [0, 1])
def test_a_grpo_run_over_the_collective_transport_equals_the_flat_one(tmp_path, tiny_model_dir, ray_session, caplog,
                                                                      staleness):
    """Two 2-step GRPO runs of one config but rollout.weight_transport: every metric but timings is equal (the
    same weights arrive, bit for bit: the same samples, rewards, losses), and the collective run formed its
    group once, the learner and the one engine, over gloo. With max_staleness = 1 the next batch is generated
    while the learner trains, so a sync's broadcast waits for the engine's generation."""
    from raylign.engine.config import load_config
    from raylign.engine.driver import run_pipeline
    from raylign.engine.metrics import read_metrics
    from raylign.engine.plugins import build_registry

    data = tmp_path / "tasks.jsonl"
    with open(data, "w") as fh:
        for i in range(16):
            fh.write(json.dumps({"text": f"Say anything {i}", "format": r"[^e]*", "verifier": "format"}) + "\n")
    rows, formed = {}, {}
    caplog.set_level(logging.INFO, logger="raylign.engine.weight_sync")
    for transport in ("flat", "collective"):
        caplog.clear()
        path = tmp_path / f"{transport}.toml"
        path.write_text(GRPO_CONFIG.format(name=transport, out=tmp_path / "runs", model=tiny_model_dir, data=data,
                                           transport=transport, staleness=staleness))
        reg = build_registry()
        run_pipeline(load_config(path, reg), reg)
        rows[transport] = [r for r in read_metrics(tmp_path / "runs" / transport) if r["stage"] == "grpo"]
        formed[transport] = [r.getMessage() for r in caplog.records if "weight group" in r.getMessage()]
    assert formed["flat"] == [] and len(formed["collective"]) == 1, formed
    assert formed["collective"][0].startswith("collective weight group 1 formed: gloo, 2 ranks"), formed
    flat, coll = rows["flat"], rows["collective"]
    steps = [r for r in coll if "reward_mean" in r]
    assert [r["step"] for r in steps] == [1, 2]
    for r in steps:  # every step synced its version, and the canary passed
        assert r["weights_version"] == r["step"] and r["canary_max_abs_diff"] < 1e-4
    assert [(r["step"], sorted(r)) for r in coll] == [(r["step"], sorted(r)) for r in flat]
    for a, b in zip(flat, coll):
        for key in set(a) - {"stage", "step"}:
            if not (key.endswith("_seconds") or key.endswith("_per_s")):
                assert b[key] == pytest.approx(a[key], rel=1e-5, abs=1e-6), (a["step"], key, a[key], b[key])


# ---------------------------------------------------------------------------------------------- GPU


@pytest.mark.vllm
@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="NCCL weight group: needs 2 CUDA GPUs (learner and engine "
                                                           "each on its own; NCCL refuses 2 ranks on 1 GPU)")
def test_nccl_group_syncs_a_gpu_engine(ray_session, dirs):  # pragma: no cover - no GPU on the dev machine
    from raylign.engine.learner import LearnerSpec, start_learner
    from raylign.engine.learner_handle import LearnerHandle
    from raylign.engine.optim import OptimConfig
    from raylign.engine.plugins import build_registry
    from raylign.engine.rollout import RolloutFleet

    spec = LearnerSpec(model_dir=str(dirs["other"]), optim=OptimConfig(), total_steps=1, seed=0, device="cuda",
                       trainable=False)
    learner = LearnerHandle(start_learner(spec, num_cpus=0.5, num_gpus=1), build_registry(), trainable=False)
    cfg = RolloutConfig(num_workers=1, num_gpus=1, max_model_len=256, max_num_seqs=16,
                        weight_transport="collective")
    try:
        with RolloutFleet(dirs["base"], cfg, seed=0) as f:
            assert f.transport.backend == "nccl"
            for dtype in ("auto", "bfloat16"):
                f.cfg = replace(cfg, sync_dtype=dtype)
                report = push_weights(learner, f)
                assert report.transport == "collective" and report.canary_max_abs_diff < 0.05
            assert f.transport.formed == 1
    finally:
        learner.kill()
