"""Greedy request batching: one task per process owns inference; requests wait on a bounded queue.

The batcher takes the first waiting request, then everything that queued meanwhile (optionally waiting up
to a batching window for more), up to `max_batch` inputs, runs the combined batch in one worker thread (so
the event loop stays responsive; one inference at a time), and resolves each request with its slice.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

logger = logging.getLogger("etk.serve")

#: Runs the model once over several requests' `(features, records)` and returns each request's predictions.
Infer = Callable[[list[tuple[list[dict[str, Any]], list[dict[str, Any]]]]], list[list[dict[str, Any]]]]


class QueueFull(Exception):
    """The queue holds `queue_size` requests already; answer 503 and let the client retry."""


class InferenceError(Exception):
    """Inference failed for a batch (a server-side error: 500)."""


class ShuttingDown(Exception):
    """The server stopped before this request was run."""


@dataclass
class Job:
    """One request's encoded inputs (features, possibly several per record) and the future its handler awaits."""

    features: list[dict[str, Any]]
    records: list[dict[str, Any]]
    future: asyncio.Future


class Batcher:
    """Owns inference for one process: `await predict(features, records)` from request handlers."""

    def __init__(self, infer: Infer, max_batch: int = 32, queue_size: int = 256, window_ms: float = 0.0,
                 metrics: Any = None) -> None:
        self.infer = infer
        self.max_batch = max(1, max_batch)
        self.window_s = max(0.0, window_ms) / 1000.0
        self.metrics = metrics
        self._queue: asyncio.Queue[Job] = asyncio.Queue(maxsize=max(1, queue_size))
        self._carry: Job | None = None
        self._taken: list[Job] = []  # out of the queue, not yet answered (collecting or running)
        self._task: asyncio.Task | None = None
        self._executor: ThreadPoolExecutor | None = None

    # state ----------------------------------------------------------------------------------------------
    @property
    def depth(self) -> int:
        """Requests waiting (not yet running)."""
        return self._queue.qsize() + (self._carry is not None)

    @property
    def full(self) -> bool:
        return self._queue.full()

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def _report_depth(self) -> None:
        if self.metrics is not None:
            self.metrics.queue_depth.set(self.depth)

    # public ---------------------------------------------------------------------------------------------
    def start(self) -> None:
        """Start the batching task on the running loop."""
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="etk-infer")
        self._task = asyncio.get_running_loop().create_task(self._loop(), name="etk-batcher")

    def submit(self, features: list[dict[str, Any]], records: list[dict[str, Any]]) -> asyncio.Future:
        """Queue one request; raises QueueFull at once when the queue is full."""
        if not self.running:
            raise ShuttingDown("the server is not running inference (starting or stopping)")
        job = Job(features, records, asyncio.get_running_loop().create_future())
        try:
            self._queue.put_nowait(job)
        except asyncio.QueueFull:
            raise QueueFull(f"server busy: {self.depth} requests queued; retry in a second") from None
        self._report_depth()
        return job.future

    async def predict(self, features: list[dict[str, Any]], records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Predictions for one request's inputs (after they ran in some batch)."""
        return await self.submit(features, records)

    async def stop(self, timeout: float = 30.0) -> None:
        """Finish what is queued (up to `timeout` seconds), then stop the task and fail anything left."""
        deadline = time.monotonic() + timeout
        while (self.depth or self._taken) and self.running and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        left = [*self._taken, *([self._carry] if self._carry else []),
                *(self._queue.get_nowait() for _ in range(self._queue.qsize()))]
        self._carry, self._taken = None, []
        for job in left:
            if not job.future.done():
                job.future.set_exception(ShuttingDown("the server stopped before this request ran"))
        if self._executor is not None:
            self._executor.shutdown(wait=False)
        self._report_depth()

    # the task -------------------------------------------------------------------------------------------
    async def _loop(self) -> None:
        while True:
            jobs = await self._collect()
            try:
                await self._run(jobs)
            except Exception:  # never let the batcher die: log, fail this batch, go on
                logger.exception("batcher: unexpected error")
                self._fail(jobs, InferenceError("internal error while batching"))
            self._taken = []  # not when cancelled: stop() fails what was taken

    async def _collect(self) -> list[Job]:
        """The first waiting job plus whatever else fits in `max_batch` inputs (greedy; optional window)."""
        first = self._carry or await self._queue.get()
        self._carry = None
        jobs, size = [first], len(first.features)
        self._taken = jobs
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.window_s
        while size < self.max_batch:
            try:
                job = self._queue.get_nowait()
            except asyncio.QueueEmpty:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                try:
                    job = await asyncio.wait_for(self._queue.get(), remaining)
                except TimeoutError:
                    break
            if size + len(job.features) > self.max_batch:
                self._carry = job
                break
            jobs.append(job)
            size += len(job.features)
        self._report_depth()
        return jobs

    async def _run(self, jobs: list[Job]) -> None:
        live = [job for job in jobs if not job.future.done()]  # skip requests whose client went away
        if not live:
            return
        size = sum(len(job.features) for job in live)
        started = time.perf_counter()
        try:
            loop = asyncio.get_running_loop()
            results = await loop.run_in_executor(self._executor, self.infer,
                                                 [(job.features, job.records) for job in live])
        except Exception as exc:
            logger.exception("inference failed for a batch of %d inputs", size)
            if self.metrics is not None:
                self.metrics.errors.labels("inference").inc()
            # the client gets a message; the exception (which may quote internals) goes to the log above
            self._fail(live, InferenceError(f"inference failed for a batch of {size} inputs ({type(exc).__name__}; "
                                            f"details in the server log)"))
            return
        if self.metrics is not None:
            self.metrics.batch_size.observe(size)
            self.metrics.inference.observe(time.perf_counter() - started)
        for job, predictions in zip(live, results):
            if job.future.done():
                continue
            if len(predictions) == len(job.records):
                job.future.set_result(predictions)
            else:
                count = f"{len(predictions)} predictions for {len(job.records)} inputs"
                job.future.set_exception(InferenceError(f"inference gave {count}"))

    @staticmethod
    def _fail(jobs: list[Job], error: Exception) -> None:
        for job in jobs:
            if not job.future.done():
                job.future.set_exception(error)
