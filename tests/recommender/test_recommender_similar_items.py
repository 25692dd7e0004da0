"""SimilarItems over real gRPC against embedded Qdrant filled with hand-made vectors."""

from __future__ import annotations

import math
from typing import Any

import pytest

from recsys_client.aio import RecommenderClient
from tests.recommender.recommender_catalog import Catalog, behavior_direction, direction

# Content neighbors of space-1 (on axis 0), each turned toward its own axis so their angle to the seed is exact.
SPACE_ANGLES = {"space-2": 0.1, "space-3": 0.3, "space-4": 0.6}


@pytest.fixture
async def films(catalog: Catalog) -> Catalog:
    await catalog.item("space-1", direction(0), category="scifi", tags=["space"], attributes={"year": 1968})
    await catalog.item(
        "space-2",
        direction(0, SPACE_ANGLES["space-2"], toward=10),
        category="scifi",
        tags=["space", "classic"],
        attributes={"year": 1979, "rating": "R", "remastered": True},
    )
    # The producer sent this year as a string: equality must still match "1986".
    await catalog.item(
        "space-3",
        direction(0, SPACE_ANGLES["space-3"], toward=11),
        category="scifi",
        tags=["space"],
        attributes={"year": "1986", "rating": "R"},
    )
    await catalog.item(
        "space-4",
        direction(0, SPACE_ANGLES["space-4"], toward=12),
        category="documentary",
        tags=["space", "nature"],
        attributes={"year": 2019.0, "rating": "PG"},
    )
    await catalog.item("cook-1", direction(1), category="food", tags=["nature"], attributes={"year": 2001})
    await catalog.item("cook-2", direction(1, 0.2, toward=13), category="food", attributes={"year": 2005})
    return catalog


async def test_item_without_behavior_gets_its_nearest_items_by_content(
    films: Catalog, recommender: RecommenderClient
) -> None:
    response = await recommender.similar_items("space-1", limit=3)
    assert response.strategy == "similar"
    nearest = sorted(SPACE_ANGLES, key=SPACE_ANGLES.__getitem__)
    assert [item.item_id for item in response.items] == nearest
    for item in response.items:
        assert item.score == pytest.approx(math.cos(SPACE_ANGLES[item.item_id]), abs=1e-5)
        assert dict(item.score_parts) == {"content": pytest.approx(item.score, abs=1e-5)}
        assert item.title == f"Title of {item.item_id}"
    assert {item.category for item in response.items} == {"scifi", "documentary"}


async def test_seed_and_excluded_items_are_never_returned(films: Catalog, recommender: RecommenderClient) -> None:
    response = await recommender.similar_items("space-1", limit=50, exclude=["space-2", "cook-1"])
    returned = {item.item_id for item in response.items}
    assert returned == {"space-3", "space-4", "cook-2"}


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        ({"category": "scifi"}, {"space-2", "space-3"}),
        ({"category": ["documentary", "food"]}, {"space-4", "cook-1", "cook-2"}),
        ({"attributes.year": "1979"}, {"space-2"}),  # stored as an int
        ({"attributes.year": "1986"}, {"space-3"}),  # stored as a string
        ({"attributes.year": "2019"}, {"space-4"}),  # stored as a float
        ({"attributes.year": ["1979", "2019"]}, {"space-2", "space-4"}),
        ({"attributes.rating": "R"}, {"space-2", "space-3"}),
        ({"attributes.remastered": "true"}, {"space-2"}),
        ({"tags": "nature"}, {"space-4", "cook-1"}),
        ({"tags": ["classic", "nature"]}, {"space-2", "space-4", "cook-1"}),
        # Ranges compare numbers: the year stored as the string "1986" is not a number.
        ({"attributes.year": {"gte": 1980, "lte": 2002}}, {"cook-1"}),
        ({"attributes.year": {"lte": 2000}}, {"space-2"}),
        ({"attributes.year": {"gte": 2005}}, {"space-4", "cook-2"}),
        ({"category": "scifi", "attributes.year": {"gte": 1970}}, {"space-2"}),
    ],
)
async def test_filters_restrict_similar_items(
    films: Catalog, recommender: RecommenderClient, where: dict[str, Any], expected: set[str]
) -> None:
    response = await recommender.similar_items("space-1", limit=50, where=where)
    assert {item.item_id for item in response.items} == expected


async def _write_blockbuster_neighborhood(catalog: Catalog, seed_interactions: int) -> None:
    """A seed with a behavior vector, content neighbors without one, and a partner that shares only behavior."""
    await catalog.item(
        "seed", direction(3), behavior_direction(0), category="film", interaction_count=seed_interactions
    )
    for n, angle in enumerate((0.1, 0.3, 0.5, 0.7)):
        await catalog.item(f"near-{n + 1}", direction(3, angle, toward=20 + n), category="film")
    # Nothing alike in content (an orthogonal axis), but engaged with by the same people.
    await catalog.item(
        "partner",
        direction(30),
        behavior_direction(0, 0.1, toward=5),
        category="soundtrack",
        interaction_count=40,
        behavior_strength=0.9,
    )


async def test_behavior_pulls_in_co_engaged_items_for_an_item_with_many_interactions(
    catalog: Catalog, recommender: RecommenderClient
) -> None:
    await _write_blockbuster_neighborhood(catalog, seed_interactions=90)
    response = await recommender.similar_items("seed", limit=3)
    by_id = {item.item_id: item for item in response.items}
    assert "partner" in by_id
    share = 90 / (90 + 10)
    # Behavior similarity is cosine × the candidate's strength (its evidence in the model).
    assert by_id["partner"].score_parts["behavior"] == pytest.approx(share * math.cos(0.1) * 0.9, abs=1e-5)
    assert by_id["partner"].score_parts["content"] == pytest.approx(0.0, abs=1e-5)


async def test_new_item_leans_on_content_so_behavior_neighbors_do_not_displace_content_ones(
    catalog: Catalog, recommender: RecommenderClient
) -> None:
    await _write_blockbuster_neighborhood(catalog, seed_interactions=0)
    response = await recommender.similar_items("seed", limit=3)
    assert [item.item_id for item in response.items] == ["near-1", "near-2", "near-3"]


async def test_filter_applies_to_candidates_found_by_behavior(catalog: Catalog, recommender: RecommenderClient) -> None:
    await _write_blockbuster_neighborhood(catalog, seed_interactions=90)
    response = await recommender.similar_items("seed", limit=10, where={"category": "film"})
    returned = {item.item_id for item in response.items}
    assert returned == {"near-1", "near-2", "near-3", "near-4"}
