"""Item ingestion through real Redis (plain XADD entries) into embedded Qdrant, with the real model."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

import numpy as np
import pytest
from qdrant_client import models
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError

from recsys.encoder.notices import NoticePublisher
from recsys.encoder.service import EncoderService
from recsys.encoder.text.embedder import Embedder
from recsys.encoder.text.item_ingestion import ItemIngestion, StoredItem
from recsys.shared.events import EmbeddingNotice, ItemUpserted
from recsys.shared.ids import point_id
from recsys.shared.points import BEHAVIOR, CONTENT, ITEMS, ItemField
from tests.encoder.reference import st_encode

WaitConsumed = Callable[[Redis, str, str, str | bytes], Awaitable[None]]

T0 = 1_700_000_000
ALIEN: dict[str, Any] = {
    "item_id": "m1",
    "title": "Alien",
    "text": "The crew of a commercial space tug meets a deadly alien.",
    "tags": ["sci-fi", "horror"],
    "category": "movie",
    "attributes": {"year": 1979, "rated": "R"},
    "version": 1,
    "ts": T0,
}


async def publish(redis: Redis, stream: str, event: str, data: dict[str, Any] | str) -> bytes:
    payload = data if isinstance(data, str) else json.dumps(data)
    entry_id = await redis.xadd(stream, {"event": event, "data": payload})
    return entry_id if isinstance(entry_id, bytes) else entry_id.encode()


async def stored(encoder: EncoderService, item_id: str) -> models.Record | None:
    records = await encoder.store.client.retrieve(ITEMS, [point_id(item_id)], with_payload=True, with_vectors=True)
    return records[0] if records else None


def content_of(record: models.Record) -> np.ndarray:
    assert isinstance(record.vector, dict)
    return np.asarray(record.vector[CONTENT])


async def ingest(encoder: EncoderService, wait_consumed: WaitConsumed, event: str, data: dict[str, Any] | str) -> None:
    stream = encoder.settings.streams.items
    entry_id = await publish(encoder.redis, stream, event, data)
    await wait_consumed(encoder.redis, stream, encoder.settings.item_ingest_group, entry_id)


async def test_an_upserted_item_is_stored_with_its_content_vector_and_payload(
    encoder: EncoderService, embedder: Embedder, wait_consumed: WaitConsumed
) -> None:
    await ingest(encoder, wait_consumed, "item.upserted", ALIEN)

    record = await stored(encoder, "m1")
    assert record is not None
    expected = st_encode(embedder, ItemUpserted.model_validate(ALIEN).content_text())
    assert float(content_of(record) @ expected) >= 0.9999
    payload = record.payload or {}
    for field in ("item_id", "title", "category", "tags", "attributes", "version"):
        assert payload[field] == ALIEN[field]
    assert payload["created_at"] == payload["updated_at"] == ALIEN["ts"]
    assert payload["interaction_count"] == 0 and payload["popularity"] == 0.0
    assert payload["behavior_norm"] == 0.0 and ItemField.RECENT_EVENT_IDS.read(payload) == []


async def test_a_stale_version_never_overwrites_a_newer_one(
    encoder: EncoderService, wait_consumed: WaitConsumed
) -> None:
    await ingest(encoder, wait_consumed, "item.upserted", {**ALIEN, "version": 2})
    newer = await stored(encoder, "m1")
    await ingest(encoder, wait_consumed, "item.upserted", {**ALIEN, "version": 1, "title": "Stale", "text": "Soup"})
    await ingest(encoder, wait_consumed, "item.upserted", {**ALIEN, "version": 2, "title": "Replay", "text": "Soup"})

    after = await stored(encoder, "m1")
    assert newer is not None and after is not None
    assert (after.payload or {})["title"] == "Alien" and (after.payload or {})["version"] == 2
    np.testing.assert_array_equal(content_of(after), content_of(newer))


async def test_with_equal_versions_the_later_event_wins_and_a_replay_changes_nothing(
    encoder: EncoderService, wait_consumed: WaitConsumed
) -> None:
    unversioned = {**ALIEN, "version": 0}
    await ingest(encoder, wait_consumed, "item.upserted", unversioned)
    await ingest(encoder, wait_consumed, "item.upserted", {**unversioned, "title": "Alien (remastered)", "ts": T0 + 60})
    await ingest(encoder, wait_consumed, "item.upserted", {**unversioned, "title": "Older news", "ts": T0 + 30})
    await ingest(encoder, wait_consumed, "item.upserted", {**unversioned, "title": "Replayed", "ts": T0 + 60})

    after = await stored(encoder, "m1")
    assert after is not None and (after.payload or {})["title"] == "Alien (remastered)"


async def test_a_newer_version_replaces_the_content_but_keeps_behavior_counters_and_creation_time(
    encoder: EncoderService, wait_consumed: WaitConsumed
) -> None:
    await ingest(encoder, wait_consumed, "item.upserted", ALIEN)
    interactions = encoder.settings.streams.interactions
    click = {"event_id": "e1", "user_id": "u1", "item_id": "m1", "type": "like", "ts": ALIEN["ts"] + 10}
    entry_id = await publish(encoder.redis, interactions, "interaction", click)
    await wait_consumed(encoder.redis, interactions, encoder.settings.interaction_ingest_group, entry_id)
    assert encoder.behavior_refresh is not None
    await encoder.behavior_refresh.refresh()  # the collaborative model gives the item its behavior vector
    before = await stored(encoder, "m1")
    renamed = {
        **ALIEN,
        "version": 2,
        "title": "Alien: Director's Cut",
        "text": "Tomato soup recipes.",
        "ts": ALIEN["ts"] + 99,
    }
    await ingest(encoder, wait_consumed, "item.upserted", renamed)

    after = await stored(encoder, "m1")
    assert before is not None and after is not None
    payload = after.payload or {}
    assert payload["title"] == "Alien: Director's Cut" and payload["version"] == 2
    assert payload["created_at"] == ALIEN["ts"] and payload["updated_at"] == renamed["ts"]
    assert payload["interaction_count"] == 1 and ItemField.RECENT_EVENT_IDS.read(payload) == ["e1"]
    assert isinstance(after.vector, dict) and isinstance(before.vector, dict)
    assert after.vector[BEHAVIOR] == before.vector[BEHAVIOR]
    assert float(content_of(after) @ content_of(before)) < 0.9


def is_tombstone(record: models.Record | None) -> bool:
    """What a deletion leaves: no vectors, out of the catalog, the deletion's time."""
    return (
        record is not None
        and not record.vector
        and not ItemField.IN_CATALOG.read(record.payload)
        and ItemField.DELETED_AT.read(record.payload) is not None
    )


