"""Embedded reads (recsys.shared.embedded_reads) answer as qdrant-client's retrieve does, on a real local collection."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from prometheus_client import CollectorRegistry
from qdrant_client import models

from recsys.encoder.store_calls import count_store_calls
from recsys.shared.embedded_reads import local_points, read_points, read_vector_rows
from recsys.shared.ids import point_id
from recsys.shared.points import BEHAVIOR, CONTENT, ITEMS, USERS
from recsys.shared.store import VectorStore


def plain(records: list[models.Record]) -> list[tuple[Any, Any, Any]]:
    """Records as comparable values: vectors as lists of floats, whatever their type."""

    def vector(value: Any) -> Any:
        if isinstance(value, dict):
            return {name: np.asarray(v).tolist() for name, v in value.items()}
        return None if value is None else np.asarray(value).tolist()

    return [(str(record.id), record.payload, vector(record.vector)) for record in records]


@pytest.fixture
async def store(tmp_path: Path) -> Any:
    store = VectorStore.connect("", tmp_path)
    await store.ensure_collections(4, 2)
    a, b, c, gone = (point_id(name) for name in ("a", "b", "c", "gone"))
    await store.client.upsert(
        ITEMS,
        [
            models.PointStruct(
                id=a,
                vector={CONTENT: [0.5, 0.5, 0.5, 0.5], BEHAVIOR: [0.6, 0.8]},
                payload={"item_id": "a", "recent": ["e1", "e2"], "nested": {"x": [1, {"y": 2}]}, "n": 3},
            ),
            models.PointStruct(id=b, vector={CONTENT: [1.0, 0.0, 0.0, 0.0]}, payload={"item_id": "b"}),
            models.PointStruct(id=c, vector={}, payload={}),
            models.PointStruct(id=gone, vector={CONTENT: [0.0, 1.0, 0.0, 0.0]}, payload={"item_id": "gone"}),
        ],
    )
    await store.client.delete(ITEMS, [gone])
    yield store
    await store.close()


@pytest.mark.parametrize(
    ("with_payload", "with_vectors"),
    [
        (True, True),
        (False, False),
        (["item_id", "recent", "missing"], [CONTENT]),
        ([], [BEHAVIOR]),
        (["nested"], False),
        (True, [CONTENT, BEHAVIOR]),
    ],
)
async def test_reads_answer_as_retrieve_does(store: VectorStore, with_payload: Any, with_vectors: Any) -> None:
    ids = [point_id(name) for name in ("b", "nobody", "a", "gone", "c", "a")]
    local = local_points(store.client, ITEMS)
    assert local is not None
    read = read_points(local, ids, with_payload, with_vectors)
    assert read is not None
    expected = await store.client.retrieve(ITEMS, ids, with_payload=with_payload, with_vectors=with_vectors)
    assert plain(read) == plain(expected)


async def test_a_read_payload_is_a_copy(store: VectorStore) -> None:
    [record] = await store.retrieve(ITEMS, [point_id("a")], with_vectors=[CONTENT])
    assert isinstance(record.vector, dict) and isinstance(record.vector[CONTENT], np.ndarray)  # type: ignore[index]
    record.payload["recent"].append("e3")  # type: ignore[index]
    record.payload["nested"]["x"][1]["y"] = 99  # type: ignore[index]
    record.vector[CONTENT][0] = 7.0  # type: ignore[index]
    [again] = await store.client.retrieve(ITEMS, [point_id("a")], with_vectors=[CONTENT])
    assert again.payload == {"item_id": "a", "recent": ["e1", "e2"], "nested": {"x": [1, {"y": 2}]}, "n": 3}
    assert again.vector[CONTENT] == pytest.approx([0.5] * 4)  # type: ignore[index]


async def test_what_only_the_client_knows_goes_to_the_client(store: VectorStore) -> None:
    local = local_points(store.client, ITEMS)
    assert read_points(local, [point_id("a")], ["nested.x"]) is None  # nested keys: the client's selector
    assert read_points(local, [point_id("a")], True, ["no_such_vector"]) is None
    [record] = await store.retrieve(ITEMS, [point_id("a")], with_payload=["nested.x"])
    assert record.payload == {"nested": {"x": [1, {"y": 2}]}}
    assert local_points(store.client, "no_such_collection") is None
    assert local_points(object(), USERS) is None


async def test_reads_the_store_serves_itself_are_counted(store: VectorStore) -> None:
    registry = CollectorRegistry()
    count_store_calls(store, registry)
    await store.retrieve(ITEMS, [point_id("a")])
    await store.retrieve(ITEMS, [point_id("a")], with_payload=["nested.x"])  # through the client
    assert registry.get_sample_value("recsys_store_calls_total", {"op": "retrieve"}) == 2


@pytest.mark.parametrize(("name", "key"), [(BEHAVIOR, "item_id"), (CONTENT, "recent"), (CONTENT, "missing")])
async def test_vector_rows_answer_as_retrieve_does(store: VectorStore, name: str, key: str) -> None:
    ids = [point_id(n) for n in ("b", "nobody", "a", "gone", "c", "a")]
    local = local_points(store.client, ITEMS)
    rows = read_vector_rows(local, ids, name, key)
    assert rows is not None
    records = await store.client.retrieve(ITEMS, ids, with_payload=True, with_vectors=[name])
    expected = [
        (str(r.id), r.vector[name], (r.payload or {}).get(key))  # type: ignore[index]
        for r in records
        if isinstance(r.vector, dict) and name in r.vector
    ]
    assert [(str(row.id), row.vector.tolist(), row.value) for row in rows] == expected
    assert [
        (str(row.id), row.vector.tolist(), row.value) for row in await store.vector_rows(ITEMS, ids, name, key)
    ] == (expected)


async def test_vector_rows_leave_what_they_do_not_read_to_the_client(store: VectorStore) -> None:
    local = local_points(store.client, ITEMS)
    assert read_vector_rows(local, [point_id("a")], "no_such_vector", "item_id") is None
    assert read_vector_rows(local, [point_id("a")], CONTENT, "nested.x") is None
