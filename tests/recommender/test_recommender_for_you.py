"""ForYou over real gRPC against embedded Qdrant: personalized feeds, seen items, cold users."""

from __future__ import annotations

import math

import pytest

from recsys_client.aio import RecommenderClient
from tests.recommender.recommender_catalog import Catalog, behavior_direction, direction
from tests.recommender.recommender_fakes import StartRecommender

# Stored popularity of the items that have any; the others nobody engaged with yet.
POPULARITY = {"cook-2": 80.0, "space-2": 50.0, "cook-3": 20.0, "space-3": 5.0}


# Explicit weights, so the expected figures below do not move when the evaluated defaults do.
WEIGHTS = {"user_behavior_weight": 1.0, "taste_weight": 0.1, "session_weight": 0.05, "popularity_weight": 0.05}
EVIDENCE_K = 5.0


@pytest.fixture
async def recommender(start_recommender: StartRecommender) -> RecommenderClient:
    return await start_recommender(**WEIGHTS, user_evidence_k=EVIDENCE_K, fresh_share=0.0)


@pytest.fixture
async def shop(catalog: Catalog) -> Catalog:
    for n in range(1, 5):
        item_id = f"space-{n}"
        await catalog.item(
            item_id, direction(0, 0.1 * n, toward=10 + n), category="scifi", popularity=POPULARITY.get(item_id)
        )
    for n in range(1, 5):
        item_id = f"cook-{n}"
        await catalog.item(
            item_id, direction(1, 0.1 * n, toward=20 + n), category="food", popularity=POPULARITY.get(item_id)
        )
    return catalog


async def test_user_with_taste_gets_items_near_it_and_never_what_they_saw(
    shop: Catalog, recommender: RecommenderClient
) -> None:
    await shop.user("u-cook", taste=direction(1), seen=["cook-1", "space-1"])
    response = await recommender.for_you("u-cook", limit=3)
    assert response.strategy == "personalized"
    assert [item.item_id for item in response.items] == ["cook-2", "cook-3", "cook-4"]
    for item in response.items:
        assert set(item.score_parts) == {"taste", "popularity"}
        assert item.score == pytest.approx(sum(item.score_parts.values()), abs=1e-5)
    full_feed = await recommender.for_you("u-cook", limit=50)
    returned = {item.item_id for item in full_feed.items}
    assert returned.isdisjoint({"cook-1", "space-1"})
    assert len(returned) == 6


async def test_popularity_does_not_outweigh_taste(shop: Catalog, recommender: RecommenderClient) -> None:
    # cook-2 is the most popular item, yet a user whose taste sits on the space axis gets space items first.
    await shop.user("u-space", taste=direction(0))
    response = await recommender.for_you("u-space", limit=4)
    assert {item.item_id for item in response.items} == {"space-1", "space-2", "space-3", "space-4"}
    by_id = {item.item_id: item for item in response.items}
    # A user without events gives behavior's weight to taste: 0.1 + 1.0.
    assert by_id["space-1"].score_parts["taste"] == pytest.approx(1.1 * math.cos(0.1), abs=1e-5)
    assert by_id["space-1"].score_parts["popularity"] == 0.0


async def test_explicit_exclusions_and_filters_apply_to_personal_feeds(
    shop: Catalog, recommender: RecommenderClient
) -> None:
    await shop.user("u-cook", taste=direction(1))
    response = await recommender.for_you("u-cook", limit=50, where={"category": "scifi"}, exclude=["space-2"])
    assert {item.item_id for item in response.items} == {"space-1", "space-3", "space-4"}


async def test_user_behavior_finds_items_engaged_with_by_similar_users(
    shop: Catalog, recommender: RecommenderClient
) -> None:
    await shop.item("cult-1", direction(50), behavior_direction(0, 0.2, toward=7), category="cult")
    await shop.item("cult-2", direction(51), behavior_direction(0, 0.6, toward=8), category="cult")
    await shop.user("u-fan", behavior=behavior_direction(0), events=45)
    response = await recommender.for_you("u-fan", limit=5)
    assert response.strategy == "personalized"
    ids = [item.item_id for item in response.items]
    assert ids[:2] == ["cult-1", "cult-2"]
    share = 45 / (45 + EVIDENCE_K)
    assert response.items[0].score_parts["behavior"] == pytest.approx(share * math.cos(0.2), abs=1e-5)
    # Too few items can be compared on behavior: popular ones fill the rest of the feed, most popular first.
    assert ids[2:] == sorted(POPULARITY, key=POPULARITY.__getitem__, reverse=True)[:3]


async def test_unknown_user_gets_popular_items_in_order_of_popularity(
    shop: Catalog, recommender: RecommenderClient
) -> None:
    response = await recommender.for_you("nobody-knows-me", limit=6)
    assert response.strategy == "popular"
    ids = [item.item_id for item in response.items]
    ranked = sorted(POPULARITY, key=POPULARITY.__getitem__, reverse=True)
    assert ids[: len(ranked)] == ranked
    scores = [item.score for item in response.items]
    assert scores == sorted(scores, reverse=True)
    # Items nobody engaged with yet still come, after the popular ones.
    assert len(ids) == 6
    assert all(item.score == 0.0 for item in response.items[len(ranked) :])
    assert all(set(item.score_parts) == {"popularity"} for item in response.items)


async def test_popularity_is_decayed_to_now_before_ranking(catalog: Catalog, recommender: RecommenderClient) -> None:
    # Four half-lives old: 100 then is 6.25 now, below a fresh 10.
    await catalog.item("old-hit", direction(0), popularity=100.0, popularity_age_days=28)
    await catalog.item("fresh", direction(1), popularity=10.0)
    response = await recommender.for_you("cold-user", limit=2)
    assert [item.item_id for item in response.items] == ["fresh", "old-hit"]


async def test_user_without_vectors_gets_popular_items_minus_what_they_saw(
    shop: Catalog, recommender: RecommenderClient
) -> None:
    await shop.user("u-browser", seen=["cook-2"])
    response = await recommender.for_you("u-browser", limit=3, where={"category": "food"})
    assert response.strategy == "popular"
    ids = [item.item_id for item in response.items]
    # cook-2 is the most popular food item, but this user saw it; cook-3 is next, then the unranked ones.
    assert ids[0] == "cook-3"
    assert set(ids[1:]) == {"cook-1", "cook-4"}


async def test_items_known_only_from_interactions_are_never_recommended(
    shop: Catalog, recommender: RecommenderClient
) -> None:
    # Interactions arrived before the item's item.upserted: activity, behavior, no catalog entry.
    await shop.item("pending", None, behavior_direction(0), popularity=1000.0, in_catalog=False)
    await shop.user("u-space", taste=direction(0), behavior=behavior_direction(0))

    cold = await recommender.for_you("nobody", limit=8)
    personal = await recommender.for_you("u-space", limit=8)

    assert cold.strategy == "popular" and "pending" not in [i.item_id for i in cold.items]
    assert personal.strategy == "personalized" and "pending" not in [i.item_id for i in personal.items]
    assert len(cold.items) == 8
