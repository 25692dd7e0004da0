"""Encoder test fixtures: the real model loaded once; EncoderServices on real Redis, embedded Qdrant, gRPC."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from redis.asyncio import Redis

from recsys.encoder.service import EncoderService
from recsys.encoder.settings import EncoderSettings
from recsys.encoder.text.embedder import Embedder
from recsys.shared.store import VectorStore
from recsys_client.aio import EncoderClient
from tests.support import eventually, stopped_within

MakeEncoder = Callable[..., EncoderService]
StartEncoder = Callable[..., Awaitable[EncoderService]]


@pytest.fixture(scope="session")
def embedder() -> Embedder:
    return Embedder.load(device="cpu")


def encoder_settings(redis_url: str, **overrides: Any) -> EncoderSettings:
    values: dict[str, Any] = {
        "encoder_host": "127.0.0.1",
        "encoder_port": 0,
        "redis_url": redis_url,
        "consumer_name": "encoder-test",
        "consumer_claim_idle_ms": 500,
        "grpc_grace_s": 1.0,
        "batch_max_wait_ms": 2.0,
        "encoder_metrics_port": 0,
        "recommender_metrics_port": 0,
        **overrides,
    }
    return EncoderSettings(**values)


@pytest.fixture
async def make_encoder(redis_url: str, embedder: Embedder) -> AsyncIterator[MakeEncoder]:
    """Builds encoders (not started) with settings overrides; stops them and closes their store and Redis afterwards."""
    made: list[tuple[EncoderService, VectorStore, Redis]] = []

    def make(*, share_model: bool = True, **overrides: Any) -> EncoderService:
        store = VectorStore.in_memory()
        redis = Redis.from_url(redis_url)
        service = EncoderService(
            encoder_settings(redis_url, **overrides), store, redis, embedder=embedder if share_model else None
        )
        made.append((service, store, redis))
        return service

    yield make
    for service, store, redis in made:
        await stopped_within(service.stop(), 120, "an encoder")
        await store.close()
        await redis.aclose()


@pytest.fixture
def start_encoder(make_encoder: MakeEncoder) -> StartEncoder:
    """Builds and starts an encoder with settings overrides."""

    async def start(**overrides: Any) -> EncoderService:
        service = make_encoder(**overrides)
        await service.start()
        return service

    return start


@pytest.fixture
async def encoder(start_encoder: StartEncoder) -> EncoderService:
    return await start_encoder()


@pytest.fixture
async def client(encoder: EncoderService) -> AsyncIterator[EncoderClient]:
    async with EncoderClient(f"127.0.0.1:{encoder.port}") as connected:
        yield connected


async def wait_consumed(redis: Redis, stream: str, group: str, entry_id: str | bytes) -> None:
    """Waits until the group has read past `entry_id` and acked everything it read."""
    target = entry_id.decode() if isinstance(entry_id, bytes) else entry_id

    def as_tuple(stream_id: str) -> tuple[int, int]:
        ms, seq = stream_id.split("-")
        return int(ms), int(seq)

    async def consumed() -> bool:
        for info in await redis.xinfo_groups(stream):
            name = info["name"].decode() if isinstance(info["name"], bytes) else info["name"]
            if name != group:
                continue
            last = info["last-delivered-id"]
            last = last.decode() if isinstance(last, bytes) else last
            return as_tuple(last) >= as_tuple(target) and int(info["pending"]) == 0
        return False

    await eventually(consumed, timeout_s=30, what=f"{group} consuming {stream} up to {target}")


@pytest.fixture(name="wait_consumed")
def wait_consumed_fixture() -> Callable[[Redis, str, str, str | bytes], Awaitable[None]]:
    return wait_consumed
