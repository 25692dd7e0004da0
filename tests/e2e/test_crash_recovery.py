"""An encoder killed with SIGKILL in the middle of ingestion loses nothing and duplicates nothing."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from redis import Redis

from recsys.shared.points import ITEMS
from recsys.shared.store import VectorStore
from tests.support import RedisServer, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="session")]

ITEM_COUNT = 1500
NOUNS = ["kettle", "tent", "novel", "keyboard", "jacket", "lamp", "guitar", "bicycle", "camera", "teapot"]
ADJECTIVES = ["red", "compact", "vintage", "waterproof", "quiet", "heavy", "folding", "smart", "handmade", "tiny"]


def _encoder(env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "recsys.cli.main", "run", "encoder"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


async def test_killed_consumer_restarts_and_every_item_lands_exactly_once(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    prefix = f"crash-{uuid.uuid4().hex[:6]}"
    items_stream, notices = f"{prefix}:items", f"{prefix}:embeddings"
    redis = Redis(port=redis_server.port)
    pipe = redis.pipeline(transaction=False)
    for i in range(ITEM_COUNT):
        title = f"{ADJECTIVES[i % 10]} {NOUNS[(i // 10) % 10]} model {i}"
        pipe.xadd(items_stream, {"event": "item.upserted", "data": json.dumps({"item_id": f"i{i}", "title": title})})
    pipe.execute()
    env = {
        **os.environ,
        "RECSYS_REDIS_URL": redis_server.url,
        "RECSYS_DATA_DIR": str(tmp_path),
        "RECSYS_STREAM_PREFIX": prefix,
        "RECSYS_ENCODER_HOST": "127.0.0.1",
        "RECSYS_ENCODER_PORT": "0",
        # The same consumer name after the restart: its own pending entries must still be recovered.
        "RECSYS_CONSUMER_NAME": "encoder-under-test",
        "RECSYS_CONSUMER_CLAIM_IDLE_MS": "1000",
        "RECSYS_ENCODER_METRICS_PORT": "0",
        "RECSYS_RECOMMENDER_METRICS_PORT": "0",
    }

    first = _encoder(env)
    try:
        wait_for(lambda: redis.xlen(notices) >= 100, 120, "first notices")
        first.send_signal(signal.SIGKILL)
        first.wait(10)
    finally:
        first.kill()
    group = next(g for g in redis.xinfo_groups(items_stream) if g["name"].decode().startswith("encoder"))["name"]
    stranded = redis.xpending(items_stream, group)["pending"]
    written_before_kill = redis.xlen(notices)
    assert stranded > 0, "the kill must land while entries are in flight"
    assert written_before_kill < ITEM_COUNT, "the kill must land before ingestion finished"

    second = _encoder(env)
    try:

        def drained() -> bool:
            info = next(g for g in redis.xinfo_groups(items_stream) if g["name"] == group)
            return info["lag"] == 0 and info["pending"] == 0

        wait_for(drained, 240, "every entry acked after the restart")
    finally:
        second.send_signal(signal.SIGTERM)
        second.wait(30)
    assert second.returncode == 0, "SIGTERM must stop the encoder cleanly"

    store = VectorStore.connect("", tmp_path)
    try:
        points, offset = [], None
        while True:
            page, offset = await store.client.scroll(ITEMS, limit=1000, offset=offset, with_vectors=["content"])
            points.extend(page)
            if offset is None:
                break
    finally:
        await store.close()
    item_ids = [p.payload["item_id"] for p in points]
    assert len(item_ids) == ITEM_COUNT and set(item_ids) == {f"i{i}" for i in range(ITEM_COUNT)}
    assert all(len(p.vector["content"]) == 384 for p in points)
    assert redis.xlen(f"{items_stream}:dead-letter") == 0
