"""Concurrent interactions applied in batches (real Redis, embedded Qdrant): order, replays, conflicts, failures."""

from __future__ import annotations

import asyncio
import json
import random
import warnings
from typing import Any

from prometheus_client import CollectorRegistry
from qdrant_client import models
from redis.asyncio import Redis

from recsys.encoder.interactions.behavior_log import BehaviorLog
from recsys.encoder.interactions.compare_and_set import WriteConflict
from recsys.encoder.interactions.ingestion import InteractionIngestion
from recsys.encoder.interactions.role import ingestion_policy
from recsys.encoder.interactions.rules import EventWeights, InteractionRules
from recsys.encoder.keyed_locks import KeyedLocks
from recsys.encoder.notices import NoticePublisher
from recsys.encoder.settings import EncoderSettings
from recsys.encoder.store_calls import count_store_calls
from recsys.shared.events import MalformedEvent
from recsys.shared.ids import point_id
from recsys.shared.points import CONTENT, ITEMS, USERS, ItemField, UserField
from recsys.shared.store import VectorStore

T0 = 1_700_000_000.0


def ingestion(store: VectorStore, redis: Redis, batch_size: int = 64) -> InteractionIngestion:
    settings = EncoderSettings(redis_url="redis://unused")
    return InteractionIngestion(
        store,
        NoticePublisher(redis, "test:embeddings", 10_000),
        EventWeights.from_settings(settings),
        InteractionRules.from_settings(settings),
        KeyedLocks(),
        behavior_log=BehaviorLog(redis, "test:behavior-log", 100_000),
        batch_size=batch_size,
    )


def fields(n: int, user_id: str = "u1", item_id: str = "hit", **extra: Any) -> dict[str, str]:
    data = {"event_id": f"e{n}", "user_id": user_id, "item_id": item_id, "type": "click", "ts": T0 + n, **extra}
    return {"event": "interaction", "data": json.dumps(data)}


async def payload(store: VectorStore, collection: str, external_id: str) -> dict[str, Any]:
    records = await store.client.retrieve(collection, [point_id(external_id)], with_payload=True)
    return records[0].payload or {}


async def test_many_events_of_one_user_and_item_in_one_batch_count_once_each_in_stream_order(
    store: VectorStore, redis: Redis
) -> None:
    handler = ingestion(store, redis)
    events = list(range(30))
    calling_order = random.Random(7).sample(events, len(events))
    # Same ts for all: only the stream order (entry ids) can order them.
    await asyncio.gather(*(handler.handle(fields(n, ts=T0), f"{1000 + n}-0") for n in calling_order))

    user, item = await payload(store, USERS, "u1"), await payload(store, ITEMS, "hit")
    assert UserField.RECENT_EVENT_IDS.read(user) == [f"e{n}" for n in events]
    assert ItemField.RECENT_EVENT_IDS.read(item) == [f"e{n}" for n in events]
    assert user["event_count"] == item["interaction_count"] == len(events)
    assert user["revision"] == item["revision"] == len(events)
    assert await redis.xlen("test:behavior-log") == len(events)


async def test_a_replayed_entry_in_a_batch_is_skipped(store: VectorStore, redis: Redis) -> None:
    handler = ingestion(store, redis)
    await asyncio.gather(*(handler.handle(fields(n), f"{n}-0") for n in range(5)))

    # A redelivered entry and a duplicate within the batch, beside new ones.
    await asyncio.gather(*(handler.handle(fields(n), f"{n}-0") for n in (2, 5, 6, 6)))

    user, item = await payload(store, USERS, "u1"), await payload(store, ITEMS, "hit")
    assert user["event_count"] == item["interaction_count"] == 7
    assert UserField.RECENT_EVENT_IDS.read(user) == [f"e{n}" for n in range(7)]


async def test_a_concurrent_writers_revision_conflict_retries_that_point_only(store: VectorStore, redis: Redis) -> None:
    handler = ingestion(store, redis)
    await asyncio.gather(handler.handle(fields(0, "u1"), "0-0"), handler.handle(fields(1, "u2"), "1-0"))
    write = store.client.batch_update_points
    user_writes: list[list[str]] = []

    async def another_writer_first(collection_name: str, update_operations: Any, **kwargs: Any) -> Any:
        if collection_name == USERS:
            user_writes.append([str(op.upsert.points[0].id) for op in update_operations])
            if len(user_writes) == 1:  # another process wrote u1 after this batch read it
                await store.client.set_payload(USERS, {"revision": 99}, points=[point_id("u1")])
        return await write(collection_name, update_operations, **kwargs)

    store.client.batch_update_points = another_writer_first  # type: ignore[method-assign]
    await asyncio.gather(handler.handle(fields(2, "u1"), "2-0"), handler.handle(fields(3, "u2"), "3-0"))

    assert user_writes == [[point_id("u1"), point_id("u2")], [point_id("u1")]]
    u1, u2 = await payload(store, USERS, "u1"), await payload(store, USERS, "u2")
    assert u1["event_count"] == u2["event_count"] == 2
    assert u1["revision"] == 100 and u2["revision"] == 2


async def test_a_bad_event_in_a_batch_fails_alone(store: VectorStore, redis: Redis) -> None:
    handler = ingestion(store, redis)
    entries = [fields(n, f"u{n}") for n in range(6)]
    entries[2] = {"event": "interaction", "data": "{not json"}
    entries[4] = fields(4, "u4", ts=T0 * 10)  # far in the future: refused

    outcomes = await asyncio.gather(
        *(handler.handle(entry, f"{n}-0") for n, entry in enumerate(entries)), return_exceptions=True
    )

    assert [type(outcome) for outcome in outcomes] == [
        type(None),
        type(None),
        MalformedEvent,
        type(None),
        MalformedEvent,
        type(None),
    ]
    for n in (0, 1, 3, 5):
        assert (await payload(store, USERS, f"u{n}"))["event_count"] == 1
    assert not await store.client.retrieve(USERS, [point_id("u2"), point_id("u4")])
    assert (await payload(store, ITEMS, "hit"))["interaction_count"] == 4


