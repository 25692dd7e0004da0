"""Notices on a real redis-server: many publishers at once share one pipeline, and each still learns of failure."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from recsys.encoder.notices import NoticePublisher, notice
from tests.support import stream_entries_async


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url)
    yield client
    await client.aclose()


async def test_notices_of_concurrent_publishers_all_land_once_each(redis: Redis) -> None:
    publisher = NoticePublisher(redis, "test:embeddings", maxlen=10_000)

    await asyncio.gather(
        *(publisher.publish([notice("items", "content", f"i{n}", "updated")]) for n in range(50)),
        publisher.publish([notice("users", "taste", "u1", "updated"), notice("users", "session", "u1", "updated")]),
    )

    entries = await stream_entries_async(redis, "test:embeddings")
    subjects = sorted(json.loads(fields["data"])["subject_id"] for _, fields in entries)
    assert subjects == sorted([f"i{n}" for n in range(50)] + ["u1", "u1"])


async def test_every_publisher_of_a_failed_pipeline_gets_the_error(redis: Redis) -> None:
    await redis.set("test:not-a-stream", "x")
    publisher = NoticePublisher(redis, "test:not-a-stream", maxlen=10_000)

    outcomes = await asyncio.gather(
        *(publisher.publish([notice("items", "content", f"i{n}", "updated")]) for n in range(3)),
        return_exceptions=True,
    )

    assert all(isinstance(outcome, Exception) and "WRONGTYPE" in str(outcome) for outcome in outcomes)
