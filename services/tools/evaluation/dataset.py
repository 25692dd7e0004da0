"""MovieLens (ml-latest-small layout): ratings as `rate` interactions, movies with genres and tags as catalog items."""

from __future__ import annotations

import csv
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from recsys.shared.events import ItemUpserted

NO_GENRES = "(no genres listed)"


@dataclass(frozen=True)
class Ratings:
    """All ratings as parallel arrays; users and items are row numbers into user_ids / item_ids."""

    user: np.ndarray
    item: np.ndarray
    rating: np.ndarray
    ts: np.ndarray
    user_ids: list[str]
    item_ids: list[str]

    def __len__(self) -> int:
        return len(self.user)

    def subset(self, rows: np.ndarray) -> Ratings:
        return Ratings(self.user[rows], self.item[rows], self.rating[rows], self.ts[rows], self.user_ids, self.item_ids)


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
class MovieLens:
    ratings: Ratings
    movies: list[Movie]  # in item order: movies[i] is item row i
    tags: list[Tag]


def load_movielens(folder: Path) -> MovieLens:
    """Reads ratings.csv, movies.csv and tags.csv; raises FileNotFoundError naming a missing file."""
    for name in ("ratings.csv", "movies.csv", "tags.csv"):
        if not (folder / name).is_file():
            raise FileNotFoundError(f"{folder / name} not found: expected the ml-latest-small layout")
    with (folder / "movies.csv").open(newline="", encoding="utf-8") as handle:
        movies = [
            Movie(row["movieId"], row["title"], [] if row["genres"] == NO_GENRES else row["genres"].split("|"))
            for row in csv.DictReader(handle)
        ]
    item_row = {movie.item_id: row for row, movie in enumerate(movies)}
    users: dict[str, int] = {}
    columns: dict[str, list[float]] = {"user": [], "item": [], "rating": [], "ts": []}
    with (folder / "ratings.csv").open(newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            if row["movieId"] not in item_row:
                continue
            columns["user"].append(users.setdefault(row["userId"], len(users)))
            columns["item"].append(item_row[row["movieId"]])
            columns["rating"].append(float(row["rating"]))
            columns["ts"].append(float(row["timestamp"]))
    with (folder / "tags.csv").open(newline="", encoding="utf-8") as handle:
        tags = [Tag(row["userId"], row["movieId"], row["tag"].strip()) for row in csv.DictReader(handle)]
    ratings = Ratings(
        np.asarray(columns["user"], dtype=np.int64),
        np.asarray(columns["item"], dtype=np.int64),
        np.asarray(columns["rating"], dtype=np.float64),
        np.asarray(columns["ts"], dtype=np.float64),
        list(users),
        [movie.item_id for movie in movies],
    )
    return MovieLens(ratings, movies, tags)


def catalog_events(movies: list[Movie], tags: list[Tag]) -> list[ItemUpserted]:
    """One item.upserted per movie: title, genres and the distinct tags users gave it, as the text."""
    by_item: dict[str, list[str]] = defaultdict(list)
    for tag in tags:
        if tag.text:
            by_item[tag.item_id].append(tag.text[:128])
    events = []
    for movie in movies:
        words = list(dict.fromkeys([*movie.genres, *by_item[movie.item_id]]))[:64]
        events.append(ItemUpserted(item_id=movie.item_id, title=movie.title[:1024], tags=words, category="movie"))
    return events
