"""Interaction ingestion through real Redis into embedded Qdrant: taste, replays, dislikes, behavior, notices."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

import numpy as np
import pytest
from qdrant_client import models
from redis.asyncio import Redis

from recsys.encoder.service import EncoderService
from recsys.shared.events import EmbeddingNotice
from recsys.shared.ids import point_id
from recsys.shared.points import BEHAVIOR, CONTENT, ITEMS, TASTE, USERS, ItemField, UserField
from tests.encoder.conftest import StartEncoder
from tests.encoder.gated import metric, scrape

WaitConsumed = Callable[[Redis, str, str, str | bytes], Awaitable[None]]

T0 = 1_700_000_000.0
CATALOG = {
    "space1": "A crew of astronauts stranded on Mars grows potatoes to survive.",
    "space2": "Astronauts travel through a wormhole near Saturn to find a new home.",
    "space3": "A rocket launch to the International Space Station goes wrong.",
    "soup1": "Slow-cooked tomato soup with basil and garlic.",
    "soup2": "A hearty lentil soup recipe for cold winter evenings.",
    "soup3": "Creamy mushroom soup with thyme, ready in thirty minutes.",
}


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


async def xadd_all(redis: Redis, stream: str, entries: list[dict[str, str]]) -> bytes:
    last = b""
    for fields in entries:
        entry_id = await redis.xadd(stream, fields)  # type: ignore[arg-type]
        last = entry_id if isinstance(entry_id, bytes) else entry_id.encode()
    return last


@pytest.fixture
async def catalog(encoder: EncoderService, wait_consumed: WaitConsumed) -> EncoderService:
    return await publish_catalog(encoder, wait_consumed)


async def publish_catalog(encoder: EncoderService, wait_consumed: WaitConsumed) -> EncoderService:
    stream = encoder.settings.streams.items
    entries = [
        {"event": "item.upserted", "data": json.dumps({"item_id": i, "title": t, "version": 1, "ts": T0})}
        for i, t in CATALOG.items()
    ]
    await wait_consumed(
        encoder.redis, stream, encoder.settings.item_ingest_group, await xadd_all(encoder.redis, stream, entries)
    )
    return encoder


async def interact(encoder: EncoderService, wait_consumed: WaitConsumed, *events: dict[str, Any]) -> None:
    stream = encoder.settings.streams.interactions
    entries = [{"event": "interaction", "data": json.dumps(event)} for event in events]
    last = await xadd_all(encoder.redis, stream, entries)
    await wait_consumed(encoder.redis, stream, encoder.settings.interaction_ingest_group, last)


def event(n: int, user_id: str, item_id: str, kind: str = "click", **extra: Any) -> dict[str, Any]:
    return {"event_id": f"{user_id}-{n}", "user_id": user_id, "item_id": item_id, "type": kind, "ts": T0 + n, **extra}


async def point(encoder: EncoderService, collection: str, external_id: str) -> models.Record:
    records = await encoder.store.client.retrieve(
        collection, [point_id(external_id)], with_payload=True, with_vectors=True
    )
    assert records, f"{collection} has no point for {external_id}"
    return records[0]


def vector(record: models.Record, name: str) -> np.ndarray:
    assert isinstance(record.vector, dict) and name in record.vector, f"no {name} vector"
    return np.asarray(record.vector[name])


async def test_taste_moves_toward_the_items_the_user_engages_with(
    catalog: EncoderService, wait_consumed: WaitConsumed
) -> None:
    items = {i: vector(await point(catalog, ITEMS, i), CONTENT) for i in CATALOG}
    await interact(catalog, wait_consumed, event(1, "u1", "space1"), event(2, "u1", "space2", "purchase"))

    user = await point(catalog, USERS, "u1")
    taste = vector(user, TASTE)
    assert cosine(taste, items["space3"]) > max(cosine(taste, items[s]) for s in ("soup1", "soup2", "soup3"))
    payload = user.payload or {}
    assert payload["event_count"] == 2 and UserField.SEEN.read(payload) == ["space1", "space2"]
    assert [entry[0] for entry in UserField.HISTORY.read(payload)] == ["space1", "space2"]
    assert payload["taste_norm"] > 0 and payload["last_event_ts"] == T0 + 2


async def test_a_replayed_interaction_is_counted_once(catalog: EncoderService, wait_consumed: WaitConsumed) -> None:
    once = event(1, "u1", "space1", "like")
    await interact(catalog, wait_consumed, once)
    first = await point(catalog, USERS, "u1")
    await interact(catalog, wait_consumed, once, once)

    user, item = await point(catalog, USERS, "u1"), await point(catalog, ITEMS, "space1")
    assert (user.payload or {})["event_count"] == 1
    assert (user.payload or {})["taste_norm"] == (first.payload or {})["taste_norm"]
    assert (item.payload or {})["interaction_count"] == 1
    assert ItemField.RECENT_EVENT_IDS.read(item.payload) == ["u1-1"]


async def test_a_dislike_subtracts_from_taste(catalog: EncoderService, wait_consumed: WaitConsumed) -> None:
    soup1 = vector(await point(catalog, ITEMS, "soup1"), CONTENT)
    await interact(catalog, wait_consumed, event(1, "u1", "soup1", "like"), event(2, "u1", "space1", "like"))
    before = cosine(vector(await point(catalog, USERS, "u1"), TASTE), soup1)
    await interact(catalog, wait_consumed, event(3, "u1", "soup1", "dislike"))

    user = await point(catalog, USERS, "u1")
    assert cosine(vector(user, TASTE), soup1) < before
    item = await point(catalog, ITEMS, "soup1")
    assert (item.payload or {})["interaction_count"] == 1  # the dislike is not a positive interaction


async def test_behavior_vectors_of_co_engaged_items_are_closer_than_of_unrelated_ones(
    catalog: EncoderService, wait_consumed: WaitConsumed
) -> None:
    events = []
    for n in range(8):
        events += [event(10 * n, f"fan{n}", "space1"), event(10 * n + 1, f"fan{n}", "soup1")]
        events += [event(10 * n + 2, f"cook{n}", "soup2"), event(10 * n + 3, f"cook{n}", "soup3")]
    await interact(catalog, wait_consumed, *events)
    assert catalog.behavior_refresh is not None
    report = await catalog.behavior_refresh.refresh()
    assert report is not None and report.interactions == len(events) and report.items == 4

    behavior = {i: vector(await point(catalog, ITEMS, i), BEHAVIOR) for i in ("space1", "soup1", "soup2", "soup3")}
    # space1 and soup1 share their audience though their texts differ; soup1 and soup2 share nothing but a topic.
    assert cosine(behavior["space1"], behavior["soup1"]) > cosine(behavior["soup1"], behavior["soup2"]) + 0.5
    assert cosine(behavior["soup2"], behavior["soup3"]) > cosine(behavior["soup1"], behavior["soup3"]) + 0.5
    # A user's next event recomputes their behavior against the items' current behavior vectors.
    await interact(catalog, wait_consumed, event(99, "fan0", "space1"))
    behavior = {i: vector(await point(catalog, ITEMS, i), BEHAVIOR) for i in ("space1", "soup1", "soup2", "soup3")}
    fan = vector(await point(catalog, USERS, "fan0"), BEHAVIOR)
    assert cosine(fan, behavior["space1"]) > cosine(fan, behavior["soup2"]) + 0.5


async def test_an_interaction_before_its_item_keeps_the_activity_outside_the_catalog(
    catalog: EncoderService, wait_consumed: WaitConsumed
) -> None:
    await interact(catalog, wait_consumed, event(1, "u1", "ghost", "purchase"))

    user = await point(catalog, USERS, "u1")
    payload = user.payload or {}
    assert payload["event_count"] == 1 and UserField.SEEN.read(payload) == ["ghost"]
    assert payload["taste_norm"] == 0.0 and TASTE not in (user.vector or {})
    ghost = await point(catalog, ITEMS, "ghost")
    ghost_payload = ghost.payload or {}
    assert ghost_payload["in_catalog"] is False and ghost_payload["interaction_count"] == 1
    assert ghost_payload["popularity"] > 0 and CONTENT not in (ghost.vector or {})


async def test_an_item_arriving_after_its_interactions_keeps_their_popularity_and_behavior(
    catalog: EncoderService, wait_consumed: WaitConsumed
) -> None:
    await interact(catalog, wait_consumed, event(1, "u1", "late", "purchase"), event(1, "u2", "late", "click"))
    assert catalog.behavior_refresh is not None
    await catalog.behavior_refresh.refresh()
    before = await point(catalog, ITEMS, "late")

    stream = catalog.settings.streams.items
    data = {"item_id": "late", "title": "Late arrival", "version": 0, "ts": T0 + 100}
    last = await xadd_all(catalog.redis, stream, [{"event": "item.upserted", "data": json.dumps(data)}])
    await wait_consumed(catalog.redis, stream, catalog.settings.item_ingest_group, last)

    after = await point(catalog, ITEMS, "late")
    payload = after.payload or {}
    assert payload["in_catalog"] is True and payload["title"] == "Late arrival"
    assert payload["interaction_count"] == 2 and payload["popularity"] == (before.payload or {})["popularity"]
    np.testing.assert_allclose(vector(after, BEHAVIOR), vector(before, BEHAVIOR))
    assert vector(after, CONTENT).shape == (384,)


async def test_bad_interactions_are_dead_lettered_naming_the_problem(
    catalog: EncoderService, wait_consumed: WaitConsumed
) -> None:
    await interact(catalog, wait_consumed, event(1, "u1", "space1", "rate", value=9), event(2, "u1", "space1", "wink"))

    dead = await catalog.redis.xrange(f"{catalog.settings.streams.interactions}:dead-letter")
    # Entries are handled concurrently: their dead letters may come in either order.
    reasons = sorted((fields[b"dead_letter_reason"].decode() for _, fields in dead), key=lambda r: "rating" not in r)
    assert len(reasons) == 2
    assert "rating 9.0" in reasons[0]
    assert "type" in reasons[1] and "rating 9.0" not in reasons[1]


async def notices_published(encoder: EncoderService) -> set[tuple[str, str, str, str]]:
    entries = await encoder.redis.xrange(encoder.settings.streams.embeddings)
    notices = [
        EmbeddingNotice.from_fields({k.decode(): v.decode() for k, v in fields.items()}) for _, fields in entries
    ]
    await encoder.redis.delete(encoder.settings.streams.embeddings)
    return {(n.collection, n.vector, n.subject_id, n.change) for n in notices}


async def test_taste_changes_and_behavior_refreshes_publish_embedding_notices(
    catalog: EncoderService, wait_consumed: WaitConsumed
) -> None:
    await catalog.redis.delete(catalog.settings.streams.embeddings)
    await interact(catalog, wait_consumed, event(1, "u1", "space1"))
    assert await notices_published(catalog) == {("users", TASTE, "u1", "updated")}

    assert catalog.behavior_refresh is not None
    await catalog.behavior_refresh.refresh()
    assert await notices_published(catalog) == {("items", BEHAVIOR, "space1", "updated")}


async def test_interactions_with_a_deleted_item_count_nowhere(
    catalog: EncoderService, wait_consumed: WaitConsumed
) -> None:
    items = catalog.settings.streams.items
    deleted = await catalog.redis.xadd(
        items, {"event": "item.deleted", "data": json.dumps({"item_id": "soup1", "version": 1, "ts": T0 + 1})}
    )
    await wait_consumed(catalog.redis, items, catalog.settings.item_ingest_group, deleted)
    await interact(catalog, wait_consumed, event(2, "u1", "soup1", "purchase"), event(3, "u1", "space1"))

    user = await point(catalog, USERS, "u1")
    assert UserField.EVENT_COUNT.read(user.payload) == 1 and UserField.SEEN.read(user.payload) == ["space1"]
    soup = await point(catalog, ITEMS, "soup1")
    assert ItemField.INTERACTION_COUNT.read(soup.payload) == 0 and not soup.vector
    skipped = metric(scrape(catalog.metrics_port), "recsys_interactions_skipped_total", reason="item_deleted")
    assert skipped == 1


async def test_a_replay_older_than_what_its_user_remembers_is_refused_not_counted_again(
    start_encoder: StartEncoder, wait_consumed: WaitConsumed
) -> None:
    encoder = await start_encoder(recent_events_size=3)
    await publish_catalog(encoder, wait_consumed)
    events = [event(n, "u1", "space1" if n % 2 else "space2") for n in range(1, 6)]
    await interact(encoder, wait_consumed, *events)
    await interact(encoder, wait_consumed, events[0], events[3])  # one forgotten, one still remembered

    user = await point(encoder, USERS, "u1")
    assert UserField.EVENT_COUNT.read(user.payload) == 5
    assert UserField.REPLAY_HORIZON_TS.read(user.payload) == T0 + 2
    refused = metric(scrape(encoder.metrics_port), "recsys_interactions_skipped_total", reason="user_replay_horizon")
    assert refused == 1
