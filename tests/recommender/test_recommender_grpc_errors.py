"""Bad requests get the right gRPC status with a message naming the problem; readiness gates the service."""

from __future__ import annotations

import asyncio

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from recsys.recommender.app import RecommenderService
from recsys.shared.store import VectorStore
from recsys_client.aio import RecommenderClient
from recsys_client.api import common_pb2, recommender_pb2
from tests.recommender.recommender_catalog import BEHAVIOR_DIMS, CONTENT_DIMS, Catalog, direction


@pytest.fixture
async def two_items(catalog: Catalog) -> Catalog:
    await catalog.item("a", direction(0), category="x")
    await catalog.item("b", direction(0, 0.2), category="x")
    return catalog


async def _status(call: object) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await call  # type: ignore[misc]
    return refused.value.code(), refused.value.details() or ""


async def test_unknown_item_is_not_found_naming_the_id(two_items: Catalog, recommender: RecommenderClient) -> None:
    code, details = await _status(recommender.similar_items("no-such-film", limit=3))
    assert code == grpc.StatusCode.NOT_FOUND
    assert details == "item 'no-such-film' not found"


@pytest.mark.parametrize("limit", [0, 10_000])
async def test_limit_out_of_range_is_invalid_argument_naming_the_limit(
    two_items: Catalog, recommender: RecommenderClient, limit: int
) -> None:
    for call in (
        recommender.similar_items("a", limit=limit),
        recommender.for_you("someone", limit=limit),
        recommender.search_items("rocket", limit=limit),
    ):
        code, details = await _status(call)
        assert code == grpc.StatusCode.INVALID_ARGUMENT
        assert details == f"limit must be between 1 and 500, got {limit}"


def _filter(**condition: object) -> common_pb2.ItemFilter:
    return common_pb2.ItemFilter(conditions=[common_pb2.Condition(**condition)])  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("item_filter", "problem"),
    [
        (_filter(field="price", equals="3"), "unknown filter field 'price'"),
        (_filter(field="category"), "filter condition 0 on 'category' sets no operator"),
        (_filter(field="tags", any_of=common_pb2.StringSet()), "any_of on 'tags' needs at least one value"),
        (
            _filter(field="attributes.year", range=common_pb2.NumericRange(gte=2000, lte=1990)),
            "range on 'attributes.year' is empty: gte 2000 exceeds lte 1990",
        ),
        (_filter(field="attributes.year", range=common_pb2.NumericRange()), "needs at least one bound"),
        (_filter(field="category", equals=""), "equals on 'category' needs a non-empty value"),
    ],
)
async def test_malformed_filter_is_invalid_argument_naming_the_problem(
    two_items: Catalog, recommender: RecommenderClient, item_filter: common_pb2.ItemFilter, problem: str
) -> None:
    stub = recommender.stub
    for call in (
        stub.SimilarItems(recommender_pb2.SimilarItemsRequest(item_id="a", limit=3, filter=item_filter)),
        stub.ForYou(recommender_pb2.ForYouRequest(user_id="u", limit=3, filter=item_filter)),
        stub.SearchItems(recommender_pb2.SearchItemsRequest(text="rocket", limit=3, filter=item_filter)),
    ):
        code, details = await _status(call)
        assert code == grpc.StatusCode.INVALID_ARGUMENT
        assert problem in details


async def test_blank_ids_and_oversized_exclusions_are_invalid_argument(
    two_items: Catalog, recommender: RecommenderClient
) -> None:
    code, details = await _status(recommender.similar_items("", limit=3))
    assert (code, details) == (grpc.StatusCode.INVALID_ARGUMENT, "item_id must not be empty")
    code, details = await _status(recommender.for_you(" ", limit=3))
    assert (code, details) == (grpc.StatusCode.INVALID_ARGUMENT, "user_id must not be empty")
    too_many = [f"x{n}" for n in range(10_001)]
    code, details = await _status(recommender.for_you("u", limit=3, exclude=too_many))
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert "exclude_item_ids has 10001 ids; at most 10000 allowed" in details


@pytest.mark.filterwarnings("ignore:Payload indexes have no effect")
async def test_service_serves_only_once_the_encoder_created_the_collections(
    start_recommender_on_bare_store: tuple[RecommenderService, VectorStore],
) -> None:
    service, bare_store = start_recommender_on_bare_store
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{service.port}")
    health = health_pb2_grpc.HealthStub(channel)
    try:
        await asyncio.sleep(0.1)  # several readiness polls
        assert not service.ready.is_set()
        check = await health.Check(health_pb2.HealthCheckRequest(service="recsys.v1.RecommenderService"))
        assert check.status == health_pb2.HealthCheckResponse.NOT_SERVING
        early = RecommenderClient(f"127.0.0.1:{service.port}")
        code, details = await _status(early.for_you("u", limit=3))
        await early.close()
        assert code == grpc.StatusCode.UNAVAILABLE
        assert "not ready" in details

        await bare_store.ensure_collections(CONTENT_DIMS, BEHAVIOR_DIMS)
        await asyncio.wait_for(service.ready.wait(), 5)
        check = await health.Check(health_pb2.HealthCheckRequest(service="recsys.v1.RecommenderService"))
        assert check.status == health_pb2.HealthCheckResponse.SERVING
    finally:
        await channel.close()
