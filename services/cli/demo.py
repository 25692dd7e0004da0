"""`recsys demo`: the whole system in one process on a built-in catalog and traffic, then three feeds."""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable
from importlib import resources
from pathlib import Path
from typing import Any

from qdrant_client import models

from recsys.cli.runner import RunningSystem, start_system, wait_ready
from recsys.shared.ids import point_id
from recsys.shared.points import ITEMS, USERS, ItemField, UserField
from recsys.shared.redis_connection import event_publisher
from recsys_client import events
from recsys_client.aio import MonitorClient, RecommenderClient
from recsys_client.api import common_pb2
from recsys_client.publisher import AsyncEventPublisher

HELP = "run the whole system on a small built-in catalog and traffic, then print three feeds"
QUIET = True


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", type=Path, help="where the demo's embedded Qdrant lives (default: a temp dir)")


def run(args: argparse.Namespace) -> int:
    return asyncio.run(run_demo(args.data_dir))


# Who likes what in the demo traffic: (user, [(item, interaction type), ...]).
DEMO_TRAFFIC: list[tuple[str, list[tuple[str, str]]]] = [
    ("alice", [("k2", "view"), ("k2", "purchase"), ("k3", "click"), ("b2", "like"), ("k5", "add_to_cart")]),
    ("bob", [("o1", "view"), ("o3", "purchase"), ("o5", "click"), ("b3", "like"), ("o7", "view")]),
    ("carol", [("o4", "purchase"), ("e8", "click"), ("o3", "view"), ("e3", "dislike")]),
    ("dave", [("k1", "click"), ("k2", "purchase"), ("k4", "view"), ("b2", "view")]),
    ("erin", [("o1", "purchase"), ("o2", "purchase"), ("o6", "click"), ("b6", "like")]),
    ("frank", [("e4", "purchase"), ("e5", "click"), ("e6", "view"), ("b8", "like"), ("b4", "view")]),
]
DEMO_USER = "alice"
DEMO_ITEM = "k2"
DEMO_QUERY = "shoes for running on muddy trails"


def demo_catalog() -> list[dict[str, object]]:
    text = resources.files("recsys.cli").joinpath("demo_catalog.jsonl").read_text()
    return [json.loads(line) for line in text.splitlines() if line.strip()]


async def _publish_traffic(publisher: AsyncEventPublisher[Any]) -> int:
    count = 0
    start = time.time() - 3600
    for user, actions in DEMO_TRAFFIC:
        for step, (item_id, kind) in enumerate(actions):
            await publisher.record_interaction(
                f"demo-{user}-{step}", user, item_id, kind, session_id=f"{user}-s1", ts=start + 60 * step
            )
            count += 1
    return count


