"""Rollout workers that die: replaced with the current weights, their prompts generated again, a bounded budget.

Real engines in real Ray actors, killed with SIGKILL as the OOM killer or an operator would. One fleet serves the
whole story (each engine start costs 10-60 s on the development machine): four starts in all.
"""
from __future__ import annotations

import os
import shutil
import signal
import threading
import time
from pathlib import Path

import pytest
import torch

from raylign.engine.config import RolloutConfig
from raylign.engine.errors import RoleFailed
from raylign.engine.model_files import materialise, put_model_dir
from raylign.engine.modeling import load_model
from raylign.engine.ops import token_logprobs
from raylign.engine.rollout import RolloutFleet, death_cause

from conftest import make_tiny_model

PROMPTS = ["What is an LLM?", "What is 12+30?", "The quick brown fox", "def add(a, b):", "12+30 is"]
WORK = dict(n=4, temperature=1.0, max_tokens=96, seed=7)  # one step's batch: long enough to kill mid-way


@torch.no_grad()
def reference_logprobs(model, token_ids: list[int]) -> list[float]:
    """What the learner sends as the canary reference: an HF forward pass's logprobs of ``token_ids[1:]``."""
    ids = torch.tensor([list(token_ids)])
    return token_logprobs(model(input_ids=ids).logits, ids)[0, 1:].tolist()


def as_data(groups) -> list[tuple]:
    return [(c.prompt_index, c.sample_index, tuple(c.token_ids), c.text, c.finish_reason, c.weights_version)
            for g in groups for c in g]


def kill(pid: int) -> None:
    os.kill(pid, signal.SIGKILL)


# ---------------------------------------------------------------------------------------------- no engine


def test_model_dir_travels_through_the_object_store(ray_session, tiny_model_dir, tmp_path):
    src = shutil.copytree(tiny_model_dir, tmp_path / "model")
    files = put_model_dir(src)
    shutil.rmtree(src)  # gone from disk: only the object store has it now
    local = materialise(files)
    try:
        assert local != src and sorted(p.name for p in local.iterdir()) == sorted(files)
        assert (local / "config.json").read_bytes() == (tiny_model_dir / "config.json").read_bytes()
        assert load_model(local).state_dict().keys() == load_model(tiny_model_dir).state_dict().keys()
    finally:
        shutil.rmtree(local)


def test_death_cause_is_one_line_from_a_real_sigkill(ray_session):
    @ray_session.remote(num_cpus=0)
    class Sleeper:
        def pid(self):
            return os.getpid()

        def sleep(self):
            time.sleep(60)

    actor = Sleeper.remote()
    pid = ray_session.get(actor.pid.remote())
    ref = actor.sleep.remote()
    time.sleep(0.5)
    kill(pid)
    with pytest.raises(ray_session.exceptions.ActorDiedError) as info:
        ray_session.get(ref, timeout=60)
    cause = death_cause(info.value)
    assert "\n" not in cause and len(cause) <= 300
    assert "exited" in cause and "SYSTEM_ERROR" in cause, cause


# ---------------------------------------------------------------------------------------------- engines


