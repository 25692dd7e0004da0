"""qdrant-edge (Qdrant's engine embedded) and qdrant-client local mode answer the feeds' queries alike.

`recsys bench feeds` compares their speed; this pins that the comparison is between equal answers:
the same nearest items in the same order for the filters the feeds send, and the same popularity order.
"""

from __future__ import annotations

import warnings
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

# qdrant-edge-py is in the dev extra: missing, this fails instead of skipping.
import qdrant_edge  # noqa: F401
from qdrant_client import models

from recsys.recommender.filters import Condition, ItemFilter
from recsys.recommender.qdrant_filters import to_qdrant_filter
from recsys.shared.points import BEHAVIOR, CONTENT, ITEMS, TASTE, ItemField, UserField
from recsys.shared.store import VectorStore
from recsys.tools.feeds_bench.catalog import BEHAVIOR_DIMS, CONTENT_DIMS, CatalogShape, SyntheticCatalog, item_id
from recsys.tools.feeds_bench.edge import EdgeItems

POOL = 50


@pytest.fixture
async def engines(tmp_path: Path) -> AsyncIterator[tuple[VectorStore, EdgeItems, SyntheticCatalog]]:
    catalog = SyntheticCatalog(CatalogShape(items=1500, users=12))
    store = VectorStore.in_memory()
    shard = EdgeItems(tmp_path / "edge", {CONTENT: CONTENT_DIMS, BEHAVIOR: BEHAVIOR_DIMS})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        await store.ensure_collections(CONTENT_DIMS, BEHAVIOR_DIMS)
    for batch in catalog.item_batches(500):
        await store.client.upsert(ITEMS, batch)
        shard.upsert(batch)
    shard.build_index()
    yield store, shard, catalog
    shard.close()
    await store.close()


def feed_filters(seen: list[str]) -> list[models.Filter]:
    """What ForYou and SimilarItems send: catalog only, seen and served items out, optionally a category."""
    category = Condition(field=ItemField.CATEGORY.key, equals="category-3")
    categories = Condition(field=ItemField.CATEGORY.key, any_of=("category-1", "category-4"))
    return [
        to_qdrant_filter(ItemFilter(), seen),
        to_qdrant_filter(ItemFilter((category,)), seen),
        to_qdrant_filter(ItemFilter((categories,)), [*seen, item_id(7)]),
    ]


async def test_edge_exact_search_finds_the_same_nearest_items_in_the_same_order_as_local_mode(
    engines: tuple[VectorStore, EdgeItems, SyntheticCatalog],
) -> None:
    store, shard, catalog = engines
    compared = 0
    for user in catalog.users():
        assert isinstance(user.vector, dict)
        for query_filter in feed_filters(UserField.SEEN.read(user.payload)):
            for using, vector in ((CONTENT, user.vector[TASTE]), (BEHAVIOR, user.vector[BEHAVIOR])):
                local = await store.client.query_points(
                    ITEMS, query=list(vector), using=using, query_filter=query_filter, limit=POOL
                )
                found = shard.nearest(using, list(vector), POOL, query_filter, exact=True)

                assert [str(p.id) for p in local.points] == [point for point, _ in found]
                assert [p.score for p in local.points] == pytest.approx([score for _, score in found], abs=1e-4)
                compared += 1
    assert compared == 12 * 3 * 2


async def test_edge_orders_by_popularity_as_local_mode_does(
    engines: tuple[VectorStore, EdgeItems, SyntheticCatalog],
) -> None:
    store, shard, catalog = engines
    seen = UserField.SEEN.read(catalog.users()[0].payload)
    for query_filter in feed_filters(seen):
        local = await store.client.query_points(
            ITEMS,
            query=models.OrderByQuery(
                order_by=models.OrderBy(key=ItemField.POPULARITY.key, direction=models.Direction.DESC)
            ),
            query_filter=query_filter,
            limit=POOL,
        )

        assert [str(p.id) for p in local.points] == shard.most_popular(POOL, query_filter)
