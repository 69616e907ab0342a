"""The rollout stream's schedule (engine/rollout_stream.py): which weights each batch is generated with, how far
generation runs ahead, and failures crossing from the producer thread into the stage's.

The producer and the sync are plain Python callables here (the stream is generic over them); the stream's
threads and conditions are the real ones. The Ray/vLLM side is exercised by tests/test_grpo_run.py's async run.
"""
from __future__ import annotations

import threading
import time

import pytest

from raylign.engine.rollout_stream import RolloutStream, RolloutStreamError


class Fleet:
    """Weights versions as a fleet would hold them: the producer reads the version it generates with."""

    def __init__(self, version: int = 0):
        self.version = version
        self.lock = threading.Lock()
        self.log: list[tuple[str, int, int]] = []  # (event, step, version)

    def produce(self, step: int, delay: float = 0.0):
        with self.lock:
            version = self.version
            self.log.append(("produce", step, version))
        time.sleep(delay)
        return {"step": step, "version": version}

    def sync(self, version: int):
        with self.lock:
            self.version = version
            self.log.append(("sync", version, version))
        return {"weights_version": version, "weight_sync_seconds": 0.0}


def train(stream: RolloutStream, fleet: Fleet, start: int, last: int, train_s: float = 0.0, per_step: int = 1):
    """The stage's loop: take the batch, 'train' (the learner's version moves by per_step), sync."""
    seen = []
    for step in range(start + 1, last + 1):
        batch = stream.batch(step)
        seen.append((step, batch["version"], stream.staleness(batch["version"]), stream.k))
        time.sleep(train_s)
        stream.sync(step)
    return seen


@pytest.mark.parametrize("k", [0, 1, 2, 3])
@pytest.mark.parametrize("slow", ["producer", "learner"])
def test_batch_j_is_generated_with_the_weights_of_step_j_minus_1_minus_k(k, slow):
    """Whichever side is slower, batch j is sampled with exactly the weights synced after step j - 1 - k (the
    starting weights for the first k + 1 batches): a fixed schedule, so an async run is reproducible."""
    fleet = Fleet()
    produce_s, train_s = (0.02, 0.0) if slow == "producer" else (0.0, 0.02)
    stream = RolloutStream(lambda s: fleet.produce(s, produce_s), lambda: fleet.sync(10 * stream._trained), 0, 8,
                           max_staleness=k, version=0)
    with stream:
        seen = train(stream, fleet, 0, 8, train_s)
    for step, version, lag, _ in seen:
        synced_step = max(0, step - 1 - k)
        assert version == 10 * synced_step, (step, version)
        assert lag == min(k, step - 1), (step, lag)  # never more than k


def test_k0_runs_in_the_callers_thread_in_turn():
    fleet = Fleet()
    threads = []

    def produce(step):
        threads.append(threading.current_thread())
        return fleet.produce(step)

    with RolloutStream(produce, lambda: fleet.sync(step_version[0]), 0, 3, max_staleness=0) as stream:
        step_version = [0]
        for step in (1, 2, 3):
            stream.batch(step)
            step_version[0] = step
            stream.sync(step)
    assert threads == [threading.main_thread()] * 3
    assert [e for e in fleet.log] == [("produce", 1, 0), ("sync", 1, 1), ("produce", 2, 1), ("sync", 2, 2),
                                      ("produce", 3, 2), ("sync", 3, 3)]


def test_generation_overlaps_training():
    """k = 1 with produce and train both 0.1 s per step: 6 steps take about 6 x 0.1 s, not 6 x 0.2 s."""
    fleet = Fleet()
    stream = RolloutStream(lambda s: fleet.produce(s, 0.1), lambda: fleet.sync(stream._trained), 0, 6,
                           max_staleness=1)
    t0 = time.perf_counter()
    with stream:
        train(stream, fleet, 0, 6, train_s=0.1)
    assert time.perf_counter() - t0 < 0.95


@pytest.mark.parametrize("k", [0, 1])
def test_the_wait_for_rollouts_is_reported(k):
    """The learner's idle time: the whole batch's making each step when synchronous; about none once the
    producer keeps ahead (it makes a 0.05 s batch while the learner trains 0.1 s)."""
    fleet = Fleet()
    stream = RolloutStream(lambda s: fleet.produce(s, 0.05), lambda: fleet.sync(stream._trained), 0, 5,
                           max_staleness=k)
    waits = []
    with stream:
        for step in range(1, 6):
            stream.batch(step)
            time.sleep(0.1)
            waits.append(stream.sync(step)["rollout_wait_seconds"])
    if k == 0:
        assert all(w >= 0.05 for w in waits), waits
    else:
        assert all(w < 0.03 for w in waits[1:]), waits


def test_resume_starts_from_the_restored_step_and_version():
    fleet = Fleet(version=40)
    stream = RolloutStream(fleet.produce, lambda: fleet.sync(10 * stream._trained), 4, 7, max_staleness=2,
                           version=40)
    with stream:
        seen = train(stream, fleet, 4, 7)
    assert [(s, v, lag) for s, v, lag, _ in seen] == [(5, 40, 0), (6, 40, 1), (7, 40, 2)]