@pytest.fixture(scope="module")
def dirs(tiny_model_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("faults")
    return {"base": shutil.copytree(tiny_model_dir, root / "base"),
            "other": make_tiny_model(root / "other", seed=1)}  # same tokenizer, other weights


@pytest.mark.vllm
def test_killed_workers_are_replaced_with_current_weights_until_the_budget_runs_out(ray_session, dirs):
    cfg = RolloutConfig(num_workers=2, num_cpus=1.0, kv_cache_gb=1, max_model_len=256, max_num_seqs=64,
                        max_restarts=2)
    fleet = RolloutFleet(dirs["base"], cfg, seed=0)
    try:
        # No worker reads the driver's model dir: each has its own copy, and the dir may vanish.
        assert all(info["model_dir"] != str(dirs["base"]) for info in fleet.info)
        base = load_model(dirs["base"]).eval()
        shutil.rmtree(dirs["base"])
        prompts = PROMPTS * 3
        base_out = fleet.generate(prompts, **WORK)

        other = load_model(dirs["other"]).eval()
        canary = (fleet.canary_ids, reference_logprobs(other, fleet.canary_ids))
        fleet.sync_weights(ray_session.put(other.state_dict()), 1, canary=canary)
        t0 = time.perf_counter()
        expected = fleet.generate(prompts, **WORK)  # the uninterrupted step
        step_seconds = time.perf_counter() - t0
        assert as_data(expected) != as_data(base_out)  # the initial weights would generate something else
        assert {c.weights_version for g in expected for c in g} == {1}

        # 1. SIGKILL mid-step: the step's result is as if nothing happened.
        old_pid = fleet.info[1]["pid"]
        out, alive = run_while_killing(fleet, prompts, worker=1, after_s=step_seconds / 8)
        assert alive, "the kill came after the step had finished: make WORK longer"
        assert as_data(out) == as_data(expected)
        for got, want in zip((c for g in out for c in g), (c for g in expected for c in g)):
            assert got.logprobs == pytest.approx(want.logprobs, abs=1e-5)
        assert fleet.restarts == 1
        (entry,) = fleet.restart_log
        assert entry["worker"] == "rollout worker 1" and entry["version"] == 1
        assert entry["canary_max_abs_diff"] is not None and entry["canary_max_abs_diff"] <= cfg.canary_tolerance
        assert "exited" in entry["cause"]
        assert fleet.info[1]["version"] == 1 and fleet.info[1]["pid"] != old_pid
        assert fleet.canary(*canary) <= cfg.canary_tolerance  # every engine, the replacement too

        # 2. A death seen by a generating thread and a syncing thread at once is replaced once.
        out, sync = sync_while_killing(fleet, prompts, worker=0, state=ray_session.put(base.state_dict()),
                                       canary=(fleet.canary_ids, reference_logprobs(base, fleet.canary_ids)))
        assert fleet.restarts == 2 and sync.version == 2 and fleet.version == 2
        assert {c.weights_version for g in out for c in g} <= {1, 2} and len(out) == len(prompts)
        assert [c.weights_version for c in fleet.generate_greedy(PROMPTS, max_tokens=2)] == [2] * len(PROMPTS)
        assert as_data(fleet.generate(prompts, **WORK)) == [d[:-1] + (2,) for d in as_data(base_out)]

        # 3. Past rollout.max_restarts the next death stops the run with one line: role, node, cause.
        where = fleet.info[1]["node_ip"]
        kill(fleet.info[1]["pid"])
        with pytest.raises(RoleFailed) as failed:
            fleet.generate(prompts, **WORK)
        message = str(failed.value)
        assert isinstance(failed.value, RuntimeError) and "\n" not in message
        assert "rollout worker 1" in message and where in message and fleet.info[1]["node_id"] in message
        assert "exited" in message and "rollout.max_restarts=2" in message
        assert fleet.restarts == 2

        # A killed worker leaves only small files behind; one shut down removes its copy of the model.
        left = Path(fleet.info[1]["model_dir"])
        assert left.is_dir() and not any(p.suffix == ".safetensors" for p in left.iterdir())
        kept = Path(fleet.info[0]["model_dir"])
        fleet.shutdown()
        assert not kept.exists()
        shutil.rmtree(left)
    finally:
        fleet.shutdown()


def run_while_killing(fleet, prompts, worker: int, after_s: float):
    """``fleet.generate(prompts, **WORK)`` in a thread, SIGKILLing ``worker`` ``after_s`` in; returns the result
    and whether the generation was still running when the kill came."""
    result: dict = {}
    thread = threading.Thread(target=lambda: result.update(out=fleet.generate(prompts, **WORK)))
    thread.start()
    time.sleep(after_s)
    alive = thread.is_alive()
    kill(fleet.info[worker]["pid"])
    thread.join(timeout=600)
    assert "out" in result, "generate raised or hung after the kill"
    return result["out"], alive


def sync_while_killing(fleet, prompts, worker: int, state, canary):
    """Kill ``worker`` while a thread generates, then sync ``state`` as version 2 from this thread."""
    result: dict = {}
    thread = threading.Thread(target=lambda: result.update(out=fleet.generate(prompts, **WORK)))
    thread.start()
    time.sleep(0.2)
    kill(fleet.info[worker]["pid"])
    report = fleet.sync_weights(state, 2, canary=canary)
    thread.join(timeout=600)
    assert "out" in result, "generate raised or hung after the kill"
    return result["out"], report
