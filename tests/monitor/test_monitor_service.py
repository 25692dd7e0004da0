"""The monitor end to end on a real redis-server, embedded Qdrant and a real gRPC server."""

from __future__ import annotations

import asyncio
import urllib.request

import grpc
import numpy as np
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from redis.asyncio import Redis

from recsys.monitor.app import MonitorService
from recsys.monitor.settings import MonitorSettings
from recsys.shared.points import TASTE, USERS
from recsys.shared.settings import StreamNames
from recsys.shared.store import VectorStore
from recsys_client.aio import MonitorClient
from tests.monitor.harness import CONTENT_DIMS, Catalog, alerts, gaussian, sizes_reach
from tests.support import eventually, free_port


async def test_service_is_serving_once_grpc_is_up_and_the_store_answers(monitor: MonitorService) -> None:
    assert monitor.ready.is_set()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{monitor.port}") as channel:
        response = await health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service="recsys.v1.MonitorService")
        )
    assert response.status == health_pb2.HealthCheckResponse.SERVING


async def test_drift_report_is_insufficient_then_gives_figures_then_detects_a_shift_once(
    monitor: MonitorService, client: MonitorClient, catalog: Catalog, redis: Redis
) -> None:
    rng = np.random.default_rng(0)
    first = gaussian(rng, 12, "base-")
    await catalog.put(first)
    await sizes_reach(client, 12, 12)

    early = await client.drift_report("items.content")
    assert not early.sufficient
    assert "current window has 12 vectors, at least 30 needed" in early.reason

    await catalog.put(gaussian(rng, 28, "more-"))
    await sizes_reach(client, 40, 40)
    steady = await client.drift_report("items.content")
    assert steady.sufficient, steady.reason
    assert not steady.drifted
    assert steady.p_value >= steady.alpha
    assert steady.permutations == 100

    await catalog.put(gaussian(rng, 40, "shifted-", shift=0.5))
    await sizes_reach(client, 40, 40)

    async def drifted() -> bool:
        return (await client.drift_report("items.content")).drifted

    await eventually(drifted, timeout_s=15, what="drift")
    report = await client.drift_report("items.content")
    assert report.p_value < report.alpha
    assert report.mmd2 > steady.mmd2
    assert report.centroid_cosine_distance > steady.centroid_cosine_distance

    # More shifted vectors change the windows; evaluations go on while the space stays drifted.
    await catalog.put(gaussian(rng, 10, "later-", shift=0.5))
    for _ in range(5):
        await monitor.evaluate()
        await asyncio.sleep(monitor.settings.evaluate_interval_s)
    assert (await client.drift_report("items.content")).drifted
    drift_alerts = await alerts(redis, "drift.detected")
    assert len(drift_alerts) == 1
    assert drift_alerts[0]["space"] == "items.content"
    assert drift_alerts[0]["statistics"]["p_value"] < 0.05  # type: ignore[index]
    assert "p-value" in drift_alerts[0]["reason"]  # type: ignore[operator]


async def test_metrics_endpoint_serves_the_latest_drift_figures(
    monitor: MonitorService, client: MonitorClient, catalog: Catalog
) -> None:
    rng = np.random.default_rng(2)
    await catalog.put(gaussian(rng, 35, "m-"))
    await sizes_reach(client, 35, 35)
    report = await client.drift_report("items.content")

    url = f"http://127.0.0.1:{monitor.metrics_port}/metrics"
    body = await asyncio.to_thread(lambda: urllib.request.urlopen(url, timeout=5).read().decode())
    [mmd2_line] = [line for line in body.splitlines() if line.startswith('recsys_drift_mmd2{space="items.content"}')]
    assert float(mmd2_line.split()[-1]) == pytest.approx(report.mmd2, rel=1e-6)
    assert 'recsys_window_vectors{space="items.content",window="current"} 35.0' in body
    [auc_line] = [
        line for line in body.splitlines() if line.startswith('recsys_drift_classifier_auc{space="items.content"}')
    ]
    assert float(auc_line.split()[-1]) == pytest.approx(report.classifier_auc, rel=1e-6)
    assert 'recsys_window_effective_rank{space="items.content",window="reference"}' in body


