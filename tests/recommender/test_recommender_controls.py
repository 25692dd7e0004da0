"""Per-request controls over real gRPC against embedded Qdrant: paging, weights, MMR, seen items, fresh items."""

from __future__ import annotations

import base64
import tracemalloc
import zlib

import grpc
import pytest

from recsys.recommender.pagination import decode_token
from recsys.shared.errors import InvalidRequest
from recsys_client.aio import RecommenderClient
from recsys_client.api import recommender_pb2
from tests.recommender.recommender_catalog import Catalog, behavior_direction, direction
from tests.recommender.recommender_fakes import StartRecommender

Controls = recommender_pb2.FeedControls


@pytest.fixture
async def recommender(start_recommender: StartRecommender) -> RecommenderClient:
    return await start_recommender(
        user_behavior_weight=1.0, taste_weight=0.1, session_weight=0.0, popularity_weight=0.0, fresh_share=0.0
    )


@pytest.fixture
async def shelf(catalog: Catalog) -> Catalog:
    """Seven items around the content axis 0 at growing angles, with popularity rising the other way."""
    for n in range(7):
        await catalog.item(f"s{n}", direction(0, 0.1 * (n + 1), toward=10 + n), category="scifi", popularity=float(n))
    return catalog


async def test_pages_follow_each_other_without_repeats_until_the_feed_runs_out(
    shelf: Catalog, recommender: RecommenderClient
) -> None:
    await shelf.user("u", taste=direction(0))
    seen: list[str] = []
    token = ""
    for _ in range(5):
        page = await recommender.for_you("u", limit=3, controls=Controls(page_token=token))
        seen += [item.item_id for item in page.items]
        token = page.next_page_token
        if not token:
            break
    assert seen == [f"s{n}" for n in range(7)]
    first_again = await recommender.for_you("u", limit=3)
    assert [item.item_id for item in first_again.items] == seen[:3]  # the first page is repeatable


async def test_a_forged_page_token_is_invalid_argument(shelf: Catalog, recommender: RecommenderClient) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await recommender.for_you("u", limit=3, controls=Controls(page_token="bogus"))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "page_token" in (caught.value.details() or "")


async def test_weights_can_be_overridden_per_request_and_unknown_ones_are_refused(
    shelf: Catalog, recommender: RecommenderClient
) -> None:
    await shelf.user("u", taste=direction(0))
    by_taste = await recommender.for_you("u", limit=1)
    by_popularity = await recommender.for_you("u", limit=1, controls=Controls(weights={"popularity": 10.0}))

    assert by_taste.items[0].item_id == "s0" and by_popularity.items[0].item_id == "s6"
    assert by_popularity.items[0].score_parts["popularity"] > by_popularity.items[0].score_parts["taste"]
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await recommender.for_you("u", limit=1, controls=Controls(weights={"charm": 1.0}))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_mmr_lambda_trades_a_near_duplicate_for_a_different_item(
    catalog: Catalog, recommender: RecommenderClient
) -> None:
    await catalog.item("alien", direction(0))
    await catalog.item("alien-cut", direction(0, 0.05, toward=1))
    await catalog.item("soup", direction(0, 1.2, toward=2))
    await catalog.user("u", taste=direction(0))

    plain = await recommender.for_you("u", limit=2)
    diverse = await recommender.for_you("u", limit=2, controls=Controls(mmr_lambda=0.3))

    assert [item.item_id for item in plain.items] == ["alien", "alien-cut"]
    assert [item.item_id for item in diverse.items] == ["alien", "soup"]
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await recommender.for_you("u", limit=2, controls=Controls(mmr_lambda=1.5))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_seen_items_come_back_only_when_the_request_asks_for_them(
    shelf: Catalog, recommender: RecommenderClient
) -> None:
    await shelf.user("u", taste=direction(0), seen=["s0"])

    default = await recommender.for_you("u", limit=1)
    with_seen = await recommender.for_you("u", limit=1, controls=Controls(exclude_seen=False))

    assert default.items[0].item_id == "s1" and with_seen.items[0].item_id == "s0"