async def test_a_delete_removes_the_item_unless_it_is_older_than_the_stored_version(
    encoder: EncoderService, wait_consumed: WaitConsumed
) -> None:
    await ingest(encoder, wait_consumed, "item.upserted", {**ALIEN, "version": 3})
    await ingest(encoder, wait_consumed, "item.deleted", {"item_id": "m1", "version": 2})
    assert not is_tombstone(await stored(encoder, "m1"))

    await ingest(encoder, wait_consumed, "item.deleted", {"item_id": "m1", "version": 3})
    assert is_tombstone(await stored(encoder, "m1"))


async def test_a_deleted_item_stays_deleted_whatever_upserts_are_replayed_or_arrive_late(
    encoder: EncoderService, wait_consumed: WaitConsumed
) -> None:
    await ingest(encoder, wait_consumed, "item.upserted", {**ALIEN, "version": 2})
    await ingest(encoder, wait_consumed, "item.deleted", {"item_id": "m1", "version": 2, "ts": ALIEN["ts"] + 5})
    for late in ({**ALIEN, "version": 2}, {**ALIEN, "version": 2, "ts": ALIEN["ts"] + 60}, {**ALIEN, "version": 1}):
        await ingest(encoder, wait_consumed, "item.upserted", late)
        assert is_tombstone(await stored(encoder, "m1")), late

    await ingest(encoder, wait_consumed, "item.upserted", {**ALIEN, "version": 3, "title": "Alien (restored)"})
    restored = await stored(encoder, "m1")
    assert restored is not None and ItemField.TITLE.read(restored.payload) == "Alien (restored)"
    assert ItemField.IN_CATALOG.read(restored.payload) and ItemField.DELETED_AT.read(restored.payload) is None
    assert CONTENT in (restored.vector or {})


