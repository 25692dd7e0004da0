"""The MovieLens adapter: CSVs to events on disk and in memory, implicit-only, and no tag leak."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from recsys.encoder.interactions.rules import EventWeights
from recsys.encoder.settings import EncoderSettings
from recsys.shared.events import InteractionType
from recsys.tools.evaluation.dataset import TYPE_CODE, load_events
from recsys.tools.evaluation.movielens import evaluation_dataset, write_events
from recsys.tools.evaluation.split import holdout_split

WEIGHTS = EventWeights.from_settings(EncoderSettings())


def write_movielens(folder: Path) -> Path:
    """Three users in the ml-latest-small layout; user 1 tags movie 7, which will be one of their held-out items."""
    folder.mkdir()
    movies = ["movieId,title,genres"] + [f'{m},"Movie {m}, The (199{m})",Drama|Comedy' for m in range(1, 9)]
    movies.append("9,Nothing (2000),(no genres listed)")
    (folder / "movies.csv").write_text("\n".join(movies) + "\n")
    ratings = ["userId,movieId,rating,timestamp"]
    ratings += [f"1,{m},{4.0 if m != 2 else 2.0},{1000 + m}" for m in range(1, 8)]
    ratings += [f"2,{m},3.5,{2000 + m}" for m in range(1, 4)]
    ratings += ["3,9,5.0,3000"]
    (folder / "ratings.csv").write_text("\n".join(ratings) + "\n")
    tags = ["userId,movieId,tag,timestamp", "1,7,spoiler ending,1007", "2,1,cosy,2001"]
    (folder / "tags.csv").write_text("\n".join(tags) + "\n")
    return folder


def read_jsonl(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_converted_files_round_trip_through_the_event_loader(tmp_path: Path) -> None:
    source = write_movielens(tmp_path / "ml")
    assert write_events(source, tmp_path / "out") == (9, 11)

    items = read_jsonl(tmp_path / "out" / "items.jsonl")
    assert items[0] == {
        "item_id": "1",
        "title": "Movie 1, The (1991)",
        "tags": ["Drama", "Comedy", "cosy"],
        "category": "movie",
        "version": 1,
    }
    assert "tags" not in items[8]
    events = read_jsonl(tmp_path / "out" / "interactions.jsonl")
    assert events[0] == {"event_id": "ml-1-1", "user_id": "1", "item_id": "1", "type": "rate", "value": 4.0, "ts": 1001}

    data = load_events(tmp_path / "out" / "items.jsonl", tmp_path / "out" / "interactions.jsonl", WEIGHTS)
    assert data.item_ids == [str(m) for m in range(1, 10)] and data.in_catalog.all()
    assert data.interactions.user_ids == ["1", "2", "3"]
    assert data.interactions.value.tolist()[:2] == [4.0, 2.0]
    assert data.texts[6] is not None and "spoiler ending" in data.texts[6]  # files carry every tag as given
    write_events(source, tmp_path / "again")
    assert (tmp_path / "again" / "interactions.jsonl").read_bytes() == (
        tmp_path / "out" / "interactions.jsonl"
    ).read_bytes()


def test_implicit_conversion_writes_value_less_clicks(tmp_path: Path) -> None:
    write_events(write_movielens(tmp_path / "ml"), tmp_path / "out", implicit=True, tags=False)

    events = read_jsonl(tmp_path / "out" / "interactions.jsonl")
    assert {event["type"] for event in events} == {"click"} and all("value" not in event for event in events)
    assert all(item.get("tags") in (["Drama", "Comedy"], None) for item in read_jsonl(tmp_path / "out" / "items.jsonl"))


def test_in_memory_movielens_is_the_split_of_the_ratings_with_no_leaking_tag(tmp_path: Path) -> None:
    data = evaluation_dataset(write_movielens(tmp_path / "ml"), WEIGHTS)
    split = holdout_split(data.interactions)

    # User 1 has six ratings ≥ 4 (movie 2 is rated 2): movies 3..7 are held out, 1 and 2 are training.
    assert list(split.targets) == [0]
    assert sorted(data.item_ids[int(i)] for i in split.targets[0]) == ["3", "4", "5", "6", "7"]
    assert data.texts[6] is not None and "spoiler" not in data.texts[6]  # user 1's tag of their held-out movie 7
    assert data.texts[0] is not None and "cosy" in data.texts[0]  # user 2's tag stays: not held out


def test_implicit_movielens_makes_every_rating_a_positive_click(tmp_path: Path) -> None:
    data = evaluation_dataset(write_movielens(tmp_path / "ml"), WEIGHTS, implicit=True)
    columns = data.interactions

    assert (columns.type == TYPE_CODE[InteractionType.CLICK]).all() and np.isnan(columns.value).all()
    split = holdout_split(columns)
    assert sorted(data.item_ids[int(i)] for i in split.targets[0]) == ["3", "4", "5", "6", "7"]
    user_one = split.train[columns.user[split.train] == 0]
    assert sorted(data.item_ids[int(i)] for i in columns.item[user_one]) == ["1", "2"]  # movie 2 rated 2: a click too