async def test_report_is_cached_until_the_windows_change(client: MonitorClient, catalog: Catalog) -> None:
    rng = np.random.default_rng(1)
    await catalog.put(gaussian(rng, 35, "item-"))
    await sizes_reach(client, 35, 35)

    first, again = await client.drift_report(), await client.drift_report()
    await catalog.put(gaussian(rng, 1, "extra-"))
    await sizes_reach(client, 36, 36)
    changed = await client.drift_report()

    assert again.computed_at == first.computed_at
    assert changed.computed_at > first.computed_at


async def test_a_deleted_item_leaves_the_current_window(client: MonitorClient, catalog: Catalog) -> None:
    await catalog.put(gaussian(np.random.default_rng(2), 5, "item-"))
    await sizes_reach(client, 5, 5)

    await catalog.notify("item-3", "deleted")

    await sizes_reach(client, 5, 4)


async def test_zero_and_infinite_vectors_are_listed_once_and_alerted_once(
    client: MonitorClient, catalog: Catalog, redis: Redis
) -> None:
    rng = np.random.default_rng(3)
    await catalog.put(gaussian(rng, 5, "fine-"))
    broken = np.ones(CONTENT_DIMS)
    broken[7] = np.inf
    await catalog.put({"zero": np.zeros(CONTENT_DIMS), "infinite": broken})
    await catalog.notify("zero", "updated")  # a replay

    async def listed() -> bool:
        return {a.subject for a in await client.anomalies("degenerate_vector")} == {"zero", "infinite"}

    await eventually(listed, timeout_s=15, what="both degenerate vectors listed")
    await sizes_reach(client, 5, 5)  # neither entered the windows
    found = await client.anomalies("degenerate_vector")
    assert len(found) == 2
    assert all(a.space == "items.content" and a.kind == "degenerate_vector" for a in found)
    anomaly_alerts = await alerts(redis, "anomaly.detected")
    assert sorted(a["subject"] for a in anomaly_alerts) == ["infinite", "zero"]  # type: ignore[type-var]


async def test_the_same_vector_under_two_ids_is_a_near_duplicate(client: MonitorClient, catalog: Catalog) -> None:
    rng = np.random.default_rng(4)
    items = gaussian(rng, 5, "item-")
    await catalog.put(items)
    await sizes_reach(client, 5, 5)

    await catalog.put({"copy-of-item-2": items["item-2"] * 3})

    async def listed() -> bool:
        return [a.subject for a in await client.anomalies("near_duplicate")] == ["copy-of-item-2|item-2"]

    await eventually(listed, timeout_s=15, what="the near-duplicate pair listed")
    (pair,) = await client.anomalies("near_duplicate")
    assert pair.score >= pair.threshold == pytest.approx(0.98)
    assert await client.anomalies("degenerate_vector") == []


async def test_user_taste_vectors_have_their_own_space(client: MonitorClient, catalog: Catalog) -> None:
    rng = np.random.default_rng(5)
    await catalog.put(gaussian(rng, 3, "user-"), collection=USERS, vector=TASTE)

    same_taste = rng.standard_normal(CONTENT_DIMS)
    await catalog.put({"twin-a": same_taste, "twin-b": same_taste}, collection=USERS, vector=TASTE)

    await sizes_reach(client, 5, 5, space="users.taste")
    assert (await client.drift_report("items.content")).reference_size == 0
    assert await client.anomalies() == []  # users sharing a taste are no near-duplicate items


