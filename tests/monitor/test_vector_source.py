"""Reading stored vectors: concurrent reads share one retrieve; missing points read as None."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import numpy as np
import pytest
from qdrant_client import AsyncQdrantClient, models

from recsys.monitor.spaces import SPACES, space_named
from recsys.monitor.vector_source import VectorSource
from recsys.shared.ids import point_id
from recsys.shared.points import ITEMS, ItemField
from recsys.shared.store import VectorStore

ITEM_CONTENT = SPACES[0]


class CountingClient(AsyncQdrantClient):
    """Embedded Qdrant that counts retrieve calls."""

    retrieves = 0

    async def retrieve(self, *args: Any, **kwargs: Any) -> Any:
        self.retrieves += 1
        return await super().retrieve(*args, **kwargs)


@pytest.fixture
async def counting_store() -> AsyncIterator[VectorStore]:
    store = VectorStore(CountingClient(":memory:"), "embedded:memory")
    await store.ensure_collections(8, 4)
    yield store
    await store.close()


async def test_concurrent_reads_share_one_retrieve(counting_store: VectorStore) -> None:
    rng = np.random.default_rng(0)
    vectors = {f"item-{i}": rng.standard_normal(8) for i in range(20)}
    await counting_store.client.upsert(
        ITEMS, [models.PointStruct(id=point_id(k), vector={"content": v.tolist()}) for k, v in vectors.items()]
    )
    source = VectorSource(counting_store.client, max_batch=64, max_wait_s=0.05)
    source.start()
    try:
        read = await asyncio.gather(*(source.fetch(ITEM_CONTENT, subject) for subject in vectors))
    finally:
        await source.stop()

    client = counting_store.client
    assert isinstance(client, CountingClient)
    assert client.retrieves == 1
    for got, expected in zip(read, vectors.values(), strict=True):
        assert got is not None
        np.testing.assert_allclose(got.values, expected / np.linalg.norm(expected), rtol=1e-5)
        assert got.version == ""


async def test_a_missing_point_or_vector_reads_as_none(counting_store: VectorStore) -> None:
    await counting_store.client.upsert(
        ITEMS, [models.PointStruct(id=point_id("no-content"), vector={"behavior": [1.0, 0.0, 0.0, 0.0]})]
    )
    source = VectorSource(counting_store.client, max_batch=4, max_wait_s=0.0)
    source.start()
    try:
        missing = await source.fetch(ITEM_CONTENT, "never-written")
        without_vector = await source.fetch(ITEM_CONTENT, "no-content")
    finally:
        await source.stop()

    assert missing is None
    assert without_vector is None


async def test_a_versioned_space_reads_the_basis_version_from_the_payload(counting_store: VectorStore) -> None:
    await counting_store.client.upsert(
        ITEMS,
        [
            models.PointStruct(
                id=point_id("v"), vector={"behavior": [1.0, 0.0, 0.0, 0.0]}, payload={ItemField.BEHAVIOR_VERSION.key: 3}
            ),
            models.PointStruct(id=point_id("none"), vector={"behavior": [0.0, 1.0, 0.0, 0.0]}, payload={}),
        ],
    )
    source = VectorSource(counting_store.client, max_batch=4, max_wait_s=0.0)
    source.start()
    try:
        versioned = await source.fetch(space_named("items.behavior"), "v")
        unversioned = await source.fetch(space_named("items.behavior"), "none")
    finally:
        await source.stop()

    assert versioned is not None and versioned.version == "3"
    assert unversioned is not None and unversioned.version == ""
