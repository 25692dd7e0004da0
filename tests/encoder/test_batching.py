"""DynamicBatcher with a fake model: batch formation, lane order, capacity, cancellation, result order."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator

import numpy as np
import pytest

from recsys.encoder.batching import BatchLimits, DynamicBatcher, Lane
from recsys.shared.errors import Overloaded, Unavailable


class FakeModel:
    """Encodes text "<n>" as the row [n, len(text)]; records every batch; can be held to let a queue build up."""

    def __init__(self) -> None:
        self.batches: list[list[str]] = []
        self.gate = threading.Event()
        self.gate.set()
        self.entered = threading.Event()

    def encode(self, texts: list[str]) -> np.ndarray:
        self.batches.append(list(texts))
        self.entered.set()
        if not self.gate.wait(timeout=10):
            raise TimeoutError("test never released the fake model")
        if any(text.startswith("boom") for text in texts):
            raise RuntimeError("model exploded")
        return np.array([[float(text.split()[0]), float(len(text))] for text in texts])

    async def hold(self) -> None:
        """Blocks the model inside its next batch until release()."""
        self.gate.clear()
        self.entered.clear()

    async def wait_entered(self) -> None:
        await asyncio.to_thread(self.entered.wait, 5)

    def release(self) -> None:
        self.gate.set()


def limits(**overrides: float) -> BatchLimits:
    values = {"max_size": 64, "max_tokens": 10_000, "max_wait_s": 0.002, "queue_capacity": 1000, **overrides}
    return BatchLimits(
        max_size=int(values["max_size"]),
        max_tokens=int(values["max_tokens"]),
        max_wait_s=float(values["max_wait_s"]),
        queue_capacity=int(values["queue_capacity"]),
    )


@pytest.fixture
def model() -> FakeModel:
    return FakeModel()


async def running(model: FakeModel, batch_limits: BatchLimits) -> DynamicBatcher:
    batcher = DynamicBatcher(model.encode, batch_limits)
    await batcher.start()
    return batcher


@pytest.fixture
async def stop_after() -> AsyncIterator[list[DynamicBatcher]]:
    batchers: list[DynamicBatcher] = []
    yield batchers
    for batcher in batchers:
        await batcher.stop()


async def test_results_come_back_in_callers_order_although_the_batch_runs_sorted_by_length(
    model: FakeModel, stop_after: list[DynamicBatcher]
) -> None:
    batcher = await running(model, limits())
    stop_after.append(batcher)
    texts = ["3 ccccccccccccccccccc", "1 a", "2 bbbbbbbbbb"]
    rows = await batcher.embed(texts, [len(t) for t in texts], Lane.LIVE)

    assert [row[0] for row in rows] == [3.0, 1.0, 2.0]
    assert model.batches == [sorted(texts, key=len)]


async def test_concurrent_callers_merge_into_one_batch(model: FakeModel, stop_after: list[DynamicBatcher]) -> None:
    batcher = await running(model, limits(max_wait_s=0.2))
    stop_after.append(batcher)
    results = await asyncio.gather(*(batcher.embed([f"{n} text"], [5], Lane.BULK) for n in range(6)))

    assert len(model.batches) == 1 and len(model.batches[0]) == 6
    assert [rows[0][0] for rows in results] == [float(n) for n in range(6)]


async def test_a_batch_never_holds_more_than_max_size_texts(model: FakeModel, stop_after: list[DynamicBatcher]) -> None:
    batcher = await running(model, limits(max_size=4))
    stop_after.append(batcher)
    texts = [f"{n} t" for n in range(10)]
    rows = await batcher.embed(texts, [3] * 10, Lane.LIVE)

    assert [len(batch) for batch in model.batches] == [4, 4, 2]
    assert [row[0] for row in rows] == [float(n) for n in range(10)]


async def test_a_batch_is_cut_before_its_padded_tokens_pass_the_budget(
    model: FakeModel, stop_after: list[DynamicBatcher]
) -> None:
    batcher = await running(model, limits(max_tokens=100))
    stop_after.append(batcher)
    tokens = [10, 10, 10, 60, 500]
    await batcher.embed([f"{n} t" for n in range(5)], tokens, Lane.LIVE)

    for batch in model.batches:
        longest = max(tokens[int(text.split()[0])] for text in batch)
        # A single text over the budget still runs, alone.
        assert longest * len(batch) <= 100 or len(batch) == 1
    assert sorted(len(batch) for batch in model.batches) == [1, 1, 3]


async def test_a_full_batch_runs_without_waiting_for_the_timer(
    model: FakeModel, stop_after: list[DynamicBatcher]
) -> None:
    batcher = await running(model, limits(max_size=3, max_wait_s=30))
    stop_after.append(batcher)
    started = time.monotonic()
    await asyncio.wait_for(batcher.embed(["1 a", "2 b", "3 c"], [2, 2, 2], Lane.BULK), timeout=5)

    assert time.monotonic() - started < 5


async def test_a_lone_text_runs_once_max_wait_has_passed(model: FakeModel, stop_after: list[DynamicBatcher]) -> None:
    batcher = await running(model, limits(max_wait_s=0.15))
    stop_after.append(batcher)
    started = time.monotonic()
    await batcher.embed(["1 a"], [2], Lane.BULK)
    waited = time.monotonic() - started

    assert 0.15 <= waited < 2.0


async def test_live_texts_are_taken_before_bulk_texts_that_came_earlier(
    model: FakeModel, stop_after: list[DynamicBatcher]
) -> None:
    batcher = await running(model, limits(max_size=2))
    stop_after.append(batcher)
    await model.hold()
    blocker = asyncio.create_task(batcher.embed(["0 blocker"], [2], Lane.BULK))
    await model.wait_entered()
    bulk = asyncio.create_task(batcher.embed(["1 bulk", "2 bulk", "3 bulk"], [2, 2, 2], Lane.BULK))
    await asyncio.sleep(0.01)
    live = asyncio.create_task(batcher.embed(["4 live", "5 live"], [2, 2], Lane.LIVE))
    await asyncio.sleep(0.01)
    model.release()
    await asyncio.gather(blocker, bulk, live)

    assert model.batches[1] == ["4 live", "5 live"]
    assert model.batches[2:] == [["1 bulk", "2 bulk"], ["3 bulk"]]


async def test_submitting_past_the_queue_capacity_is_refused_naming_the_capacity(
    model: FakeModel, stop_after: list[DynamicBatcher]
) -> None:
    batcher = await running(model, limits(max_size=1, queue_capacity=4))
    stop_after.append(batcher)
    await model.hold()
    running_one = asyncio.create_task(batcher.embed(["0 a"], [2], Lane.LIVE))
    await model.wait_entered()
    queued = asyncio.create_task(batcher.embed([f"{n} q" for n in range(1, 5)], [2] * 4, Lane.BULK))
    await asyncio.sleep(0.01)

    with pytest.raises(Overloaded, match="capacity of 4"):
        await batcher.embed(["5 x"], [2], Lane.LIVE)
    model.release()
    await asyncio.gather(running_one, queued)


async def test_texts_of_a_caller_that_went_away_are_dropped_before_inference(
    model: FakeModel, stop_after: list[DynamicBatcher]
) -> None:
    batcher = await running(model, limits())
    stop_after.append(batcher)
    await model.hold()
    blocker = asyncio.create_task(batcher.embed(["0 blocker"], [2], Lane.LIVE))
    await model.wait_entered()
    gone = asyncio.create_task(batcher.embed(["1 gone", "2 gone"], [2, 2], Lane.LIVE))
    stays = asyncio.create_task(batcher.embed(["3 stays"], [2], Lane.LIVE))
    await asyncio.sleep(0.01)
    gone.cancel()
    model.release()
    await asyncio.gather(blocker, stays)

    ran = [text for batch in model.batches for text in batch]
    assert "3 stays" in ran
    assert "1 gone" not in ran and "2 gone" not in ran
    assert batcher.waiting == 0


async def test_a_failing_batch_fails_its_callers_and_the_next_batch_still_runs(
    model: FakeModel, stop_after: list[DynamicBatcher]
) -> None:
    batcher = await running(model, limits())
    stop_after.append(batcher)
    with pytest.raises(RuntimeError, match="exploded"):
        await batcher.embed(["boom1"], [2], Lane.LIVE)

    rows = await batcher.embed(["7 fine"], [2], Lane.LIVE)
    assert rows[0][0] == 7.0


async def test_stopping_fails_waiting_callers_as_unavailable(model: FakeModel) -> None:
    batcher = await running(model, limits())
    await model.hold()
    blocked = asyncio.create_task(batcher.embed(["0 a"], [2], Lane.LIVE))
    await model.wait_entered()
    waiting = asyncio.create_task(batcher.embed(["1 b"], [2], Lane.BULK))
    await asyncio.sleep(0.01)
    await batcher.stop()
    model.release()

    for task in (blocked, waiting):
        with pytest.raises(Unavailable):
            await task
    with pytest.raises(Unavailable, match="not running"):
        await batcher.embed(["2 c"], [2], Lane.LIVE)
