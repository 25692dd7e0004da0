"""The event-format dataset: what `recsys publish` takes, parsed by the consumers' parsers, as columns."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from recsys.encoder.interactions.rules import EventWeights
from recsys.encoder.settings import EncoderSettings
from recsys.shared.events import InteractionType
from recsys.tools.evaluation.dataset import INTERACTION_TYPES, DatasetError, load_events

WEIGHTS = EventWeights.from_settings(EncoderSettings())
DEMO_CATALOG = Path(__file__).parents[3] / "services" / "cli" / "demo_catalog.jsonl"


def write(path: Path, payloads: list[dict[str, object]]) -> Path:
    path.write_text("".join(json.dumps(payload) + "\n" for payload in payloads))
    return path


def test_the_demo_catalog_and_typed_interactions_load_as_columns(tmp_path: Path) -> None:
    items = tmp_path / "items.jsonl"
    items.write_text("".join(DEMO_CATALOG.read_text().splitlines(keepends=True)[:3]))
    events = write(
        tmp_path / "interactions.jsonl",
        [
            {"event_id": "e1", "user_id": "u1", "item_id": "k1", "type": "purchase", "session_id": "s1", "ts": 10},
            {"event": "interaction", "event_id": "e2", "user_id": "u1", "item_id": "k2", "type": "rate", "value": 4.5,
             "ts": "1970-01-01T00:00:20+00:00"},
            {"event_id": "e3", "user_id": "u2", "item_id": "k3", "type": "view", "value": 2, "ts": 30},
        ],
    )  # fmt: skip

    data = load_events(items, events, WEIGHTS)
    columns = data.interactions

    assert data.item_ids == ["k1", "k2", "k3"]
    assert data.texts[0] is not None and data.texts[0].startswith("Espresso machine with milk frother. kitchen")
    assert columns.user.tolist() == [0, 0, 1] and columns.user_ids == ["u1", "u2"]
    assert [INTERACTION_TYPES[code] for code in columns.type] == ["purchase", "rate", "view"]
    assert np.isnan(columns.value[0]) and columns.value[1:].tolist() == [4.5, 2.0]
    assert columns.ts.tolist() == [10.0, 20.0, 30.0]
    assert columns.weight.tolist() == [4.0, 4.5 - 2.5, 1.0]
    assert columns.interaction(0).session_id == "s1" and columns.interaction(1).session_id is None
    assert columns.interaction(2).type == InteractionType.VIEW


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("not json", "not JSON"),
        ('{"event_id": "e9", "user_id": "u1", "item_id": "k1", "type": "teleport"}', "invalid interaction"),
        ('{"event_id": "e9", "user_id": "u1", "item_id": "k1", "type": "rate"}', "has no value"),
        ('{"event_id": "e9", "user_id": "u1", "item_id": "k1", "type": "click", "ts": 99999999999}', "ahead of now"),
    ],
)
def test_a_line_the_services_would_refuse_is_an_error_naming_file_and_line(
    tmp_path: Path, line: str, problem: str
) -> None:
    items = write(tmp_path / "items.jsonl", [{"item_id": "k1", "title": "Kettle"}])
    events = tmp_path / "interactions.jsonl"
    good = '{"event_id": "e1", "user_id": "u1", "item_id": "k1", "type": "click", "ts": 1}'
    events.write_text(f"{good}\n\n{line}\n")

    with pytest.raises(DatasetError, match=f"{re.escape(str(events))}:3: .*{problem}"):
        load_events(items, events, WEIGHTS)


def test_a_malformed_item_line_names_the_items_file(tmp_path: Path) -> None:
    items = tmp_path / "items.jsonl"
    items.write_text('{"item_id": "k1", "title": "Kettle"}\n{"item_id": "k2"}\n')
    events = write(tmp_path / "interactions.jsonl", [])

    with pytest.raises(DatasetError, match=f"{re.escape(str(items))}:2: invalid item.upserted: title"):
        load_events(items, events, WEIGHTS)


def test_versions_deletions_and_items_never_upserted_follow_the_catalogs_rules(tmp_path: Path) -> None:
    items = write(
        tmp_path / "items.jsonl",
        [
            {"item_id": "a", "title": "A v2", "version": 2},
            {"item_id": "a", "title": "A v1", "version": 1},  # older: ignored
            {"item_id": "b", "title": "B", "version": 1},
            {"event": "item.deleted", "item_id": "b", "version": 1},
            {"item_id": "b", "title": "B again", "version": 1},  # not above the deletion: stays deleted
            {"event": "item.deleted", "item_id": "c", "version": 3},
            {"item_id": "c", "title": "C back", "version": 4},  # above the deletion: back
        ],
    )
    events = write(
        tmp_path / "interactions.jsonl",
        [
            {"event_id": "e1", "user_id": "u1", "item_id": "ghost", "type": "click", "ts": 5},
            {"event_id": "e1", "user_id": "u1", "item_id": "ghost", "type": "click", "ts": 5},  # replayed: once
            {"event_id": "e2", "user_id": "u1", "item_id": "a", "type": "like"},  # no ts: the latest before it
        ],
    )

    data = load_events(items, events, WEIGHTS)

    assert data.item_ids == ["a", "b", "c", "ghost"]
    assert data.texts == ["A v2", None, "C back", None]
    assert data.in_catalog.tolist() == [True, False, True, False]
    assert len(data.interactions) == 2 and data.interactions.ts.tolist() == [5.0, 5.0]


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"items\.jsonl"):
        load_events(tmp_path / "items.jsonl", tmp_path / "interactions.jsonl", WEIGHTS)
