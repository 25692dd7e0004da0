"""Embedded Qdrant on disk commits once per write request, keeps what it wrote, and reads only what guards test."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from qdrant_client import models

from recsys.encoder.interactions.compare_and_set import revision_is
from recsys.shared.embedded_commits import GroupedConnection
from recsys.shared.ids import point_id
from recsys.shared.points import ITEMS, ItemField
from recsys.shared.store import GuardedPayload, VectorStore, condition_keys


def item(n: int) -> models.PointStruct:
    return models.PointStruct(
        id=n, vector={"content": [1.0, 0, 0, float(n)], "behavior": [0, 1.0]}, payload={ItemField.ITEM_ID.key: f"i{n}"}
    )


def commits_of(store: VectorStore, collection: str) -> list[str]:
    """Starts recording the COMMIT statements of the collection's SQLite file; the list fills as they run."""
    connection = store.client._client.collections[collection].storage.storage  # type: ignore[attr-defined]
    assert isinstance(connection, GroupedConnection), "the store did not group the collection's commits"
    statements: list[str] = []
    connection.connection.set_trace_callback(
        lambda statement: statements.append(statement) if statement.upper().startswith("COMMIT") else None
    )
    return statements


async def count_after_reopen(data_dir: Path) -> int:
    reopened = VectorStore.connect("", data_dir)
    try:
        return (await reopened.client.count(ITEMS, exact=True)).count
    finally:
        await reopened.close()


async def test_a_request_of_many_points_commits_once_and_all_of_them_survive_a_reopen(tmp_path: Path) -> None:
    store = VectorStore.connect("", tmp_path)
    await store.ensure_collections(4, 2)
    commits = commits_of(store, ITEMS)

    await store.client.upsert(ITEMS, [item(n) for n in range(1, 51)])
    await store.client.batch_update_points(
        ITEMS,
        [
            models.SetPayloadOperation(set_payload=models.SetPayload(payload={"revision": 1}, points=[n]))
            for n in range(1, 51)
        ],
    )
    await store.close()

    assert len(commits) == 2  # one per request, not one per point (100 before)
    assert await count_after_reopen(tmp_path) == 50


async def test_a_refused_request_writes_nothing_and_leaves_no_transaction_open(tmp_path: Path) -> None:
    store = VectorStore.connect("", tmp_path)
    await store.ensure_collections(4, 2)
    not_a_vector = models.PointStruct(id=99, vector={"content": [1.0, 0, 0, 0], "behavior": [float("nan"), 1.0]})
    first = models.UpsertOperation(upsert=models.PointsList(points=[item(1), item(2)]))
    second = models.UpsertOperation(upsert=models.PointsList(points=[not_a_vector]))

    with pytest.raises(ValueError, match="NaN"):
        await store.client.batch_update_points(ITEMS, [first, second])
    connection = store.client._client.collections[ITEMS].storage.storage  # type: ignore[attr-defined]
    assert not connection.in_transaction
    await store.client.upsert(ITEMS, [item(3)])
    await store.close()

    # Local mode checks every operation before writing any, so the whole request was refused.
    assert await count_after_reopen(tmp_path) == 1


async def test_a_store_in_memory_has_no_files_to_group() -> None:
    store = VectorStore.in_memory()
    await store.ensure_collections(4, 2)
    await store.client.upsert(ITEMS, [item(1)])

    assert (await store.client.count(ITEMS, exact=True)).count == 1
    await store.close()


async def test_guarded_payload_writes_still_refuse_a_point_whose_revision_moved(tmp_path: Path) -> None:
    store = VectorStore.connect("", tmp_path)
    await store.ensure_collections(4, 2)
    unchanged, moved = point_id("a"), point_id("b")
    await store.client.upsert(
        ITEMS, [item(1).model_copy(update={"id": unchanged}), item(2).model_copy(update={"id": moved})]
    )
    await store.client.set_payload(ITEMS, {"revision": 5}, points=[moved])

    await store.write_where(
        ITEMS,
        payloads=[
            GuardedPayload(point=unchanged, payload={"seen": True}, condition=revision_is(0)),
            GuardedPayload(point=moved, payload={"seen": True}, condition=revision_is(0)),
        ],
    )

    records = await store.client.retrieve(ITEMS, [unchanged, moved], with_payload=True)
    seen = {str(record.id): (record.payload or {}).get("seen") for record in records}
    assert seen == {unchanged: True, moved: None}
    await store.close()


def test_the_keys_a_guard_tests_are_what_the_store_reads() -> None:
    before_catalog = models.Filter(
        must=[
            models.FieldCondition(key="in_catalog", match=models.MatchValue(value=False)),
            models.IsEmptyCondition(is_empty=models.PayloadField(key="deleted_at")),
            revision_is(0),
        ]
    )

    assert condition_keys([revision_is(3)]) == ["revision"]
    assert condition_keys([before_catalog, revision_is(1)]) == ["in_catalog", "deleted_at", "revision"]
    # A condition on something other than payload fields: the store reads the whole payload.
    assert condition_keys([models.Filter(must=[models.HasIdCondition(has_id=[1])])]) is None


def test_the_wrapped_connection_commits_once_when_the_outermost_group_ends(tmp_path: Path) -> None:
    connection = GroupedConnection(sqlite3.connect(tmp_path / "points.sqlite"))
    connection.execute("CREATE TABLE points (id TEXT PRIMARY KEY)")
    with connection.group(), connection.group():
        for n in range(3):
            with connection:
                connection.execute("INSERT INTO points VALUES (?)", (str(n),))
        assert connection.in_transaction  # held by the groups
    assert not connection.in_transaction
    connection.close()

    with sqlite3.connect(tmp_path / "points.sqlite") as reader:
        assert reader.execute("SELECT count(*) FROM points").fetchone()[0] == 3
