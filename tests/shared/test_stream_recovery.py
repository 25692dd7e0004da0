"""Consumers that heal and judge entries fairly, on a real redis-server: poison bytes, slow entries, lost groups."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from redis import exceptions as redis_errors
from redis.asyncio import Redis as RedisClient

from recsys.shared.events import parse_item_event
from recsys.shared.stream_acks import AckBatcher
from recsys.shared.streams import ConsumerPolicy, StreamSubscriptions
from tests.support import RedisServer, eventually, stream_entries_async

# redis-py types every reply as a union of all it could be; these tests read them as Redis sends them.
Redis = Any

STREAM = "recovery:items"
DEAD = f"{STREAM}:dead-letter"
# Claims are taken fast here, so that a consumer that lost an entry's claim would show it at once.
FAST = ConsumerPolicy(max_records=8, claim_idle_ms=300, max_deliveries=2, concurrency=8, polling_interval_ms=50)

Handler = Callable[[dict[str, str], str], Awaitable[None]]


def _item(item_id: str) -> dict[str, str]:
    return {"event": "item.upserted", "data": json.dumps({"item_id": item_id, "title": item_id})}


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client = RedisClient.from_url(redis_url)
    yield client
    await client.aclose()


@pytest.fixture
async def consumers(redis_url: str, redis: Redis) -> AsyncIterator[Callable[..., Awaitable[StreamSubscriptions]]]:
    started: list[StreamSubscriptions] = []

    async def start(handler: Handler, consumer: str = "c1", policy: ConsumerPolicy = FAST) -> StreamSubscriptions:
        subscriptions = StreamSubscriptions(redis_url, redis, grace_s=5, supervise_interval_s=0.2)
        subscriptions.consume(stream=STREAM, group="g", consumer=consumer, handler=handler, policy=policy)
        await subscriptions.start()
        started.append(subscriptions)
        return subscriptions

    yield start
    for subscriptions in started:
        await subscriptions.stop()


async def _group(redis: Redis) -> dict[str, object]:
    for info in await redis.xinfo_groups(STREAM):
        if info["name"] in (b"g", "g"):
            return dict(info)
    return {}


async def _drained(redis: Redis) -> bool:
    info = await _group(redis)
    return bool(info) and info["lag"] == 0 and info["pending"] == 0


async def test_an_entry_that_is_not_utf8_is_dead_lettered_at_once_and_its_batch_goes_on(
    redis: Redis, consumers: Callable[..., Awaitable[StreamSubscriptions]]
) -> None:
    seen: list[str] = []

    async def handle(fields: dict[str, str], entry_id: str) -> None:
        seen.append(parse_item_event(fields, entry_id).item_id)

    # A claim idle time far beyond the wait below: the good entries must not wait for a claimer.
    await consumers(handle, policy=ConsumerPolicy(max_records=8, claim_idle_ms=60_000, polling_interval_ms=50))
    await redis.xadd(STREAM, _item("before"))  # type: ignore[arg-type]
    bad_id = await redis.xadd(STREAM, {"event": b"item.upserted", "data": b'{"item_id": "\xff\xfe"}'})
    await redis.xadd(STREAM, {"event": "item.upserted", b"\xc3\x28": b"x"})  # a field name that is not UTF-8
    await redis.xadd(STREAM, _item("after"))  # type: ignore[arg-type]
    await eventually(lambda: _drained(redis), timeout_s=10, what="the batch with poison settled")
    assert sorted(seen) == ["after", "before"]
    dead = await redis.xrange(DEAD)
    assert len(dead) == 2
    # Entries of a batch are handled concurrently: their dead letters may come in either order.
    by_source = {fields[b"dead_letter_source_id"]: fields for _, fields in dead}
    first = by_source[bad_id.encode() if isinstance(bad_id, str) else bad_id]
    assert b"not UTF-8" in first[b"dead_letter_reason"]
    assert first[b"data"] == b'{"item_id": "\xff\xfe"}', "the original bytes travel with the reason"


async def test_an_entry_with_a_thousand_fields_is_dead_lettered(
    redis: Redis, consumers: Callable[..., Awaitable[StreamSubscriptions]]
) -> None:
    seen: list[str] = []

    async def handle(fields: dict[str, str], entry_id: str) -> None:
        seen.append(entry_id)

    await consumers(handle)
    await redis.xadd(STREAM, {**_item("wide"), **{f"extra{i}": "x" for i in range(1000)}})  # type: ignore[arg-type]
    await eventually(lambda: _drained(redis), timeout_s=10, what="the wide entry settled")
    assert seen == []
    [(_, dead)] = await stream_entries_async(redis, DEAD)
    assert "1002 fields" in dead["dead_letter_reason"]


async def test_a_slow_entry_keeps_its_claim_and_is_handled_once(
    redis: Redis, consumers: Callable[..., Awaitable[StreamSubscriptions]]
) -> None:
    handled: Counter[str] = Counter()

    async def slow(fields: dict[str, str], entry_id: str) -> None:
        handled[entry_id] += 1
        await asyncio.sleep(2.0)  # seven claim idle times

    # Two consumers of one group: each one's claimer takes entries idle past the claim time.
    await consumers(slow, consumer="c1")
    await consumers(slow, consumer="c2")
    ids = [await redis.xadd(STREAM, _item(f"slow-{i}")) for i in range(4)]  # type: ignore[arg-type]
    await eventually(lambda: _drained(redis), timeout_s=30, what="every slow entry acked")
    assert sorted(handled) == sorted(i.decode() for i in ids)
    assert set(handled.values()) == {1}, f"handled more than once: {handled}"
    assert await redis.xlen(DEAD) == 0


async def test_redeliveries_after_consumers_died_are_not_failures(
    redis: Redis, consumers: Callable[..., Awaitable[StreamSubscriptions]]
) -> None:
    entry_id = await redis.xadd(STREAM, _item("survivor"))  # type: ignore[arg-type]
    await redis.xgroup_create(STREAM, "g", id="0")
    # Delivered to consumers that died holding it, five times over: none of them failed it.
    await redis.xreadgroup("g", "dead-0", {STREAM: ">"})
    for n in range(1, 5):
        await redis.xclaim(STREAM, "g", f"dead-{n}", 0, [entry_id])
    handled: list[str] = []

    async def handle(fields: dict[str, str], entry_id: str) -> None:
        handled.append(entry_id)

    await consumers(handle, policy=ConsumerPolicy(max_records=8, claim_idle_ms=300, polling_interval_ms=50))
    await eventually(lambda: _drained(redis), timeout_s=10, what="the survivor acked")
    assert handled == [entry_id.decode()]
    assert await redis.xlen(DEAD) == 0


async def test_an_unreachable_dependency_never_dead_letters_an_entry(
    redis: Redis, consumers: Callable[..., Awaitable[StreamSubscriptions]]
) -> None:
    attempts: list[str] = []

    async def handle(fields: dict[str, str], entry_id: str) -> None:
        attempts.append(entry_id)
        if len(attempts) <= 6:
            raise redis_errors.ConnectionError("Qdrant and Redis are down today")

    await consumers(
        handle, policy=ConsumerPolicy(max_records=8, claim_idle_ms=200, max_attempts=2, polling_interval_ms=50)
    )
    await redis.xadd(STREAM, _item("patient"))  # type: ignore[arg-type]
    await eventually(lambda: _drained(redis), timeout_s=30, what="the entry acked once the outage passed")
    assert len(attempts) == 7
    assert await redis.xlen(DEAD) == 0


async def test_an_entry_failing_on_its_own_is_dead_lettered_after_max_attempts_with_the_last_error(
    redis: Redis, consumers: Callable[..., Awaitable[StreamSubscriptions]]
) -> None:
    attempts: list[str] = []

    async def handle(fields: dict[str, str], entry_id: str) -> None:
        attempts.append(entry_id)
        raise ValueError(f"cannot handle attempt {len(attempts)}")

    await consumers(
        handle, policy=ConsumerPolicy(max_records=8, claim_idle_ms=200, max_attempts=3, polling_interval_ms=50)
    )
    await redis.xadd(STREAM, _item("doomed"))  # type: ignore[arg-type]
    await eventually(lambda: _drained(redis), timeout_s=30, what="the failing entry settled")
    assert len(attempts) == 3
    [(_, dead)] = await stream_entries_async(redis, DEAD)
    assert "failed 3 attempts" in dead["dead_letter_reason"] and "cannot handle attempt 3" in dead["dead_letter_reason"]
    assert await redis.hlen(f"{STREAM}:g:failures") == 0, "the count goes with the entry"


@pytest.mark.parametrize("loss", ["group destroyed", "Redis emptied"])
async def test_consumption_resumes_after_the_group_is_lost(
    redis: Redis, consumers: Callable[..., Awaitable[StreamSubscriptions]], loss: str
) -> None:
    seen: list[str] = []

    async def handle(fields: dict[str, str], entry_id: str) -> None:
        seen.append(parse_item_event(fields, entry_id).item_id)

    subscriptions = await consumers(handle)
    await redis.xadd(STREAM, _item("before"))  # type: ignore[arg-type]
    await eventually(lambda: asyncio.sleep(0, seen == ["before"]), timeout_s=10, what="first entry")
    if loss == "group destroyed":
        await redis.xgroup_destroy(STREAM, "g")
    else:
        await redis.flushall()
    await redis.xadd(STREAM, _item("after"))  # type: ignore[arg-type]
    await eventually(lambda: asyncio.sleep(0, "after" in seen), timeout_s=20, what="an entry after the loss")
    assert subscriptions.healthy
    assert await _drained(redis)


async def test_a_consumer_that_cannot_resume_reports_itself_unhealthy(
    redis: Redis, consumers: Callable[..., Awaitable[StreamSubscriptions]]
) -> None:
    async def handle(fields: dict[str, str], entry_id: str) -> None:
        pass

    subscriptions = await consumers(handle)
    assert subscriptions.healthy
    await redis.delete(STREAM)
    await redis.set(STREAM, "a string: no group can be made on it")
    await eventually(lambda: asyncio.sleep(0, not subscriptions.healthy), timeout_s=20, what="unhealthy")
    await redis.delete(STREAM)
    await eventually(lambda: asyncio.sleep(0, subscriptions.healthy), timeout_s=20, what="healthy again")


async def test_a_consumer_stopping_cleanly_leaves_its_group(
    redis: Redis, consumers: Callable[..., Awaitable[StreamSubscriptions]]
) -> None:
    async def handle(fields: dict[str, str], entry_id: str) -> None:
        pass

    subscriptions = await consumers(handle, consumer="leaving")
    await redis.xadd(STREAM, _item("one"))  # type: ignore[arg-type]
    await eventually(lambda: _drained(redis), timeout_s=10, what="entry acked")
    assert [c["name"] for c in await redis.xinfo_consumers(STREAM, "g")] == [b"leaving"]
    await subscriptions.stop()
    assert await redis.xinfo_consumers(STREAM, "g") == []


async def test_a_dead_letter_and_its_ack_land_together(
    redis: Redis, consumers: Callable[..., Awaitable[StreamSubscriptions]], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The batched acks never reach Redis: a consumer killed right after its dead-letter write.
    monkeypatch.setattr(AckBatcher, "ack", lambda self, entry_id: None)

    async def handle(fields: dict[str, str], entry_id: str) -> None:
        parse_item_event(fields, entry_id)

    await consumers(handle)
    await redis.xadd(STREAM, {"event": "item.upserted", "data": "{not json"})
    await eventually(lambda: _drained(redis), timeout_s=10, what="the poison acked with its dead letter")
    assert await redis.xlen(DEAD) == 1


async def test_a_consumer_started_while_redis_is_down_waits_for_it_and_then_consumes(tmp_path: Path) -> None:
    server = RedisServer(tmp_path)  # not started yet: the process comes up before Redis does
    client: Redis = RedisClient.from_url(server.url)
    seen: list[str] = []

    async def handle(fields: dict[str, str], entry_id: str) -> None:
        seen.append(entry_id)

    subscriptions = StreamSubscriptions(server.url, client, grace_s=5, supervise_interval_s=0.2)
    subscriptions.consume(stream=STREAM, group="g", consumer="c1", handler=handle, policy=FAST)
    starting = asyncio.create_task(subscriptions.start())
    try:
        await asyncio.sleep(0.5)
        assert not starting.done(), "start gave up (or went on) with Redis away"
        await asyncio.to_thread(server.start)
        await asyncio.wait_for(starting, timeout=60)
        await client.xadd(STREAM, _item("after-the-outage"))
        await eventually(lambda: _drained(client), timeout_s=30, what="the entry consumed once Redis came")
        assert len(seen) == 1
    finally:
        if starting.done() and not starting.exception():
            await subscriptions.stop()
        else:
            starting.cancel()
        await client.aclose()
        server.stop()
