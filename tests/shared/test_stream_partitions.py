"""Partitioned input streams: the partition function, the names, and publishers and services agreeing on both."""

from __future__ import annotations

import asyncio
import json
import uuid
import zlib
from collections import Counter
from pathlib import Path

import pytest
from pydantic import ValidationError
from redis import Redis
from redis.asyncio import Redis as AsyncRedis

from recsys.cli.publish import publish_file
from recsys.shared.settings import ConnectionSettings, StreamNames
from recsys.shared.stream_retention import RetentionPolicy
from recsys.shared.streams import ConsumerPolicy, StreamSubscriptions
from recsys_client import AsyncEventPublisher, EventPublisher
from recsys_client.events import partition_of, partition_stream, partition_streams, stream_for
from tests.support import stream_entries


def test_the_partition_of_a_key_is_crc32_of_its_utf8_bytes_modulo_the_partitions() -> None:
    # Known values, as any language's CRC-32 (IEEE) computes them: the README's example among them.
    assert zlib.crc32(b"u1") == 1112514422
    assert partition_of("u1", 4) == 2
    assert partition_of("u2", 4) == 0
    assert partition_of("m1", 4) == 3
    assert partition_of("item-42", 8) == 3355916728 % 8
    assert partition_of("é", 4) == zlib.crc32("é".encode()) % 4 == 2
    assert all(partition_of(f"user-{n}", 1) == 0 for n in range(100))


def test_keys_spread_evenly_over_the_partitions() -> None:
    counts = Counter(partition_of(f"user-{n}", 8) for n in range(8000))
    assert sorted(counts) == list(range(8))
    assert all(900 <= count <= 1100 for count in counts.values()), counts


def test_one_partition_keeps_todays_stream_names() -> None:
    names = ConnectionSettings().streams
    assert names.item_streams == [names.items] == ["recsys:items"]
    assert names.interaction_streams == [names.interactions] == ["recsys:interactions"]
    assert names.embeddings == "recsys:embeddings"
    assert StreamNames.dead_letter(names.interactions) == "recsys:interactions:dead-letter"
    assert stream_for("recsys:interactions", "u1", 1) == "recsys:interactions"
    assert RetentionPolicy.from_settings(ConnectionSettings()).max_entries_of == {"recsys:items": 500_000}


def test_partitions_are_hash_tagged_so_their_dead_letters_and_ledgers_share_their_slot() -> None:
    names = ConnectionSettings(stream_partitions=3).streams
    assert names.interaction_streams == [
        "{recsys:interactions:0}",
        "{recsys:interactions:1}",
        "{recsys:interactions:2}",
    ]
    assert names.item_streams == partition_streams("recsys:items", 3)
    assert partition_stream("recsys:items", 2, 3) == "{recsys:items:2}"
    assert StreamNames.dead_letter(names.item_streams[1]) == "{recsys:items:1}:dead-letter"
    # Not partitioned: embeddings keep their name, unless on a cluster where their dead letters need their slot.
    assert names.embeddings == "recsys:embeddings"
    assert ConnectionSettings(stream_partitions=3, redis_cluster=True).streams.embeddings == "{recsys:embeddings}"
    assert set(RetentionPolicy.from_settings(ConnectionSettings(stream_partitions=3)).max_entries_of) == set(
        names.item_streams
    )
    with pytest.raises(ValueError):
        partition_stream("recsys:items", 3, 3)


def test_a_cluster_needs_partitions_or_a_hash_tagged_prefix() -> None:
    with pytest.raises(ValidationError, match="RECSYS_STREAM_PARTITIONS"):
        ConnectionSettings(redis_cluster=True)
    ConnectionSettings(redis_cluster=True, stream_prefix="{recsys}")
    ConnectionSettings(redis_cluster=True, stream_partitions=2)