async def _wait_until(check: Callable[[], Awaitable[bool]], what: str, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while not await check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not done within {timeout_s:.0f} s")
        await asyncio.sleep(0.1)


async def _ingest(system: RunningSystem, publisher: AsyncEventPublisher[Any], catalog: list[dict[str, object]]) -> int:
    """Publishes the catalog, then (once it is embedded, as a shop would) the traffic; waits for both."""
    for item in catalog:
        await publisher.publish(
            publisher.items_stream_for(str(item["item_id"])), {"event": events.ITEM_UPSERTED, "data": json.dumps(item)}
        )

    async def catalog_stored() -> bool:
        return (await system.store.client.count(ITEMS, exact=True)).count >= len(catalog)

    await _wait_until(catalog_stored, "catalog ingestion")
    interactions = await _publish_traffic(publisher)
    expected = len(dict(DEMO_TRAFFIC)[DEMO_USER])

    async def traffic_applied() -> bool:
        users = await system.store.client.retrieve(USERS, [point_id(DEMO_USER)])
        return bool(users) and UserField.EVENT_COUNT.read(users[0].payload) >= expected

    await _wait_until(traffic_applied, "interaction ingestion")

    async def behavior_fitted() -> bool:
        fitted = models.Filter(
            must=[models.FieldCondition(key=ItemField.BEHAVIOR_VERSION.key, range=models.Range(gt=0))]
        )
        return (await system.store.client.count(ITEMS, count_filter=fitted, exact=True)).count > 0

    # The collaborative model is refit after the demo traffic (RECSYS_BEHAVIOR_REFRESH_INTERACTIONS).
    await _wait_until(behavior_fitted, "behavior model refresh")
    return interactions


def _show(title: str, items: Iterable[common_pb2.ScoredItem]) -> None:
    print(f"\n== {title}")
    for rank, item in enumerate(items, start=1):
        parts = ", ".join(f"{k} {v:.3f}" for k, v in sorted(item.score_parts.items()))
        print(f"{rank:2}. {item.item_id:4} {item.title:42.42} score {item.score:.3f}  ({parts})")


async def _show_feeds(system: RunningSystem, catalog: list[dict[str, object]], started: float) -> float:
    """Prints the three feeds and the drift report; returns seconds from start to the first recommendation."""
    async with RecommenderClient(system.address("recommender")) as recommender:
        similar = await recommender.similar_items(DEMO_ITEM, 5)
        first = time.monotonic() - started
        title = next(i["title"] for i in catalog if i["item_id"] == DEMO_ITEM)
        _show(f"SimilarItems({DEMO_ITEM}: {title})", similar.items)
        feed = await recommender.for_you(DEMO_USER, 5)
        _show(f"ForYou({DEMO_USER}) [{feed.strategy}]", feed.items)
        found = await recommender.search_items(DEMO_QUERY, 3)
        _show(f"SearchItems({DEMO_QUERY!r})", found.items)
    async with MonitorClient(system.address("monitor")) as monitor:
        report = await monitor.drift_report("items.content")
    if report.sufficient:
        verdict = "drifted" if report.drifted else "no drift"
        detail = f"{verdict}: MMD² {report.mmd2:.4f}, p-value {report.p_value:.3f}, centroid cosine distance"
        detail += (
            f" {report.centroid_cosine_distance:.3f} (first {report.reference_size} vs last {report.current_size})"
        )
    else:
        detail = report.reason
    print(f"\n== Drift of items.content: {detail}")
    return first


async def run_demo(data_dir: Path | None = None) -> int:
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="recsys-demo-") as tmp:
        # A prefix of its own keeps the demo's streams apart from a running system's.
        prefix = f"recsys-demo-{uuid.uuid4().hex[:8]}"
        overrides: dict[str, object] = {
            "data_dir": data_dir or Path(tmp),
            "stream_prefix": prefix,
            **{
                f"{name}_port": 0
                for name in ("encoder", "recommender", "monitor", "metrics", "encoder_metrics", "recommender_metrics")
            },
            **{f"{name}_host": "127.0.0.1" for name in ("encoder", "recommender", "monitor")},
            # Windows small enough for the demo catalog: its first 20 items against its last 20.
            "reference_size": 20,
            "current_size": 20,
            "min_window": 10,
            # Refit the collaborative model once the demo traffic is in, instead of every 10,000 events.
            "behavior_refresh_interactions": sum(len(actions) for _, actions in DEMO_TRAFFIC),
        }
        print("starting encoder, recommender and monitor (embedded Qdrant, real model)...")
        system = await start_system(overrides=overrides)
        try:
            await wait_ready(system)
            print(f"ready after {time.monotonic() - started:.1f} s; publishing the demo catalog, then traffic")
            catalog = demo_catalog()
            async with event_publisher(system.settings) as publisher:
                interactions = await _ingest(system, publisher, catalog)
                print(f"{len(catalog)} items and {interactions} interactions ingested")
                first = await _show_feeds(system, catalog, started)
        finally:
            await system.stop()
        async with event_publisher(system.settings) as publisher:
            await publisher.redis.delete(*[key async for key in publisher.redis.scan_iter(f"{prefix}:*")])
    print(f"\nfirst recommendation {first:.1f} s after start; demo done in {time.monotonic() - started:.1f} s")
    return 0
