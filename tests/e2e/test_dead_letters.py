"""Malformed events published with redis-cli go to the dead-letter stream with a reason; the consumer carries on."""

from __future__ import annotations

import json
import time

import pytest

from recsys.cli.runner import RunningSystem
from recsys.shared.ids import point_id
from recsys.shared.points import ITEMS, USERS, UserField
from recsys.shared.settings import StreamNames
from tests.support import RedisServer, eventually, redis_cli

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="session")]


async def _dead_letters(system: RunningSystem, stream: str) -> dict[str, str]:
    """Source entry id → reason."""
    entries = await system.redis.xrange(StreamNames.dead_letter(stream))
    return {f[b"dead_letter_source_id"].decode(): f[b"dead_letter_reason"].decode() for _, f in entries}


async def test_malformed_items_are_dead_lettered_and_the_next_good_one_is_processed(
    system: RunningSystem, redis_server: RedisServer
) -> None:
    stream = system.settings.streams.items
    bad = {
        "not JSON": redis_cli(redis_server, "XADD", stream, "*", "event", "item.upserted", "data", "{not json"),
        "missing": redis_cli(redis_server, "XADD", stream, "*", "event", "item.upserted", "data", '{"title":"x"}'),
        "wrong type": redis_cli(
            redis_server,
            "XADD",
            stream,
            "*",
            "event",
            "item.upserted",
            "data",
            '{"item_id":"w","title":"x","version":"v2"}',
        ),
        "unknown type": redis_cli(
            redis_server, "XADD", stream, "*", "event", "item.renamed", "data", '{"item_id":"u"}'
        ),
        # 1 MB of text: too long for one argument, so redis-cli reads the last one from stdin (-x).
        "huge": redis_cli(
            redis_server,
            "-x",
            "XADD",
            stream,
            "*",
            "event",
            "item.upserted",
            "data",
            stdin=json.dumps({"item_id": "huge", "title": "big", "text": "x" * 1_048_576}).encode(),
        ),
    }
    redis_cli(
        redis_server,
        "XADD",
        stream,
        "*",
        "event",
        "item.upserted",
        "data",
        json.dumps({"item_id": "after-bad", "title": "Kayak paddle"}),
    )

    async def all_dead_lettered() -> bool:
        return set(bad.values()) <= set(await _dead_letters(system, stream))

    await eventually(all_dead_lettered, timeout_s=30, what="dead letters")
    reasons = await _dead_letters(system, stream)
    assert "not JSON" in reasons[bad["not JSON"]]
    assert "item_id" in reasons[bad["missing"]] and "Field required" in reasons[bad["missing"]]
    assert "version" in reasons[bad["wrong type"]]
    assert "unknown event type 'item.renamed'" in reasons[bad["unknown type"]]
    assert "bytes; at most" in reasons[bad["huge"]]  # refused by its size, before its JSON is parsed

    async def good_one_stored() -> bool:
        return bool(await system.store.client.retrieve(ITEMS, [point_id("after-bad")]))

    await eventually(good_one_stored, timeout_s=30, what="the good item after the bad ones")


async def test_malformed_interactions_are_dead_lettered(system: RunningSystem, redis_server: RedisServer) -> None:
    stream = system.settings.streams.interactions
    bad_type = redis_cli(
        redis_server,
        "XADD",
        stream,
        "*",
        "event",
        "interaction",
        "data",
        '{"event_id":"x1","user_id":"u","item_id":"i","type":"teleport"}',
    )
    no_user = redis_cli(
        redis_server,
        "XADD",
        stream,
        "*",
        "event",
        "interaction",
        "data",
        '{"event_id":"x2","item_id":"i","type":"click"}',
    )
    redis_cli(
        redis_server,
        "XADD",
        stream,
        "*",
        "event",
        "interaction",
        "data",
        '{"event_id":"x3","user_id":"after-bad-user","item_id":"i","type":"click"}',
    )

    async def handled() -> bool:
        reasons = await _dead_letters(system, stream)
        users = await system.store.client.retrieve(USERS, [point_id("after-bad-user")])
        return {bad_type, no_user} <= set(reasons) and bool(users)

    await eventually(handled, timeout_s=30, what="dead letters and the good interaction")
    reasons = await _dead_letters(system, stream)
    assert "type" in reasons[bad_type]
    assert "user_id" in reasons[no_user]


@pytest.mark.parametrize(
    ("ts", "reason"),
    [
        ("1e18", "years ahead of now"),
        ("1.79e12", "this looks like milliseconds"),
        ("1e300", "years ahead of now"),
        ('"9999-12-31T00:00:00"', "years ahead of now"),
    ],
)
async def test_an_interaction_from_the_far_future_is_dead_lettered_and_its_user_keeps_moving(
    system: RunningSystem, redis_server: RedisServer, ts: str, reason: str
) -> None:
    stream = system.settings.streams.interactions
    user = f"time-traveller-{abs(hash(ts))}"

    def interaction(event_id: str, item: str, when: str) -> str:
        data = f'{{"event_id":"{event_id}","user_id":"{user}","item_id":"{item}","type":"purchase","ts":{when}}}'
        return redis_cli(redis_server, "XADD", stream, "*", "event", "interaction", "data", data)

    future = interaction(f"{user}-future", "p1", ts)
    now = time.time()
    interaction(f"{user}-1", "p1", f"{now - 60}")
    interaction(f"{user}-2", "p2", f"{now - 30}")

    async def settled() -> bool:
        users = await system.store.client.retrieve(USERS, [point_id(user)])
        return (
            future in await _dead_letters(system, stream)
            and bool(users)
            and (UserField.EVENT_COUNT.read(users[0].payload) == 2)
        )

    await eventually(settled, timeout_s=30, what="the far-future event dead-lettered, the later ones applied")
    assert reason in (await _dead_letters(system, stream))[future]
    [stored] = await system.store.client.retrieve(USERS, [point_id(user)])
    assert UserField.LAST_EVENT_TS.read(stored.payload) <= time.time()