async def test_a_delete_that_arrives_before_the_item_still_wins_over_its_older_upsert(
    encoder: EncoderService, wait_consumed: WaitConsumed
) -> None:
    await ingest(encoder, wait_consumed, "item.deleted", {"item_id": "m1", "version": 4})
    await ingest(encoder, wait_consumed, "item.upserted", {**ALIEN, "version": 4})
    assert is_tombstone(await stored(encoder, "m1"))


async def test_malformed_entries_are_dead_lettered_with_a_reason_and_the_next_entry_is_processed(
    encoder: EncoderService, wait_consumed: WaitConsumed
) -> None:
    stream = encoder.settings.streams.items
    await encoder.redis.xadd(stream, {"event": "item.upserted", "data": "{not json"})
    await encoder.redis.xadd(stream, {"event": "item.renamed", "data": "{}"})
    await encoder.redis.xadd(stream, {"event": "item.upserted", "data": json.dumps({"item_id": "m9", "version": 1})})
    await ingest(encoder, wait_consumed, "item.upserted", ALIEN)

    assert await stored(encoder, "m1") is not None
    dead = await encoder.redis.xrange(f"{stream}:dead-letter")
    reasons = [fields[b"dead_letter_reason"].decode() for _, fields in dead]
    assert len(reasons) == 3
    assert any("not JSON" in reason for reason in reasons)
    assert any("unknown event type 'item.renamed'" in reason for reason in reasons)
    assert any("title" in reason for reason in reasons)


async def test_each_stored_change_publishes_an_embedding_notice(
    encoder: EncoderService, wait_consumed: WaitConsumed
) -> None:
    await ingest(encoder, wait_consumed, "item.upserted", ALIEN)
    # A replay changes nothing, but its notice goes out again: the first one may have been lost.
    await ingest(encoder, wait_consumed, "item.upserted", ALIEN)
    await ingest(encoder, wait_consumed, "item.deleted", {"item_id": "m1", "version": 1})

    entries = await encoder.redis.xrange(encoder.settings.streams.embeddings)
    notices = [
        EmbeddingNotice.from_fields({k.decode(): v.decode() for k, v in fields.items()}) for _, fields in entries
    ]
    assert [(n.collection, n.vector, n.subject_id, n.change, n.version) for n in notices] == [
        ("items", CONTENT, "m1", "updated", 1),
        ("items", CONTENT, "m1", "updated", 1),
        ("items", CONTENT, "m1", "deleted", 1),
        ("items", BEHAVIOR, "m1", "deleted", 1),
    ]


async def test_a_notice_lost_after_the_write_goes_out_when_the_entry_is_redelivered(
    encoder: EncoderService, wait_consumed: WaitConsumed, monkeypatch: pytest.MonkeyPatch
) -> None:
    publish_notices = NoticePublisher.publish
    failures: list[int] = []

    async def fails_once(self: NoticePublisher, notices: Any) -> None:
        if not failures:
            failures.append(1)
            raise RedisConnectionError("Redis went away between the Qdrant write and the notice")
        await publish_notices(self, notices)

    monkeypatch.setattr(NoticePublisher, "publish", fails_once)
    await ingest(encoder, wait_consumed, "item.upserted", ALIEN)  # acked only after the redelivery succeeded

    entries = await encoder.redis.xrange(encoder.settings.streams.embeddings)
    notices = [EmbeddingNotice.from_fields({k.decode(): v.decode() for k, v in f.items()}) for _, f in entries]
    assert [(n.subject_id, n.change, n.version) for n in notices] == [("m1", "updated", 1)]
    assert failures == [1]
    assert await encoder.redis.xlen(f"{encoder.settings.streams.items}:dead-letter") == 0


