"""What the encoder tells Kubernetes: liveness fails only when a restart would help; readiness when Redis is down."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from redis.asyncio import Redis

from recsys.encoder.service import EncoderService
from recsys.encoder.text.embedder import Embedder
from recsys.encoder.text.grpc_api import SERVICE_NAME
from recsys.shared.points import ITEMS
from recsys.shared.store import VectorStore
from tests.encoder.conftest import StartEncoder, encoder_settings
from tests.support import RedisServer, eventually

SERVING = health_pb2.HealthCheckResponse.SERVING


async def _status(port: int, service: str) -> int:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        answer = await health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service=service), timeout=5
        )
    return int(answer.status)


async def test_a_consumer_that_cannot_run_fails_liveness_and_recovers(start_encoder: StartEncoder) -> None:
    encoder = await start_encoder(health_interval_s=0.1)
    assert await _status(encoder.port, "") == SERVING
    items = encoder.settings.streams.items
    # The stream replaced by a value of another type: no consumer group can exist on it.
    await encoder.redis.delete(items)
    await encoder.redis.set(items, "not a stream")

    async def dead() -> bool:
        return await _status(encoder.port, "") != SERVING

    await eventually(dead, timeout_s=30, what="liveness failing while items cannot be consumed")
    await encoder.redis.delete(items)

    async def alive() -> bool:
        return await _status(encoder.port, "") == SERVING and await _status(encoder.port, SERVICE_NAME) == SERVING

    await eventually(alive, timeout_s=30, what="liveness and readiness back once the stream is usable")


@pytest.fixture
async def own_redis(tmp_path: Path) -> AsyncIterator[RedisServer]:
    (tmp_path / "redis").mkdir()
    server = RedisServer(tmp_path / "redis")
    server.start()
    yield server
    server.stop()


async def test_redis_down_fails_readiness_not_liveness_and_ingestion_resumes_after(
    own_redis: RedisServer, embedder: Embedder
) -> None:
    store = VectorStore.in_memory()
    redis = Redis.from_url(own_redis.url)
    encoder = EncoderService(encoder_settings(own_redis.url, health_interval_s=0.1), store, redis, embedder=embedder)
    await encoder.start()
    try:
        own_redis.stop()

        async def unready() -> bool:
            return await _status(encoder.port, SERVICE_NAME) != SERVING

        await eventually(unready, timeout_s=30, what="readiness failing while Redis is down")
        assert await _status(encoder.port, "") == SERVING, "a restart would not bring Redis back"

        own_redis.start()

        async def ready() -> bool:
            return await _status(encoder.port, SERVICE_NAME) == SERVING

        await eventually(ready, timeout_s=30, what="ready again once Redis answers")
        data = json.dumps({"item_id": "after-outage", "title": "Storm lantern"})
        await redis.xadd(encoder.settings.streams.items, {"event": "item.upserted", "data": data})

        async def ingested() -> bool:
            return (await store.client.count(ITEMS)).count == 1

        await eventually(ingested, timeout_s=60, what="an item published after the outage ingested")
    finally:
        await encoder.stop()
        await store.close()
        await redis.aclose()
