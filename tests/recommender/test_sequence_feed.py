"""ForYou's sequence signal on embedded Qdrant: what followed the user's latest items joins the feed, filtered."""

from __future__ import annotations

from typing import Any

import pytest

from recsys.recommender.feeds import Feeds
from recsys.recommender.filters import Condition, ItemFilter
from recsys.recommender.recommendations import Strategy
from recsys.recommender.settings import RecommenderSettings
from recsys.shared.ids import point_id
from recsys.shared.points import ITEMS, USERS, ItemField, UserField
from recsys.shared.store import VectorStore
from recsys_client.api import recommender_pb2
from tests.recommender.recommender_catalog import Catalog, direction
from tests.recommender.recommender_fakes import StartRecommender

# Each signal fetches 3 candidates for a feed of 3: the fillers near the user's taste and the most
# popular ones fill every pool, so "next" and "after" are candidates only as successors.
POOL = {"candidate_pool": 3, "candidate_pool_factor": 1, "fresh_share": 0.0}
FILLERS = [f"filler-{n}" for n in range(8)]


class NoEmbedder:
    async def embed_query(self, text: str) -> list[float]:
        raise AssertionError("ForYou embeds no text")


class CountingStore:
    """The test store, with every `retrieve` of items recorded (the payload keys it asked for)."""

    def __init__(self, store: VectorStore) -> None:
        self.client = store.client
        self.item_reads: list[Any] = []
        real_retrieve = store.client.retrieve

        async def retrieve(collection_name: str, *args: Any, **kwargs: Any) -> Any:
            if collection_name == ITEMS:
                self.item_reads.append(kwargs.get("with_payload"))
            return await real_retrieve(collection_name, *args, **kwargs)

        self.client.retrieve = retrieve  # type: ignore[method-assign]


def feeds(store: VectorStore | CountingStore, sequence_weight: float) -> Feeds:
    settings = RecommenderSettings(
        encoder_address="127.0.0.1:1",
        # Below a full sequence score: a filler near the taste (cosine ≈ 1) ranks under a strong successor.
        taste_weight=0.3,
        session_weight=0.0,
        user_behavior_weight=0.0,
        popularity_weight=0.01,
        sequence_weight=sequence_weight,
        **POOL,  # type: ignore[arg-type]
    )
    return Feeds(store, settings, NoEmbedder())  # type: ignore[arg-type]


@pytest.fixture
async def shelf(catalog: Catalog) -> Catalog:
    """Fillers near the taste axis, popular; "last" (what the user read last), "next" and "after" far from it."""
    for n, item_id in enumerate(FILLERS):
        await catalog.item(item_id, direction(0, 0.05 * (n + 1), toward=100 + n), category="filler", popularity=50.0)
    await catalog.item("last", direction(10), category="drama")
    await catalog.item("next", direction(11), category="drama")
    await catalog.item("after", direction(12), category="comedy")
    await catalog.item("earlier", direction(13), category="drama")
    # What followed "last" in other users' histories, as the refresh writes it: "next" mostly, "after" less.
    await set_successors(catalog.store, "last", [["next", 1.0], ["after", 0.5]])
    return catalog


async def set_successors(store: VectorStore, item_id: str, successors: list[list[Any]]) -> None:
    await store.client.set_payload(ITEMS, {ItemField.SUCCESSORS.key: successors}, points=[point_id(item_id)])


async def reader(catalog: Catalog, user_id: str, history: list[str], taste: bool = True, seen: bool = False) -> None:
    """A user who read `history` in this order (the last is the newest); only "last" counted as seen unless `seen`."""
    await catalog.user(user_id, taste=direction(0) if taste else None, seen=history if seen else ["last"])
    entries = [[item_id, 1.0, catalog.now - 60.0 * (len(history) - n)] for n, item_id in enumerate(history)]
    await catalog.store.client.set_payload(USERS, {UserField.HISTORY.key: entries}, points=[point_id(user_id)])


async def test_what_followed_the_users_latest_item_joins_the_feed_with_a_sequence_part(
    shelf: Catalog, store: VectorStore
) -> None:
    await reader(shelf, "u", ["last"])
    feed = await feeds(store, sequence_weight=1.0).for_you("u", limit=3)
    assert feed.strategy == Strategy.PERSONALIZED
    by_id = {item.item_id: item for item in feed.items}
    # Nothing about "next" is near the user's taste or popular: only its sequence score brings it in.
    assert feed.items[0].item_id == "next"
    assert by_id["next"].score_parts["sequence"] == pytest.approx(1.0)
    assert by_id["next"].score == pytest.approx(sum(by_id["next"].score_parts.values()))
    assert "last" not in by_id
    assert all("sequence" in item.score_parts for item in feed.items)

    # Even with room for every filler, the neighbourhood and the trend bring in none of the successors.
    without = await feeds(store, sequence_weight=0.0).for_you("u", limit=len(FILLERS))
    assert {item.item_id for item in without.items} == set(FILLERS)
    assert all("sequence" not in item.score_parts for item in without.items)
    wider = await feeds(store, sequence_weight=1.0).for_you("u", limit=len(FILLERS))
    assert {"next", "after"} <= {item.item_id for item in wider.items}


