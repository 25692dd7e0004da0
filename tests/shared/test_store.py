"""The vector store's embedded mode on disk: how its files commit, and that what was written survives a reopen."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from qdrant_client import models

from recsys.shared.points import ITEMS, ItemField
from recsys.shared.store import VectorStore


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
    await store.close()

    assert journal_modes(tmp_path) == {journal}
    reopened = VectorStore.connect("", tmp_path, embedded_sync=sync)
    try:
        assert (await reopened.client.count(ITEMS, exact=True)).count == 1
    finally:
        await reopened.close()


def test_an_unknown_sync_level_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="embedded_sync must be one of normal, full"):
        VectorStore.connect("", tmp_path, embedded_sync="sometimes")
