"""The light client builds, from plain arguments, the stream entries the services parse into the same events."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

import pytest
from redis import Redis

from recsys.shared.events import (
    INTERACTION_EVENT,
    Interaction,
    InteractionType,
    ItemDeleted,
    ItemEventType,
    ItemUpserted,
    parse_interaction,
    parse_item_event,
)
from recsys.shared.settings import ConnectionSettings, StreamNames
from recsys_client import AsyncEventPublisher, EventPublisher, events
from tests.support import stream_entries

NOW = 1_700_000_000.0

# (what the client is asked to publish, what the services must read from it) for every event type.
ITEM_EVENTS: list[tuple[dict[str, str], ItemUpserted | ItemDeleted]] = [
    (events.item_upserted("m1", "Alien"), ItemUpserted(item_id="m1", title="Alien", ts=1.0)),
    (
        events.item_upserted(
            "m1",
            "Alien",
            text="A crew meets a deadly creature.",
            tags=("sci-fi", "horror"),
            category="movie",
            attributes={"year": 1979, "rating": 8.5, "cult": True, "studio": "Fox"},
            version=3,
            ts=NOW,
        ),
        ItemUpserted(
            item_id="m1",
            title="Alien",
            text="A crew meets a deadly creature.",
            tags=["sci-fi", "horror"],
            category="movie",
            attributes={"year": 1979, "rating": 8.5, "cult": True, "studio": "Fox"},
            version=3,
            ts=NOW,
        ),
    ),
    (events.item_deleted("m1"), ItemDeleted(item_id="m1", ts=1.0)),
    (events.item_deleted("m1", version=4, ts=NOW), ItemDeleted(item_id="m1", version=4, ts=NOW)),
    (
        events.item_upserted("m2", "Ça va — 東京", ts=datetime.fromtimestamp(NOW, UTC)),
        ItemUpserted(item_id="m2", title="Ça va — 東京", ts=NOW),
    ),
]
INTERACTIONS: list[tuple[dict[str, str], Interaction]] = [
    (
        events.interaction("e-1", "u1", "m1", kind.value, session_id="s-9", ts=NOW),
        Interaction(event_id="e-1", user_id="u1", item_id="m1", type=kind, session_id="s-9", ts=NOW),
    )
    for kind in InteractionType
] + [
    (
        events.interaction("e-2", "u1", "m1", "rate", value=4.5),
        Interaction(event_id="e-2", user_id="u1", item_id="m1", type=InteractionType.RATE, value=4.5, ts=1.0),
    ),
]


@pytest.mark.parametrize(("fields", "expected"), ITEM_EVENTS)
def test_item_entries_parse_as_the_event_they_describe(fields: dict[str, str], expected: Any) -> None:
    assert set(fields) == {"event", "data"}
    assert parse_item_event(fields, "1000-0", now=NOW) == expected


@pytest.mark.parametrize(("fields", "expected"), INTERACTIONS)
def test_interaction_entries_parse_as_the_event_they_describe(fields: dict[str, str], expected: Interaction) -> None:
    assert set(fields) == {"event", "data"}
    assert parse_interaction(fields, "1000-0", now=NOW) == expected


def test_the_client_knows_every_event_and_interaction_type_the_services_do() -> None:
    assert {events.ITEM_UPSERTED, events.ITEM_DELETED} == {kind.value for kind in ItemEventType}
    assert events.INTERACTION == INTERACTION_EVENT
    assert {kind.value for kind in InteractionType} == events.INTERACTION_TYPES


def test_the_default_streams_are_the_services_defaults() -> None:
    streams = StreamNames(ConnectionSettings.model_fields["stream_prefix"].default)
    assert (events.items_stream(), events.interactions_stream()) == (streams.items, streams.interactions)


def test_what_can_never_be_published_is_refused_before_it_is_sent() -> None:
    with pytest.raises(ValueError, match="unknown interaction type 'buy'"):
        events.interaction("e", "u", "m", "buy")
    with pytest.raises(ValueError, match="NaN"):
        events.interaction("e", "u", "m", "rate", value=math.nan)


def test_the_sync_publisher_writes_to_the_default_or_the_named_streams(redis_url: str) -> None:
    redis = Redis.from_url(redis_url)
    publisher = EventPublisher(redis)
    first = publisher.upsert_item("m1", "Alien", version=1, ts=NOW)
    publisher.delete_item("m1", version=2, ts=NOW)
    publisher.record_interaction("e1", "u1", "m1", "like", ts=NOW)
    renamed = EventPublisher(redis, items_stream="shop:catalog", interactions_stream="shop:clicks")
    renamed.record_interaction("e2", "u1", "m1", "view", ts=NOW)
    publisher.close()  # not its client: it stays open
    items = stream_entries(redis, "recsys:items")
    assert items[0][0] == first
    assert [parse_item_event(fields, now=NOW) for _, fields in items] == [
        ItemUpserted(item_id="m1", title="Alien", version=1, ts=NOW),
        ItemDeleted(item_id="m1", version=2, ts=NOW),
    ]
    assert [parse_interaction(f, now=NOW).event_id for _, f in stream_entries(redis, "recsys:interactions")] == ["e1"]
    assert [parse_interaction(f, now=NOW).event_id for _, f in stream_entries(redis, "shop:clicks")] == ["e2"]


async def test_the_async_publisher_connects_by_url_under_a_prefix_and_closes_what_it_opened(redis_url: str) -> None:
    observer = Redis.from_url(redis_url)

    def publisher_connections() -> int:
        return sum(1 for client in observer.client_list() if client["name"] == "light-publisher")

    async with AsyncEventPublisher.connect(redis_url, stream_prefix="shop", client_name="light-publisher") as publisher:
        entry = await publisher.record_interaction("e1", "u1", "m1", "purchase", session_id="s1", ts=NOW)
        await publisher.publish(publisher.items_stream, events.item_deleted("m9"))
        assert publisher_connections() == 1
    assert publisher_connections() == 0
    [(entry_id, fields)] = stream_entries(observer, "shop:interactions")
    assert entry_id == entry
    assert parse_interaction(fields, now=NOW).session_id == "s1"
    assert len(stream_entries(observer, "shop:items")) == 1
