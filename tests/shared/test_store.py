"""The vector store's embedded mode on disk: how its files commit, and that what was written survives a reopen."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pytest
from qdrant_client import AsyncQdrantClient, models

from recsys.shared.embedded_reads import local_points
from recsys.shared.points import ITEMS, ItemField
from recsys.shared.settings import ConnectionSettings
from recsys.shared.store import CollectionLayout, VectorStore, create_collection_arguments


def journal_modes(data_dir: Path) -> set[str]:
    files = sorted((data_dir / "qdrant" / "collection").glob("*/storage.sqlite"))
    assert files, "embedded Qdrant wrote no collection files"
    modes = set()
    for file in files:
        with sqlite3.connect(file) as connection:
            modes.add(connection.execute("PRAGMA journal_mode").fetchone()[0])
    return modes


@pytest.mark.parametrize(("sync", "journal"), [("normal", "wal"), ("full", "delete")])
async def test_embedded_files_commit_as_configured_and_keep_what_was_written(
    tmp_path: Path, sync: str, journal: str
) -> None:
    store = VectorStore.connect("", tmp_path, embedded_sync=sync)
    await store.ensure_collections(4, 2)
    point = models.PointStruct(
        id=1, vector={"content": [1.0, 0, 0, 0], "behavior": [0, 1.0]}, payload={ItemField.ITEM_ID.key: "a"}
    )
    await store.client.upsert(ITEMS, [point])
    # A per-connection setting, so asked of the store's own connection to the items file.
    connection = local_points(store.client, ITEMS).storage.storage
    checkpoint_pages = connection.execute("PRAGMA wal_autocheckpoint").fetchone()[0]
    await store.close()

    assert journal_modes(tmp_path) == {journal}
    # In WAL mode, checkpoints far apart: the interactions role rewrites the same points all the time.
    assert checkpoint_pages == (20_000 if journal == "wal" else 1_000)
    reopened = VectorStore.connect("", tmp_path, embedded_sync=sync)
    try:
        assert (await reopened.client.count(ITEMS, exact=True)).count == 1
    finally:
        await reopened.close()


def test_an_unknown_sync_level_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="embedded_sync must be one of normal, full"):
        VectorStore.connect("", tmp_path, embedded_sync="sometimes")


def test_an_unset_layout_leaves_shards_replicas_and_storage_to_the_server() -> None:
    arguments = create_collection_arguments({"content": 4, "behavior": 2}, CollectionLayout())

    assert arguments == {
        "vectors_config": {
            "content": models.VectorParams(size=4, distance=models.Distance.COSINE),
            "behavior": models.VectorParams(size=2, distance=models.Distance.COSINE),
        }
    }


def test_a_server_layout_from_settings_reaches_create_collection() -> None:
    settings = ConnectionSettings(
        qdrant_shard_number=6,
        qdrant_replication_factor=2,
        qdrant_write_consistency_factor=1,
        qdrant_on_disk_vectors=True,
        qdrant_scalar_quantization=True,
    )

    arguments = create_collection_arguments({"content": 4}, CollectionLayout.from_settings(settings))

    assert (arguments["shard_number"], arguments["replication_factor"], arguments["write_consistency_factor"]) == (
        6,
        2,
        1,
    )
    assert arguments["vectors_config"]["content"].on_disk is True
    scalar = arguments["quantization_config"].scalar
    assert (scalar.type, scalar.quantile, scalar.always_ram) == (models.ScalarType.INT8, 0.99, True)
    # The arguments are what qdrant-client's REST model for a new collection accepts (where vectors_config is vectors).
    rest = {key: value for key, value in arguments.items() if key != "vectors_config"}
    models.CreateCollection(vectors=arguments["vectors_config"], **rest)


def test_a_write_consistency_above_the_replicas_is_refused() -> None:
    layout = CollectionLayout(replication_factor=2, write_consistency_factor=3)

    with pytest.raises(ValueError, match="exceeds the replication factor"):
        create_collection_arguments({"content": 4}, layout)


async def test_embedded_store_ignores_a_server_layout(tmp_path: Path) -> None:
    store = VectorStore.connect("", tmp_path, layout=CollectionLayout(shard_number=3, scalar_quantization=True))
    try:
        await store.ensure_collections(4, 2)
        info = await store.client.get_collection(ITEMS)
    finally:
        await store.close()

    assert info.config.quantization_config is None


async def test_vectors_written_as_arrays_read_back_as_written_lists_do_after_a_reopen(tmp_path: Path) -> None:
    store = VectorStore.connect("", tmp_path)
    await store.ensure_collections(4, 2)
    content, behavior = np.array([0.6, 0.0, 0.8, 0.0]), np.array([0.6, 0.8])
    assert isinstance(store.vector_value(content), np.ndarray)  # embedded takes the array as it is
    as_array = models.PointStruct.model_construct(
        id=1, vector={"content": store.vector_value(content), "behavior": store.vector_value(behavior)}, payload={}
    )
    as_list = models.PointStruct(id=2, vector={"content": content.tolist(), "behavior": behavior.tolist()}, payload={})
    await store.client.upsert(ITEMS, [as_array, as_list])
    await store.close()

    reopened = VectorStore.connect("", tmp_path)
    try:
        first, second = await reopened.client.retrieve(ITEMS, [1, 2], with_vectors=True)
        assert first.vector == second.vector
        assert first.vector["content"] == pytest.approx(content.tolist())  # type: ignore[index]
    finally:
        await reopened.close()


def test_a_server_store_takes_vectors_as_lists() -> None:
    store = VectorStore(AsyncQdrantClient(url="http://127.0.0.1:1"), "http://127.0.0.1:1")
    assert store.vector_value(np.array([0.5, 0.25])) == [0.5, 0.25]
