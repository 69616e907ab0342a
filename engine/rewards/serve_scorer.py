"""A request's rows scored on a :class:`VerifierPool`, stopped when the request is abandoned."""
from __future__ import annotations

import asyncio
import collections
import itertools
import logging
import threading
from concurrent.futures import Future
from typing import Any, Callable, Sequence

from fastapi import Request

from raylign.engine.rewards.pool import Batch, Item, VerifierPool
from raylign.engine.types import Verdict

DISCONNECT_POLL_S = 0.25  # how often a running request checks that its client is still there

logger = logging.getLogger("ray.serve")


class FairRows:
    """Threads that run rows taking turns between requests: each request's rows wait in a queue of their own and
    the threads serve the queues round-robin, so a request of many slow rows (a thousand ten-second programs) does
    not hold every other client behind it, as a first-come, first-served queue did."""

    def __init__(self, threads: int) -> None:
        self._ready = threading.Condition()
        self._queues: collections.OrderedDict[int, collections.deque] = collections.OrderedDict()
        for i in range(threads):
            threading.Thread(target=self._serve, name=f"serve-verifier-{i}", daemon=True).start()

    def submit(self, key: int, calls: Sequence[tuple[Callable, tuple]]) -> list[Future]:
        """``[fn(*args) ...]`` as futures, queued under request ``key`` (a cancelled future is never run)."""
        futures = [Future() for _ in calls]
        with self._ready:
            queue = self._queues.setdefault(key, collections.deque())
            queue.extend((fn, args, f) for (fn, args), f in zip(calls, futures))
            self._ready.notify(len(calls))
        return futures

    def _next(self) -> tuple[Callable, tuple, Future]:
        with self._ready:
            while not self._queues:
                self._ready.wait()
            key, queue = next(iter(self._queues.items()))
            item = queue.popleft()
            del self._queues[key]
            if queue:
                self._queues[key] = queue  # to the back: the next row is another request's
            return item

    def _serve(self) -> None:
        while True:
            fn, args, future = self._next()
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(fn(*args))
            except BaseException as exc:  # noqa: BLE001 - the row's failure, handed to its request
                future.set_exception(exc)


class CancellableScorer:
    """Scores a request's rows on a :class:`VerifierPool` so that an abandoned request stops costing anything.

    Rows are separate tasks on a thread per pool worker (:class:`FairRows`: requests take turns), all in one
    :class:`Batch`. :meth:`score` returns the
    verdicts in order, or None when the client went away (polled) or the handler is cancelled (Serve cancels it
    when the client disconnects); then the batch is cancelled through :meth:`VerifierPool.cancel`: the rows not
    started are dropped and the workers running this request's rows are killed (and replaced from the zygote).
    """

    def __init__(self, pool: VerifierPool, threads: int) -> None:
        self.pool = pool
        self._rows = FairRows(threads)
        self._keys = itertools.count()

    async def score(self, items: Sequence[Item], request: Request | None = None) -> list[Verdict] | None:
        job = Batch()
        queued = self._rows.submit(next(self._keys), [(self.pool.verify, (*item, job)) for item in items])
        futures: list[Any] = [asyncio.wrap_future(f) for f in queued]
        batch = asyncio.gather(*futures)
        watch = asyncio.ensure_future(_client_gone(request))
        try:
            await asyncio.wait({batch, watch}, return_when=asyncio.FIRST_COMPLETED)
            if batch.done():
                return batch.result()
            return None
        finally:
            why = "its client disconnected" if watch.done() else "it was cancelled"
            watch.cancel()
            failed = batch.done() and not batch.cancelled() and batch.exception() is not None
            if failed:  # (a row that could not be scored: the others are nobody's any more)
                why = "a row failed"
            if not batch.done() or failed:
                self.pool.cancel(job)
                for future in queued:
                    future.cancel()  # rows still queued are never started
                batch.cancel()
                for future in futures:
                    future.add_done_callback(lambda f: f.cancelled() or f.exception())  # (never unretrieved)
                logger.info("raylign: a request was abandoned (%s): %d of its %d rows never started, %d running "
                            "rows were killed", why, len(items) - job.started, len(items), job.killed)


async def _client_gone(request: Request | None) -> None:
    """Returns once the HTTP client has disconnected (never, without a request)."""
    while True:
        if request is not None and await request.is_disconnected():
            return
        await asyncio.sleep(DISCONNECT_POLL_S)