async def test_fresh_items_get_their_share_of_slots_for_known_and_cold_users(
    shelf: Catalog, recommender: RecommenderClient
) -> None:
    await shelf.item("brand-new", direction(5), created_days_ago=1)
    await shelf.user("u", taste=direction(0))

    without = await recommender.for_you("u", limit=4)
    personal = await recommender.for_you("u", limit=4, controls=Controls(fresh_share=0.25))
    cold = await recommender.for_you("stranger", limit=4, controls=Controls(fresh_share=0.25))

    assert "brand-new" not in [item.item_id for item in without.items]
    assert [item.item_id for item in personal.items][-1] == "brand-new"
    assert cold.strategy == "popular" and "brand-new" in [item.item_id for item in cold.items]
    assert [item.item_id for item in cold.items][:3] == ["s6", "s5", "s4"]  # trending first


async def test_a_gated_fresh_slot_goes_only_to_a_fresh_item_nearly_as_good_as_the_one_it_displaces(
    shelf: Catalog, start_recommender: StartRecommender
) -> None:
    recommender = await start_recommender(
        user_behavior_weight=1.0,
        taste_weight=0.1,
        session_weight=0.0,
        popularity_weight=0.0,
        fresh_share=0.25,
        fresh_gate=0.9,
    )
    await shelf.item("brand-new", direction(5), created_days_ago=1)
    await shelf.user("u", taste=direction(0))
    off_taste = await recommender.for_you("u", limit=4)
    # cos 0.45 ≈ 0.90 of s3's cos 0.4 ≈ 0.92: below s3, yet within the gate.
    await shelf.item("new-and-near", direction(0, 0.45, toward=20), created_days_ago=1)
    near = await recommender.for_you("u", limit=4)
    stranger = await recommender.for_you("stranger", limit=4)

    assert [item.item_id for item in off_taste.items] == ["s0", "s1", "s2", "s3"]
    assert [item.item_id for item in near.items] == ["s0", "s1", "s2", "new-and-near"]
    # The trending feed has no match to compare with: its fresh slot stays ungated.
    assert stranger.strategy == "popular" and {"brand-new", "new-and-near"} & {i.item_id for i in stranger.items}


async def test_behavior_of_another_model_version_is_not_compared(
    catalog: Catalog, recommender: RecommenderClient
) -> None:
    await catalog.item("current", direction(1), behavior_direction(0), behavior_version=2)
    await catalog.item("stale", direction(2), behavior_direction(0), behavior_version=1)
    await catalog.user("u", behavior=behavior_direction(0), events=100, behavior_version=2)

    response = await recommender.for_you("u", limit=2)
    parts = {item.item_id: set(item.score_parts) for item in response.items}

    assert "behavior" in parts["current"] and "behavior" not in parts.get("stale", set())


def _inflating_token(inflated_bytes: int) -> str:
    """A page token whose body inflates to `inflated_bytes`, made without holding them in memory."""
    deflater = zlib.compressobj(9)
    parts = [deflater.compress(b'{"v":1,"served":["')]
    chunk = b"a" * (1 << 20)
    parts += [deflater.compress(chunk) for _ in range(inflated_bytes >> 20)]
    parts.append(deflater.compress(b'"]}') + deflater.flush())
    return base64.urlsafe_b64encode(b"".join(parts)).decode().rstrip("=")


async def test_a_page_token_that_would_inflate_to_a_gigabyte_is_refused_without_inflating_it(
    shelf: Catalog, recommender: RecommenderClient
) -> None:
    bomb = _inflating_token(1 << 30)
    assert len(bomb) < 1_500_000
    tracemalloc.start()
    try:
        with pytest.raises(InvalidRequest, match="page_token"):
            decode_token(bomb, max_served=1000)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 16 * 1024 * 1024, f"decoding the token allocated {peak} bytes"

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await recommender.for_you("u", limit=3, controls=Controls(page_token=bomb))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
