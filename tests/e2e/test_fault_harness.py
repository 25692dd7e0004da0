"""The fault harness: ingestion on a loaded machine through kills, Redis restarts and an outage; Jepsen-style checks.

While a producer publishes 1,000 items and 5,000 interactions (with poison mixed in), the encoder
(both roles, one process, as `recsys run encoder`) is SIGKILLed at random moments and restarted,
Redis is restarted with its AOF, and Redis is cut off behind a TCP proxy for 10 s; a CPU burner runs
all along. Then: every item is present exactly once, every interaction is counted exactly once
(the event-id sets and counts of every user and item), nothing is pending or unread, the dead-letter
streams hold exactly the poison, deleted items stay deleted after their upserts are replayed, and the
dead consumers have left their groups. Finally Redis is restarted empty and ingestion resumes.

RECSYS_FAULT_ROUNDS=N runs N rounds (each on fresh streams and data) for the "N in a row" figure;
RECSYS_FAULT_SEED picks the random schedule (printed on failure).
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import shutil
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from redis import exceptions as redis_errors
from redis.asyncio import Redis as RedisClient

from recsys.shared.points import CONTENT, ITEMS, USERS, ItemField, UserField
from recsys.shared.store import VectorStore
from tests.e2e.chaos import CpuBurners, EncoderUnderTest, TcpProxy
from tests.support import RedisServer, free_port

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="session")]

ITEM_COUNT = 1000
USER_COUNT = 200
EVENTS_PER_USER = 25  # 5,000 interactions
DELETED_COUNT = 20
KINDS = ["view", "click", "add_to_cart", "purchase", "like"]  # every one counts on its item
# redis-py types every reply as a union of all it could be; the harness reads them as Redis sends them.
Redis = Any
ROUNDS = int(os.environ.get("RECSYS_FAULT_ROUNDS", "1"))


@dataclass
class Plan:
    """What the producer publishes, in order, and what the checks expect of it."""

    # (stream kind, fields, whether it is poison)
    entries: list[tuple[str, dict[str, Any], bool]] = field(default_factory=list)
    poison: dict[str, int] = field(default_factory=dict)  # stream kind -> how many poison entries
    events_of_user: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    events_of_item: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    live_items: set[str] = field(default_factory=set)
    deleted_items: set[str] = field(default_factory=set)


def _item(item_id: str, version: int) -> dict[str, Any]:
    data = {"item_id": item_id, "title": f"{item_id} — a sturdy thing, version {version}", "version": version}
    return {"event": "item.upserted", "data": json.dumps(data)}


def _poison(now: float) -> tuple[list[dict[Any, Any]], list[dict[Any, Any]]]:
    """Entries an outside producer may XADD that can never be processed, for each stream."""
    items: list[dict[Any, Any]] = [
        {"event": "item.upserted", "data": "{not json"},
        {"event": b"item.upserted", "data": b'{"item_id": "\xff\xfe", "title": "x"}'},  # not UTF-8
        {"event": "item.upserted", "data": json.dumps({"title": "no id"})},
        {"event": "item.renamed", "data": json.dumps({"item_id": "r"})},
        {"event": "item.upserted", "data": json.dumps({"item_id": "far", "title": "t", "ts": now + 1e9})},
        {"event": "item.upserted", "data": "x", **{f"f{n}": "y" for n in range(1000)}},
        {"event": "item.upserted", "data": json.dumps({"item_id": "big", "title": "t", "text": "z" * 600_000})},
    ]
    interactions: list[dict[Any, Any]] = [
        {"event": "interaction", "data": "[1, 2, 3]"},
        {"event": "interaction", "data": b"\xc3\x28 not utf-8"},
        {
            "event": "interaction",
            "data": json.dumps({"event_id": "p1", "user_id": "u", "item_id": "i", "type": "teleport"}),
        },
        {
            "event": "interaction",
            "data": json.dumps({"event_id": "p2", "user_id": "u", "item_id": "i", "type": "click", "ts": 1.79e12}),
        },
        {
            "event": "interaction",
            "data": json.dumps({"event_id": "p3", "user_id": "u", "item_id": "i", "type": "rate"}),
        },
    ]
    return items, interactions


def make_plan(rng: random.Random) -> Plan:
    plan = Plan()
    now = time.time()
    item_ids = [f"item-{n}" for n in range(ITEM_COUNT)]
    doomed = set(rng.sample(item_ids, DELETED_COUNT))
    plan.deleted_items, plan.live_items = doomed, set(item_ids) - doomed
    items: list[tuple[str, dict[str, Any], bool]] = [("items", _item(item_id, 1), False) for item_id in item_ids]
    rng.shuffle(items)
    # Deleted at version 2, then their version-1 upsert replayed: they must stay deleted.
    for item_id in sorted(doomed):
        deletion = {"event": "item.deleted", "data": json.dumps({"item_id": item_id, "version": 2})}
        items.append(("items", deletion, False))
    items += [("items", _item(item_id, 1), False) for item_id in sorted(doomed)]
    live = sorted(plan.live_items)
    interactions: list[tuple[str, dict[str, Any], bool]] = []
    for n in range(USER_COUNT * EVENTS_PER_USER):
        user, item = f"user-{n % USER_COUNT}", rng.choice(live)
        event_id = f"event-{n}"
        data = {
            "event_id": event_id,
            "user_id": user,
            "item_id": item,
            "type": rng.choice(KINDS),
            "ts": now - 3600 + n * 0.1,
        }
        interactions.append(("interactions", {"event": "interaction", "data": json.dumps(data)}, False))
        plan.events_of_user[user].add(event_id)
        plan.events_of_item[item].add(event_id)
    poison_items, poison_interactions = _poison(now)
    plan.poison = {"items": len(poison_items), "interactions": len(poison_interactions)}
    # Interleaved as the streams would see them: some interactions before their item's upsert.
    merged: list[tuple[str, dict[str, Any], bool]] = []
    queues = [items, interactions]
    while any(queues):
        queue = queues[0] if rng.random() < len(items) / (len(items) + len(interactions)) and queues[0] else queues[1]
        if not queue:
            queue = queues[0] or queues[1]
        merged.append(queue.pop(0))
    for entry in [("items", p, True) for p in poison_items] + [("interactions", p, True) for p in poison_interactions]:
        merged.insert(rng.randrange(len(merged)), entry)
    plan.entries = merged
    return plan


async def _xadd_until_it_lands(redis: Redis, stream: str, fields: dict[str, Any]) -> bytes:
    """A producer's XADD: retried while Redis is restarting."""
    while True:
        try:
            entry_id: bytes = await redis.xadd(stream, fields)
            return entry_id
        except (redis_errors.ConnectionError, redis_errors.BusyLoadingError, redis_errors.TimeoutError):
            await asyncio.sleep(0.2)


