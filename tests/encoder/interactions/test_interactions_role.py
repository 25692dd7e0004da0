"""The interactions role in a process of its own, as deployed: it applies interactions and never loads torch."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import grpc
import numpy as np
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from qdrant_client import models
from redis import Redis

from recsys.encoder.text.catalog import new_item_payload
from recsys.shared.events import EmbeddingNotice, Interaction, ItemUpserted, to_fields
from recsys.shared.ids import point_id
from recsys.shared.points import BEHAVIOR, CONTENT, ITEMS, TASTE, USERS, ItemField, UserField
from recsys.shared.store import VectorStore
from tests.support import RedisServer, free_port, stream_entries, wait_for

pytestmark = pytest.mark.asyncio(loop_scope="session")

# Runs the real command line; at exit (after SIGTERM stopped the service) it writes down which of the
# model's libraries the process ever imported.
HARNESS = """
import atexit, json, os, sys
watched = ("torch", "sentence_transformers", "transformers", "tokenizers")
def record():
    with open(os.environ["MODULES_REPORT"], "w") as report:
        json.dump({name: name in sys.modules for name in watched}, report)
atexit.register(record)
from recsys.cli.main import main
main(["run", "encoder", "--role", "interactions"])
"""

ITEM_IDS = ["tent", "stove", "novel"]


async def _catalog_written_by_a_text_role(data_dir: Path) -> None:
    """What the text role leaves behind: the collections, and items with content vectors."""
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


def _serving(port: int) -> bool:
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        try:
            answer = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=""), timeout=2)
        except grpc.RpcError:
            return False
    return answer.status == health_pb2.HealthCheckResponse.SERVING


async def test_interactions_role_applies_interactions_and_refreshes_without_loading_torch(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    await _catalog_written_by_a_text_role(tmp_path)
    prefix = f"role-{uuid.uuid4().hex[:6]}"
    port = free_port()
    report = tmp_path / "modules.json"
    env = {
        **os.environ,
        "RECSYS_REDIS_URL": redis_server.url,
        "RECSYS_DATA_DIR": str(tmp_path),
        "RECSYS_STREAM_PREFIX": prefix,
        "RECSYS_ENCODER_HOST": "127.0.0.1",
        "RECSYS_ENCODER_PORT": str(port),
        "RECSYS_ENCODER_METRICS_PORT": "0",
        "RECSYS_RECOMMENDER_METRICS_PORT": "0",
        # A behavior refresh after these few interactions: the refresh must not load torch either.
        "RECSYS_BEHAVIOR_REFRESH_INTERACTIONS": "6",
        "MODULES_REPORT": str(report),
    }
    process = subprocess.Popen(
        [sys.executable, "-c", HARNESS], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    redis = Redis(port=redis_server.port)
    try:
        wait_for(lambda: process.poll() is None and _serving(port), 120, "the interactions role SERVING")
        events = [
            Interaction(event_id=f"e{n}", user_id=user, item_id=item, type=kind, ts=1_700_000_000 + n)
            for n, (user, item, kind) in enumerate(
                [
                    ("ann", "tent", "purchase"),
                    ("ann", "stove", "click"),
                    ("bob", "tent", "view"),
                    ("bob", "stove", "like"),
                    ("cat", "novel", "purchase"),
                    ("cat", "tent", "view"),
                ]
            )
        ]
        for event in events:
            redis.xadd(f"{prefix}:interactions", to_fields(event))  # type: ignore[arg-type]

        def drained() -> bool:
            groups = redis.xinfo_groups(f"{prefix}:interactions")
            return any(g["name"] == b"encoder-interactions" and g["lag"] == 0 and g["pending"] == 0 for g in groups)

        def refreshed() -> bool:
            notices = [EmbeddingNotice.from_fields(f) for _, f in stream_entries(redis, f"{prefix}:embeddings")]
            return any(n.collection == "items" and n.vector == BEHAVIOR for n in notices)

        wait_for(drained, 120, "every interaction applied and acked")
        wait_for(refreshed, 120, "a behavior refresh")
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=60)
    assert process.returncode == 0, stderr.decode(errors="replace")[-2000:]

    loaded = json.loads(report.read_text())
    assert loaded == {"torch": False, "sentence_transformers": False, "transformers": False, "tokenizers": False}

    store = VectorStore.connect("", tmp_path)
    try:
        users = await store.client.retrieve(USERS, [point_id(u) for u in ("ann", "bob", "cat")], with_vectors=True)
        items = await store.client.retrieve(ITEMS, [point_id(i) for i in ITEM_IDS], with_vectors=True)
    finally:
        await store.close()
    assert sorted(UserField.USER_ID.read(u.payload) for u in users) == ["ann", "bob", "cat"]
    assert all(TASTE in (u.vector or {}) for u in users), "taste moves toward the items' content vectors"
    assert sum(UserField.EVENT_COUNT.read(u.payload) for u in users) == len(events)
    assert all(ItemField.BEHAVIOR_VERSION.read(i.payload) is not None for i in items)
    assert all(BEHAVIOR in (i.vector or {}) for i in items)
