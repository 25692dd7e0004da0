"""ForYou's weights: the refresh's tuned ones when the model record has them, the configured ones otherwise."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

import pytest

from recsys.recommender.tuned_blend import TunedWeights, weights_from_record
from recsys.shared.blending import ForYouWeights

DEFAULTS = ForYouWeights(behavior=1.0, taste=0.0, session=0.05, popularity=0.02, evidence_k=1.0)
TUNED = {"behavior": 1.0, "taste": 0.1, "session": 0.0, "popularity": 0.2, "evidence_k": 5.0}


class Records:
    """A model record that changes and can fail, and a clock the test moves."""

    def __init__(self, record: Mapping[str, float] | None) -> None:
        self.record = record
        self.reads = 0
        self.failing = False
        self.now = 0.0

    async def load(self) -> Mapping[str, float] | None:
        self.reads += 1
        if self.failing:
            raise ConnectionError("store down")
        return self.record


def tuned(records: Records, enabled: bool = True) -> TunedWeights:
    return TunedWeights(records.load, DEFAULTS, enabled=enabled, ttl_s=10.0, clock=lambda: records.now)


def test_the_tuned_weights_of_the_record_are_used() -> None:
    weights = asyncio.run(tuned(Records(TUNED)).current())
    assert weights == ForYouWeights(**TUNED)


def test_the_fresh_gate_travels_with_the_weights_and_a_record_without_one_leaves_fresh_slots_ungated() -> None:
    gated = asyncio.run(tuned(Records({**TUNED, "fresh_gate": 0.8})).current())
    older = asyncio.run(tuned(Records(TUNED)).current())
    assert gated.fresh_gate == 0.8 and ForYouWeights(**TUNED).as_record()["fresh_gate"] == 0.0
    assert older.fresh_gate == 0.0


def test_without_a_record_the_configured_weights_are_used() -> None:
    assert asyncio.run(tuned(Records(None)).current()) == DEFAULTS


def test_self_tuning_off_ignores_the_record() -> None:
    records = Records(TUNED)
    assert asyncio.run(tuned(records, enabled=False).current()) == DEFAULTS
    assert records.reads == 0


@pytest.mark.parametrize(
    "record",
    [
        {**TUNED, "taste": -1.0},
        {**TUNED, "evidence_k": 0.0},
        {**TUNED, "popularity": float("nan")},
        {"taste": 0.1},
        {**TUNED, "fresh_gate": 1.5},
    ],
)
def test_an_incomplete_or_invalid_record_is_not_ranked_with(record: dict[str, float]) -> None:
    assert weights_from_record(record) is None
    assert asyncio.run(tuned(Records(record)).current()) == DEFAULTS


def test_the_record_is_read_again_only_after_the_ttl_and_a_failed_read_keeps_the_last_weights() -> None:
    records = Records(TUNED)
    weights = tuned(records)

    async def scenario() -> None:
        assert await weights.current() == ForYouWeights(**TUNED)
        records.record = {**TUNED, "taste": 0.5}
        records.now = 5.0
        assert (await weights.current()).taste == 0.1  # cached
        records.now = 11.0
        assert (await weights.current()).taste == 0.5
        records.failing = True
        records.now = 30.0
        assert (await weights.current()).taste == 0.5

    asyncio.run(scenario())
    assert records.reads == 3


def test_the_recommender_reads_the_current_records_weights_from_the_store() -> None:
    from recsys.recommender.tuned_blend import tuned_blend_weights
    from recsys.shared.behavior_models import BehaviorModelRecord, save_model_record
    from recsys.shared.store import VectorStore

    async def scenario() -> None:
        store = VectorStore.in_memory()
        try:
            assert await tuned_blend_weights(store) is None  # no collection yet: an encoder has not started
            await store.ensure_collections(8, 4)
            assert await tuned_blend_weights(store) is None  # no refresh yet
            await save_model_record(store, BehaviorModelRecord(1000, {"map": "big"}, TUNED, {"self_tuned": 1.0}))
            assert await tuned_blend_weights(store) == TUNED
            await save_model_record(store, BehaviorModelRecord(2000, None, None, {"self_tuned": 0.0}))
            assert await tuned_blend_weights(store) is None  # the newest refresh kept the defaults
        finally:
            await store.close()

    asyncio.run(scenario())
