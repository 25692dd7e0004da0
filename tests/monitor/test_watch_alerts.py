"""WatchAlerts: alerts stream to gRPC clients as they are published, resumable, filtered, ended on shutdown."""

from __future__ import annotations

import asyncio
import json

import grpc
import numpy as np
import pytest
from redis.asyncio import Redis

from recsys.monitor.app import MonitorService
from recsys.monitor.settings import MonitorSettings
from recsys.shared.store import VectorStore
from recsys_client.aio import MonitorClient
from recsys_client.api import monitor_pb2
from tests.monitor.harness import CONTENT_DIMS, Catalog
from tests.support import eventually


async def next_alerts(stream: object, count: int) -> list[monitor_pb2.Alert]:
    received: list[monitor_pb2.Alert] = []
    async for response in stream:  # type: ignore[attr-defined]
        received.append(response.alert)
        if len(received) == count:
            break
    return received


async def test_new_alerts_arrive_on_an_open_watch_with_their_figures(client: MonitorClient, catalog: Catalog) -> None:
    stream = client.watch_alerts()
    await asyncio.sleep(0.3)  # the watch is open before anything is published
    await catalog.put({"zero": np.zeros(CONTENT_DIMS)})

    (alert,) = await asyncio.wait_for(next_alerts(stream, 1), timeout=15)
    stream.cancel()

    assert (alert.event, alert.kind, alert.subject, alert.space) == (
        "anomaly.detected",
        "degenerate_vector",
        "zero",
        "items.content",
    )
    assert alert.reason == "zero vector"
    assert set(alert.statistics) == {"score", "threshold"}
    assert json.loads(alert.data_json)["subject"] == "zero"


async def test_a_watch_resumes_after_the_last_alert_it_saw(client: MonitorClient, catalog: Catalog) -> None:
    await catalog.put({"zero-a": np.zeros(CONTENT_DIMS)})
    await catalog.put({"zero-b": np.zeros(CONTENT_DIMS)})

    from_start = client.watch_alerts(after_id="0")
    first, second = await asyncio.wait_for(next_alerts(from_start, 2), timeout=15)
    from_start.cancel()
    resumed = client.watch_alerts(after_id=first.id)
    (again,) = await asyncio.wait_for(next_alerts(resumed, 1), timeout=15)
    resumed.cancel()

    assert [first.subject, second.subject] == ["zero-a", "zero-b"]
    assert again.id == second.id


async def test_a_filtered_watch_skips_other_alerts(client: MonitorClient, catalog: Catalog) -> None:
    await catalog.put({"zero": np.zeros(CONTENT_DIMS)})
    await catalog.put({"taste-zero": np.zeros(CONTENT_DIMS)}, collection="users", vector="taste")

    stream = client.watch_alerts(after_id="0", space="users.taste")
    (alert,) = await asyncio.wait_for(next_alerts(stream, 1), timeout=15)
    stream.cancel()

    assert alert.subject == "taste-zero"


@pytest.mark.parametrize(
    ("after_id", "event", "space", "mentioned"),
    [("yesterday", "", "", "after_id"), ("", "drift", "", "unknown alert event"), ("", "", "items.colour", "space")],
)
async def test_bad_watch_requests_are_invalid(
    client: MonitorClient, after_id: str, event: str, space: str, mentioned: str
) -> None:
    stream = client.watch_alerts(after_id=after_id, event=event, space=space)
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await next_alerts(stream, 1)

    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert mentioned in (raised.value.details() or "")


async def test_an_open_watch_ends_when_the_monitor_stops(monitor: MonitorService, client: MonitorClient) -> None:
    stream = client.watch_alerts()
    await asyncio.sleep(0.3)
    started = asyncio.get_running_loop().time()

    await monitor.stop()
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await asyncio.wait_for(next_alerts(stream, 1), timeout=10)

    assert raised.value.code() == grpc.StatusCode.UNAVAILABLE  # retryable: the client watches again

    # Well within the grace period: the watch ended on its own instead of being cut off after it.
    assert asyncio.get_running_loop().time() - started < monitor.settings.grpc_grace_s


async def _connected_clients(redis: Redis) -> int:
    return int((await redis.info("clients"))["connected_clients"])


async def test_many_watchers_share_one_reader_and_the_rest_of_the_service_keeps_working(
    monitor_settings: MonitorSettings, store: VectorStore, redis: Redis, catalog: Catalog
) -> None:
    settings = monitor_settings.model_copy(update={"max_alert_watchers": 60})
    service = MonitorService(settings, store, redis)
    await service.start()
    client = MonitorClient(f"127.0.0.1:{service.port}")
    try:
        before = await _connected_clients(redis)
        watches = [client.watch_alerts() for _ in range(60)]
        received = [asyncio.ensure_future(next_alerts(watch, 1)) for watch in watches]

        async def all_open() -> bool:
            return service.alert_watchers == 60

        await eventually(all_open, timeout_s=20, what="60 watches open")
        one_too_many = client.watch_alerts()
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await next_alerts(one_too_many, 1)
        assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        # Watches hold no Redis connection each: a handful for the whole process.
        assert await _connected_clients(redis) - before < 10

        await catalog.put({"zero": np.zeros(CONTENT_DIMS)})
        alerts = await asyncio.wait_for(asyncio.gather(*received), timeout=30)
        assert {batch[0].subject for batch in alerts} == {"zero"}
        assert (await client.drift_report("items.content")).space == "items.content"
    finally:
        for watch in watches:
            watch.cancel()
        await client.close()
        await service.stop()
