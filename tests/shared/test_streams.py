"""Stream consumption on a real redis-server: backlog, retries, dead letters, restarts."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from redis.asyncio import Redis

from recsys.shared.events import parse_item_event
from recsys.shared.streams import ConsumerPolicy, StreamSubscriptions
from tests.support import stream_entries_async

STREAM = "test:items"
FAST = ConsumerPolicy(max_records=4, claim_idle_ms=300, max_attempts=3, concurrency=4, polling_interval_ms=50)


async def _eventually(check: Callable[[], Awaitable[bool]], timeout_s: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not await check():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.05)


def _item(item_id: str) -> dict[str, str]:
    return {"event": "item.upserted", "data": json.dumps({"item_id": item_id, "title": item_id})}


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url)
    yield client
    await client.aclose()


async def _consume(
    redis_url: str,
    redis: Redis,
    handler: Callable[[dict[str, str], str], Awaitable[None]],
    policy: ConsumerPolicy = FAST,
) -> StreamSubscriptions:
    subscriptions = StreamSubscriptions(redis_url, redis, grace_s=5)
    subscriptions.consume(stream=STREAM, group="g", consumer="c1", handler=handler, policy=policy)
    await subscriptions.start()
    return subscriptions


async def test_backlog_published_before_the_first_start_is_consumed(redis_url: str, redis: Redis) -> None:
    for i in range(5):
        await redis.xadd(STREAM, _item(f"early-{i}"))  # type: ignore[arg-type]
    seen: list[str] = []

    async def handle(fields: dict[str, str], entry_id: str) -> None:
        seen.append(parse_item_event(fields, entry_id).item_id)

    subscriptions = await _consume(redis_url, redis, handle)
    try:
        await redis.xadd(STREAM, _item("late"))  # type: ignore[arg-type]
        await _eventually(lambda: asyncio.sleep(0, len(seen) == 6))
    finally:
        await subscriptions.stop()
    assert sorted(seen) == sorted([f"early-{i}" for i in range(5)] + ["late"])


async def test_malformed_entry_is_dead_lettered_with_its_reason_and_the_next_is_processed(
    redis_url: str, redis: Redis
) -> None:
    seen: list[str] = []

    async def handle(fields: dict[str, str], entry_id: str) -> None:
        seen.append(parse_item_event(fields, entry_id).item_id)

    subscriptions = await _consume(redis_url, redis, handle)
    try:
        bad_id = await redis.xadd(STREAM, {"event": "item.upserted", "data": "{oops"})
        await redis.xadd(STREAM, _item("good"))  # type: ignore[arg-type]
        await _eventually(lambda: asyncio.sleep(0, seen == ["good"]))
        await _eventually(lambda: _xlen(redis, f"{STREAM}:dead-letter", 1))
    finally:
        await subscriptions.stop()
    [(_, dead)] = await stream_entries_async(redis, f"{STREAM}:dead-letter")
    assert dead["dead_letter_source_id"] == (bad_id.decode() if isinstance(bad_id, bytes) else bad_id)
    assert "not JSON" in dead["dead_letter_reason"]
    assert dead["data"] == "{oops"  # the original entry travels with its reason: nothing is lost
    assert (await redis.xpending(STREAM, "g"))["pending"] == 0


async def test_entry_failing_every_attempt_is_retried_then_dead_lettered(redis_url: str, redis: Redis) -> None:
    attempts: list[str] = []

    async def handle(fields: dict[str, str], entry_id: str) -> None:
        attempts.append(entry_id)
        raise RuntimeError("store down")

    subscriptions = await _consume(redis_url, redis, handle)
    try:
        await redis.xadd(STREAM, _item("doomed"))  # type: ignore[arg-type]
        await _eventually(lambda: _xlen(redis, f"{STREAM}:dead-letter", 1))
    finally:
        await subscriptions.stop()
    assert len(attempts) == FAST.max_attempts
    [(_, dead)] = await stream_entries_async(redis, f"{STREAM}:dead-letter")
    assert "store down" in dead["dead_letter_reason"]
    assert (await redis.xpending(STREAM, "g"))["pending"] == 0


async def test_entry_that_fails_once_succeeds_on_redelivery(redis_url: str, redis: Redis) -> None:
    done: list[str] = []
    failed: set[str] = set()

    async def handle(fields: dict[str, str], entry_id: str) -> None:
        if entry_id not in failed:
            failed.add(entry_id)
            raise RuntimeError("transient")
        done.append(entry_id)

    subscriptions = await _consume(redis_url, redis, handle)
    try:
        await redis.xadd(STREAM, _item("flaky"))  # type: ignore[arg-type]
        await _eventually(lambda: asyncio.sleep(0, len(done) == 1))
    finally:
        await subscriptions.stop()
    assert await redis.xlen(f"{STREAM}:dead-letter") == 0


async def _xlen(redis: Redis, stream: str, at_least: int) -> bool:
    return int(await redis.xlen(stream)) >= at_least


async def _finish_all_at_once(redis_url: str, redis: Redis, entries: int, max_records: int) -> None:
    """Publishes the entries, holds every handler until all are in flight, then lets them finish together."""
    for i in range(entries):
        await redis.xadd(STREAM, _item(f"item-{i}"))  # type: ignore[arg-type]
    release = asyncio.Event()
    started: list[str] = []

    async def handle(fields: dict[str, str], entry_id: str) -> None:
        started.append(entry_id)
        await release.wait()

    policy = ConsumerPolicy(max_records=max_records, claim_idle_ms=600_000, concurrency=entries, polling_interval_ms=50)
    subscriptions = await _consume(redis_url, redis, handle, policy)
    try:
        await _eventually(lambda: asyncio.sleep(0, len(started) == entries))
        release.set()
        await _eventually(lambda: _pending(redis, 0))  # all acked, none left for the claimer
    finally:
        await subscriptions.stop()


async def test_hundreds_of_entries_finishing_at_once_are_all_acked(redis_url: str, redis: Redis) -> None:
    # When each handler acked on a connection of its own, redis-py's default pool (100) made the
    # acks beyond it fail, and those entries waited for the claimer.
    await _finish_all_at_once(redis_url, redis, entries=300, max_records=100)


async def _pending(redis: Redis, expected: int) -> bool:
    summary = await redis.xpending(STREAM, "g")
    return int(summary["pending"]) == expected


async def _xack_calls(redis: Redis) -> int:
    stats = await redis.info("commandstats")
    return int(stats.get("cmdstat_xack", {}).get("calls", 0))


async def test_entries_finishing_together_share_one_ack(redis_url: str, redis: Redis) -> None:
    acks_before = await _xack_calls(redis)
    await _finish_all_at_once(redis_url, redis, entries=200, max_records=50)
    assert await _xack_calls(redis) - acks_before <= 5  # one XACK per entry would be 200


async def test_stop_lets_entries_in_flight_finish_and_acks_them(redis_url: str, redis: Redis) -> None:
    started: list[str] = []
    finished: list[str] = []

    async def handle(fields: dict[str, str], entry_id: str) -> None:
        started.append(entry_id)
        await asyncio.sleep(0.5)  # still running when the stop begins
        finished.append(entry_id)

    subscriptions = await _consume(redis_url, redis, handle)
    for i in range(3):
        await redis.xadd(STREAM, _item(f"item-{i}"))  # type: ignore[arg-type]
    await _eventually(lambda: asyncio.sleep(0, len(started) == 3))
    await subscriptions.stop()
    assert sorted(finished) == sorted(started)
    assert await _pending(redis, 0)


async def test_entries_unfinished_after_the_grace_period_stay_pending(redis_url: str, redis: Redis) -> None:
    started: list[str] = []
    finished: list[str] = []

    async def handle(fields: dict[str, str], entry_id: str) -> None:
        started.append(entry_id)
        await asyncio.sleep(60)
        finished.append(entry_id)

    subscriptions = StreamSubscriptions(redis_url, redis, grace_s=0.3)
    subscriptions.consume(stream=STREAM, group="g", consumer="c1", handler=handle, policy=FAST)
    await subscriptions.start()
    for i in range(3):
        await redis.xadd(STREAM, _item(f"item-{i}"))  # type: ignore[arg-type]
    await _eventually(lambda: asyncio.sleep(0, len(started) == 3))
    await subscriptions.stop()
    assert finished == []
    assert await _pending(redis, 3)  # a restarted consumer's claimer delivers them again
