"""A request's rows scored on a :class:`VerifierPool`, stopped when the request is abandoned."""
from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Sequence

from fastapi import Request

from raylign.engine.rewards.pool import Batch, Item, VerifierPool
from raylign.engine.types import Verdict

DISCONNECT_POLL_S = 0.25  # how often a running request checks that its client is still there

logger = logging.getLogger("ray.serve")


class CancellableScorer:
    """Scores a request's rows on a :class:`VerifierPool` so that an abandoned request stops costing anything.

    Rows are separate tasks on a thread per pool worker, all in one :class:`Batch`. :meth:`score` returns the
    verdicts in order, or None when the client went away (polled) or the handler is cancelled (Serve cancels it
    when the client disconnects); then the batch is cancelled through :meth:`VerifierPool.cancel`: the rows not
    started are dropped and the workers running this request's rows are killed (and replaced from the zygote).
    """

    def __init__(self, pool: VerifierPool, threads: int) -> None:
        self.pool = pool
        self._executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="serve-verifier")

    async def score(self, items: Sequence[Item], request: Request | None = None) -> list[Verdict] | None:
        job = Batch()
        loop = asyncio.get_running_loop()
        futures = [loop.run_in_executor(self._executor, self.pool.verify, *item, job) for item in items]
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
                for future in futures:
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