@pytest.mark.parametrize("k", [1, 2])
def test_a_resume_from_the_batches_made_ahead_trains_as_the_uninterrupted_run(k):
    """A checkpoint after step s keeps what :meth:`RolloutStream.ahead` returns (the batches made for steps
    s + 1 .. s + k and the versions seen). A stream resumed from it, with the restored weights in the fleet,
    hands over exactly the uninterrupted run's batches with the same staleness, and makes none of those again."""
    fleet = Fleet()
    whole = RolloutStream(fleet.produce, lambda: fleet.sync(10 * whole._trained), 0, 8, max_staleness=k)
    with whole:
        expected = train(whole, fleet, 0, 8, train_s=0.005)

    fleet = Fleet()
    first = RolloutStream(fleet.produce, lambda: fleet.sync(10 * first._trained), 0, 8, max_staleness=k)
    with first:
        seen = train(first, fleet, 0, 3, train_s=0.005)
        made, versions = first.ahead()  # what save_checkpoint(3) writes, right after sync(3)
    assert sorted(made)[:k] == list(range(4, 4 + k)), made

    fleet = Fleet(version=30)  # a new fleet after the stop, given step 3's weights by the resume's sync
    resumed = RolloutStream(fleet.produce, lambda: fleet.sync(10 * resumed._trained), 3, 8, max_staleness=k,
                            version=30, made=made, versions=versions)
    with resumed:
        seen += train(resumed, fleet, 3, 8, train_s=0.005)
    assert seen == expected
    assert not [s for event, s, _ in fleet.log if event == "produce" and s in made]


def test_a_version_never_synced_counts_as_older_than_k():
    fleet = Fleet()
    stream = RolloutStream(fleet.produce, lambda: fleet.sync(stream._trained), 0, 2, max_staleness=1)
    with stream:
        stream.batch(1)
        assert stream.staleness(0) == 0
        assert stream.staleness(12345) > 1


def test_a_producer_failure_is_raised_in_the_stage_thread():
    def produce(step):
        if step == 3:
            raise ValueError("engine died")
        return {"step": step, "version": 0}

    stream = RolloutStream(produce, lambda: {"weights_version": stream._trained}, 0, 5, max_staleness=2)
    with stream, pytest.raises(RolloutStreamError, match="engine died") as err:
        for step in range(1, 6):
            stream.batch(step)
            stream.sync(step)
    assert isinstance(err.value.__cause__, ValueError)


def test_a_raylign_error_in_the_producer_keeps_its_one_line_form():
    from raylign.engine.errors import RoleFailed

    def produce(step):
        if step == 2:
            raise RoleFailed("rollout worker 0 on node x died: SIGKILL; rollout.max_restarts=0 replacements made")
        return {"step": step, "version": 0}

    stream = RolloutStream(produce, lambda: {"weights_version": stream._trained}, 0, 3, max_staleness=1)
    with stream, pytest.raises(RoleFailed, match="rollout worker 0"):
        for step in range(1, 4):
            stream.batch(step)
            stream.sync(step)


def test_steps_are_taken_in_order():
    stream = RolloutStream(lambda s: s, lambda: {"weights_version": 0}, 0, 3, max_staleness=1)
    with stream, pytest.raises(ValueError, match="expected 1"):
        stream.batch(2)


def test_close_stops_a_waiting_producer():
    """The stage fails mid-run: closing the stream ends the producer, which waits on a sync that never comes."""
    stream = RolloutStream(lambda s: {"version": 0}, lambda: {"weights_version": 0}, 0, 10, max_staleness=1)
    stream.batch(1)
    time.sleep(0.05)  # the producer has made batch 2 and waits for the sync of step 1 to make batch 3
    stream.close()
    assert not stream._thread.is_alive()


def test_negative_staleness_is_a_config_error():
    from raylign.engine.config import build_config
    from raylign.engine.errors import ConfigError
    from raylign.engine.plugins import get_registry

    with pytest.raises(ConfigError, match=r"rollout: max_staleness must be 0 \(synchronous\) or more, got -1"):
        build_config({"run": {"pipeline": ["grpo"]}, "rollout": {"max_staleness": -1}}, get_registry())


def test_a_step_without_push_keeps_the_weights_current():
    """A critic warm-up step does not move the policy: nothing is sent, the schedule moves on, and samples of the
    unchanged weights are not stale."""
    fleet = Fleet()
    pushes = []

    def sync():
        pushes.append(stream._trained)
        return fleet.sync(10 * stream._trained)

    stream = RolloutStream(fleet.produce, sync, 0, 5, max_staleness=1)
    seen = []
    with stream:
        for step in range(1, 6):
            batch = stream.batch(step)
            seen.append((step, batch["version"], stream.staleness(batch["version"])))
            stream.sync(step, push=step > 2)  # two warm-up steps
    assert pushes == [3, 4, 5]
    # batches 1-3 come from the starting weights, which stay current through step 2: on-policy until step 3
    assert seen == [(1, 0, 0), (2, 0, 0), (3, 0, 0), (4, 0, 1), (5, 30, 1)]


def test_mark_stale_leaves_older_samples_out_of_the_loss():
    from raylign.engine.types import Completion, RolloutGroup, Verdict

    def completion(version):
        return Completion(prompt_index=0, sample_index=0, prompt_token_ids=[1], token_ids=[2], text="x",
                          logprobs=[-1.0], finish_reason="stop", weights_version=version)

    fleet = Fleet()
    stream = RolloutStream(fleet.produce, lambda: fleet.sync(stream._trained), 0, 4, max_staleness=1)
    with stream:
        for step in (1, 2, 3):
            stream.batch(step)
            stream.sync(step)
        stream.batch(4)  # the learner holds the weights of step 3
        group = RolloutGroup(task={}, prompt_ids=[1], completions=[completion(v) for v in (3, 2, 1, 0)],
                             verdicts=[Verdict(reward=1.0)] * 4)
        metrics = stream.mark_stale([group])
    assert group.keep == [True, True, False, False]
    assert metrics == {"staleness_mean": 1.5, "staleness_max": 3, "stale_dropped": 2}
