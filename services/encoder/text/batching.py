"""Dynamic batching for one model: callers' texts merge into length-sorted, token-budgeted passes, live lane first."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

import numpy as np

from recsys.encoder.text.batch_plan import PassCostModel, plan_passes
from recsys.encoder.text.lanes import Lane, LaneTraffic
from recsys.shared.errors import Overloaded, Unavailable
from recsys.shared.lifecycle import cancel_and_wait
from recsys.shared.logs import log_event

Item = TypeVar("Item")

# Runs the model once over exactly these items (sorted by length) and returns one row per item, same
# order. It is called in the batcher's model thread, so it may block. When the second argument is
# given, the model calls it between its layers; it may run a nested pass there (see pass_segments).
EncodePass = Callable[[list[Item], Callable[[], None] | None], np.ndarray]

_log = logging.getLogger(__name__)

__all__ = ["BatchLimits", "BatchObserver", "DynamicBatcher", "EncodePass", "Lane"]

# The next pass is chosen among this many of a lane's oldest texts per text a pass may hold: the
# wider the pool, the more texts of like length it has to put together.
POOL_PER_PASS = 4


@dataclass(frozen=True)
class BatchLimits:
    """How big a forward pass may be, how long texts wait for one, and how the lanes share the model."""

    max_size: int  # most texts in one forward pass
    max_tokens: int  # most tokens one forward pass computes (texts x longest, or the sum when packed)
    max_wait_s: float  # longest the oldest text of a lane waits for its pass to fill
    queue_capacity: int  # most texts waiting per lane
    bulk_share: float = 0.2  # least share of model time the bulk lane gets while both lanes wait
    live_pass_s: float = 0.0  # while live traffic is active, longest a live text waits behind bulk work (0: no limit)
    live_grace_s: float = 0.0  # after a live pass, bulk work waits this long for the next live text (unless owed)

    def __post_init__(self) -> None:
        if self.max_size < 1 or self.max_tokens < 1 or self.queue_capacity < 1 or self.max_wait_s < 0:
            raise ValueError(f"batch limits must be positive, got {self}")
        if not 0.0 <= self.bulk_share <= 1.0 or self.live_pass_s < 0 or self.live_grace_s < 0:
            raise ValueError(f"bulk_share must lie in 0..1, live_pass_s and live_grace_s be >= 0, got {self}")


class BatchObserver(Protocol):
    """What the batcher reports (the encoder's metrics implement it)."""

    def pass_done(self, lane: Lane, texts: int, tokens: int, padded_tokens: int, seconds: float) -> None: ...

    def texts_dropped(self, lane: Lane, reason: str, texts: int) -> None: ...

    def live_pass_nested(self) -> None:
        """A live pass ran between the layers of a bulk pass (it is also reported by pass_done)."""


class _Unobserved:
    def pass_done(self, lane: Lane, texts: int, tokens: int, padded_tokens: int, seconds: float) -> None:
        pass

    def texts_dropped(self, lane: Lane, reason: str, texts: int) -> None:
        pass

    def live_pass_nested(self) -> None:
        pass


@dataclass(eq=False)
class _Submission:
    """One caller's texts and the future it awaits."""

    size: int
    future: asyncio.Future[np.ndarray]
    deadline: float | None
    rows: np.ndarray | None = None
    remaining: int = field(init=False)

    def __post_init__(self) -> None:
        self.remaining = self.size

    def deliver(self, index: int, row: np.ndarray) -> None:
        if self.future.done():
            return
        if self.rows is None:
            self.rows = np.empty((self.size, row.shape[0]), dtype=np.float32)
        self.rows[index] = row
        self.remaining -= 1
        if self.remaining == 0:
            self.future.set_result(self.rows)


@dataclass(eq=False)
class _WaitingText:
    submission: _Submission
    index: int
    tokens: int
    item: Any
    enqueued_at: float
    order: int  # arrival order, kept when a preempted text goes back to the head of its lane

    @property
    def abandoned(self) -> bool:
        # Done before all its texts ran: the caller went away (cancelled) or another pass failed it.
        return self.submission.future.done()


class DynamicBatcher(Generic[Item]):
    """One worker task owns the queues and hands forward passes formed from every caller's texts to one model thread.

    The lane's oldest texts (a pool of POOL_PER_PASS passes' worth) are sorted by length and split
    into passes that pad only to their own longest text, the split chosen by a cost model measured on
    the model and scaled to how fast passes run lately. Only the pass holding the oldest text runs;
    the rest wait for the next plan, with whatever arrived meanwhile. That pass starts at once unless
    it would take the whole pool with room to spare (`max_size` texts, `max_tokens` padded tokens) and
    texts are arriving: then it waits for them, up to `max_wait_s` after its oldest text arrived.

    LIVE goes before BULK, first come first served within a lane. While both lanes wait, BULK still
    gets `bulk_share` of the model's time, so ingestion never stops under steady live load. A live
    text never waits long behind a bulk pass: when the model's passes have several segments (its
    layers), a live pass runs between two segments of the bulk pass in progress, which then carries
    on, its result unchanged. While live traffic is active, bulk passes are planned so that a live
    text waits at most about `live_pass_s` for the next segment boundary (or for the end of a pass
    that cannot be interrupted: the model allows none, or bulk is owed its share). After a live pass,
    bulk work waits `live_grace_s` for the live caller's next text. Texts whose caller has gone or
    whose deadline passed are dropped before inference.
    """

    def __init__(
        self,
        encode: EncodePass[Item],
        limits: BatchLimits,
        *,
        cost: PassCostModel | None = None,
        observer: BatchObserver | None = None,
        pass_segments: int = 1,
        padding_free: bool = False,
        model_thread: Executor | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._encode = encode
        # Passes run in the model's own thread when it has one (see model_thread.py), else in one of ours.
        self._given_thread = model_thread
        self.limits = limits
        # A pass of more than one segment calls back between them: live passes can run there.
        self.pass_segments = max(1, pass_segments)
        # A model that runs texts packed computes only their real tokens: passes are costed by those.
        self.padding_free = padding_free
        self.cost = cost or PassCostModel()
        self._observer: BatchObserver = observer or _Unobserved()
        self._clock = clock
        self._lanes: dict[Lane, deque[_WaitingText]] = {lane: deque() for lane in Lane}
        self._arrived = asyncio.Event()
        self._worker: asyncio.Task[None] | None = None
        self._model_thread: Executor | None = None
        self._running: list[_WaitingText] = []
        self._running_lane: Lane | None = None
        self._running_interruptible = False
        self._last_lane: Lane | None = None
        self._order = itertools.count()
        self._traffic = LaneTraffic(limits.bulk_share, clock())
        # A live pass handed to the model thread to run between the layers of the bulk pass in
        # progress; the lock settles whether the model thread or the worker takes it.
        self._urgent: list[_WaitingText] | None = None
        self._urgent_running: list[_WaitingText] = []
        self._urgent_lock = threading.Lock()
        self._urgent_ready = threading.Event()  # set when a live pass is handed over
        self._pass_started = 0.0
        self._nested_s = 0.0
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def waiting(self) -> int:
        """Texts queued and not yet handed to the model."""
        return sum(len(queue) for queue in self._lanes.values())

    def waiting_in(self, lane: Lane) -> int:
        return len(self._lanes[lane])

    @property
    def running(self) -> bool:
        return self._worker is not None and not self._worker.done()

    async def start(self) -> None:
        if not self.running:
            self._loop = asyncio.get_running_loop()
            self._model_thread = self._given_thread or ThreadPoolExecutor(max_workers=1, thread_name_prefix="passes")
            self._worker = asyncio.create_task(self._work(), name="dynamic-batcher")
            self._worker.add_done_callback(self._on_worker_done)

    async def stop(self) -> None:
        """Stops the worker; callers still waiting get Unavailable."""
        worker, self._worker = self._worker, None
        await cancel_and_wait(worker)
        self._fail_everyone(Unavailable("the encoder is shutting down"))
        thread, self._model_thread = self._model_thread, None
        if thread is not None and thread is not self._given_thread:
            thread.shutdown(wait=False)

    def _on_worker_done(self, worker: asyncio.Task[None]) -> None:
        if worker.cancelled() or worker.exception() is None:
            return
        # A bug in the worker must not leave callers waiting forever.
        log_event(_log, "batcher_crashed", logging.ERROR, error=repr(worker.exception()))
        self._fail_everyone(Unavailable("the encoder's batcher stopped unexpectedly"))

    def _fail_everyone(self, error: Exception) -> None:
        with self._urgent_lock:
            urgent, self._urgent = self._urgent or [], None
        queued = [t for queue in self._lanes.values() for t in queue]
        for text in [*self._running, *self._urgent_running, *urgent, *queued]:
            if not text.submission.future.done():
                text.submission.future.set_exception(error)
        self._running, self._urgent_running = [], []
        for queue in self._lanes.values():
            queue.clear()

    async def embed(
        self, items: Sequence[Item], token_counts: Sequence[int], lane: Lane, deadline: float | None = None
    ) -> np.ndarray:
        """Queues the items and returns their embeddings, one row per item in the caller's order.

        `token_counts` are the tokens each item will occupy in the model (after truncation): they
        decide batches and passes. `deadline` (on this batcher's clock) drops the items unrun once
        passed. Raises Overloaded when the lane's queue cannot take them all.
        """
        if len(items) != len(token_counts):
            raise ValueError(f"{len(items)} items but {len(token_counts)} token counts")
        if not self.running:
            raise Unavailable("the encoder's batcher is not running")
        queue = self._lanes[lane]
        if len(queue) + len(items) > self.limits.queue_capacity:
            raise Overloaded(
                f"encoder queue is full: {len(queue)} {lane.name.lower()} texts waiting, {len(items)} more would"
                f" pass the queue capacity of {self.limits.queue_capacity}; retry later"
            )
        if not items:
            return np.empty((0, 0), dtype=np.float32)
        future: asyncio.Future[np.ndarray] = asyncio.get_running_loop().create_future()
        # A caller that goes away wakes the worker, which drops its texts from the queue at once.
        future.add_done_callback(self._on_submission_done)
        submission = _Submission(len(items), future, deadline)
        now = self._clock()
        self._traffic.arrived(lane, len(items), now, joined_others=bool(queue) or self._running_lane is lane)
        for index, (item, tokens) in enumerate(zip(items, token_counts, strict=True)):
            queue.append(_WaitingText(submission, index, max(1, int(tokens)), item, now, next(self._order)))
        self._arrived.set()
        if lane is Lane.LIVE:
            self._offer_urgent()
        # Cancelling this await (the caller went away) cancels the future, which marks its texts abandoned.
        return await future

    def _on_submission_done(self, future: asyncio.Future[np.ndarray]) -> None:
        if future.cancelled():
            self._arrived.set()

    async def _work(self) -> None:
        while True:
            now = self._clock()
            self._drop_gone(now)
            lane = self._next_lane(now)
            if lane is None:
                self._arrived.clear()
                await self._arrived.wait()
                continue
            hold = self._traffic.live_grace_left(now, self.limits.live_grace_s) if lane is Lane.BULK else 0.0
            if hold > 0 and not self._traffic.bulk_owed(now):
                await self._wait_for_arrival(hold)
                continue
            pool = self._pool(lane)
            interruptible = self._interruptible(lane)
            chosen = self._next_pass(lane, pool, interruptible)
            # Waiting can only fill a pass that takes the whole pool and still has room; and it only
            # pays when more texts are coming (a lone caller's next text comes after its answer).
            tokens = self._computed_tokens(chosen)
            room = len(chosen) == len(pool) and len(chosen) < self.limits.max_size and tokens < self.limits.max_tokens
            wait_s = pool[0].enqueued_at + self.limits.max_wait_s - now if room else 0.0
            if wait_s > 0 and self._traffic.joining_rate(lane, now) * wait_s >= 1.0:
                await self._wait_for_arrival(wait_s)
                continue
            taken = {id(text) for text in chosen}
            self._lanes[lane] = deque(text for text in self._lanes[lane] if id(text) not in taken)
            await self._run(lane, chosen, interruptible)

    async def _wait_for_arrival(self, seconds: float) -> None:
        self._arrived.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._arrived.wait(), seconds)

    def _drop_gone(self, now: float) -> None:
        for lane, queue in self._lanes.items():
            if not any(text.abandoned or self._expired(text, now) for text in queue):
                continue
            kept: deque[_WaitingText] = deque()
            gone = expired = 0
            for text in queue:
                if text.abandoned:
                    gone += 1
                elif self._expired(text, now):
                    expired += 1
                    waited_ms = (now - text.enqueued_at) * 1000
                    text.submission.future.set_exception(
                        Overloaded(f"deadline passed after {waited_ms:.0f} ms in the encoder queue")
                    )
                else:
                    kept.append(text)
            self._lanes[lane] = kept
            if gone:
                self._observer.texts_dropped(lane, "caller_gone", gone)
            if expired:
                self._observer.texts_dropped(lane, "deadline", expired)

    @staticmethod
    def _expired(text: _WaitingText, now: float) -> bool:
        deadline = text.submission.deadline
        return deadline is not None and deadline <= now

    def _next_lane(self, now: float) -> Lane | None:
        live, bulk = self._lanes[Lane.LIVE], self._lanes[Lane.BULK]
        if live and bulk:
            # A bulk owed its share takes turns with live rather than catching up in one long run.
            owed = self._traffic.bulk_owed(now) and self._last_lane is not Lane.BULK
            return Lane.BULK if owed else Lane.LIVE
        if live:
            return Lane.LIVE
        return Lane.BULK if bulk else None

    def _pool(self, lane: Lane) -> list[_WaitingText]:
        """The lane's oldest texts, which the next pass is chosen from."""
        return list(itertools.islice(self._lanes[lane], POOL_PER_PASS * self.limits.max_size))

    def _computed_tokens(self, texts: Sequence[_WaitingText]) -> int:
        """Tokens the model computes for a pass of these texts: padded to the longest, unless it runs them packed."""
        if self.padding_free:
            return sum(text.tokens for text in texts)
        return len(texts) * max(text.tokens for text in texts)

    def _interruptible(self, lane: Lane) -> bool:
        """Whether live passes may run between the segments of the next pass (a bulk one)."""
        return lane is Lane.BULK and self.pass_segments > 1

    def _next_pass(self, lane: Lane, pool: list[_WaitingText], interruptible: bool) -> list[_WaitingText]:
        """The texts of the next forward pass: the cheapest split of the pool by length, the oldest's pass.

        Only that pass runs; the rest of the pool waits with the texts arriving meanwhile, so the next
        plan can put texts of like length together that never met before. While live traffic is
        active, a bulk pass is cut so that a live text never waits more than `live_pass_s` behind it:
        to that time if it cannot be interrupted, to that time per segment if it can.
        """
        ordered = sorted(pool, key=lambda text: text.tokens)
        cuts = lane is Lane.BULK and self.limits.live_pass_s > 0 and self._traffic.live_active(self._clock())
        cut = self.limits.live_pass_s * (self.pass_segments if interruptible else 1) if cuts else None
        limits = self.limits
        tokens = [text.tokens for text in ordered]
        bounds = plan_passes(
            tokens,
            self.cost.estimate,
            limits.max_tokens,
            cut,
            max_texts=limits.max_size,
            padding_free=self.padding_free,
        )
        oldest = min(range(len(ordered)), key=lambda index: ordered[index].order)
        return next(ordered[start:end] for start, end in bounds if start <= oldest < end)

    async def _run(self, lane: Lane, texts: list[_WaitingText], interruptible: bool) -> None:
        # Kept until delivered so that stop() can fail these callers if it cancels the run.
        self._running, self._running_lane = texts, lane
        # Settled when the pass was planned: a long pass planned as interruptible stays so to its end.
        self._running_interruptible = interruptible
        self._nested_s = 0.0
        between = self._between_layers if interruptible else None
        loop = asyncio.get_running_loop()
        rows: np.ndarray | None = None
        seconds = 0.0
        error: Exception | None = None
        try:
            rows, seconds = await loop.run_in_executor(self._model_thread, self._run_pass, texts, between)
        except Exception as exc:
            error = exc
        self._running, self._running_lane, self._running_interruptible = [], None, False
        self._last_lane = lane
        # A live pass handed over too late to run between layers goes first in its lane again.
        with self._urgent_lock:
            unrun, self._urgent = self._urgent, None
        if unrun:
            self._lanes[Lane.LIVE].extendleft(sorted(unrun, key=lambda text: text.order, reverse=True))
        # Live passes nested in this one are charged to the live lane.
        self._finish(lane, texts, rows, seconds - self._nested_s, error)

    def _finish(
        self, lane: Lane, texts: list[_WaitingText], rows: np.ndarray | None, seconds: float, error: Exception | None
    ) -> None:
        """Delivers a pass's rows to its callers (or its error), and accounts for it."""
        if error is not None:
            log_event(_log, "pass_failed", logging.ERROR, texts=len(texts), error=repr(error))
            for text in texts:
                if not text.submission.future.done():
                    text.submission.future.set_exception(error)
            return
        if rows is None:
            return  # every caller of this pass had gone
        tokens = sum(text.tokens for text in texts)
        padded = self._computed_tokens(texts)
        self.cost.observe(padded, seconds)
        self._traffic.ran(lane, seconds, self._clock())
        self._observer.pass_done(lane, len(texts), tokens, padded, seconds)
        for text, row in zip(texts, rows, strict=True):
            text.submission.deliver(text.index, row)

    def _run_pass(
        self, texts: list[_WaitingText], between: Callable[[], None] | None
    ) -> tuple[np.ndarray | None, float]:
        """In the model thread: one forward pass over the texts, and the seconds it took."""
        if all(text.abandoned for text in texts):
            return None, 0.0
        started = self._pass_started = time.perf_counter()
        self._urgent_ready.clear()
        rows = self._forward(texts, between)
        return rows, time.perf_counter() - started

    def _forward(self, texts: list[_WaitingText], between: Callable[[], None] | None) -> np.ndarray:
        rows = self._encode([text.item for text in texts], between)
        if rows.shape[0] != len(texts):
            raise RuntimeError(f"model returned {rows.shape[0]} rows for {len(texts)} texts")
        return rows

    def _offer_urgent(self) -> None:
        """While an interruptible bulk pass runs, hands the next live pass to the model thread to nest in it."""
        if not self._running_interruptible or self._urgent or self._urgent_running or not self._lanes[Lane.LIVE]:
            return
        now = self._clock()
        self._drop_gone(now)
        pool = self._pool(Lane.LIVE)
        if not pool:
            return
        chosen = self._next_pass(Lane.LIVE, pool, interruptible=False)
        taken = {id(text) for text in chosen}
        self._lanes[Lane.LIVE] = deque(text for text in self._lanes[Lane.LIVE] if id(text) not in taken)
        with self._urgent_lock:
            self._urgent = chosen
        self._urgent_ready.set()

    def _between_layers(self) -> None:
        """In the model thread, between two layers of a bulk pass: runs the live passes handed over.

        While bulk is owed its share (counting this pass so far), one live pass at most, then the bulk
        pass goes on for a layer: they take turns. After a live pass it waits `live_grace_s` for the
        live caller's next text.
        """
        nested = False
        while True:
            bulk_so_far = time.perf_counter() - self._pass_started - self._nested_s
            if nested and self._traffic.bulk_owed(self._clock(), bulk_so_far):
                return
            with self._urgent_lock:
                texts, self._urgent = self._urgent, None
                self._urgent_running = texts or []
            if texts is None:
                if not nested:
                    return
                waited_from = time.perf_counter()
                arrived = self._urgent_ready.wait(self.limits.live_grace_s)
                # Idle, not bulk work: kept out of this pass's time like the live passes nested in it.
                self._nested_s += time.perf_counter() - waited_from
                if not arrived:
                    return
                self._urgent_ready.clear()
                continue
            self._run_nested(texts)
            nested = True

    def _run_nested(self, texts: list[_WaitingText]) -> None:
        rows: np.ndarray | None = None
        error: Exception | None = None
        started = time.perf_counter()
        try:
            if not all(text.abandoned for text in texts):
                rows = self._forward(texts, None)
        except Exception as exc:
            error = exc
        seconds = time.perf_counter() - started
        self._nested_s += seconds
        assert self._loop is not None
        self._loop.call_soon_threadsafe(self._finish_urgent, texts, rows, seconds, error)

    def _finish_urgent(
        self, texts: list[_WaitingText], rows: np.ndarray | None, seconds: float, error: Exception | None
    ) -> None:
        self._urgent_running = []
        self._observer.live_pass_nested()
        self._finish(Lane.LIVE, texts, rows, seconds, error)
        self._offer_urgent()
