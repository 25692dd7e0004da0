"""The whole system in this process: real Redis (the tests' server), the real model, embedded Qdrant."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from recsys.cli.runner import RunningSystem, start_system, wait_ready
from tests.support import RedisServer, stopped_within


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def system(redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[RunningSystem]:
    prefix = f"e2e-{uuid.uuid4().hex[:6]}"
    data_dir: Path = tmp_path_factory.mktemp("recsys-data")
    running = await start_system(
        overrides={
            "redis_url": redis_server.url,
            "data_dir": data_dir,
            "stream_prefix": prefix,
            "encoder_host": "127.0.0.1",
            "recommender_host": "127.0.0.1",
            "monitor_host": "127.0.0.1",
            "encoder_port": 0,
            "recommender_port": 0,
            "monitor_port": 0,
            "consumer_claim_idle_ms": 1000,
            "metrics_port": 0,
            "encoder_metrics_port": 0,
            "recommender_metrics_port": 0,
            # Small windows so a test catalog fills them.
            "reference_size": 20,
            "current_size": 20,
            "min_window": 10,
            "evaluate_interval_s": 1,
        }
    )
    try:
        await wait_ready(running)
        yield running
    finally:
        await stopped_within(running.stop(), 120, "the system")
