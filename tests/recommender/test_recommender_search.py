"""SearchItems: queries embedded by a fake encoder over real gRPC, and the encoder being down."""

from __future__ import annotations

import math

import grpc
import pytest

from recsys_client.aio import RecommenderClient
from tests.recommender.recommender_catalog import Catalog, direction
from tests.recommender.recommender_fakes import FakeEncoder, StartRecommender


@pytest.fixture
async def garden_and_space(catalog: Catalog) -> Catalog:
    for n in range(1, 4):
        await catalog.item(f"space-{n}", direction(0, 0.2 * n, toward=10 + n), category="scifi", tags=["space"])
        await catalog.item(f"garden-{n}", direction(2, 0.2 * n, toward=20 + n), category="home", tags=["garden"])
    return catalog


async def test_search_finds_items_whose_content_matches_the_query(
    garden_and_space: Catalog, recommender: RecommenderClient, fake_encoder: FakeEncoder
) -> None:
    response = await recommender.search_items("rocket engines for beginners", limit=2)
    assert response.strategy == "search"
    assert "rocket engines for beginners" in fake_encoder.servicer.texts
    assert [item.item_id for item in response.items] == ["space-1", "space-2"]
    for item, angle in zip(response.items, (0.2, 0.4), strict=True):
        assert item.score == pytest.approx(math.cos(angle), abs=1e-5)
        assert dict(item.score_parts) == {"search": pytest.approx(item.score)}
        assert item.category == "scifi"


async def test_search_applies_filters_and_exclusions(garden_and_space: Catalog, recommender: RecommenderClient) -> None:
    response = await recommender.search_items("rocket", limit=10, where={"tags": "garden"}, exclude=["garden-1"])
    assert {item.item_id for item in response.items} == {"garden-2", "garden-3"}


async def test_search_while_the_encoder_is_down_is_unavailable(
    garden_and_space: Catalog, start_recommender: StartRecommender, closed_address: str
) -> None:
    recommender = await start_recommender(encoder_address=closed_address)
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await recommender.search_items("rocket", limit=3)
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "encoder" in (refused.value.details() or "")
    # The feeds that need no encoder keep working.
    similar = await recommender.similar_items("space-1", limit=1)
    assert [item.item_id for item in similar.items] == ["space-2"]


@pytest.mark.parametrize(
    ("text", "problem"),
    [("", "text must not be empty"), ("   ", "text must not be empty"), ("x" * 2001, "text has 2001 characters")],
)
async def test_search_refuses_empty_or_overlong_text(
    garden_and_space: Catalog, recommender: RecommenderClient, fake_encoder: FakeEncoder, text: str, problem: str
) -> None:
    asked_before = len(fake_encoder.servicer.texts)
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await recommender.search_items(text, limit=3)
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert problem in (refused.value.details() or "")
    assert len(fake_encoder.servicer.texts) == asked_before
