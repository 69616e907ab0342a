"""Rollouts ahead of training, at most ``max_staleness`` weight versions behind the learner.

A stage hands the stream a ``produce(step)`` callable (generate and score one step's batch) and, each step, asks
for its batch and pushes its new weights through the stream:

    with ctx.rollout_stream(produce, start, steps, learner, fleet) as stream:
        for step in range(start + 1, steps + 1):
            batch = stream.batch(step)           # produced earlier, in a background thread, when k > 0
            ...train on batch...
            metrics.update(stream.sync(step))    # the learner's weights into the fleet (ctx.sync_weights)

``k = rollout.max_staleness``:

- **k = 0** (the default) is the synchronous loop: ``batch(step)`` calls ``produce(step)`` in the caller's thread,
  after the weights of step ``step - 1`` are in the fleet. No thread is started, so a k = 0 run does exactly what
  a stage without the stream does.
- **k > 0**: one producer thread makes the batches in step order while the learner trains. The schedule is fixed,
  so a run is reproducible: batch ``j`` is generated with the weights synced after step ``j - 1 - k`` (the
  starting weights for the first k + 1 batches), and the sync after step ``s`` is sent only once batch
  ``s + k`` is complete. A rollout actor serves one call at a time, so no generation ever straddles a reload:
  each completion carries the version it was sampled with (:attr:`Completion.weights_version`), and
  :meth:`staleness` says how many syncs lie between that version and the learner's weights when it trains.
  That lag is at most k by construction; the stage still checks every sample (a replaced worker, a custom
  produce) and drops any older one, counted in its metrics.

Resume is exact for any k: when the stage checkpoints after step ``s`` (after ``sync(s)``, which waited for batch
``s + k``), the batches made for steps ``s + 1 .. s + k`` are with it (:meth:`ahead`, saved by
``StageContext.save_checkpoint`` beside the learners), with the weights versions they were sampled with. A
resumed stream is given them back (``made``, ``versions``) and trains on them as the uninterrupted run did; its
producer starts at batch ``s + k + 1``, which the uninterrupted run also sampled from step ``s``'s weights, the
ones the checkpoint restores.

The engine owns this plumbing; the stage keeps its algorithm (what a batch is, how stale samples are treated
in the loss: the truncated importance-sampling weight against the sampler's log-probs).
"""
from __future__ import annotations

import threading
import time
from typing import Any, Callable, Mapping

from raylign.engine.errors import RaylignError


class RolloutStreamError(RuntimeError):
    """The producer thread failed; raised in the stage's thread with the producer's exception as its cause (a
    :class:`RaylignError`, which the CLI prints as one line, is raised as it is)."""


