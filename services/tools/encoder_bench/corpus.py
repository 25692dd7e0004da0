"""Benchmark items: the demo catalog, or MovieLens titles, genres and tags, as item.upserted payloads."""

from __future__ import annotations

import csv
import itertools
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from recsys.shared.events import ItemUpserted

# The items stream refuses more tags than this.
_MAX_TAGS = 64


def movielens_items(folder: Path) -> list[dict[str, Any]]:
    """One item per movie of a MovieLens folder (movies.csv, tags.csv): title, genres and users' tags."""
    movies, tags = folder / "movies.csv", folder / "tags.csv"
    if not movies.is_file():
        raise FileNotFoundError(f"{movies} not found: --dataset takes a MovieLens folder such as ml-latest-small")
    user_tags: dict[str, list[str]] = {}
    if tags.is_file():
        with tags.open(newline="", encoding="utf-8") as file:
            for row in csv.DictReader(file):
                seen = user_tags.setdefault(row["movieId"], [])
                tag = row["tag"].strip()
                if tag and tag.lower() not in (t.lower() for t in seen):
                    seen.append(tag)
    items = []
    with movies.open(newline="", encoding="utf-8") as file:
        for row in csv.DictReader(file):
            genres = [] if row["genres"] == "(no genres listed)" else row["genres"].split("|")
            items.append(
                {
                    "item_id": f"ml-{row['movieId']}",
                    "title": row["title"],
                    "category": "movie",
                    "tags": (genres + user_tags.get(row["movieId"], []))[:_MAX_TAGS],
                }
            )
    return items


def repeat_to(items: Sequence[dict[str, Any]], count: int, prefix: str) -> list[dict[str, Any]]:
    """`count` items cycling through `items`, each with an id of its own under `prefix`."""
    if not items:
        raise ValueError("no items to benchmark with")
    return [{**item, "item_id": f"{prefix}-{n}"} for n, item in zip(range(count), itertools.cycle(items))]


def item_texts(items: Sequence[dict[str, Any]]) -> list[str]:
    """The text each item's content vector is made from, as ingestion makes it."""
    return [ItemUpserted.model_validate(item).content_text() for item in items]
