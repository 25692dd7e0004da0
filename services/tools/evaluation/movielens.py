"""MovieLens (ml-latest-small layout) as events: movies with genres and tags as items, ratings as interactions.

Two ways in. `recsys convert-movielens` writes the events as files (`recsys publish` and
`recsys eval --items/--interactions` read them); `recsys eval --movielens` converts in memory and
keeps the tags a user gave one of their own held-out items out of the item texts (they would
hint at the answer). A file cannot know the split, so a converted items file carries every tag
(or none, with tags=False): with files, the item texts are used as given.
"""

from __future__ import annotations

import csv
import json
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from recsys.encoder.interactions.rules import EventWeights
from recsys.shared.events import Interaction, InteractionType, ItemUpserted
from recsys.tools.evaluation.dataset import DatasetBuilder, EventDataset, Interactions
from recsys.tools.evaluation.split import Split, holdout_split

NO_GENRES = "(no genres listed)"
FILES = ("ratings.csv", "movies.csv", "tags.csv")
# With implicit=True every rating becomes this type with no value: the same data as implicit events only.
IMPLICIT_TYPE = InteractionType.CLICK


@dataclass(frozen=True)
class Movie:
    item_id: str
    title: str
    genres: list[str]


@dataclass(frozen=True)
class Tag:
    user_id: str
    item_id: str
    text: str


@dataclass(frozen=True)
class Rating:
    user_id: str
    item_id: str
    rating: float
    ts: float


@dataclass(frozen=True)
class MovieLens:
    movies: list[Movie]
    ratings: list[Rating]
    tags: list[Tag]


def load_movielens(folder: Path) -> MovieLens:
    """Reads ratings.csv, movies.csv and tags.csv; raises FileNotFoundError naming a missing file."""
    for name in FILES:
        if not (folder / name).is_file():
            raise FileNotFoundError(f"{folder / name} not found: expected the ml-latest-small layout")
    with (folder / "movies.csv").open(newline="", encoding="utf-8") as handle:
        movies = [
            Movie(row["movieId"], row["title"], [] if row["genres"] == NO_GENRES else row["genres"].split("|"))
            for row in csv.DictReader(handle)
        ]
    with (folder / "ratings.csv").open(newline="", encoding="utf-8") as handle:
        ratings = [
            Rating(row["userId"], row["movieId"], float(row["rating"]), float(row["timestamp"]))
            for row in csv.DictReader(handle)
        ]
    with (folder / "tags.csv").open(newline="", encoding="utf-8") as handle:
        tags = [Tag(row["userId"], row["movieId"], row["tag"].strip()) for row in csv.DictReader(handle)]
    return MovieLens(movies, ratings, tags)


def item_events(movies: list[Movie], tags: list[Tag]) -> list[ItemUpserted]:
    """One item.upserted per movie: title, then genres and the distinct tags users gave it as its tags."""
    by_item: dict[str, list[str]] = defaultdict(list)
    for tag in tags:
        if tag.text:
            by_item[tag.item_id].append(tag.text[:128])
    events = []
    for movie in movies:
        words = list(dict.fromkeys([*movie.genres, *by_item[movie.item_id]]))[:64]
        events.append(
            ItemUpserted(item_id=movie.item_id, title=movie.title[:1024], tags=words, category="movie", version=1)
        )
    return events


def interaction_events(ratings: list[Rating], implicit: bool = False) -> Iterator[Interaction]:
    """Each rating as a `rate` event with its value, or with `implicit` as a value-less IMPLICIT_TYPE event.

    Event ids are deterministic (a user rates a movie once), so converting twice gives the same events.
    """
    for rating in ratings:
        yield Interaction(
            event_id=f"ml-{rating.user_id}-{rating.item_id}",
            user_id=rating.user_id,
            item_id=rating.item_id,
            type=IMPLICIT_TYPE if implicit else InteractionType.RATE,
            value=None if implicit else rating.rating,
            ts=rating.ts,
        )


def tags_without_held_out(tags: list[Tag], interactions: Interactions, split: Split) -> list[Tag]:
    """Tags minus those a user gave to one of their own held-out items, which would hint at the answer."""
    held = {
        (interactions.user_ids[user], interactions.item_ids[int(item)])
        for user, items in split.targets.items()
        for item in items
    }
    return [tag for tag in tags if (tag.user_id, tag.item_id) not in held]


def evaluation_dataset(folder: Path, weights: EventWeights, implicit: bool = False) -> EventDataset:
    """MovieLens as an EventDataset whose item texts leave out the tags users gave their own held-out items.

    The split is the protocol's (holdout_split) over every user, so the catalog text, and the
    embedding cache keyed on it, is one whatever users a run samples.
    """
    data = load_movielens(folder)
    untagged = _dataset(data, [], weights, implicit)
    split = holdout_split(untagged.interactions)
    return _dataset(data, tags_without_held_out(data.tags, untagged.interactions, split), weights, implicit)


def write_events(folder: Path, out: Path, implicit: bool = False, tags: bool = True) -> tuple[int, int]:
    """Writes out/items.jsonl and out/interactions.jsonl as `recsys publish` takes them; returns the counts."""
    data = load_movielens(folder)
    out.mkdir(parents=True, exist_ok=True)
    items = item_events(data.movies, data.tags if tags else [])
    with (out / "items.jsonl").open("w", encoding="utf-8") as handle:
        for item in items:
            handle.write(item.model_dump_json(exclude_defaults=True) + "\n")
    written = 0
    with (out / "interactions.jsonl").open("w", encoding="utf-8") as handle:
        for event in interaction_events(data.ratings, implicit):
            payload = json.loads(event.model_dump_json(exclude_none=True))
            if float(payload["ts"]).is_integer():
                payload["ts"] = int(payload["ts"])
            handle.write(json.dumps(payload) + "\n")
            written += 1
    return len(items), written


def _dataset(data: MovieLens, tags: list[Tag], weights: EventWeights, implicit: bool) -> EventDataset:
    builder = DatasetBuilder(weights)
    for item in item_events(data.movies, tags):
        builder.item_event(item)
    for event in interaction_events(data.ratings, implicit):
        builder.interaction(event)
    return builder.build()
