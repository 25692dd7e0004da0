"""Two ingestion instances (as two encoder processes would be) updating the same user and item at once."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from redis.asyncio import Redis

from recsys.encoder.interactions.behavior_log import BehaviorLog
from recsys.encoder.interactions.ingestion import InteractionIngestion
from recsys.encoder.interactions.rules import EventWeights, InteractionRules
from recsys.encoder.keyed_locks import KeyedLocks
from recsys.encoder.notices import NoticePublisher
from recsys.encoder.settings import EncoderSettings
from recsys.shared.ids import point_id
from recsys.shared.points import ITEMS, USERS, UserField
from recsys.shared.store import VectorStore

T0 = 1_700_000_000.0


def ingestion(store: VectorStore, redis: Redis) -> InteractionIngestion:
    """One process's handler: its own locks, so nothing but the store's compare-and-set keeps the two apart."""
    settings = EncoderSettings(redis_url="redis://unused")
    return InteractionIngestion(
        store,
        NoticePublisher(redis, "test:embeddings", 10_000),
        EventWeights.from_settings(settings),
        InteractionRules.from_settings(settings),
        KeyedLocks(),
        behavior_log=BehaviorLog(redis, "test:behavior-log", 100_000),
    )


def fields(n: int, user_id: str = "u1", item_id: str = "hit") -> dict[str, str]:
    data = {"event_id": f"e{n}", "user_id": user_id, "item_id": item_id, "type": "click", "ts": T0 + n}
    return {"event": "interaction", "data": json.dumps(data)}


async def payload(store: VectorStore, collection: str, external_id: str) -> dict[str, Any]:
    records = await store.client.retrieve(collection, [point_id(external_id)], with_payload=True)
    return records[0].payload or {}


async def test_two_consumers_updating_one_user_and_one_item_at_once_lose_no_update(
    store: VectorStore, redis: Redis
) -> None:
    first, second = ingestion(store, redis), ingestion(store, redis)
    events = 40

    # Every event is handled by one of the two consumers; all run at once and interleave at each await.
    await asyncio.gather(*((first if n % 2 else second).handle(fields(n), f"{n}-0") for n in range(events)))

    user = await payload(store, USERS, "u1")
    item = await payload(store, ITEMS, "hit")
    assert user["event_count"] == events
    assert sorted(UserField.RECENT_EVENT_IDS.read(user)) == sorted(f"e{n}" for n in range(events))
    assert len(UserField.HISTORY.read(user)) == events
    assert item["interaction_count"] == events
    assert user["revision"] == events and item["revision"] == events


async def test_the_same_entry_delivered_to_both_consumers_counts_once(store: VectorStore, redis: Redis) -> None:
    first, second = ingestion(store, redis), ingestion(store, redis)

    await asyncio.gather(*(consumer.handle(fields(n), f"{n}-0") for n in range(10) for consumer in (first, second)))

    assert (await payload(store, USERS, "u1"))["event_count"] == 10
    assert (await payload(store, ITEMS, "hit"))["interaction_count"] == 10
