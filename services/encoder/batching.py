"""Dynamic batching for one model: every caller's texts merge into token-budgeted batches, live lane first."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import IntEnum

import numpy as np

from recsys.shared.errors import Overloaded, Unavailable
from recsys.shared.logs import log_event

# Runs the model on texts (already sorted by length) and returns one row per text, same order.
# It is called in a worker thread, so it may block.
EncodeBatch = Callable[[list[str]], np.ndarray]

_log = logging.getLogger(__name__)


class Lane(IntEnum):
    """Priority of a caller's texts: lower values are taken first."""

    LIVE = 0  # gRPC callers waiting on an answer
    BULK = 1  # stream ingestion, which can wait a few milliseconds more


_PRIORITY = sorted(Lane)


@dataclass(frozen=True)
class BatchLimits:
    """When a batch is formed and how much may wait."""

    max_size: int
    max_tokens: int
    max_wait_s: float
    queue_capacity: int

    def __post_init__(self) -> None:
        if self.max_size < 1 or self.max_tokens < 1 or self.queue_capacity < 1 or self.max_wait_s < 0:
            raise ValueError(f"batch limits must be positive, got {self}")


@dataclass(eq=False)
class _Submission:
    """One caller's texts and the future it awaits."""

    texts: Sequence[str]
    future: asyncio.Future[np.ndarray]
    rows: np.ndarray | None = None
    remaining: int = 0

    def deliver(self, index: int, row: np.ndarray) -> None:
        if self.future.done():
            return
        if self.rows is None:
            self.rows = np.empty((len(self.texts), row.shape[0]), dtype=np.float32)
        self.rows[index] = row
        self.remaining -= 1
        if self.remaining == 0:
            self.future.set_result(self.rows)


@dataclass(eq=False)
class _WaitingText:
    submission: _Submission
    index: int
    tokens: int
    enqueued_at: float = field(default=0.0)

    @property
    def abandoned(self) -> bool:
        # Done before all its texts ran: the caller went away (cancelled) or another batch failed it.
        return self.submission.future.done()


