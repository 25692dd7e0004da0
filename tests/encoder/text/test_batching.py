"""DynamicBatcher with a fake model: batches and passes, lane order and share, capacity, cancellation, order."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Callable

import numpy as np
import pytest

from recsys.encoder.text.batch_plan import PassCostModel
from recsys.encoder.text.batching import BatchLimits, DynamicBatcher, Lane
from recsys.shared.errors import Overloaded, Unavailable


class FakeModel:
    """Encodes text "<n>" as the row [n, len(text)]; records every pass; can be held to let a queue build up.

    A pass goes through LAYERS steps, calling `between_layers` before each, as a preemptible model does.
    """

    LAYERS = 3

    def __init__(self, seconds_per_pass: float = 0.0) -> None:
        self.batches: list[list[str]] = []
        self.gate = threading.Event()
        self.gate.set()
        self.entered = threading.Event()
        self.seconds_per_pass = seconds_per_pass
        self.events: list[str] = []  # "pass <first text>" and "layer <first text>", in order

    def encode(self, texts: list[str], between_layers: Callable[[], None] | None = None) -> np.ndarray:
        self.batches.append(list(texts))
        self.events.append(f"pass {texts[0]}")
        self.entered.set()
        if not self.gate.wait(timeout=10):
            raise TimeoutError("test never released the fake model")
        if any(text.startswith("boom") for text in texts):
            raise RuntimeError("model exploded")
        for _ in range(self.LAYERS):
            if between_layers is not None:
                between_layers()
            self.events.append(f"layer {texts[0]}")
            time.sleep(self.seconds_per_pass / self.LAYERS)
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
        bulk_share=float(values.get("bulk_share", 0.2)),
        live_pass_s=float(values.get("live_pass_s", 0.0)),
        live_grace_s=float(values.get("live_grace_s", 0.0)),
    )


def fixed_cost(fixed_s: float, per_token_s: float) -> PassCostModel:
    """A cost model that the fake model's instant passes do not rescale."""
    return PassCostModel(fixed_s, per_token_s, adapts=False)


@pytest.fixture
def model() -> FakeModel:
    return FakeModel()


async def running(
    model: FakeModel, batch_limits: BatchLimits, cost: PassCostModel | None = None
) -> DynamicBatcher[str]:
    # By default padding costs nothing, so every batch runs as one pass, as the tests about batches expect.
    batcher = DynamicBatcher(model.encode, batch_limits, cost=cost or fixed_cost(1.0, 1e-9))
    await batcher.start()
    return batcher


@pytest.fixture
async def stop_after() -> AsyncIterator[list[DynamicBatcher[str]]]:
    batchers: list[DynamicBatcher[str]] = []
    yield batchers
    for batcher in batchers:
        await batcher.stop()


async def test_results_come_back_in_callers_order_although_the_batch_runs_sorted_by_length(
    model: FakeModel, stop_after: list[DynamicBatcher[str]]
) -> None:
    batcher = await running(model, limits())
    stop_after.append(batcher)
    texts = ["3 ccccccccccccccccccc", "1 a", "2 bbbbbbbbbb"]
    rows = await batcher.embed(texts, [len(t) for t in texts], Lane.LIVE)

    assert [row[0] for row in rows] == [3.0, 1.0, 2.0]
    assert model.batches == [sorted(texts, key=len)]


async def test_concurrent_callers_merge_into_one_batch(model: FakeModel, stop_after: list[DynamicBatcher[str]]) -> None:
    batcher = await running(model, limits(max_wait_s=0.2))
    stop_after.append(batcher)
    results = await asyncio.gather(*(batcher.embed([f"{n} text"], [5], Lane.BULK) for n in range(6)))

    assert len(model.batches) == 1 and len(model.batches[0]) == 6
    assert [rows[0][0] for rows in results] == [float(n) for n in range(6)]


