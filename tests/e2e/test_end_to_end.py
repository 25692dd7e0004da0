"""End to end: events published with redis-cli become feeds over gRPC within seconds."""

from __future__ import annotations

import json
import time

import pytest

from recsys.cli.demo import demo_catalog
from recsys.cli.runner import RunningSystem
from recsys.shared.client import MonitorClient, RecommenderClient
from recsys.shared.ids import point_id
from recsys.shared.points import ITEMS, USERS
from tests.support import RedisServer, eventually, redis_cli

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="session")]

COFFEE = {"k1", "k2", "k3", "k4", "k5", "b2"}
# Alice engages with coffee gear and nothing else.
ALICE = [("k2", "purchase"), ("k3", "click"), ("b2", "like"), ("k5", "view")]


@pytest.fixture(scope="module")
async def ingested(system: RunningSystem, redis_server: RedisServer) -> RunningSystem:
    streams = system.settings.streams
    started = time.time()
    catalog = demo_catalog()
    for item in catalog:
        redis_cli(redis_server, "XADD", streams.items, "*", "event", "item.upserted", "data", json.dumps(item))

    async def catalog_stored() -> bool:
        return (await system.store.client.count(ITEMS)).count == len(catalog)

    # The catalog first, as a shop publishes it: taste vectors are built from stored content vectors.
    await eventually(catalog_stored, timeout_s=60, what="catalog ingested")
    for step, (item_id, kind) in enumerate(ALICE):
        data = {
            "event_id": f"alice-{step}",
            "user_id": "alice",
            "item_id": item_id,
            "type": kind,
            "session_id": "s1",
            "ts": started - 600 + step,
        }
        redis_cli(redis_server, "XADD", streams.interactions, "*", "event", "interaction", "data", json.dumps(data))

    async def interactions_applied() -> bool:
        users = await system.store.client.retrieve(USERS, [point_id("alice")])
        return bool(users) and users[0].payload["event_count"] == len(ALICE)

    await eventually(interactions_applied, timeout_s=60, what="interactions applied")
    return system


async def test_similar_items_returns_the_semantically_closest(ingested: RunningSystem) -> None:
    async with RecommenderClient(ingested.address("recommender")) as client:
        response = await client.similar_items("k2", 3)  # burr coffee grinder
    ids = [item.item_id for item in response.items]
    assert "k2" not in ids
    assert set(ids) <= COFFEE, ids
    assert all("content" in item.score_parts for item in response.items)


async def test_for_you_reflects_interactions_and_excludes_seen(ingested: RunningSystem) -> None:
    async with RecommenderClient(ingested.address("recommender")) as client:
        response = await client.for_you("alice", 5)
    ids = [item.item_id for item in response.items]
    assert response.strategy == "personalized"
    assert not set(ids) & {item for item, _ in ALICE}, "seen items must be excluded"
    # The unseen coffee items rank at the top for a coffee-only user.
    assert set(ids[:2]) <= COFFEE, ids


async def test_unknown_user_gets_popular_items(ingested: RunningSystem) -> None:
    async with RecommenderClient(ingested.address("recommender")) as client:
        response = await client.for_you("nobody-yet", 3)
    assert response.strategy == "popular"
    assert response.items[0].item_id == "k2"  # the only purchase is the most popular


async def test_search_finds_the_item_a_query_describes(ingested: RunningSystem) -> None:
    async with RecommenderClient(ingested.address("recommender")) as client:
        response = await client.search_items("shoes for running on muddy trails", 3)
    assert response.items[0].item_id == "o4"
    response_books = await _search(ingested, "a guidebook for walking hut to hut in the mountains")
    assert response_books[0] == "b3"


async def _search(system: RunningSystem, text: str) -> list[str]:
    async with RecommenderClient(system.address("recommender")) as client:
        return [item.item_id for item in (await client.search_items(text, 3)).items]


async def test_drift_report_answers_with_figures(ingested: RunningSystem) -> None:
    async with MonitorClient(ingested.address("monitor")) as client:
        report = await client.drift_report("items.content")
    assert report.sufficient, report.reason
    assert report.reference_size >= 10 and report.current_size >= 10
    assert report.mmd2 == report.mmd2 and 0.0 <= report.p_value <= 1.0  # a number, not NaN
    assert report.centroid_cosine_distance >= 0.0