async def test_a_malformed_notice_is_dead_lettered_and_the_next_one_still_counts(
    client: MonitorClient, catalog: Catalog, redis: Redis
) -> None:
    await redis.xadd(catalog.stream, {"event": "vector.updated", "data": "{not json"})
    await catalog.put(gaussian(np.random.default_rng(6), 1, "item-"))

    await sizes_reach(client, 1, 1)

    async def dead_lettered() -> bool:
        return await redis.xlen(StreamNames.dead_letter(catalog.stream)) == 1

    await eventually(dead_lettered, timeout_s=15, what="the malformed notice dead-lettered")


async def test_unknown_space_is_invalid_and_names_the_known_ones(client: MonitorClient) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await client.drift_report("items.colour")

    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert '"items.content"' in (raised.value.details() or "")
    assert '"users.taste"' in (raised.value.details() or "")


@pytest.mark.parametrize(
    ("kind", "limit", "mentioned"),
    [("bogus", 10, "unknown anomaly kind"), ("", 1001, "limit"), ("near_duplicate", 5000, "limit")],
)
async def test_bad_anomaly_queries_are_invalid(client: MonitorClient, kind: str, limit: int, mentioned: str) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await client.anomalies(kind, limit)

    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert mentioned in (raised.value.details() or "")


async def test_limit_zero_means_one_hundred(client: MonitorClient, catalog: Catalog) -> None:
    zeros = {f"zero-{i}": np.zeros(CONTENT_DIMS) for i in range(105)}
    await catalog.put(zeros)

    async def all_found() -> bool:
        return len(await client.anomalies("", 1000)) == 105

    await eventually(all_found, timeout_s=20, what="105 anomalies")
    assert len(await client.anomalies("", 0)) == 100
    assert len(await client.anomalies("degenerate_vector", 7)) == 7


async def test_a_start_waits_not_serving_for_redis_and_a_cancelled_start_leaves_no_server_behind(
    monitor_settings: MonitorSettings, store: VectorStore
) -> None:
    unreachable = f"redis://127.0.0.1:{free_port()}/0"
    settings = monitor_settings.model_copy(update={"redis_url": unreachable})
    redis = Redis.from_url(unreachable)
    service = MonitorService(settings, store, redis)
    starting = asyncio.create_task(service.start())
    try:

        async def waiting_not_serving() -> bool:
            if not service.port:
                return False
            async with grpc.aio.insecure_channel(f"127.0.0.1:{service.port}") as channel:
                answer = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
            return answer.status == health_pb2.HealthCheckResponse.NOT_SERVING

        # Redis away: the monitor waits for it (a restart would not bring Redis back sooner), unready.
        await eventually(waiting_not_serving, timeout_s=60, what="the monitor up and NOT_SERVING")
        assert not starting.done()
        starting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await starting
    finally:
        await redis.aclose()

    assert not service.ready.is_set()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{service.port}") as channel:
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=2)
    assert raised.value.code() == grpc.StatusCode.UNAVAILABLE


async def test_qdrant_out_of_reach_makes_the_monitor_unready_but_never_dead(
    monitor_settings: MonitorSettings, redis: Redis
) -> None:
    store = VectorStore.in_memory()
    await store.ensure_collections(CONTENT_DIMS, 64)
    service = MonitorService(monitor_settings.model_copy(update={"health_interval_s": 0.1}), store, redis)
    await service.start()
    try:

        async def status(name: str) -> int:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{service.port}") as channel:
                answer = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=name))
            return int(answer.status)

        assert await status("recsys.v1.MonitorService") == health_pb2.HealthCheckResponse.SERVING
        await store.close()  # every call to the store fails from now on

        async def unready() -> bool:
            return await status("recsys.v1.MonitorService") == health_pb2.HealthCheckResponse.NOT_SERVING

        await eventually(unready, timeout_s=20, what="readiness failing while Qdrant is out of reach")
        # Liveness is the server's overall status: restarting the monitor would not bring Qdrant back.
        assert await status("") == health_pb2.HealthCheckResponse.SERVING
    finally:
        await service.stop()
