"""Fixtures of the interactions role's tests: an embedded store with small vectors, and a Redis client."""

from __future__ import annotations

import warnings
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from recsys.shared.store import VectorStore


@pytest.fixture
async def store() -> AsyncIterator[VectorStore]:
    store = VectorStore.in_memory()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Payload indexes have no effect")
        await store.ensure_collections(8, 8)
    yield store
    await store.close()


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url)
    yield client
    await client.aclose()