async def test_a_pass_never_holds_more_than_max_size_texts(
    model: FakeModel, stop_after: list[DynamicBatcher[str]]
) -> None:
    batcher = await running(model, limits(max_size=4))
    stop_after.append(batcher)
    texts = [f"{n} t" for n in range(10)]
    rows = await batcher.embed(texts, [3] * 10, Lane.LIVE)

    assert sorted(len(batch) for batch in model.batches)[-1] == 4 and len(model.batches) == 3
    assert [row[0] for row in rows] == [float(n) for n in range(10)]


async def test_no_pass_holds_more_padded_tokens_than_the_budget(
    model: FakeModel, stop_after: list[DynamicBatcher[str]]
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


async def test_a_batch_of_mixed_lengths_runs_as_passes_that_pad_only_to_their_own_longest(
    model: FakeModel, stop_after: list[DynamicBatcher[str]]
) -> None:
    # 5 ms per pass plus 0.1 ms per padded token.
    batcher = await running(model, limits(max_wait_s=0.2), cost=fixed_cost(0.005, 0.0001))
    stop_after.append(batcher)
    tokens = [8, 200, 9, 8, 180, 10]
    rows = await batcher.embed([f"{n} t" for n in range(6)], tokens, Lane.BULK)

    assert sorted(sorted(tokens[int(t.split()[0])] for t in batch) for batch in model.batches) == [
        [8, 8, 9, 10],
        [180, 200],
    ]
    assert [row[0] for row in rows] == [float(n) for n in range(6)]


async def test_a_batch_of_similar_lengths_runs_as_one_pass(
    model: FakeModel, stop_after: list[DynamicBatcher[str]]
) -> None:
    batcher = await running(model, limits(max_wait_s=0.2), cost=fixed_cost(0.001, 0.0001))
    stop_after.append(batcher)
    await batcher.embed([f"{n} t" for n in range(6)], [10, 11, 12, 10, 12, 11], Lane.BULK)

    assert [len(batch) for batch in model.batches] == [6]


async def test_a_full_batch_runs_without_waiting_for_the_timer(
    model: FakeModel, stop_after: list[DynamicBatcher[str]]
) -> None:
    batcher = await running(model, limits(max_size=3, max_wait_s=30))
    stop_after.append(batcher)
    started = time.monotonic()
    await asyncio.wait_for(batcher.embed(["1 a", "2 b", "3 c"], [2, 2, 2], Lane.BULK), timeout=5)

    assert time.monotonic() - started < 5


async def test_a_lone_caller_is_served_without_waiting_for_company_that_is_not_coming(
    model: FakeModel, stop_after: list[DynamicBatcher[str]]
) -> None:
    batcher = await running(model, limits(max_wait_s=0.5))
    stop_after.append(batcher)
    started = time.monotonic()
    for n in range(3):
        await batcher.embed([f"{n} a"], [2], Lane.LIVE)

    assert time.monotonic() - started < 0.5
    assert [len(batch) for batch in model.batches] == [1, 1, 1]


async def test_while_texts_keep_arriving_a_batch_waits_for_them_up_to_max_wait(
    stop_after: list[DynamicBatcher[str]],
) -> None:
    model = FakeModel(seconds_per_pass=0.002)
    batcher = await running(model, limits(max_wait_s=0.05))
    stop_after.append(batcher)

    async def arrive(n: int) -> float:
        await asyncio.sleep(n * 0.002)  # 500 texts per second
        started = time.monotonic()
        await batcher.embed([f"{n} a"], [2], Lane.BULK)
        return time.monotonic() - started

    waits = await asyncio.gather(*(arrive(n) for n in range(200)))

    later = [len(batch) for batch in model.batches[3:]]  # once the rate is known
    assert sum(later) / len(later) >= 4
    assert max(waits) < 0.05 + 0.5


async def test_live_texts_are_taken_before_bulk_texts_that_came_earlier(
    model: FakeModel, stop_after: list[DynamicBatcher[str]]
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


async def test_submitting_past_a_lanes_queue_capacity_is_refused_naming_the_capacity(
    model: FakeModel, stop_after: list[DynamicBatcher[str]]
) -> None:
    batcher = await running(model, limits(max_size=1, queue_capacity=4))
    stop_after.append(batcher)
    await model.hold()
    running_one = asyncio.create_task(batcher.embed(["0 a"], [2], Lane.LIVE))
    await model.wait_entered()
    queued = asyncio.create_task(batcher.embed([f"{n} q" for n in range(1, 5)], [2] * 4, Lane.LIVE))
    await asyncio.sleep(0.01)

    with pytest.raises(Overloaded, match=r"4 live texts waiting.*capacity of 4"):
        await batcher.embed(["5 x"], [2], Lane.LIVE)
    # A full live lane leaves the bulk lane its own room, and the other way round.
    bulk = asyncio.create_task(batcher.embed(["6 b"], [2], Lane.BULK))
    model.release()
    await asyncio.gather(running_one, queued, bulk)


async def test_texts_of_a_caller_that_went_away_are_dropped_before_inference(
    model: FakeModel, stop_after: list[DynamicBatcher[str]]
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
    model: FakeModel, stop_after: list[DynamicBatcher[str]]
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


async def test_texts_whose_deadline_passed_are_dropped_before_inference(
    model: FakeModel, stop_after: list[DynamicBatcher[str]]
) -> None:
    batcher = await running(model, limits())
    stop_after.append(batcher)
    await model.hold()
    blocker = asyncio.create_task(batcher.embed(["0 blocker"], [2], Lane.LIVE))
    await model.wait_entered()
    late = asyncio.create_task(batcher.embed(["1 late"], [2], Lane.LIVE, deadline=time.monotonic() + 0.02))
    await asyncio.sleep(0.05)
    model.release()
    await blocker

    with pytest.raises(Overloaded, match="deadline passed"):
        await late
    assert "1 late" not in [text for batch in model.batches for text in batch]


async def test_a_bulk_batch_yields_to_live_texts_between_its_passes(stop_after: list[DynamicBatcher[str]]) -> None:
    model = FakeModel()
    batcher = await running(model, limits(max_wait_s=0.05, bulk_share=0.0), cost=fixed_cost(0.001, 0.0001))
    stop_after.append(batcher)
    await model.hold()
    bulk = asyncio.create_task(batcher.embed(["0 short", "1 long", "2 short"], [5, 400, 5], Lane.BULK))
    await model.wait_entered()
    live = asyncio.create_task(batcher.embed(["3 live"], [5], Lane.LIVE))
    await asyncio.sleep(0.01)
    model.release()
    await asyncio.gather(bulk, live)

    # The bulk batch ran as two passes (the long text alone); the live text went between them.
    assert model.batches == [["0 short", "2 short"], ["3 live"], ["1 long"]]


async def test_while_live_traffic_is_active_bulk_passes_are_cut_to_the_live_pass_time(
    stop_after: list[DynamicBatcher[str]],
) -> None:
    model = FakeModel()
    # 1 ms per pass plus 1 ms per token: a pass of n texts of 4 tokens takes 1 + 4n ms.
    batcher = await running(model, limits(max_wait_s=0.05, live_pass_s=0.010), cost=fixed_cost(0.001, 0.001))
    stop_after.append(batcher)
    await batcher.embed([f"{n} quiet" for n in range(6)], [4] * 6, Lane.BULK)
    quiet = list(model.batches)
    model.batches.clear()
    await batcher.embed(["9 live"], [4], Lane.LIVE)
    await batcher.embed([f"{n} busy" for n in range(6)], [4] * 6, Lane.BULK)

    assert [len(batch) for batch in quiet] == [6]
    assert [len(batch) for batch in model.batches[1:]] == [2, 2, 2]


async def test_under_steady_live_load_bulk_still_gets_its_share_of_model_time(
    stop_after: list[DynamicBatcher[str]],
) -> None:
    model = FakeModel(seconds_per_pass=0.004)
    batcher = await running(model, limits(max_size=2, max_wait_s=0.0, bulk_share=0.25))
    stop_after.append(batcher)
    flooding = True

    async def live_caller(n: int) -> None:
        while flooding:
            await batcher.embed([f"{n} live"], [4], Lane.LIVE)

    callers = [asyncio.create_task(live_caller(n)) for n in range(6)]
    await asyncio.sleep(0.1)
    bulk = [f"{n} bulk" for n in range(20)]
    started = time.monotonic()
    await asyncio.wait_for(asyncio.gather(*(batcher.embed([text], [4], Lane.BULK) for text in bulk)), 10)
    bulk_took = time.monotonic() - started
    flooding = False
    await asyncio.gather(*callers)

    passes = model.batches[-40:]
    bulk_passes = sum(1 for batch in passes if batch[0].endswith("bulk"))
    # 20 bulk texts in passes of 2 with a quarter of the passes: about 40 passes of 4 ms.
    assert bulk_took < 2.0
    assert bulk_passes >= 5, f"bulk ran {bulk_passes} of the last {len(passes)} passes"


async def test_without_a_bulk_share_live_load_holds_bulk_back(stop_after: list[DynamicBatcher[str]]) -> None:
    model = FakeModel(seconds_per_pass=0.004)
    batcher = await running(model, limits(max_size=2, max_wait_s=0.0, bulk_share=0.0))
    stop_after.append(batcher)
    flooding = True

    async def live_caller(n: int) -> None:
        while flooding:
            await batcher.embed([f"{n} live"], [4], Lane.LIVE)

    callers = [asyncio.create_task(live_caller(n)) for n in range(6)]
    await asyncio.sleep(0.05)
    bulk = asyncio.create_task(batcher.embed(["0 bulk"], [4], Lane.BULK))
    await asyncio.sleep(0.3)
    held_back = not bulk.done()
    flooding = False
    await asyncio.gather(*callers, bulk)

    assert held_back


@pytest.mark.parametrize(("grace_s", "order"), [(0.05, ["live", "live", "bulk"]), (0.0, ["live", "bulk", "live"])])
async def test_after_a_live_pass_bulk_work_waits_briefly_for_the_live_callers_next_text(
    stop_after: list[DynamicBatcher[str]], grace_s: float, order: list[str]
) -> None:
    model = FakeModel(seconds_per_pass=0.005)
    batcher = await running(model, limits(live_grace_s=grace_s))
    stop_after.append(batcher)
    await model.hold()
    blocker = asyncio.create_task(batcher.embed(["0 warm"], [2], Lane.BULK))
    await model.wait_entered()

    async def live_caller() -> None:
        await batcher.embed(["1 live"], [2], Lane.LIVE)
        await batcher.embed(["3 live"], [2], Lane.LIVE)  # right after its answer, as a caller in a loop

    caller = asyncio.create_task(live_caller())
    bulk = asyncio.create_task(batcher.embed(["2 bulk"], [2], Lane.BULK))
    await asyncio.sleep(0.01)
    model.release()
    await asyncio.gather(blocker, caller, bulk)

    assert [batch[0].split()[1] for batch in model.batches[1:]] == order


class PassLog:
    """Records what the batcher reports about each pass."""

    def __init__(self) -> None:
        self.passes: list[tuple[Lane, int, float]] = []
        self.nested = 0

    def pass_done(self, lane: Lane, texts: int, tokens: int, padded_tokens: int, seconds: float) -> None:
        self.passes.append((lane, texts, seconds))

    def texts_dropped(self, lane: Lane, reason: str, texts: int) -> None:
        pass

    def live_pass_nested(self) -> None:
        self.nested += 1


async def preemptible(model: FakeModel, batch_limits: BatchLimits, log: PassLog) -> DynamicBatcher[str]:
    batcher = DynamicBatcher(
        model.encode, batch_limits, cost=fixed_cost(1.0, 1e-9), observer=log, pass_segments=FakeModel.LAYERS
    )
    await batcher.start()
    return batcher


async def test_with_a_preemptible_model_a_live_pass_runs_between_the_layers_of_a_bulk_pass(
    stop_after: list[DynamicBatcher[str]],
) -> None:
    model, log = FakeModel(seconds_per_pass=0.3), PassLog()
    batcher = await preemptible(model, limits(), log)
    stop_after.append(batcher)
    bulk = asyncio.create_task(batcher.embed(["0 bulk", "1 bulk"], [4, 4], Lane.BULK))
    await model.wait_entered()
    live = await batcher.embed(["2 live"], [4], Lane.LIVE)
    bulk_running_when_live_was_done = not bulk.done()
    bulk_rows = await bulk

    assert model.batches == [["0 bulk", "1 bulk"], ["2 live"]]
    assert bulk_running_when_live_was_done and log.nested == 1
    assert live[0][0] == 2.0 and [row[0] for row in bulk_rows] == [0.0, 1.0]
    (lane_a, _, seconds_a), (lane_b, _, seconds_b) = log.passes
    # The bulk pass is charged without the live pass nested in it.
    assert {lane_a, lane_b} == {Lane.LIVE, Lane.BULK}
    bulk_seconds = seconds_a if lane_a is Lane.BULK else seconds_b
    assert bulk_seconds < 0.3 + 0.15


@pytest.mark.parametrize(
    ("bulk_share", "events"),
    [
        # Not owed: the caller's next text, arriving within the grace, runs at the same layer boundary.
        (0.0, ["layer 0 bulk", "pass 1 live", "pass 2 live", "layer 0 bulk", "layer 0 bulk"]),
        # Owed its share: bulk and live take turns, a layer each.
        (1.0, ["layer 0 bulk", "pass 1 live", "layer 0 bulk", "pass 2 live", "layer 0 bulk"]),
    ],
)
async def test_live_passes_nested_in_a_bulk_pass_take_turns_with_it_while_bulk_is_owed_its_share(
    stop_after: list[DynamicBatcher[str]], bulk_share: float, events: list[str]
) -> None:
    model, log = FakeModel(seconds_per_pass=0.3), PassLog()
    batcher = await preemptible(model, limits(bulk_share=bulk_share, live_grace_s=0.05), log)
    stop_after.append(batcher)
    bulk = asyncio.create_task(batcher.embed(["0 bulk"], [4], Lane.BULK))
    await model.wait_entered()
    await asyncio.sleep(0.02)  # inside the bulk pass's first layer
    await batcher.embed(["1 live"], [4], Lane.LIVE)
    await batcher.embed(["2 live"], [4], Lane.LIVE)  # right after its answer, as a caller in a loop
    await bulk

    live_layers = {"layer 1 live", "layer 2 live"}
    assert [event for event in model.events[1:] if event not in live_layers] == events
    assert log.nested == 2


async def test_a_live_pass_handed_over_after_the_last_layer_runs_next_instead(
    stop_after: list[DynamicBatcher[str]],
) -> None:
    model, log = FakeModel(seconds_per_pass=0.3), PassLog()
    batcher = await preemptible(model, limits(), log)
    stop_after.append(batcher)
    bulk = asyncio.create_task(batcher.embed(["0 bulk"], [4], Lane.BULK))
    await model.wait_entered()
    await asyncio.sleep(0.25)  # inside the last of the bulk pass's three layers
    live = await batcher.embed(["1 live"], [4], Lane.LIVE)
    await bulk

    assert live[0][0] == 1.0
    assert [lane for lane, _, _ in log.passes] == [Lane.BULK, Lane.LIVE] and log.nested == 0
