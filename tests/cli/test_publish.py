"""`recsys publish` and the Python client put events on the streams in the layout the consumers parse."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from redis import Redis

from recsys.shared.events import Interaction, InteractionType, ItemUpserted, parse_interaction, parse_item_event
from recsys.shared.redis_connection import event_publisher
from recsys.shared.settings import ConnectionSettings
from tests.support import stream_entries


def test_publish_command_validates_each_line_and_publishes_the_good_ones(redis_url: str, tmp_path: Path) -> None:
    lines = [
        json.dumps({"item_id": "m1", "title": "Alien", "tags": ["sci-fi"], "version": 1}),
        "{broken",
        json.dumps({"item_id": "m2"}),  # no title
        json.dumps({"event": "item.deleted", "item_id": "m0", "version": 3}),
    ]
    path = tmp_path / "catalog.jsonl"
    path.write_text("\n".join(lines) + "\n")
    env = {**os.environ, "RECSYS_REDIS_URL": redis_url, "RECSYS_STREAM_PREFIX": "cli"}
    result = subprocess.run(
        [sys.executable, "-m", "recsys.cli.main", "publish", "items", str(path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1, "invalid lines make the command fail"
    assert "published 2 items events, skipped 2 invalid lines" in result.stdout
    assert "line 2: not JSON" in result.stderr and "line 3: invalid item.upserted: title" in result.stderr

    entries = stream_entries(Redis.from_url(redis_url), "cli:items")
    events = [parse_item_event(fields, entry_id) for entry_id, fields in entries]
    assert [(type(e).__name__, e.item_id) for e in events] == [("ItemUpserted", "m1"), ("ItemDeleted", "m0")]


async def test_the_publisher_of_the_settings_publishes_what_the_consumers_parse(redis_url: str) -> None:
    item = ItemUpserted(item_id="m1", title="Alien", attributes={"year": 1979}, version=2, ts=5.0)
    interaction = Interaction(event_id="e1", user_id="u1", item_id="m1", type=InteractionType.LIKE, ts=6.0)
    async with event_publisher(ConnectionSettings(redis_url=redis_url, stream_prefix="py")) as publisher:
        item_entry = await publisher.upsert_item("m1", "Alien", attributes={"year": 1979}, version=2, ts=5.0)
        interaction_entry = await publisher.record_interaction("e1", "u1", "m1", "like", ts=6.0)

    redis = Redis.from_url(redis_url)
    [(item_id, item_fields)] = stream_entries(redis, "py:items")
    [(interaction_id, interaction_fields)] = stream_entries(redis, "py:interactions")
    assert (item_id, interaction_id) == (item_entry, interaction_entry)
    assert parse_item_event(item_fields) == item
    assert parse_interaction(interaction_fields) == interaction
    assert set(item_fields) == {"event", "data"}
