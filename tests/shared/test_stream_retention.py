"""Stream retention on a real redis-server: trims what every group acknowledged, caps loudly, drops idle consumers."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from redis.asyncio import Redis as RedisClient

from recsys.shared.stream_failures import FailureLedger
from recsys.shared.stream_retention import RetentionPolicy, RetentionReport, alert_on_cap, enforce_retention
from recsys.shared.streams import ConsumerPolicy, StreamSubscriptions
from tests.support import eventually

# redis-py types every reply as a union of all it could be; these tests read them as Redis sends them.
Redis = Any

STREAM = "retention:interactions"
KEEP_CONSUMERS = RetentionPolicy(max_entries=0, consumer_expiry_ms=3_600_000)


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client = RedisClient.from_url(redis_url)
    yield client
    await client.aclose()


async def _publish(redis: Redis, count: int) -> list[bytes]:
    return [await redis.xadd(STREAM, {"data": json.dumps({"n": n})}) for n in range(count)]  # type: ignore[arg-type]


async def _read(redis: Redis, group: str, count: int) -> list[bytes]:
    answer = await redis.xreadgroup(group, f"{group}-consumer", {STREAM: ">"}, count=count)
    return [entry_id for _, entries in answer for entry_id, _ in entries]


async def _ids(redis: Redis) -> list[bytes]:
    return [entry_id for entry_id, _ in await redis.xrange(STREAM)]


async def test_only_entries_every_group_acknowledged_are_trimmed(redis: Redis) -> None:
    ids = await _publish(redis, 10)
    for group in ("encoder", "monitor"):
        await redis.xgroup_create(STREAM, group, id="0")
    await redis.xack(STREAM, "encoder", *await _read(redis, "encoder", 10))
    monitor_read = await _read(redis, "monitor", 6)
    await redis.xack(STREAM, "monitor", *monitor_read[:2], monitor_read[3])  # ids[2] and ids[4:6] stay pending

    report = await enforce_retention(redis, STREAM, KEEP_CONSUMERS)
    assert await _ids(redis) == ids[2:], "from the oldest entry still pending in some group"
    assert report.trimmed == 2 and report.dropped_unread == 0

    await redis.xack(STREAM, "monitor", ids[2], ids[4], ids[5])
    await enforce_retention(redis, STREAM, KEEP_CONSUMERS)
    assert await _ids(redis) == ids[6:], "from the first entry the slowest group has not read"

    await redis.xack(STREAM, "monitor", *await _read(redis, "monitor", 10))
    await enforce_retention(redis, STREAM, KEEP_CONSUMERS)
    assert await _ids(redis) == []


async def test_a_stream_no_group_reads_is_not_trimmed(redis: Redis) -> None:
    await _publish(redis, 5)
    report = await enforce_retention(redis, STREAM, KEEP_CONSUMERS)
    assert report.trimmed == 0 and await redis.xlen(STREAM) == 5


async def test_past_the_hard_cap_unread_entries_go_and_are_reported(redis: Redis) -> None:
    ids = await _publish(redis, 30)
    await redis.xgroup_create(STREAM, "stuck", id="0")
    reported: list[RetentionReport] = []

    async def alert(report: RetentionReport) -> None:
        reported.append(report)

    report = await enforce_retention(redis, STREAM, RetentionPolicy(max_entries=20), on_cap=alert)
    assert await _ids(redis) == ids[10:], "the oldest go first"
    assert report.dropped_unread == 10 and reported == [report]


async def test_idle_consumers_with_nothing_pending_leave_their_group(redis: Redis) -> None:
    await _publish(redis, 4)
    await redis.xgroup_create(STREAM, "g", id="0")
    gone = await redis.xreadgroup("g", "gone", {STREAM: ">"}, count=2)
    await redis.xack(STREAM, "g", *[entry_id for _, entries in gone for entry_id, _ in entries])
    await redis.xreadgroup("g", "holding", {STREAM: ">"}, count=2)  # dies with two entries pending
    await asyncio.sleep(0.05)
    report = await enforce_retention(redis, STREAM, RetentionPolicy(max_entries=0, consumer_expiry_ms=20))
    assert report.consumers_removed == ["g/gone"]
    assert [c["name"] for c in await redis.xinfo_consumers(STREAM, "g")] == [b"holding"]


async def test_failure_counts_of_trimmed_entries_are_forgotten(redis: Redis) -> None:
    ids = await _publish(redis, 4)
    await redis.xgroup_create(STREAM, "g", id="0")
    ledger = FailureLedger(redis, STREAM, "g")
    for entry_id in ids:
        await ledger.record(entry_id.decode(), "boom")
    read = await _read(redis, "g", 4)
    await redis.xack(STREAM, "g", *read[:3])
    await enforce_retention(redis, STREAM, KEEP_CONSUMERS, [ledger])
    assert [k.decode() for k in await redis.hkeys(ledger.key)] == [ids[3].decode()]


async def test_consumers_trim_their_stream_as_they_go(redis_url: str, redis: Redis) -> None:
    handled: list[str] = []

    async def handle(fields: dict[str, str], entry_id: str) -> None:
        handled.append(entry_id)

    subscriptions = StreamSubscriptions(
        redis_url, redis, grace_s=1, retention=KEEP_CONSUMERS, retention_interval_s=0.2, supervise_interval_s=0.2
    )
    subscriptions.consume(
        stream=STREAM, group="g", consumer="c", handler=handle, policy=ConsumerPolicy(polling_interval_ms=50)
    )
    await subscriptions.start()
    try:
        await _publish(redis, 50)
        await eventually(lambda: asyncio.sleep(0, len(handled) == 50), timeout_s=20, what="all handled")
        await eventually(lambda: _length_is(redis, 0), timeout_s=20, what="the acknowledged entries trimmed")
    finally:
        await subscriptions.stop()


async def _length_is(redis: Redis, length: int) -> bool:
    return int(await redis.xlen(STREAM)) == length


async def test_the_cap_dropping_unread_entries_raises_a_stream_capped_alert(redis: Redis) -> None:
    await _publish(redis, 12)
    await redis.xgroup_create(STREAM, "stuck", id="0")
    await enforce_retention(redis, STREAM, RetentionPolicy(max_entries=5), on_cap=alert_on_cap(redis, "test:alerts"))
    [(_, alert)] = await redis.xrange("test:alerts")
    assert alert[b"event"] == b"stream.capped"
    data = json.loads(alert[b"data"])
    assert (data["kind"], data["subject"], data["statistics"]["dropped"]) == ("stream_capped", STREAM, 7)