async def store_calls_per_event(store: VectorStore, redis: Redis, batch_size: int, events: int) -> float:
    calls = count_store_calls(store, CollectorRegistry())
    # Items in the catalog with content vectors, as the text role leaves them.
    await store.client.upsert(
        ITEMS,
        [
            models.PointStruct(id=point_id(f"i{n}"), vector={CONTENT: [1.0] + [0.0] * 7}, payload={"in_catalog": True})
            for n in range(8)
        ],
    )
    before = sum(sample.value for sample in calls.collect()[0].samples if sample.name.endswith("_total"))
    handler = ingestion(store, redis, batch_size)
    await asyncio.gather(*(handler.handle(fields(n, f"u{n}", f"i{n % 8}"), f"{n + 1}-0") for n in range(events)))
    after = sum(sample.value for sample in calls.collect()[0].samples if sample.name.endswith("_total"))
    return (after - before) / events


async def test_batches_cut_the_store_calls_per_interaction(store: VectorStore, redis: Redis) -> None:
    one_by_one = await store_calls_per_event(store, redis, batch_size=1, events=32)
    other = VectorStore.in_memory()
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Payload indexes have no effect")
            await other.ensure_collections(8, 8)
        batched = await store_calls_per_event(other, redis, batch_size=64, events=32)
    finally:
        await other.close()

    assert one_by_one >= 7
    assert batched <= 0.5


async def test_a_point_that_keeps_losing_fails_its_own_entries_only(store: VectorStore, redis: Redis) -> None:
    handler = ingestion(store, redis)
    await asyncio.gather(handler.handle(fields(0, "u1"), "0-0"), handler.handle(fields(1, "u2"), "1-0"))
    write = store.client.batch_update_points

    async def another_writer_always_first(collection_name: str, update_operations: Any, **kwargs: Any) -> Any:
        if collection_name == USERS and any(op.upsert.points[0].id == point_id("u1") for op in update_operations):
            stored = await payload(store, USERS, "u1")
            await store.client.set_payload(USERS, {"revision": stored["revision"] + 1}, points=[point_id("u1")])
        return await write(collection_name, update_operations, **kwargs)

    store.client.batch_update_points = another_writer_always_first  # type: ignore[method-assign]
    outcomes = await asyncio.gather(
        handler.handle(fields(2, "u1"), "2-0"), handler.handle(fields(3, "u2"), "3-0"), return_exceptions=True
    )

    assert isinstance(outcomes[0], WriteConflict) and outcomes[1] is None
    assert (await payload(store, USERS, "u1"))["event_count"] == 1
    assert (await payload(store, USERS, "u2"))["event_count"] == 2


def test_the_role_handles_enough_entries_at_once_for_a_batch_to_gather_while_one_is_written() -> None:
    policy = ingestion_policy(EncoderSettings(redis_url="redis://unused", interaction_batch_size=64))
    assert policy.concurrency >= 128 and policy.max_records >= 64
    one_by_one = ingestion_policy(EncoderSettings(redis_url="redis://unused", interaction_batch_size=1))
    assert one_by_one.concurrency == EncoderSettings(redis_url="redis://unused").consumer_concurrency


def as_before_packing(stored: dict[str, Any]) -> dict[str, Any]:
    """A payload as recsys wrote it before its long lists were packed (recsys.shared.packed): JSON lists."""
    legacy = dict(stored)
    for field in (UserField.RECENT_EVENT_IDS, UserField.SEEN):
        if field.key in stored:
            legacy[field.key] = field.read(stored)
    if UserField.RECENT_EVENT_TIMES.key in stored:
        legacy[UserField.RECENT_EVENT_TIMES.key] = UserField.RECENT_EVENT_TIMES.read(stored)
    if UserField.HISTORY.key in stored:
        legacy[UserField.HISTORY.key] = [list(entry) for entry in UserField.HISTORY.read(stored)]
    return legacy


async def test_points_written_before_packing_go_on_counting_each_event_once(store: VectorStore, redis: Redis) -> None:
    handler = ingestion(store, redis)
    await asyncio.gather(*(handler.handle(fields(n), f"{n}-0") for n in range(3)))
    for collection, subject in ((USERS, "u1"), (ITEMS, "hit")):
        legacy = as_before_packing(await payload(store, collection, subject))
        assert isinstance(legacy[UserField.RECENT_EVENT_IDS.key], list)
        await store.client.overwrite_payload(collection, legacy, points=[point_id(subject)])

    # A replay of an event the lists remember, beside a new one.
    await asyncio.gather(*(handler.handle(fields(n), f"{n}-0") for n in (1, 3)))

    user, item = await payload(store, USERS, "u1"), await payload(store, ITEMS, "hit")
    assert user["event_count"] == item["interaction_count"] == 4
    assert UserField.RECENT_EVENT_IDS.read(user) == ItemField.RECENT_EVENT_IDS.read(item) == ["e0", "e1", "e2", "e3"]
    assert [entry[0] for entry in UserField.HISTORY.read(user)] == ["hit"] * 4
    assert UserField.RECENT_EVENT_TIMES.read(user) == [T0 + n for n in range(4)]
    # Written again, packed: one string per list.
    assert isinstance(user[UserField.SEEN.key], str) and isinstance(item[ItemField.RECENT_EVENT_IDS.key], str)
