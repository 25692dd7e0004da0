"""Fixtures of the monitor tests: embedded Qdrant, a running MonitorService on a real redis-server, and helpers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from redis.asyncio import Redis

from recsys.monitor.app import MonitorService
from recsys.monitor.settings import MonitorSettings
from recsys.shared.store import VectorStore
from recsys_client.aio import MonitorClient
from tests.monitor.harness import CONTENT_DIMS, Catalog
from tests.support import stopped_within


@pytest.fixture
async def store() -> AsyncIterator[VectorStore]:
    store = VectorStore.in_memory()
    await store.ensure_collections(CONTENT_DIMS, 64)
    yield store
    await store.close()


@pytest.fixture
def monitor_settings(redis_url: str, tmp_path: Path) -> MonitorSettings:
    return MonitorSettings(
        redis_url=redis_url,
        data_dir=tmp_path,
        monitor_host="127.0.0.1",
        monitor_port=0,
        metrics_port=0,
        reference_size=40,
        current_size=40,
        min_window=30,
        permutations=100,
        evaluate_interval_s=0.1,
        consumer_name="monitor-test",
        consumer_claim_idle_ms=200,
        alert_cooldown_s=3600,
    )


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url)
    yield client
    await client.aclose()


@pytest.fixture
async def monitor(monitor_settings: MonitorSettings, store: VectorStore, redis: Redis) -> AsyncIterator[MonitorService]:
    service = MonitorService(monitor_settings, store, redis)
    await service.start()
    yield service
    await stopped_within(service.stop(), 120, "the monitor")


@pytest.fixture
async def client(monitor: MonitorService) -> AsyncIterator[MonitorClient]:
    async with MonitorClient(f"127.0.0.1:{monitor.port}") as client:
        yield client


@pytest.fixture
def catalog(store: VectorStore, redis: Redis, monitor_settings: MonitorSettings) -> Catalog:
    return Catalog(store, redis, monitor_settings.streams.embeddings)
