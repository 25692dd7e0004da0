"""The monitor over gRPC on real parts: the full report, item behavior versions, accepting a change, outliers,
and bot-like users read from the interactions stream."""

from __future__ import annotations

import json

import grpc
import numpy as np
import pytest
from redis.asyncio import Redis

from recsys.monitor.app import MonitorService
from recsys.shared.points import BEHAVIOR, ITEMS, ItemField
from recsys.shared.settings import StreamNames
from recsys_client.aio import MonitorClient
from tests.monitor.harness import Catalog, alerts, gaussian, sizes_reach
from tests.support import RedisServer, eventually, redis_cli


async def test_a_drift_report_carries_every_figure_and_explains_itself(client: MonitorClient, catalog: Catalog) -> None:
    rng = np.random.default_rng(0)
    await catalog.put(gaussian(rng, 40, "base-"))
    await sizes_reach(client, 40, 40)
    await catalog.put(gaussian(rng, 40, "shifted-", shift=0.5))
    await sizes_reach(client, 40, 40)

    report = await client.drift_report("items.content")

    assert report.drifted and report.mmd2 > report.mmd2_threshold > 0
    assert report.classifier_auc > 0.8
    assert report.dimensions == 384 and report.drifted_dimensions >= 1
    assert report.drifted_dimension_share == report.drifted_dimensions / 384
    assert len(report.top_dimensions) == 5
    assert report.reference_profile.norm_mean > 0 and report.current_profile.effective_rank > 1
    assert report.explanation[0].startswith("Drift: MMD²")
    assert report.reference_mode == "first"


async def test_behavior_vectors_are_compared_within_one_factorization_version(
    client: MonitorClient, catalog: Catalog
) -> None:
    rng = np.random.default_rng(1)
    await catalog.put(
        {k: v[:64] for k, v in gaussian(rng, 35, "old-").items()},
        vector=BEHAVIOR,
        payload={ItemField.BEHAVIOR_VERSION.key: 1},
    )
    await sizes_reach(client, 35, 35, space="items.behavior")
    assert (await client.drift_report("items.behavior")).version == "1"

    # Version 2 lives in another basis: the windows start afresh instead of reporting drift.
    await catalog.put(
        {k: v[:64] + 3.0 for k, v in gaussian(rng, 31, "new-").items()},
        vector=BEHAVIOR,
        payload={ItemField.BEHAVIOR_VERSION.key: 2},
    )
    await sizes_reach(client, 31, 31, space="items.behavior")
    report = await client.drift_report("items.behavior")

    assert report.version == "2"
    assert report.sufficient and not report.drifted


async def test_resetting_the_reference_accepts_a_change(client: MonitorClient, catalog: Catalog) -> None:
    rng = np.random.default_rng(2)
    await catalog.put(gaussian(rng, 40, "base-"))
    await sizes_reach(client, 40, 40)
    await catalog.put(gaussian(rng, 40, "shifted-", shift=0.5))
    await sizes_reach(client, 40, 40)
    assert (await client.drift_report("items.content")).drifted

    report = await client.reset_reference("items.content")

    assert report.sufficient and not report.drifted
    assert report.p_value == 1.0  # the windows are the same vectors now


async def test_an_item_far_from_the_catalog_is_an_outlier(client: MonitorClient, catalog: Catalog) -> None:
    rng = np.random.default_rng(3)
    centre = rng.standard_normal(384)
    await catalog.put({f"item-{i}": centre + 0.5 * rng.standard_normal(384) for i in range(40)})
    await sizes_reach(client, 40, 40)

    await catalog.put({"stranger": -centre})

    async def listed() -> bool:
        return [a.subject for a in await client.anomalies("outlier")] == ["stranger"]

    await eventually(listed, timeout_s=15, what="the outlier listed")
    (outlier,) = await client.anomalies("outlier", space="items.content")
    assert outlier.score > outlier.threshold


async def test_a_scripted_user_is_found_in_interactions_published_with_redis_cli(
    monitor: MonitorService, client: MonitorClient, redis_server: RedisServer, redis: Redis
) -> None:
    stream = StreamNames(monitor.settings.stream_prefix).interactions
    for n in range(30):  # a script: one event every 3 s exactly (never 30 within a minute: no burst)
        data = {"event_id": f"bot-{n}", "user_id": "script", "item_id": f"m{n}", "type": "view", "ts": 1000 + 3 * n}
        redis_cli(redis_server, "XADD", stream, "*", "event", "interaction", "data", json.dumps(data))
    redis_cli(redis_server, "XADD", stream, "*", "event", "interaction", "data", "{not json")

    async def bot_listed() -> bool:
        return [a.subject for a in await client.anomalies("bot_like_user")] == ["script"]

    await eventually(bot_listed, timeout_s=15, what="the script listed as bot-like")
    (bot,) = await client.anomalies("bot_like_user", space="interactions")
    assert bot.score <= bot.threshold and "machine-regular" in bot.detail
    anomaly_alerts = await alerts(redis, "anomaly.detected")
    assert [a["subject"] for a in anomaly_alerts if a["kind"] == "bot_like_user"] == ["script"]
    # The malformed entry is the encoder's to dead-letter, not the monitor's.
    assert await redis.xlen(StreamNames.dead_letter(stream)) == 0


async def test_item_spaces_other_than_content_are_not_checked_for_duplicates(
    client: MonitorClient, catalog: Catalog
) -> None:
    same = np.ones(64)
    await catalog.put({"a": same, "b": same}, collection=ITEMS, vector=BEHAVIOR)

    await sizes_reach(client, 2, 2, space="items.behavior")

    assert await client.anomalies("near_duplicate") == []


@pytest.mark.parametrize(("space", "mentioned"), [("items.colour", "unknown space"), ("users.taste", "is empty")])
async def test_resetting_an_unknown_space_or_an_empty_window_is_invalid(
    client: MonitorClient, space: str, mentioned: str
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await client.reset_reference(space)

    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert mentioned in (raised.value.details() or "")