async def _wait(check: Any, timeout_s: float, what: str, encoder: EncoderUnderTest) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            if await check():
                return
        except (redis_errors.ConnectionError, redis_errors.BusyLoadingError):
            pass
        assert encoder.process is not None and encoder.process.poll() is None, (
            f"the encoder exited while waiting for {what}:\n{encoder.log_tail()}"
        )
        assert time.monotonic() < deadline, f"{what} not reached within {timeout_s:.0f} s:\n{encoder.log_tail()}"
        await asyncio.sleep(0.2)


async def _group(redis: Redis, stream: str, group: str) -> dict[Any, Any]:
    for info in await redis.xinfo_groups(stream):
        if info["name"] == group.encode():
            return info  # type: ignore[no-any-return]
    return {}


async def _drained(redis: Redis, stream: str, group: str) -> bool:
    info = await _group(redis, stream, group)
    return bool(info) and info["lag"] == 0 and int(info["pending"]) == 0


async def _serving(port: int) -> bool:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        try:
            answer = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=2)
        except grpc.aio.AioRpcError:
            return False
    return answer.status == health_pb2.HealthCheckResponse.SERVING


async def _points(store: VectorStore, collection: str) -> list[Any]:
    points, offset = [], None
    while True:
        page, offset = await store.client.scroll(
            collection,
            limit=1000,
            offset=offset,
            with_payload=True,
            with_vectors=[CONTENT] if collection == ITEMS else False,
        )
        points.extend(page)
        if offset is None:
            return points


