"""Event validation: what a backend may publish and the reasons a bad entry is refused."""

from __future__ import annotations

import json

import pytest

from recsys.shared.events import (
    Interaction,
    InteractionType,
    ItemUpserted,
    MalformedEvent,
    parse_interaction,
    parse_item_event,
    to_fields,
)


def _item(**data: object) -> dict[str, str]:
    return {"event": "item.upserted", "data": json.dumps(data)}


def test_item_event_round_trips_through_stream_fields() -> None:
    event = ItemUpserted(item_id="m1", title="Alien", tags=["sci-fi"], attributes={"year": 1979}, version=3, ts=10.0)
    assert parse_item_event(to_fields(event)) == event


def test_missing_timestamp_is_taken_from_the_entry_id() -> None:
    event = parse_item_event(_item(item_id="m1", title="Alien"), entry_id="1700000000123-0")
    assert event.ts == pytest.approx(1700000000.123)


def test_iso_timestamps_are_accepted() -> None:
    fields = {
        "data": json.dumps(
            {
                "event_id": "e",
                "user_id": "u",
                "item_id": "i",
                "type": "rate",
                "value": 4.5,
                "ts": "2024-01-01T00:00:00+00:00",
            }
        )
    }
    event = parse_interaction(fields)
    assert isinstance(event, Interaction)
    assert event.type is InteractionType.RATE
    assert event.ts == 1704067200.0


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"event": "item.upserted", "data": "{not json"}, "not JSON"),
        ({"event": "item.upserted"}, "missing field 'data'"),
        ({"event": "item.exploded", "data": "{}"}, "unknown event type 'item.exploded'"),
        (_item(title="no id"), "item_id: Field required"),
        (_item(item_id=7, title="t"), "item_id: Input should be a valid string"),
        (_item(item_id="m", title="t", version="new"), "version"),
        (_item(item_id="m", title="t", text="x" * 1_048_576), "text: String should have at most"),
        ({"event": "item.upserted", "data": "[1, 2]"}, "must be a JSON object"),
    ],
)
def test_malformed_item_entries_name_their_problem(fields: dict[str, str], reason: str) -> None:
    with pytest.raises(MalformedEvent, match=reason.replace("(", r"\(")):
        parse_item_event(fields)


def test_unknown_interaction_type_is_refused() -> None:
    fields = {"data": json.dumps({"event_id": "e", "user_id": "u", "item_id": "i", "type": "teleport"})}
    with pytest.raises(MalformedEvent, match="type"):
        parse_interaction(fields)


@pytest.mark.parametrize(
    ("ts", "accepted"),
    [(1_700_000_000.0, True), (1_700_000_299.0, True), (1_700_000_301.0, False), (1.7e12, False), (0.0, True)],
)
def test_an_event_may_be_a_little_ahead_of_the_clock_but_no_more(ts: float, accepted: bool) -> None:
    data = json.dumps({"event_id": "e", "user_id": "u", "item_id": "i", "type": "view", "ts": ts})
    if accepted:
        assert parse_interaction({"data": data}, now=1_700_000_000.0).ts == ts
    else:
        with pytest.raises(MalformedEvent, match="ahead of now"):
            parse_interaction({"data": data}, now=1_700_000_000.0)


def test_non_finite_timestamps_are_refused() -> None:
    with pytest.raises(MalformedEvent, match="ts"):
        parse_item_event({"event": "item.upserted", "data": '{"item_id": "a", "title": "A", "ts": Infinity}'})


@pytest.mark.parametrize("opening", ["[", '{"a":'])
def test_json_nested_past_the_parsers_depth_is_malformed_not_a_crash(opening: str) -> None:
    closing = "]" if opening == "[" else "}"
    data = '{"item_id": "x", "title": "t", "attributes": {"deep": ' + opening * 50_000 + "1" + closing * 50_000 + "}}"
    with pytest.raises(MalformedEvent, match="nests JSON deeper"):
        parse_item_event({"event": "item.upserted", "data": data})


def test_an_event_is_data_only_paths_templates_and_code_come_back_as_the_text_they_are() -> None:
    hostile = ["/etc/passwd", "file:///etc/shadow", "{{7*7}}", "${jndi:ldap://x/a}", "__import__('os').system('id')"]
    payload = {"item_id": "x", "title": hostile[0], "text": " ".join(hostile), "tags": hostile, "category": hostile[2]}
    event = parse_item_event({"event": "item.upserted", "data": json.dumps(payload)})
    assert isinstance(event, ItemUpserted)
    assert (event.title, event.text, event.tags, event.category) == (hostile[0], " ".join(hostile), hostile, hostile[2])
