"""The model thread of the server: one predictor, a bounded queue, and micro-batches of
concurrent requests where merging them cannot change an answer."""

from __future__ import annotations

import asyncio
import queue
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

import numpy as np

# a request of at most this many tokens (see cost.py) runs between the batches of a larger one
SMALL_REQUEST_TOKENS = 4096


class QueueFull(Exception):
    """The queue holds ``max_queue`` requests: the caller answers 503."""


@dataclass
class Job:
    inputs: Any
    parameters: dict[str, Any]
    fn: Any  # what to call instead of the predictor (never merged), or None
    future: asyncio.Future[Any]  # of the event loop that submitted the job
    cost: int = 0  # tokens, as cost.py counts them before the job runs

    @property
    def key(self) -> str:
        return repr(sorted(self.parameters.items())) + ("" if self.fn is None else f" {id(self.fn)}")

    @property
    def count(self) -> int:
        return len(self.inputs) if isinstance(self.inputs, list) else 1


class ModelWorker:
    """Runs ``predictor(inputs, **parameters)`` on one thread, in arrival order.

    With ``merge`` (float precisions), requests of a mergeable task with the same parameters
    that queued while the model ran (and, with ``max_wait_s``, that arrive within it) run as
    one list of at most ``max_batch_size`` inputs, each request getting its own entries back.
    The default waits for nobody: a lone request runs at once, and under load the requests
    that queue during one run form the next (continuous batching).

    Between two session runs of a request, small requests that queued meanwhile (at most
    ``SMALL_REQUEST_TOKENS``) run first: a large request's batches interleave with them, so a
    small request waits for about one batch, never a whole large request.
    """

    def __init__(self, predictor: Any, *, max_queue: int, max_batch_size: int, merge: bool,
                 max_wait_s: float = 0.0, on_batch: Any = None) -> None:
        self.predictor = predictor
        self.merge = merge and predictor.merges_lists
        self.max_batch_size = max_batch_size
        self.max_wait_s = max_wait_s
        self.on_batch = on_batch
        self.max_queue = max_queue
        # a C queue (no Python-level lock on the hand-off); its bound is kept by two counters,
        # each written by one thread only: jobs submitted (event loop) and jobs taken (model thread)
        self._queue: queue.SimpleQueue[Job | None] = queue.SimpleQueue()
        self._submitted = self._taken = 0
        self._held: deque[Job] = deque()
        self._nested = False  # a small job is running between the batches of another
        self._running_cost = 0  # the tokens of the run in progress
        self._nested_tokens, self._nested_seconds = 0, 0.0  # what the small jobs run in between took
        self.busy_since: float | None = None  # when the job now running began (None: idle)
        self.progress_at = time.monotonic()  # the last time a session run or a job finished
        predictor.encoder.between_batches = self._between_batches
        self._thread = threading.Thread(target=self._loop, name="albert-onnx-model", daemon=True)
        self._thread.start()

    @property
    def depth(self) -> int:
        return self._submitted - self._taken + len(self._held)

    def stalled(self, deadline_s: float) -> bool:
        """Whether the model thread has work and has finished no session run for ``deadline_s``."""
        return self.busy_since is not None and time.monotonic() - self.progress_at > deadline_s

    def submit(self, inputs: Any, parameters: dict[str, Any], fn: Any = None, cost: int = 0) -> asyncio.Future[Any]:
        """Queues a request; call it on the event loop that awaits the answer."""
        if self._submitted - self._taken >= self.max_queue:
            raise QueueFull()
        job = Job(inputs, parameters, fn, asyncio.get_running_loop().create_future(), cost)
        self._submitted += 1
        self._queue.put(job)
        return job.future

    def close(self, timeout_s: float = 30.0) -> None:
        """Ends the thread after the jobs queued; waits at most ``timeout_s`` for it."""
        self._queue.put(None)
        self._thread.join(timeout=timeout_s)

    # ------------------------------------------------------------------ the thread
    def _next(self, timeout: float | None = None) -> Job | None:
        if self._held:
            return self._held.popleft()
        return self._count(self._queue.get(timeout=timeout) if timeout is not None else self._queue.get())

    def _next_now(self) -> Job | None:
        return self._held.popleft() if self._held else self._count(self._queue.get_nowait())

    def _count(self, job: Job | None) -> Job | None:
        if job is not None:
            self._taken += 1
        return job

    def _loop(self) -> None:
        while True:
            job = self._next()
            if job is None:
                return
            batch = [job]
            if self.merge and (job.fn is None or getattr(job.fn, "merges_lists", False)):
                deadline = time.monotonic() + self.max_wait_s
                size = job.count
                while size < self.max_batch_size:
                    left = deadline - time.monotonic()
                    try:
                        other = self._next(left) if left > 0 else self._next_now()
                    except queue.Empty:
                        break
                    if other is None:
                        self._queue.put(None)
                        break
                    if other.key != job.key or size + other.count > self.max_batch_size:
                        self._held.append(other)
                        break
                    batch.append(other)
                    size += other.count
            self.busy_since = self.progress_at = time.monotonic()
            self._running_cost = sum(j.cost for j in batch)
            try:
                self._run(batch)
            finally:
                self.busy_since = None

    def _between_batches(self) -> None:
        """Called by the encoder between two session runs of the job in progress: runs the small
        jobs that queued meanwhile (each alone), and keeps the others for after it."""
        self.progress_at = time.monotonic()
        if self._nested or self._running_cost <= SMALL_REQUEST_TOKENS:  # a small run is done soon anyway
            return
        self._nested = True
        try:
            # only those that waited when this batch ended: under a steady stream the job in
            # progress still gets a batch between each round of small ones
            for _ in range(self._queue.qsize()):
                try:
                    job = self._count(self._queue.get_nowait())
                except queue.Empty:
                    return
                if job is None:  # closing: the loop sees it after the job in progress
                    self._queue.put(None)
                    return
                if job.cost > SMALL_REQUEST_TOKENS:
                    self._held.append(job)
                    continue
                tokens, started = self.predictor.encoder.tokens_run, time.perf_counter()
                self._run([job])
                self._nested_tokens += self.predictor.encoder.tokens_run - tokens
                self._nested_seconds += time.perf_counter() - started
                self.progress_at = time.monotonic()
        finally:
            self._nested = False

    def _run(self, batch: list[Job]) -> None:
        encoder = self.predictor.encoder  # every predictor is a head on one encoder, which counts its tokens
        tokens, started = encoder.tokens_run, time.perf_counter()
        nested, nested_s = (0, 0.0) if self._nested else (self._nested_tokens, self._nested_seconds)
        answers: list[tuple[Job, Any, BaseException | None]] = []
        if len(batch) == 1:
            job = batch[0]
            try:
                answers.append((job, (job.fn or self.predictor)(job.inputs, **job.parameters), None))
            except Exception as exc:  # handed to the request that caused it
                answers.append((job, None, exc))
        else:
            flat = [x for j in batch for x in (j.inputs if isinstance(j.inputs, list) else [j.inputs])]
            try:
                results = (batch[0].fn or self.predictor)(flat, **batch[0].parameters)
            except Exception:  # some request is bad: run them one by one so each gets its own answer
                for job in batch:
                    self._run([job])
                return
            at = 0
            for job in batch:
                part = results[at : at + job.count]
                at += job.count
                if isinstance(results, np.ndarray):
                    part = np.asarray(part)
                if not isinstance(job.inputs, list):
                    part = self.predictor.one_of_list(job.inputs, job.parameters, part[0])
                answers.append((job, part, None))
        if self.on_batch is not None:  # the tokens of the small jobs run in between count for them, not this one
            inner, inner_s = (0, 0.0) if self._nested else (self._nested_tokens - nested,
                                                              self._nested_seconds - nested_s)
            self.on_batch(sum(j.count for j in batch), encoder.tokens_run - tokens - inner,
                          time.perf_counter() - started - inner_s)
        # last: once the event loop wakes, this thread has nothing left to do but wait for the next job
        loops: dict[asyncio.AbstractEventLoop, list[tuple[Job, Any, BaseException | None]]] = {}
        for answer in answers:
            loops.setdefault(answer[0].future.get_loop(), []).append(answer)
        for loop, part in loops.items():
            try:
                loop.call_soon_threadsafe(_set, part)
            except RuntimeError:  # the loop has closed: nobody waits for these answers any more
                pass


def _set(answers: list[tuple[Job, Any, BaseException | None]]) -> None:
    for job, result, exc in answers:
        if job.future.cancelled():  # the request was cancelled while the model ran
            continue
        if exc is None:
            job.future.set_result(result)
        else:
            job.future.set_exception(exc)