@pytest.mark.parametrize("round_", range(ROUNDS))
async def test_ingestion_survives_kills_restarts_and_an_outage_and_counts_everything_once(
    tmp_path: Path, round_: int
) -> None:
    seed = int(os.environ.get("RECSYS_FAULT_SEED", random.randrange(1 << 30))) + round_
    rng = random.Random(seed)
    plan = make_plan(rng)
    (tmp_path / "redis").mkdir()
    redis_server = RedisServer(tmp_path / "redis")
    redis_server.start()
    proxy = TcpProxy(redis_server.port)
    await proxy.start()
    redis: Redis = RedisClient.from_url(redis_server.url)
    burners = CpuBurners(1)
    prefix = f"fault-{uuid.uuid4().hex[:6]}"
    port = free_port()
    streams = {"items": f"{prefix}:items", "interactions": f"{prefix}:interactions"}
    groups = {"items": "encoder-items", "interactions": "encoder-interactions"}
    encoder = EncoderUnderTest(
        {
            **os.environ,
            "RECSYS_REDIS_URL": proxy.url,
            "RECSYS_DATA_DIR": str(tmp_path / "data"),
            "RECSYS_STREAM_PREFIX": prefix,
            "RECSYS_ENCODER_HOST": "127.0.0.1",
            "RECSYS_ENCODER_PORT": str(port),
            "RECSYS_ENCODER_METRICS_PORT": "-1",
            "RECSYS_RECOMMENDER_METRICS_PORT": "-1",
            "RECSYS_CONSUMER_CLAIM_IDLE_MS": "2000",
            "RECSYS_STREAM_RETENTION_INTERVAL_S": "1",
            "RECSYS_CONSUMER_EXPIRY_S": "5",
            "RECSYS_HEALTH_INTERVAL_S": "0.5",
            "RECSYS_BEHAVIOR_REFRESH_INTERVAL_S": "20",
        },
        tmp_path,
    )
    poison_ids: dict[str, list[bytes]] = {"items": [], "interactions": []}
    burners.start()
    try:
        encoder.start()
        await _wait(lambda: _serving(port), 600, "the encoder SERVING", encoder)

        async def produce() -> None:
            for n, (kind, fields, poison) in enumerate(plan.entries):
                entry_id = await _xadd_until_it_lands(redis, streams[kind], fields)
                if poison:
                    poison_ids[kind].append(entry_id)
                if n % 50 == 0:
                    await asyncio.sleep(0.2)  # a steady stream, not one burst

        async def chaos() -> None:
            steps = ["kill"] * 5 + ["restart redis", "cut redis"]
            rng.shuffle(steps)
            for step in steps:
                await asyncio.sleep(rng.uniform(1.0, 6.0))
                if step == "kill":
                    encoder.kill()
                    encoder.start()
                elif step == "restart redis":
                    redis_server.stop()  # SIGTERM: the AOF is flushed, then the same data comes back
                    await asyncio.sleep(1.0)
                    redis_server.start()
                else:
                    await proxy.cut()
                    await asyncio.sleep(10.0)
                    await proxy.restore()

        await asyncio.gather(produce(), chaos())
        assert encoder.kills == 5
        for kind in ("items", "interactions"):
            await _wait(lambda k=kind: _drained(redis, streams[k], groups[k]), 900, f"{kind} drained", encoder)  # type: ignore[misc]

        # Nothing but the poison was dead-lettered, and all of it was.
        for kind in ("items", "interactions"):
            assert len(poison_ids[kind]) == plan.poison[kind]
            dead = await redis.xrange(f"{streams[kind]}:dead-letter")
            unexpected = [
                (f[b"dead_letter_source_id"], f[b"dead_letter_reason"])
                for _, f in dead
                if f[b"dead_letter_source_id"] not in poison_ids[kind]
            ]
            assert unexpected == [], f"good {kind} dead-lettered (seed {seed})"
            sources = sorted(f[b"dead_letter_source_id"] for _, f in dead)
            assert sources == sorted(poison_ids[kind]), f"each poison {kind} entry once (seed {seed})"
        # Dead consumers left their groups; everything acknowledged was trimmed.

        async def tidy() -> bool:
            for kind in ("items", "interactions"):
                consumers = await redis.xinfo_consumers(streams[kind], groups[kind])
                if len(consumers) > 1 or int(await redis.xlen(streams[kind])) > 0:
                    return False
            return True

        await _wait(tidy, 120, "dead consumers removed and acknowledged entries trimmed", encoder)
        # Every item stored was announced (at least once), whatever happened between its write and its notice.
        announced = {
            json.loads(fields[b"data"])["subject_id"]
            for _, fields in await redis.xrange(f"{prefix}:embeddings")
            if fields[b"event"] == b"vector.updated"
        }
        assert plan.live_items <= announced, f"stored without a notice: {sorted(plan.live_items - announced)[:5]}"

        # Redis restarted empty: the groups are re-created and what is published next is ingested.
        redis_server.stop()
        shutil.rmtree(tmp_path / "redis")
        (tmp_path / "redis").mkdir()
        redis_server.start()
        after = [f"late-{n}" for n in range(10)]
        for item_id in after:
            await _xadd_until_it_lands(redis, streams["items"], _item(item_id, 1))
            plan.live_items.add(item_id)
        late_user_events = {f"late-event-{n}" for n in range(10)}
        for n, event_id in enumerate(sorted(late_user_events)):
            data = {"event_id": event_id, "user_id": "late-user", "item_id": after[n], "type": "like"}
            await _xadd_until_it_lands(
                redis, streams["interactions"], {"event": "interaction", "data": json.dumps(data)}
            )
            plan.events_of_item[after[n]].add(event_id)
        plan.events_of_user["late-user"] = late_user_events
        for kind in ("items", "interactions"):
            await _wait(
                lambda k=kind: _drained(redis, streams[k], groups[k]), 300, f"{kind} after Redis emptied", encoder
            )  # type: ignore[misc]
        await _wait(lambda: _serving(port), 60, "liveness after Redis emptied", encoder)
    finally:
        burners.stop()
        exit_code = encoder.stop() if encoder.process is not None else 0
        await proxy.stop()
        await redis.aclose()
        redis_server.stop()
    assert exit_code == 0, f"SIGTERM must stop the encoder cleanly (seed {seed}):\n{encoder.log_tail()}"

    store = VectorStore.connect("", tmp_path / "data")
    try:
        items, users = await _points(store, ITEMS), await _points(store, USERS)
    finally:
        await store.close()
    by_id = {ItemField.ITEM_ID.read(p.payload): p for p in items}
    assert len(by_id) == len(items), "one point per item"
    catalog = {item_id for item_id, p in by_id.items() if ItemField.IN_CATALOG.read(p.payload)}
    assert catalog == plan.live_items, f"seed {seed}"
    assert all(CONTENT in (by_id[i].vector or {}) for i in catalog)
    for item_id in plan.deleted_items:
        tombstone = by_id[item_id]
        assert ItemField.DELETED_AT.read(tombstone.payload) is not None and not tombstone.vector, item_id
    # Every interaction counted once: each user's and each item's applied event ids are exactly its events.
    applied = {UserField.USER_ID.read(p.payload): p.payload for p in users}
    assert set(applied) == set(plan.events_of_user)
    for user, events in plan.events_of_user.items():
        assert set(UserField.RECENT_EVENT_IDS.read(applied[user])) == events, user
        assert UserField.EVENT_COUNT.read(applied[user]) == len(events), user
    counts = Counter({i: ItemField.INTERACTION_COUNT.read(by_id[i].payload) for i in plan.events_of_item})
    assert counts == Counter({i: len(e) for i, e in plan.events_of_item.items()}), f"seed {seed}"
    for item_id, events in plan.events_of_item.items():
        assert set(ItemField.RECENT_EVENT_IDS.read(by_id[item_id].payload)) == events, item_id