class RolloutStream:
    """Batches of steps ``start + 1 .. last`` made by ``produce``, at most ``max_staleness`` syncs behind.

    :param produce: ``produce(step) -> batch``; with k > 0 it runs in the stream's thread, so it must only use
        thread-safe handles (the rollout fleet and reward fleet are: each call is its own set of Ray tasks).
    :param sync: ``sync() -> metrics``: push the learner's weights into the fleet (``ctx.sync_weights``); its
        metrics carry ``weights_version``.
    :param start: the last step already trained (0, or the resume step).
    :param version: the fleet's weights version at ``start``.
    :param made: batches already made for steps after ``start`` (a checkpoint's :meth:`ahead`): trained on as they
        are, never made again. :param versions: the weights versions they were sampled with, each with the step
        after which it was current (the same checkpoint's), so their staleness counts as it did.
    :param idle: ``idle() -> metrics``, called by :meth:`sync` instead of ``sync`` when a step pushes no weights.
    """

    def __init__(self, produce: Callable[[int], Any], sync: Callable[[], dict[str, Any]], start: int, last: int,
                 max_staleness: int = 0, version: int = 0, made: Mapping[int, Any] | None = None,
                 versions: Mapping[int, int] | None = None, idle: Callable[[], dict[str, Any]] | None = None):
        if max_staleness < 0:
            raise ValueError(f"max_staleness must be >= 0, got {max_staleness}")
        self.produce = produce
        self._sync = sync
        self._idle = idle  # called instead of sync by a step that pushes nothing (colocated mode wakes the engines)
        self.start, self.last, self.k = start, last, max_staleness
        self._version_step = {**{int(v): int(s) for v, s in (versions or {}).items()}, version: start}
        # weights version -> the last step after which it was current
        self._current = version  # the version the fleet serves
        self._synced = start  # the last step whose weights are in the fleet
        self._trained = start  # the last step handed to the stage
        self._batches: dict[int, Any] = {int(s): b for s, b in (made or {}).items() if start < int(s) <= last}
        # step -> batch, made and not yet handed over
        self._made = set(self._batches)  # steps the producer skips: a checkpoint brought their batches
        self._waited = 0.0  # seconds the stage waited for rollouts in the current step
        self._error: BaseException | None = None
        self._closed = False
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        if self.k > 0 and last > start:
            self._thread = threading.Thread(target=self._run, name="raylign-rollout-stream", daemon=True)
            self._thread.start()

    # ------------------------------------------------------------------------------------------ producer
    def _run(self) -> None:
        for step in range(self.start + 1, self.last + 1):
            if step in self._made:
                continue
            with self._cond:  # batch `step` is sampled with the weights synced after step - 1 - k
                self._cond.wait_for(lambda: self._closed or self._synced >= step - 1 - self.k)
                if self._closed:
                    return
            try:
                batch = self.produce(step)
            except BaseException as exc:  # noqa: BLE001 - handed to the stage's thread, which raises it
                with self._cond:
                    self._error = exc
                    self._cond.notify_all()
                return
            with self._cond:
                self._batches[step] = batch
                self._cond.notify_all()

    def _wait(self, predicate: Callable[[], bool]) -> None:
        with self._cond:
            self._cond.wait_for(lambda: predicate() or self._error is not None or self._closed)
            if isinstance(self._error, RaylignError):  # a one-line error for the CLI (e.g. RoleFailed): as is
                raise self._error
            if self._error is not None:
                raise RolloutStreamError(f"rollout generation failed: {self._error}") from self._error
            if self._closed:
                raise RolloutStreamError("the rollout stream is closed")

    # ------------------------------------------------------------------------------------------ the stage's side
    def batch(self, step: int) -> Any:
        """Step ``step``'s batch (made here, in the caller's thread, when k = 0)."""
        if step != self._trained + 1:
            raise ValueError(f"rollout stream: asked for step {step}, expected {self._trained + 1}")
        t0 = time.perf_counter()
        if self._thread is None and step not in self._batches:
            batch = self.produce(step)
        else:
            self._wait(lambda: step in self._batches)
            with self._cond:
                batch = self._batches.pop(step)
        self._trained = step
        self._waited = time.perf_counter() - t0
        return batch

    def sync(self, step: int, push: bool = True) -> dict[str, Any]:
        """Push step ``step``'s weights once the batches that must be sampled before them are made (batch
        ``step + k``). Returns the sync's metrics plus ``rollout_ahead`` (batches made but not yet trained) and
        ``rollout_wait_seconds``: the time this step's learner sat idle waiting for rollouts, for its batch and
        before this sync (all of the batch's making when k = 0; none when generation keeps ahead).

        ``push=False``: the step did not change the policy (e.g. a critic warm-up step): nothing is sent, the
        fleet's weights count as current as of this step, and the schedule moves on as if they had been synced."""
        t0 = time.perf_counter()
        if self._thread is not None and step + self.k <= self.last:
            self._wait(lambda: step + self.k in self._batches)
        waited = self._waited + time.perf_counter() - t0
        metrics = dict(self._sync()) if push else dict(self._idle() if self._idle else {})
        with self._cond:
            if push:
                self._current = int(metrics["weights_version"])
            self._version_step[self._current] = step  # without a push: the same weights, current as of this step
            self._synced = step
            ahead = len(self._batches)
            self._cond.notify_all()
        metrics.update(rollout_ahead=ahead, rollout_wait_seconds=waited)
        return metrics

    def ahead(self) -> tuple[dict[int, Any], dict[int, int]]:
        """What a checkpoint after the last synced step needs to resume exactly: the batches made for later steps
        (step -> batch; with k > 0, those up to ``step + k`` once :meth:`sync` returned) and the weights versions
        seen so far (version -> the last step after which it was current)."""
        with self._cond:
            return dict(self._batches), dict(self._version_step)

    def staleness(self, version: int) -> int:
        """Syncs between the weights ``version`` a sample was drawn with and the learner's weights as it trains on
        that sample now (0 = on-policy). A version the stream never synced counts as the oldest possible."""
        step = self._version_step.get(int(version))
        return self._trained - 1 - (step if step is not None else self.start - self.k - 1)

    def mark_stale(self, groups) -> dict[str, float]:
        """Leave out of the loss (``keep = False``) every sample of ``groups`` (:class:`RolloutGroup`) drawn with
        weights more than k syncs older than the learner's: the schedule never makes one, a replaced engine or a
        custom produce could. Returns ``staleness_mean``, ``staleness_max`` (in syncs) and ``stale_dropped``."""
        lags, dropped = [], 0
        for group in groups:
            for i, c in enumerate(group.completions):
                lag = self.staleness(c.weights_version)
                lags.append(lag)
                if lag > self.k and group.keep[i]:
                    group.keep[i] = False
                    dropped += 1
        return {"staleness_mean": sum(lags) / max(1, len(lags)), "staleness_max": max(lags, default=0),
                "stale_dropped": dropped}

    # ------------------------------------------------------------------------------------------ lifetime
    def close(self) -> None:
        """Stop the producer after its current batch (its Ray calls finish on their own)."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=1.0)

    def __enter__(self) -> "RolloutStream":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
