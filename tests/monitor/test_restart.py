"""The monitor's state survives a restart: windows, anomalies, history, and an open drift episode is not re-alerted."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import grpc
import numpy as np
from redis.asyncio import Redis

from recsys.monitor.app import MonitorService
from recsys.monitor.settings import MonitorSettings
from recsys.monitor.state_store import StateStore
from recsys.shared.store import VectorStore
from recsys_client.aio import MonitorClient
from tests.monitor.harness import CONTENT_DIMS, Catalog, alerts, gaussian, sizes_reach
from tests.support import RedisServer, eventually, free_port


async def test_a_restarted_monitor_keeps_its_windows_anomalies_history_and_alerts(
    monitor_settings: MonitorSettings, store: VectorStore, redis: Redis, catalog: Catalog
) -> None:
    rng = np.random.default_rng(0)
    first = MonitorService(monitor_settings, store, redis)
    await first.start()
    try:
        async with MonitorClient(f"127.0.0.1:{first.port}") as client:
            await catalog.put(gaussian(rng, 40, "base-"))
            await sizes_reach(client, 40, 40)
            await catalog.put(gaussian(rng, 40, "shifted-", shift=0.5) | {"zero": np.zeros(CONTENT_DIMS)})

            async def drift_alerted() -> bool:
                return len(await alerts(redis, "drift.detected")) == 1

            await eventually(drift_alerted, timeout_s=20, what="a drift alert")
            before = await client.drift_report("items.content")
            anomalies_before = await client.anomalies()
    finally:
        await first.stop()
    history_before = first.history("items.content")

    quick = MonitorService(monitor_settings, store, redis)
    await quick.start()
    await quick.stop()  # stopped before its first evaluation: the saved reports must survive it
    saved = StateStore(monitor_settings.state_dir).load_document()
    assert saved is not None and saved["reports"]["items.content"]["mmd2"] == before.mmd2

    second = MonitorService(monitor_settings, store, redis)
    await second.start()
    try:
        async with MonitorClient(f"127.0.0.1:{second.port}") as client:
            after = await client.drift_report("items.content")
            anomalies_after = await client.anomalies()
            for _ in range(3):
                await second.evaluate()
    finally:
        await second.stop()

    # No notice was read again (all were acked): everything below came from the saved state.
    assert (after.reference_size, after.current_size) == (before.reference_size, before.current_size) == (40, 40)
    assert after.drifted and after.mmd2 == before.mmd2
    assert [(a.kind, a.subject) for a in anomalies_after] == [(a.kind, a.subject) for a in anomalies_before]
    assert ("degenerate_vector", "zero") in [(a.kind, a.subject) for a in anomalies_after]
    assert second.history("items.content")[: len(history_before)] == history_before
    assert len(await alerts(redis, "drift.detected")) == 1  # the episode was still open: no second alert


async def test_state_is_saved_periodically_while_running(
    monitor_settings: MonitorSettings, store: VectorStore, redis: Redis, catalog: Catalog
) -> None:
    settings = monitor_settings.model_copy(update={"state_interval_s": 0.1})
    service = MonitorService(settings, store, redis)
    await service.start()
    try:
        await catalog.put(gaussian(np.random.default_rng(1), 7, "item-"))
        saved = StateStore(settings.state_dir)

        async def on_disk() -> bool:
            stored = saved.load_space("items.content")
            return stored is not None and len(stored[1]["current_subjects"]) == 7

        await eventually(on_disk, timeout_s=15, what="the windows saved while running")
    finally:
        await service.stop()


async def test_a_corrupt_state_file_starts_the_space_empty(
    monitor_settings: MonitorSettings, store: VectorStore, redis: Redis
) -> None:
    state = StateStore(monitor_settings.state_dir)
    state.folder.mkdir(parents=True)
    state.space_path("items.content").write_bytes(b"garbage")
    service = MonitorService(monitor_settings, store, redis)
    await service.start()
    try:
        report = await service.drift_report("items.content")
    finally:
        await service.stop()

    assert (report.reference_size, report.current_size) == (0, 0)


async def test_a_monitor_killed_between_two_saves_loses_no_notice(redis_server: RedisServer, tmp_path: Path) -> None:
    prefix = f"kill-{uuid.uuid4().hex[:6]}"
    store = VectorStore.connect("", tmp_path)
    try:
        await store.ensure_collections(CONTENT_DIMS, 64)
        redis = Redis.from_url(redis_server.url)
        await Catalog(store, redis, f"{prefix}:embeddings").put(gaussian(np.random.default_rng(3), 40, "item-"))
        newest: Any = await redis.xrevrange(f"{prefix}:embeddings", count=1)
        last_notice = newest[0][0]
    finally:
        await store.close()
    port = free_port()
    env = {
        **os.environ,
        "RECSYS_REDIS_URL": redis_server.url,
        "RECSYS_DATA_DIR": str(tmp_path),
        "RECSYS_STREAM_PREFIX": prefix,
        "RECSYS_MONITOR_HOST": "127.0.0.1",
        "RECSYS_MONITOR_PORT": str(port),
        "RECSYS_METRICS_PORT": "-1",
        "RECSYS_REFERENCE_SIZE": "40",
        "RECSYS_CURRENT_SIZE": "40",
        "RECSYS_MIN_WINDOW": "30",
        "RECSYS_CONSUMER_CLAIM_IDLE_MS": "500",
        # No save between the notices and the kill: what the monitor learned lives in its memory only.
        "RECSYS_STATE_INTERVAL_S": "3600",
    }

    def monitor() -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [sys.executable, "-m", "recsys.cli.main", "run", "monitor"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    async def windows_full() -> bool:
        try:
            async with MonitorClient(f"127.0.0.1:{port}") as client:
                report = await client.drift_report("items.content")
        except grpc.aio.AioRpcError:
            return False
        return report.reference_size == 40

    first = monitor()
    try:
        await eventually(windows_full, timeout_s=120, what="all 40 notices learned")
        groups = {g["name"]: g for g in await redis.xinfo_groups(f"{prefix}:embeddings")}
        assert groups[b"monitor"]["last-delivered-id"] == last_notice
        first.send_signal(signal.SIGKILL)
        first.wait(10)
    finally:
        first.kill()
    second = monitor()
    try:
        await eventually(windows_full, timeout_s=120, what="the 40 notices learned again after the kill")
    finally:
        second.send_signal(signal.SIGTERM)
        second.wait(60)
        await redis.aclose()
    assert second.returncode == 0


async def test_bot_and_spike_memory_survives_a_restart(
    monitor_settings: MonitorSettings, store: VectorStore, redis: Redis
) -> None:
    stream = monitor_settings.streams.interactions
    start = time.time() - 100

    async def clicks(first: int, last: int) -> None:
        for n in range(first, last):
            data = {"event_id": f"b{n}", "user_id": "bot", "item_id": f"i{n % 3}", "type": "click", "ts": start + n}
            await redis.xadd(stream, {"event": "interaction", "data": json.dumps(data)})

    first = MonitorService(monitor_settings, store, redis)
    await first.start()
    try:
        await clicks(0, 25)  # 25 events in 25 s: below the burst threshold of 30 in 60 s

        async def read_all() -> bool:
            groups = {g["name"]: g for g in await redis.xinfo_groups(stream)}
            group = groups.get(monitor_settings.monitor_interactions_group.encode())
            return group is not None and group["lag"] == 0

        await eventually(read_all, timeout_s=20, what="the first 25 events read")
    finally:
        await first.stop()

    second = MonitorService(monitor_settings, store, redis)
    await second.start()
    try:
        await clicks(25, 31)

        async def bot_found() -> bool:
            return any(a.kind.value == "bot_like_user" and a.subject == "bot" for a in second.anomalies())

        await eventually(bot_found, timeout_s=20, what="the burst seen across the restart")
    finally:
        await second.stop()