async def test_an_upsert_racing_the_first_interaction_keeps_its_counters(
    encoder: EncoderService, wait_consumed: WaitConsumed, monkeypatch: pytest.MonkeyPatch
) -> None:
    interactions = encoder.settings.streams.interactions
    like = {"event_id": "e1", "user_id": "u1", "item_id": "m1", "type": "like", "ts": ALIEN["ts"] + 1}
    entry_id = await publish(encoder.redis, interactions, "interaction", like)
    await wait_consumed(encoder.redis, interactions, encoder.settings.interaction_ingest_group, entry_id)
    # The item's ingestion read the point before that interaction made it.
    read_point = ItemIngestion._stored
    lies: list[int] = []

    async def missing_once(self: ItemIngestion, pid: str) -> StoredItem:
        if not lies:
            lies.append(1)
            return StoredItem(exists=False)
        return await read_point(self, pid)

    monkeypatch.setattr(ItemIngestion, "_stored", missing_once)
    await ingest(encoder, wait_consumed, "item.upserted", ALIEN)

    record = await stored(encoder, "m1")
    assert record is not None and lies == [1]
    assert ItemField.IN_CATALOG.read(record.payload) and CONTENT in (record.vector or {})
    assert ItemField.INTERACTION_COUNT.read(record.payload) == 1
    assert ItemField.RECENT_EVENT_IDS.read(record.payload) == ["e1"]


async def test_an_item_upserted_after_a_refresh_gets_its_inferred_behavior_vector_of_the_current_version(
    start_encoder: Any, wait_consumed: WaitConsumed
) -> None:
    from recsys.encoder.content_map import ContentMap, inferred_item
    from recsys.shared.behavior_models import load_current_model
    from tests.encoder.interactions.test_behavior_refresh import publish_interactions, publish_items, two_audiences

    encoder = await start_encoder(behavior_refresh_interactions=0, behavior_dims=8)
    await publish_items(encoder, wait_consumed)
    await publish_interactions(encoder, wait_consumed, two_audiences())
    assert encoder.behavior_refresh is not None
    report = await encoder.behavior_refresh.refresh()
    assert report is not None

    await ingest(encoder, wait_consumed, "item.upserted", ALIEN)

    record = await stored(encoder, "m1")
    assert record is not None and isinstance(record.vector, dict)
    payload = record.payload or {}
    assert payload["behavior_version"] == report.version
    model = await load_current_model(encoder.store)
    assert model is not None and model.content_map is not None
    expected = inferred_item(ContentMap.from_dict(model.content_map), content_of(record))
    assert expected is not None
    np.testing.assert_allclose(np.asarray(record.vector[BEHAVIOR]), expected[0], atol=1e-5)
    assert payload["behavior_norm"] == pytest.approx(expected[1], rel=1e-5)

    # A text change keeps the vector of the current version (the next refresh picks the change up).
    await ingest(encoder, wait_consumed, "item.upserted", {**ALIEN, "text": "A quiet drama.", "version": 2})
    again = await stored(encoder, "m1")
    assert again is not None and isinstance(again.vector, dict)
    np.testing.assert_allclose(np.asarray(again.vector[BEHAVIOR]), expected[0], atol=1e-6)


async def test_a_deleted_item_gets_no_inferred_behavior_vector(start_encoder: Any, wait_consumed: WaitConsumed) -> None:
    from tests.encoder.interactions.test_behavior_refresh import publish_interactions, publish_items, two_audiences

    encoder = await start_encoder(behavior_refresh_interactions=0, behavior_dims=8)
    await publish_items(encoder, wait_consumed)
    await publish_interactions(encoder, wait_consumed, two_audiences())
    assert encoder.behavior_refresh is not None
    assert await encoder.behavior_refresh.refresh() is not None
    await ingest(encoder, wait_consumed, "item.upserted", ALIEN)
    await ingest(encoder, wait_consumed, "item.deleted", {"item_id": "m1", "version": 5})
    await ingest(encoder, wait_consumed, "item.upserted", {**ALIEN, "version": 3})
    assert await encoder.behavior_refresh.refresh() is not None

    record = await stored(encoder, "m1")
    assert record is not None
    assert not (isinstance(record.vector, dict) and BEHAVIOR in record.vector)