async def test_a_filter_and_exclusions_still_hold_for_successors(shelf: Catalog, store: VectorStore) -> None:
    await reader(shelf, "u", ["last"])
    recommender = feeds(store, sequence_weight=1.0)
    comedy = await recommender.for_you("u", limit=3, item_filter=ItemFilter((Condition("category", equals="comedy"),)))
    assert [item.item_id for item in comedy.items] == ["after"]
    excluded = await recommender.for_you("u", limit=3, exclude=["next"])
    assert "next" not in {item.item_id for item in excluded.items}
    assert excluded.items[0].item_id == "after"


async def test_a_seen_successor_is_not_returned_and_the_next_best_takes_its_place(
    shelf: Catalog, store: VectorStore
) -> None:
    await reader(shelf, "u", ["next", "last"], seen=True)
    feed = await feeds(store, sequence_weight=1.0).for_you("u", limit=3)
    ids = [item.item_id for item in feed.items]
    assert "next" not in ids and ids[0] == "after"
    # Scaled against every successor, the excluded "next" included: rows compare, the scale is the signal's.
    assert feed.items[0].score_parts["sequence"] == pytest.approx(0.5)


async def test_the_latest_item_weighs_most(shelf: Catalog, store: VectorStore) -> None:
    # "earlier" was read before "last"; what followed it ("after") counts at DECAY of what followed "last".
    await set_successors(store, "earlier", [["after", 1.0]])
    await reader(shelf, "u", ["earlier", "last"])
    feed = await feeds(store, sequence_weight=1.0).for_you("u", limit=3)
    parts = {item.item_id: item.score_parts["sequence"] for item in feed.items}
    assert list(parts)[:2] == ["after", "next"]  # 0.5 + 0.8 · 1.0 beats 1.0
    assert parts["next"] == pytest.approx(1.0 / 1.3)


async def test_a_user_with_history_but_no_vector_gets_successors_not_the_trending_feed(
    shelf: Catalog, store: VectorStore
) -> None:
    await reader(shelf, "u", ["last"], taste=False)
    feed = await feeds(store, sequence_weight=1.0).for_you("u", limit=3)
    assert feed.strategy == Strategy.PERSONALIZED and feed.items[0].item_id == "next"
    cold = await feeds(store, sequence_weight=0.0).for_you("u", limit=3)
    assert cold.strategy == Strategy.POPULAR and "next" not in {item.item_id for item in cold.items}


async def test_successor_lists_are_read_once_and_only_when_the_signal_is_weighted(
    shelf: Catalog, store: VectorStore
) -> None:
    await reader(shelf, "u", ["earlier", "last"])
    counting = CountingStore(store)
    await feeds(counting, sequence_weight=0.0).for_you("u", limit=3)
    assert counting.item_reads == []
    await feeds(counting, sequence_weight=1.0).for_you("u", limit=3)
    assert len(counting.item_reads) == 1 and ItemField.SUCCESSORS.key in counting.item_reads[0]
    # Weighted, but nothing positive in the history: no read either.
    await reader(shelf, "newcomer", [])
    counting.item_reads.clear()
    await feeds(counting, sequence_weight=1.0).for_you("newcomer", limit=3)
    assert counting.item_reads == []


async def test_a_request_can_turn_the_signal_on_over_grpc(shelf: Catalog, start_recommender: StartRecommender) -> None:
    await reader(shelf, "u", ["last"])
    recommender = await start_recommender(**POOL, sequence_weight=0.0)
    plain = await recommender.for_you("u", limit=3)
    assert "next" not in {item.item_id for item in plain.items}
    turned_on = await recommender.for_you(
        "u", limit=3, controls=recommender_pb2.FeedControls(weights={"sequence": 1.0})
    )
    assert turned_on.items[0].item_id == "next"
    assert turned_on.items[0].score_parts["sequence"] == pytest.approx(1.0)


def test_the_signal_is_on_by_default() -> None:
    assert RecommenderSettings(encoder_address="127.0.0.1:1").for_you_weights().sequence > 0.0
