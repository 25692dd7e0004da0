"""A stream's backlog as the metrics report it: length, lag, pending, oldest pending age, dead letters."""

from __future__ import annotations

import uuid
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from redis.asyncio import Redis

from recsys.shared.stream_backlog import entry_time_ms, measure_backlog
from recsys.shared.stream_metrics import StreamMetrics


async def test_backlog_counts_unread_unacknowledged_and_dead_lettered_entries(redis_url: str) -> None:
    stream = f"backlog-{uuid.uuid4().hex[:6]}"
    dead = f"{stream}:dead"
    redis = Redis.from_url(redis_url)
    try:
        seconds, _ = await redis.time()
        old_id = f"{(seconds - 120) * 1000}-0"  # an entry two minutes old, by the server's clock
        await redis.xadd(stream, {"n": "0"}, id=old_id)
        for n in range(1, 5):
            await redis.xadd(stream, {"n": str(n)})
        await redis.xgroup_create(stream, "slow", id="0")
        await redis.xgroup_create(stream, "idle", id="$")
        read: Any = await redis.xreadgroup("slow", "c1", {stream: ">"}, count=2)  # 2 read, none acknowledged
        await redis.xack(stream, "slow", read[0][1][1][0])  # the second one is
        await redis.xadd(dead, {"reason": "malformed"})

        backlog = await measure_backlog(redis, stream, dead)
    finally:
        await redis.aclose()

    assert backlog.length == 5 and backlog.dead_letter_length == 1
    slow, idle = backlog.groups["slow"], backlog.groups["idle"]
    assert (slow.lag, slow.pending) == (3, 1)
    assert 110 <= slow.oldest_pending_age_s < 3600  # the old entry is the one still pending
    assert (idle.lag, idle.pending, idle.oldest_pending_age_s) == (0, 0, 0.0)

    registry = CollectorRegistry()
    StreamMetrics(registry).record_backlog(backlog)
    text = generate_latest(registry).decode()
    assert f'recsys_stream_group_lag{{group="slow",stream="{stream}"}} 3.0' in text
    assert f'recsys_stream_group_pending{{group="slow",stream="{stream}"}} 1.0' in text
    assert f'recsys_stream_dead_letter_length{{stream="{stream}"}} 1.0' in text
    assert f'recsys_stream_length{{stream="{stream}"}} 5.0' in text


async def test_a_stream_not_created_yet_has_an_empty_backlog(redis_url: str) -> None:
    redis = Redis.from_url(redis_url)
    try:
        backlog = await measure_backlog(redis, "never-written", "never-written:dead")
    finally:
        await redis.aclose()
    assert (backlog.length, backlog.dead_letter_length, backlog.groups) == (0, 0, {})


def test_entry_ids_carry_their_time_in_milliseconds() -> None:
    assert entry_time_ms("1700000000123-7") == 1700000000123
