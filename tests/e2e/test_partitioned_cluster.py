"""Partitioned interactions on a real Redis Cluster: a killed consumer loses and doubles nothing, keeps user order."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from qdrant_client import models

from recsys.encoder.text.catalog import new_item_payload
from recsys.shared.events import ItemUpserted
from recsys.shared.ids import point_id
from recsys.shared.points import CONTENT, ITEMS, USERS, UserField
from recsys.shared.settings import StreamNames
from recsys.shared.store import VectorStore
from recsys_client import EventPublisher
from recsys_client.events import partition_of
from tests.cluster import RedisClusterNodes
from tests.support import stream_entries, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="session")]

PARTITIONS = 4
# A cluster of its own: with this prefix the four partitions land on all three nodes (checked below).
PREFIX = "recsys"
GROUP = "encoder-interactions"
USER_COUNT = 60
EVENTS_PER_USER = 20
ITEM_IDS = [f"item-{n}" for n in range(40)]
T0 = 1_700_000_000.0


async def _catalog(data_dir: Path) -> None:
    """What a text role leaves behind: the collections, and items with (random) content vectors."""
    store = VectorStore.connect("", data_dir)
    try:
        await store.ensure_collections(384, 64)
        rng = np.random.default_rng(0)
        points = []
        for item_id in ITEM_IDS:
            vector = rng.standard_normal(384)
            payload = new_item_payload(ItemUpserted(item_id=item_id, title=item_id, version=1), time.time())
            points.append(
                models.PointStruct(
                    id=point_id(item_id), vector={CONTENT: (vector / np.linalg.norm(vector)).tolist()}, payload=payload
                )
            )
        await store.client.upsert(ITEMS, points)
    finally:
        await store.close()


def _interactions_role(env: dict[str, str], consumer: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "recsys.cli.main", "run", "encoder", "--role", "interactions"],
        env={**env, "RECSYS_CONSUMER_NAME": consumer},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


async def test_partitioned_interactions_on_a_cluster_survive_a_killed_consumer_exactly_once(tmp_path: Path) -> None:
    streams = StreamNames(PREFIX, PARTITIONS, cluster=True)
    with RedisClusterNodes(tmp_path / "cluster") as cluster:
        redis = cluster.client()
        assert sorted(streams.interaction_streams) == [f"{{recsys:interactions:{k}}}" for k in range(PARTITIONS)]
        assert len({cluster.node_of(stream) for stream in streams.interaction_streams}) == 3
        # Each partition's dead letters and failure ledger live in its slot (the dead-letter MULTI needs it).
        for stream in streams.interaction_streams:
            assert redis.keyslot(stream) == redis.keyslot(StreamNames.dead_letter(stream))
            assert redis.keyslot(stream) == redis.keyslot(f"{stream}:{GROUP}:failures")

        await _catalog(tmp_path / "data")
        env = {
            **os.environ,
            "RECSYS_REDIS_URL": cluster.url,
            "RECSYS_REDIS_CLUSTER": "true",
            "RECSYS_STREAM_PARTITIONS": str(PARTITIONS),
            "RECSYS_STREAM_PREFIX": PREFIX,
            "RECSYS_DATA_DIR": str(tmp_path / "data"),
            "RECSYS_ENCODER_HOST": "127.0.0.1",
            "RECSYS_ENCODER_PORT": "0",
            "RECSYS_ENCODER_METRICS_PORT": "-1",
            "RECSYS_RECOMMENDER_METRICS_PORT": "-1",
            "RECSYS_CONSUMER_CLAIM_IDLE_MS": "1000",
            # Nothing trimmed: the partitions are read back below to check where each user's entries went.
            "RECSYS_STREAM_RETENTION_INTERVAL_S": "3600",
            "RECSYS_BEHAVIOR_REFRESH_INTERACTIONS": "1000000",
            "RECSYS_LOG_LEVEL": "WARNING",
        }

        # One entry that can never be processed: its dead letter and its ack are one MULTI in its partition's slot.
        poison = streams.interaction_streams[1]
        redis.xadd(poison, {"event": "interaction", "data": "{not json"})
        total = USER_COUNT * EVENTS_PER_USER + 1

        first = _interactions_role(env, "first")
        try:
            # Published while the first consumer runs, user after user interleaved: every partition busy.
            publisher = EventPublisher.connect(cluster.url, stream_prefix=PREFIX, partitions=PARTITIONS, cluster=True)
            expected: dict[str, list[str]] = {f"user-{u}": [] for u in range(USER_COUNT)}
            for step in range(EVENTS_PER_USER):
                for number, (user, history) in enumerate(expected.items()):
                    item = ITEM_IDS[(number * 3 + step * 7) % len(ITEM_IDS)]
                    publisher.record_interaction(f"{user}-{step}", user, item, "click", ts=T0 + step)
                    history.append(item)
            publisher.close()

            def progress() -> tuple[int, int]:
                """Entries acked and entries pending, over every partition's group."""
                acked = pending = 0
                for stream in streams.interaction_streams:
                    for group in redis.xinfo_groups(stream):
                        if group["name"] == GROUP.encode():
                            pending += int(group["pending"])
                            acked += int(group["entries-read"] or 0) - int(group["pending"])
                return acked, pending

            def acked() -> int:
                return progress()[0]

            def mid_way() -> bool:
                done, in_flight = progress()
                return done >= total // 5 and in_flight > 0

            # Killed while entries are in flight: the second consumer must claim what the first held.
            wait_for(mid_way, 60, "a fifth of the interactions applied, more in flight")
            first.send_signal(signal.SIGKILL)
            first.wait(10)
        finally:
            first.kill()
        stranded_done, stranded = progress()
        assert stranded_done < total and stranded > 0, "the kill must land mid-way, with entries in flight"

        second = _interactions_role(env, "second")
        try:

            def drained() -> bool:
                return (
                    all(
                        group["lag"] == 0 and group["pending"] == 0
                        for stream in streams.interaction_streams
                        for group in redis.xinfo_groups(stream)
                        if group["name"] == GROUP.encode()
                    )
                    and acked() == total
                )

            wait_for(drained, 60, "every partition drained after the restart")
        finally:
            second.send_signal(signal.SIGTERM)
            second.wait(30)
        assert second.returncode == 0, "SIGTERM must stop the role cleanly"

        dead = stream_entries(redis, StreamNames.dead_letter(poison))  # type: ignore[arg-type]
        assert [fields["dead_letter_source_stream"] for _, fields in dead] == [poison]
        # Each user's entries sit in its partition alone, in the order they were published.
        for partition, stream in enumerate(streams.interaction_streams):
            if stream != poison:
                assert redis.xlen(StreamNames.dead_letter(stream)) == 0
            seen: dict[str, list[str]] = {}
            for _, fields in stream_entries(redis, stream):  # type: ignore[arg-type]
                if fields["data"] == "{not json":
                    continue
                data = json.loads(fields["data"])
                seen.setdefault(data["user_id"], []).append(data["item_id"])
            for user, items in seen.items():
                assert partition_of(user, PARTITIONS) == partition
                assert items == expected[user]
        redis.close()

    store = VectorStore.connect("", tmp_path / "data")
    try:
        users = await store.client.retrieve(USERS, [point_id(user) for user in expected], with_payload=True)
    finally:
        await store.close()
    assert len(users) == USER_COUNT
    for record in users:
        user = UserField.USER_ID.read(record.payload)
        # Applied exactly once: each of the user's events counted once, the history in publishing order.
        assert UserField.EVENT_COUNT.read(record.payload) == EVENTS_PER_USER
        history = [entry[0] for entry in UserField.HISTORY.read(record.payload)]
        assert history and history == expected[user][-len(history) :]