class DynamicBatcher:
    """One worker task owns the queue and runs the model on batches formed from every caller's texts.

    A batch is formed when `max_size` texts wait, when adding the next text would push the padded
    token count (longest x count) past `max_tokens`, or when the oldest text has waited `max_wait_s`.
    LIVE texts are taken before BULK ones, first come first served within a lane so that long texts
    are never starved. Texts whose caller has gone are dropped before inference.
    """

    def __init__(self, encode: EncodeBatch, limits: BatchLimits, clock: Callable[[], float] = time.monotonic) -> None:
        self._encode = encode
        self.limits = limits
        self._clock = clock
        self._lanes: dict[Lane, deque[_WaitingText]] = {lane: deque() for lane in Lane}
        self._arrived = asyncio.Event()
        self._worker: asyncio.Task[None] | None = None
        self._running: list[_WaitingText] = []

    @property
    def waiting(self) -> int:
        """Texts queued and not yet handed to the model."""
        return sum(len(queue) for queue in self._lanes.values())

    @property
    def running(self) -> bool:
        return self._worker is not None and not self._worker.done()

    async def start(self) -> None:
        if not self.running:
            self._worker = asyncio.create_task(self._work(), name="dynamic-batcher")
            self._worker.add_done_callback(self._on_worker_done)

    async def stop(self) -> None:
        """Stops the worker; callers still waiting get Unavailable."""
        worker, self._worker = self._worker, None
        if worker is not None:
            worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await worker
        self._fail_everyone(Unavailable("the encoder is shutting down"))

    def _on_worker_done(self, worker: asyncio.Task[None]) -> None:
        if worker.cancelled() or worker.exception() is None:
            return
        # A bug in the worker must not leave callers waiting forever.
        log_event(_log, "batcher_crashed", logging.ERROR, error=repr(worker.exception()))
        self._fail_everyone(Unavailable("the encoder's batcher stopped unexpectedly"))

    def _fail_everyone(self, error: Exception) -> None:
        for text in [*self._running, *(t for queue in self._lanes.values() for t in queue)]:
            if not text.submission.future.done():
                text.submission.future.set_exception(error)
        self._running = []
        for queue in self._lanes.values():
            queue.clear()

    async def embed(self, texts: Sequence[str], token_counts: Sequence[int], lane: Lane) -> np.ndarray:
        """Queues the texts and returns their embeddings, one row per text in the caller's order.

        `token_counts` are the tokens each text will occupy in the model (after truncation): they
        decide the padded size of a batch. Raises Overloaded when the queue cannot take them all.
        """
        if len(texts) != len(token_counts):
            raise ValueError(f"{len(texts)} texts but {len(token_counts)} token counts")
        if not self.running:
            raise Unavailable("the encoder's batcher is not running")
        waiting = self.waiting
        if waiting + len(texts) > self.limits.queue_capacity:
            raise Overloaded(
                f"encoder queue is full: {waiting} texts waiting, {len(texts)} more would pass the"
                f" queue capacity of {self.limits.queue_capacity}; retry later"
            )
        if not texts:
            return np.empty((0, 0), dtype=np.float32)
        future: asyncio.Future[np.ndarray] = asyncio.get_running_loop().create_future()
        submission = _Submission(texts, future, remaining=len(texts))
        now = self._clock()
        queue = self._lanes[lane]
        for index, tokens in enumerate(token_counts):
            queue.append(_WaitingText(submission, index, max(1, int(tokens)), now))
        self._arrived.set()
        # Cancelling this await (the caller went away) cancels the future, which marks its texts abandoned.
        return await future

    async def _work(self) -> None:
        while True:
            self._drop_abandoned()
            if not self.waiting:
                self._arrived.clear()
                await self._arrived.wait()
                continue
            batch, full = self._select()
            wait_s = 0.0 if full else self._oldest_enqueued() + self.limits.max_wait_s - self._clock()
            if wait_s > 0:
                self._arrived.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._arrived.wait(), wait_s)
                continue
            self._take(batch)
            await self._run(batch)

    def _drop_abandoned(self) -> None:
        for lane, queue in self._lanes.items():
            if any(text.abandoned for text in queue):
                self._lanes[lane] = deque(text for text in queue if not text.abandoned)

    def _oldest_enqueued(self) -> float:
        return min(queue[0].enqueued_at for queue in self._lanes.values() if queue)

    def _select(self) -> tuple[list[_WaitingText], bool]:
        """The next batch in lane order, and whether it is full (texts are left that did not fit)."""
        batch: list[_WaitingText] = []
        longest = 0
        for lane in _PRIORITY:
            for text in self._lanes[lane]:
                if len(batch) == self.limits.max_size:
                    return batch, True
                padded = max(longest, text.tokens) * (len(batch) + 1)
                if batch and padded > self.limits.max_tokens:
                    return batch, True
                batch.append(text)
                longest = max(longest, text.tokens)
        return batch, len(batch) == self.limits.max_size

    def _take(self, batch: list[_WaitingText]) -> None:
        # The batch is the whole of each higher-priority queue it reached, then a prefix of the last one.
        queues = (self._lanes[lane] for lane in _PRIORITY)
        queue = next(queues)
        for text in batch:
            while not queue:
                queue = next(queues)
            popped = queue.popleft()
            assert popped is text, "batch must be taken in selection order"

    async def _run(self, batch: list[_WaitingText]) -> None:
        # Sorted by length so that the padding inside the model's forward pass stays small.
        ordered = sorted(batch, key=lambda text: text.tokens)
        # Kept until delivered so that stop() can fail these callers if it cancels the run.
        self._running = ordered
        texts = [text.submission.texts[text.index] for text in ordered]
        try:
            rows = await asyncio.to_thread(self._encode, texts)
            if rows.shape[0] != len(ordered):
                raise RuntimeError(f"model returned {rows.shape[0]} rows for {len(ordered)} texts")
        except Exception as exc:
            self._running = []
            log_event(_log, "batch_failed", logging.ERROR, texts=len(ordered), error=repr(exc))
            for text in ordered:
                if not text.submission.future.done():
                    text.submission.future.set_exception(exc)
            return
        self._running = []
        for text, row in zip(ordered, rows, strict=True):
            text.submission.deliver(text.index, row)
