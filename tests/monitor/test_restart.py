"""The monitor's state survives a restart: windows, anomalies, history, and an open drift episode is not re-alerted."""

from __future__ import annotations

import numpy as np
from redis.asyncio import Redis

from recsys.monitor.app import MonitorService
from recsys.monitor.settings import MonitorSettings
from recsys.monitor.state_store import StateStore
from recsys.shared.client import MonitorClient
from recsys.shared.store import VectorStore
from tests.monitor.harness import CONTENT_DIMS, Catalog, alerts, gaussian, sizes_reach
from tests.support import eventually


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