def test_the_publisher_sends_each_user_and_item_to_its_partition(redis_url: str) -> None:
    prefix = f"parts-{uuid.uuid4().hex[:6]}"
    names = StreamNames(prefix, 4)
    redis = Redis.from_url(redis_url)
    with EventPublisher.connect(redis_url, stream_prefix=prefix, partitions=4) as publisher:
        for n in range(40):
            publisher.record_interaction(f"e{n}", f"user-{n % 10}", "m1", "click")
        publisher.upsert_item("m1", "Alien")
        publisher.delete_item("m2")
    for partition, stream in enumerate(names.interaction_streams):
        users = {json.loads(fields["data"])["user_id"] for _, fields in stream_entries(redis, stream)}
        assert users == {f"user-{n}" for n in range(10) if partition_of(f"user-{n}", 4) == partition}
    assert sum(redis.xlen(stream) for stream in names.interaction_streams) == 40
    assert redis.xlen(stream_for(names.items, "m1", 4)) >= 1
    assert redis.xlen(stream_for(names.items, "m2", 4)) >= 1
    assert not redis.exists(names.interactions, names.items)


@pytest.mark.asyncio(loop_scope="session")
async def test_recsys_publish_uses_the_same_partitions_as_the_client(redis_url: str, tmp_path: Path) -> None:
    prefix = f"parts-{uuid.uuid4().hex[:6]}"
    lines = [f'{{"event_id":"e{n}","user_id":"user-{n % 7}","item_id":"m1","type":"view"}}' for n in range(21)]
    (tmp_path / "events.jsonl").write_text("\n".join(lines))
    settings = ConnectionSettings(redis_url=redis_url, stream_prefix=prefix, stream_partitions=3)
    published, problems = await publish_file(settings, "interactions", tmp_path / "events.jsonl")
    assert (published, problems) == (21, [])
    redis = Redis.from_url(redis_url)
    for n in range(7):
        stream = stream_for(f"{prefix}:interactions", f"user-{n}", 3)
        users = [json.loads(fields["data"])["user_id"] for _, fields in stream_entries(redis, stream)]
        assert users.count(f"user-{n}") == 3


@pytest.mark.asyncio(loop_scope="session")
async def test_one_group_reads_every_partition_each_in_its_order(redis_url: str) -> None:
    prefix = f"parts-{uuid.uuid4().hex[:6]}"
    names = StreamNames(prefix, 3)
    redis = AsyncRedis.from_url(redis_url)
    seen: dict[str, list[int]] = {}

    async def handle(fields: dict[str, str], entry_id: str) -> None:
        data = json.loads(fields["data"])
        seen.setdefault(data["user_id"], []).append(int(data["event_id"].rsplit("-", 1)[1]))

    # One entry at a time per partition: what a partition's order gives a handler, nothing else reorders.
    # No consumer dies here, so nothing may be claimed back: a short claim_idle_ms redelivered a handled
    # entry whose batched ack was still on its way when the machine was loaded (at-least-once, not a reorder).
    policy = ConsumerPolicy(max_records=4, claim_idle_ms=600_000, concurrency=1, polling_interval_ms=50)
    subscriptions = StreamSubscriptions(redis_url, redis, grace_s=1)
    consumers = subscriptions.consume_all(
        streams=names.interaction_streams, group="g", consumer="c1", handler=handle, policy=policy
    )
    assert [consumer.stream for consumer in consumers] == names.interaction_streams
    await subscriptions.start()
    try:
        async with AsyncEventPublisher.connect(redis_url, stream_prefix=prefix, partitions=3) as publisher:
            for n in range(30):
                for user in range(6):
                    await publisher.record_interaction(f"user-{user}-{n}", f"user-{user}", "m1", "view")
        deadline = asyncio.get_running_loop().time() + 20
        while sum(map(len, seen.values())) < 180:
            assert asyncio.get_running_loop().time() < deadline, seen
            await asyncio.sleep(0.05)
    finally:
        await subscriptions.stop()
        await redis.aclose()
    assert seen == {f"user-{user}": list(range(30)) for user in range(6)}
    assert {partition_of(f"user-{user}", 3) for user in range(6)} == {0, 1, 2}
