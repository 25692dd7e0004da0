"""`recsys publish`: items or interactions from a JSONL file onto their stream, validated first."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Literal

from tqdm import tqdm

from recsys.shared.events import (
    INTERACTION_EVENT,
    ItemEventType,
    MalformedEvent,
    parse_interaction,
    parse_item_event,
)
from recsys.shared.redis_connection import event_publisher
from recsys.shared.settings import ConnectionSettings

EventKind = Literal["items", "interactions"]

HELP = "publish items or interactions from a JSONL file (one event payload per line, validated first)"
QUIET = True


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("kind", choices=["items", "interactions"])
    parser.add_argument("file", type=Path, help='one JSON event payload per line; an optional "event" key')


def run(args: argparse.Namespace) -> int:
    settings = ConnectionSettings()
    published, problems = asyncio.run(publish_file(settings, args.kind, args.file))
    for problem in problems:
        print(f"skipped {problem}", file=sys.stderr)
    print(f"published {published} {args.kind} events, skipped {len(problems)} invalid lines")
    return 1 if problems else 0


def line_to_fields(kind: EventKind, line: str) -> dict[str, str]:
    """One JSONL line into stream fields; the line is the event payload, with an optional "event" key.

    Raises MalformedEvent for a line that the consumers would dead-letter anyway.
    """
    fields, _ = line_to_entry(kind, line)
    return fields


def line_to_entry(kind: EventKind, line: str) -> tuple[dict[str, str], str]:
    """One JSONL line into stream fields and its partition key (the item id, or the user id)."""
    try:
        payload = json.loads(line)
    except json.JSONDecodeError as exc:
        raise MalformedEvent(f"not JSON: {exc.msg}") from exc
    if not isinstance(payload, dict):
        raise MalformedEvent("a line must be a JSON object")
    default = ItemEventType.UPSERTED.value if kind == "items" else INTERACTION_EVENT
    event = str(payload.pop("event", default))
    fields = {"event": event, "data": json.dumps(payload)}
    if kind == "items":
        return fields, parse_item_event(fields).item_id
    return fields, parse_interaction(fields).user_id


async def publish_file(settings: ConnectionSettings, kind: EventKind, path: Path) -> tuple[int, list[str]]:
    """Publishes every valid line; returns (published count, problems of the lines left out)."""
    lines = [line for line in path.read_text().splitlines() if line.strip()]
    problems: list[str] = []
    published = 0
    async with event_publisher(settings) as publisher:
        # Each entry onto its item's or user's partition (the stream itself when it is not partitioned).
        stream_for = publisher.items_stream_for if kind == "items" else publisher.interactions_stream_for
        pipe = publisher.redis.pipeline(transaction=False)
        for number, line in enumerate(tqdm(lines, desc=f"publishing {kind}", unit="event"), start=1):
            try:
                fields, key = line_to_entry(kind, line)
            except MalformedEvent as exc:
                problems.append(f"line {number}: {exc}")
                continue
            pipe.xadd(stream_for(key), fields)  # type: ignore[arg-type]
            published += 1
            if published % 500 == 0:  # bounded pipelines keep memory flat on big files
                await pipe.execute()
        await pipe.execute()
    return published, problems
