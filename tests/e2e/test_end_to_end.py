"""End to end: events published with redis-cli become feeds over gRPC within seconds."""

from __future__ import annotations

import asyncio
import json
import re
import time
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from recsys.cli.demo import demo_catalog
from recsys.cli.runner import RunningSystem
from recsys.shared.ids import point_id
from recsys.shared.points import ITEMS, USERS
from recsys_client.aio import MonitorClient, RecommenderClient
from tests.deploy.observability import Selector, used_selectors
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


def _scrape(port: int) -> list[tuple[str, dict[str, str]]]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        text = response.read().decode()
    return [(s.name, s.labels) for family in text_string_to_metric_families(text) for s in family.samples]


async def test_every_metric_the_dashboard_and_the_alert_rules_read_is_exported(
    ingested: RunningSystem, redis_server: RedisServer
) -> None:
    streams = ingested.settings.streams
    encoder = ingested.services["encoder"]
    # What an on-call engineer's panels show only once it happened: a dead letter, a near-duplicate
    # item (an anomaly), a behavior refresh, feed calls and an embedding.
    redis_cli(redis_server, "XADD", streams.interactions, "*", "event", "interaction", "data", "{not json")
    # Two copies of one item, one after the other: the second is compared with the current window, which
    # holds the first (it just entered; the window is a sample of the latest items otherwise).
    original = demo_catalog()[-1]
    for copy in ("copy-1", "copy-2"):
        duplicate = {**original, "item_id": f"{original['item_id']}-{copy}"}
        redis_cli(redis_server, "XADD", streams.items, "*", "event", "item.upserted", "data", json.dumps(duplicate))

        async def stored(item_id: str = duplicate["item_id"]) -> bool:
            return bool(await ingested.store.client.retrieve(ITEMS, [point_id(item_id)]))

        await eventually(stored, timeout_s=60, what=f"{duplicate['item_id']} stored")
    assert await encoder.behavior_refresh.refresh() is not None  # type: ignore[attr-defined]
    async with RecommenderClient(ingested.address("recommender")) as client:
        await client.similar_items("k2", 3)
        await client.for_you("alice", 3)
    ports = {name: int(getattr(service, "metrics_port")) for name, service in ingested.services.items()}  # noqa: B009
    assert all(ports.values()), ports
    wanted = used_selectors()
    missing: set[Selector] = set(wanted)

    async def all_exported() -> bool:
        samples = [sample for port in ports.values() for sample in await asyncio.to_thread(_scrape, port)]
        missing.clear()
        missing.update(s for s in wanted if not any(s.answered_by(name, labels) for name, labels in samples))
        return not missing

    try:
        await eventually(all_exported, timeout_s=120, what="every dashboard and alert metric exported")
    except AssertionError as failure:
        raise AssertionError(f"nobody exports: {sorted(map(str, missing))}") from failure


async def test_metric_names_follow_the_prometheus_conventions(ingested: RunningSystem) -> None:
    names = {
        name
        for service in ingested.services.values()
        for name, _ in await asyncio.to_thread(_scrape, int(getattr(service, "metrics_port")))  # noqa: B009
    }
    recsys = {name for name in names if name.startswith("recsys_")}
    assert recsys, names
    # Base units (seconds, bytes), no rates kept as gauges: a rate is the scraper's rate() of a counter.
    assert [n for n in recsys if re.search(r"_(ms|milliseconds|minutes|hours|kb|mb|kilobytes|megabytes)(_|$)", n)] == []
    assert [n for n in recsys if "per_second" in n] == []
    for service in ("EncoderService", "RecommenderService", "MonitorService"):
        assert any(n == "grpc_server_handled_total" for n in names), service
    assert {"process_resident_memory_bytes", "process_open_fds", "process_cpu_seconds_total"} <= names
    assert any(n.startswith("python_gc_") for n in names)
