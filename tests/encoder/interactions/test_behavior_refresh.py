"""The periodic refresh on embedded Qdrant and real Redis: versioned item vectors, users re-folded, no stall."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import threading
from collections.abc import Awaitable, Callable
from typing import Any

import numpy as np
import pytest
from qdrant_client import models
from redis.asyncio import Redis

from recsys.encoder.interactions import behavior_refresh
from recsys.encoder.interactions.behavior_log import behavior_log_stream
from recsys.encoder.interactions.refresh_tuning import ITEM_EVIDENCE_GRID
from recsys.encoder.interactions.user_behavior import user_behavior
from recsys.encoder.service import EncoderService
from recsys.shared.behavior_models import load_current_model
from recsys.shared.ids import point_id
from recsys.shared.points import BEHAVIOR, ITEMS, USERS, UserField
from tests.encoder.conftest import StartEncoder

WaitConsumed = Callable[[Redis, str, str, str | bytes], Awaitable[None]]
T0 = 1_700_000_000.0
ITEM_IDS = ["a1", "a2", "a3", "b1", "b2", "b3"]


async def publish_items(encoder: EncoderService, wait_consumed: WaitConsumed) -> None:
    stream = encoder.settings.streams.items
    last: Any = b""
    for item_id in ITEM_IDS:
        data = {"item_id": item_id, "title": f"Item {item_id}", "version": 1, "ts": T0}
        last = await encoder.redis.xadd(stream, {"event": "item.upserted", "data": json.dumps(data)})
    await wait_consumed(encoder.redis, stream, encoder.settings.item_ingest_group, last)


async def publish_interactions(
    encoder: EncoderService, wait_consumed: WaitConsumed, events: list[tuple[str, str]]
) -> None:
    stream = encoder.settings.streams.interactions
    last: Any = b""
    for n, (user_id, item_id) in enumerate(events):
        data = {
            "event_id": f"{user_id}-{item_id}-{n}",
            "user_id": user_id,
            "item_id": item_id,
            "type": "like",
            "ts": T0 + n,
        }
        last = await encoder.redis.xadd(stream, {"event": "interaction", "data": json.dumps(data)})
    await wait_consumed(encoder.redis, stream, encoder.settings.interaction_ingest_group, last)


def two_audiences(prefix: str = "") -> list[tuple[str, str]]:
    events = []
    for n in range(6):
        events += [(f"{prefix}a-fan{n}", item) for item in ("a1", "a2", "a3")]
        events += [(f"{prefix}b-fan{n}", item) for item in ("b1", "b2", "b3")]
    return events


async def records(encoder: EncoderService, collection: str, ids: list[str]) -> dict[str, models.Record]:
    found = await encoder.store.client.retrieve(
        collection, [point_id(i) for i in ids], with_payload=True, with_vectors=True
    )
    key = "item_id" if collection == ITEMS else "user_id"
    return {str((r.payload or {})[key]): r for r in found}


def behavior_of(record: models.Record) -> np.ndarray | None:
    vectors = record.vector if isinstance(record.vector, dict) else {}
    value = vectors.get(BEHAVIOR)
    return np.asarray(value) if value is not None else None


async def test_a_refresh_versions_every_item_and_leaves_every_user_in_the_new_basis(
    start_encoder: StartEncoder, wait_consumed: WaitConsumed
) -> None:
    encoder = await start_encoder(behavior_refresh_interactions=0, behavior_dims=8)
    await publish_items(encoder, wait_consumed)
    await publish_interactions(encoder, wait_consumed, two_audiences())
    assert encoder.behavior_refresh is not None
    first = await encoder.behavior_refresh.refresh()
    await publish_interactions(encoder, wait_consumed, [("a-fan0", "b1"), ("newcomer", "a1")])
    second = await encoder.behavior_refresh.refresh()
    assert first is not None and second is not None and second.version > first.version
    # The log keeps each event's type; too few users to tune, the model counted each as configured.
    logged = await encoder.redis.xrange(behavior_log_stream(encoder.settings.stream_prefix), count=1)
    assert logged[0][1][b"k"] == b"like"
    assert first.event_type_weights is not None
    assert first.event_type_weights["like"] == encoder.settings.weight_like

    items = await records(encoder, ITEMS, ITEM_IDS)
    assert {(r.payload or {})["behavior_version"] for r in items.values()} == {second.version}
    item_vectors = {item_id: behavior_of(r) for item_id, r in items.items()}
    users = await records(encoder, USERS, [f"a-fan{n}" for n in range(6)] + ["newcomer"])
    assert len(users) == 7
    for record in users.values():
        payload = record.payload or {}
        assert payload["behavior_version"] == second.version
        expected = user_behavior(
            UserField.HISTORY.read(payload),
            {k: v for k, v in item_vectors.items() if v is not None},
            payload["last_event_ts"],
            encoder.settings.behavior_half_life_days * 86_400.0,
        )
        stored = behavior_of(record)
        assert stored is not None and expected.unit is not None
        np.testing.assert_allclose(stored, expected.unit, atol=1e-5)
    # The model separates the two audiences: a fan's vector points at their items, not the others'.
    fan = behavior_of(users["a-fan3"])
    assert fan is not None
    a2, b2 = item_vectors["a2"], item_vectors["b2"]
    assert a2 is not None and b2 is not None
    assert float(fan @ a2) > float(fan @ b2) + 0.5


async def test_items_the_new_model_no_longer_covers_lose_their_old_vector(
    start_encoder: StartEncoder, wait_consumed: WaitConsumed
) -> None:
    # Without the content map: with it, items with content are carried by it (the test below).
    encoder = await start_encoder(behavior_refresh_interactions=0, behavior_dims=8, behavior_content_map=False)
    await publish_items(encoder, wait_consumed)
    await publish_interactions(encoder, wait_consumed, two_audiences())
    assert encoder.behavior_refresh is not None
    await encoder.behavior_refresh.refresh()
    # The log forgets the b audience (as a capped log eventually does); only a-items stay in the model.
    log = behavior_log_stream(encoder.settings.stream_prefix)
    entries = await encoder.redis.xrange(log)
    await encoder.redis.xdel(log, *[entry_id for entry_id, fields in entries if fields[b"i"].startswith(b"b")])
    await encoder.behavior_refresh.refresh()

    items = await records(encoder, ITEMS, ITEM_IDS)
    assert all(behavior_of(items[i]) is not None for i in ("a1", "a2", "a3"))
    assert all(behavior_of(items[i]) is None for i in ("b1", "b2", "b3"))
    assert all((items[i].payload or {})["behavior_norm"] == 0.0 for i in ("b1", "b2", "b3"))


async def test_ingestion_goes_on_while_a_refresh_factorizes(
    start_encoder: StartEncoder, wait_consumed: WaitConsumed, monkeypatch: pytest.MonkeyPatch
) -> None:
    encoder = await start_encoder(behavior_refresh_interactions=0, behavior_dims=64)
    await publish_items(encoder, wait_consumed)
    log = behavior_log_stream(encoder.settings.stream_prefix)
    async with encoder.redis.pipeline(transaction=False) as pipe:
        for n in range(6_000):
            pipe.xadd(log, {"e": f"bulk{n}", "u": f"u{n % 300}", "i": f"x{(n * 7919) % 400}", "w": "1.0", "t": "0"})
        await pipe.execute()
    # The factorization holds until the interaction below is consumed: were it run on the event
    # loop, nothing would be consumed meanwhile and wait_consumed would time out. (Timing it by the
    # size of the log alone raced: on a fast machine the factorization ended first.)
    consumed = threading.Event()

    def held_fit(*args: Any) -> Any:
        consumed.wait(timeout=20)
        return real_fit(*args)

    real_fit = behavior_refresh.fit
    monkeypatch.setattr(behavior_refresh, "fit", held_fit)
    assert encoder.behavior_refresh is not None
    refresh = asyncio.create_task(encoder.behavior_refresh.refresh())
    while encoder.behavior_refresh.phase != "factorizing":
        assert not refresh.done(), "the refresh ended before it was seen factorizing"
        await asyncio.sleep(0.005)
    try:
        await asyncio.wait_for(publish_interactions(encoder, wait_consumed, [("live-user", "a1")]), timeout=30)
        assert encoder.behavior_refresh.phase == "factorizing"
    finally:
        consumed.set()
    report = await refresh
    assert report is not None and report.interactions == 6_000  # read before the live interaction arrived


async def test_only_one_of_two_concurrent_refreshes_runs(
    start_encoder: StartEncoder, wait_consumed: WaitConsumed
) -> None:
    encoder = await start_encoder(behavior_refresh_interactions=0, behavior_dims=8)
    await publish_items(encoder, wait_consumed)
    await publish_interactions(encoder, wait_consumed, two_audiences())
    assert encoder.behavior_refresh is not None

    results = await asyncio.gather(encoder.behavior_refresh.refresh(), encoder.behavior_refresh.refresh())

    assert sorted(r is None for r in results) == [False, True]


async def test_a_refresh_starts_by_itself_after_enough_interactions(
    start_encoder: StartEncoder, wait_consumed: WaitConsumed
) -> None:
    encoder = await start_encoder(behavior_refresh_interactions=10, behavior_dims=8)
    await publish_items(encoder, wait_consumed)
    await publish_interactions(encoder, wait_consumed, two_audiences())
    refresh = encoder.behavior_refresh
    assert refresh is not None

    for _ in range(100):
        if refresh.last_report is not None:
            break
        await asyncio.sleep(0.05)
    assert refresh.last_report is not None and refresh.last_report.items == len(ITEM_IDS)


async def test_items_without_interactions_are_carried_by_content_and_so_are_their_first_users(
    start_encoder: StartEncoder, wait_consumed: WaitConsumed
) -> None:
    encoder = await start_encoder(behavior_refresh_interactions=0, behavior_dims=8)
    await publish_items(encoder, wait_consumed)
    stream = encoder.settings.streams.items
    for data, event in (
        ({"item_id": "cold", "title": "Item a4", "version": 1, "ts": T0}, "item.upserted"),
        ({"item_id": "gone", "title": "Item a5", "version": 1, "ts": T0}, "item.upserted"),
        ({"item_id": "gone", "version": 2, "ts": T0 + 1}, "item.deleted"),
    ):
        last = await encoder.redis.xadd(stream, {"event": event, "data": json.dumps(data)})
    await wait_consumed(encoder.redis, stream, encoder.settings.item_ingest_group, last)
    await publish_interactions(encoder, wait_consumed, two_audiences())
    assert encoder.behavior_refresh is not None
    report = await encoder.behavior_refresh.refresh()
    assert report is not None

    record = await load_current_model(encoder.store)
    assert record is not None and record.version == report.version and record.content_map is not None
    assert record.content_map["behavior_dims"] == 8 and record.content_map["warm_items"] == len(ITEM_IDS)
    # Too few users to tune: the configured item evidence k, recorded with the map and reported.
    configured_k = encoder.settings.behavior_item_evidence_k
    assert record.content_map["item_evidence_k"] == configured_k == report.item_evidence_k
    assert record.blend_tuning is not None and record.blend_tuning["item_evidence_k"] == configured_k
    items = await records(encoder, ITEMS, [*ITEM_IDS, "cold", "gone"])
    cold = behavior_of(items["cold"])
    assert cold is not None and (items["cold"].payload or {})["behavior_version"] == report.version
    assert 0 < (items["cold"].payload or {})["behavior_norm"] <= 1
    assert behavior_of(items["gone"]) is None
    assert report.items == len(ITEM_IDS) + 1

    # A user whose one interaction is with the cold item is in the behavior space at once.
    await publish_interactions(encoder, wait_consumed, [("first-timer", "cold")])
    users = await records(encoder, USERS, ["first-timer"])
    user = users["first-timer"]
    stored = behavior_of(user)
    assert stored is not None and (user.payload or {})["behavior_version"] == report.version
    assert float(stored @ cold) > 0.99


async def test_a_refresh_that_tunes_fits_and_records_the_item_evidence_k_its_tuner_chose(
    start_encoder: StartEncoder, wait_consumed: WaitConsumed
) -> None:
    encoder = await start_encoder(behavior_refresh_interactions=0, behavior_dims=8, blend_tuning_min_users=4)
    await publish_items(encoder, wait_consumed)
    # Twelve users, each liking every item in an order of their own: six positives each, enough to tune on.
    rng = np.random.default_rng(0)
    fans = [f"fan{n}" for n in range(12)]
    await publish_interactions(
        encoder, wait_consumed, [(fan, ITEM_IDS[i]) for fan in fans for i in rng.permutation(len(ITEM_IDS))]
    )
    assert encoder.behavior_refresh is not None
    report = await encoder.behavior_refresh.refresh()
    assert report is not None and report.blend_tuning is not None and report.blend_tuning["self_tuned"] == 1.0

    record = await load_current_model(encoder.store)
    assert record is not None and record.content_map is not None and record.blend_tuning is not None
    chosen = record.blend_tuning["item_evidence_k"]
    assert chosen in ITEM_EVIDENCE_GRID and chosen == report.item_evidence_k
    # The map saved (what item ingestion infers new items with) is the one fit with the chosen k.
    assert record.content_map["item_evidence_k"] == chosen
    for k in ITEM_EVIDENCE_GRID:
        assert f"item_evidence_k_{k:g}_ndcg" in record.blend_tuning
        assert f"item_evidence_k_{k:g}_fresh_hits" in record.blend_tuning
    assert "no_map_ndcg" in record.blend_tuning


async def delete_item(encoder: EncoderService, wait_consumed: WaitConsumed, item_id: str) -> None:
    stream = encoder.settings.streams.items
    data = {"item_id": item_id, "version": 2, "ts": T0 + 1}
    last = await encoder.redis.xadd(stream, {"event": "item.deleted", "data": json.dumps(data)})
    await wait_consumed(encoder.redis, stream, encoder.settings.item_ingest_group, last)


def in_order(users: int, items: tuple[str, ...]) -> list[tuple[str, str]]:
    """Each user consumes the items in this order (publish_interactions stamps them in publication order)."""
    return [(f"reader{n}", item) for n in range(users) for item in items]


async def test_a_refresh_writes_what_followed_each_item_and_nothing_on_deleted_items(
    start_encoder: StartEncoder, wait_consumed: WaitConsumed
) -> None:
    encoder = await start_encoder(behavior_refresh_interactions=0, behavior_dims=8)
    await publish_items(encoder, wait_consumed)
    stream = encoder.settings.streams.items
    data = {"item_id": "gone", "title": "Item gone", "version": 1, "ts": T0}
    last = await encoder.redis.xadd(stream, {"event": "item.upserted", "data": json.dumps(data)})
    await wait_consumed(encoder.redis, stream, encoder.settings.item_ingest_group, last)
    # Every reader takes b1 right after a1, then "gone", and a3 last of all: nothing ever follows a3.
    await publish_interactions(encoder, wait_consumed, in_order(4, ("a1", "b1", "gone", "a3")))
    await delete_item(encoder, wait_consumed, "gone")
    assert encoder.behavior_refresh is not None
    assert await encoder.behavior_refresh.refresh() is not None

    items = await records(encoder, ITEMS, [*ITEM_IDS, "gone"])
    a1 = (items["a1"].payload or {})["successors"]
    assert [item_id for item_id, _ in a1] == ["b1", "gone", "a3"]
    assert a1[0][1] == pytest.approx(1.0) and a1[0][1] > a1[1][1] > a1[2][1]
    assert [item_id for item_id, _ in (items["b1"].payload or {})["successors"]] == ["gone", "a3"]
    assert (items["a3"].payload or {})["successors"] == []
    assert "successors" not in (items["gone"].payload or {}) and behavior_of(items["gone"]) is None


async def test_the_successors_kept_follow_the_setting_and_none_leaves_no_list_behind(
    start_encoder: StartEncoder, wait_consumed: WaitConsumed
) -> None:
    encoder = await start_encoder(behavior_refresh_interactions=0, behavior_dims=8, behavior_successors=1)
    await publish_items(encoder, wait_consumed)
    await publish_interactions(encoder, wait_consumed, in_order(3, ("a1", "b1", "a3")))
    refresh = encoder.behavior_refresh
    assert refresh is not None and refresh.policy.successors == 1
    await refresh.refresh()
    items = await records(encoder, ITEMS, ["a1"])
    assert (items["a1"].payload or {})["successors"] == [["b1", pytest.approx(1.0)]]

    refresh.policy = dataclasses.replace(refresh.policy, successors=0)
    await refresh.refresh()
    items = await records(encoder, ITEMS, ["a1", "b1", "a3"])
    assert [(r.payload or {})["successors"] for r in items.values()] == [[], [], []]


async def test_items_the_new_model_leaves_out_lose_their_successors(
    start_encoder: StartEncoder, wait_consumed: WaitConsumed
) -> None:
    encoder = await start_encoder(behavior_refresh_interactions=0, behavior_dims=8, behavior_content_map=False)
    await publish_items(encoder, wait_consumed)
    await publish_interactions(encoder, wait_consumed, in_order(3, ("b1", "b2", "a1", "a2")))
    assert encoder.behavior_refresh is not None
    await encoder.behavior_refresh.refresh()
    before = await records(encoder, ITEMS, ["b1"])
    assert [item_id for item_id, _ in (before["b1"].payload or {})["successors"]] == ["b2", "a1", "a2"]
    # The log forgets the b items: the model no longer covers them, and their lists go with their vectors.
    log = behavior_log_stream(encoder.settings.stream_prefix)
    entries = await encoder.redis.xrange(log)
    await encoder.redis.xdel(log, *[entry_id for entry_id, fields in entries if fields[b"i"].startswith(b"b")])
    await encoder.behavior_refresh.refresh()

    items = await records(encoder, ITEMS, ["a1", "b1", "b2"])
    assert (items["b1"].payload or {})["successors"] == [] and behavior_of(items["b1"]) is None
    assert [item_id for item_id, _ in (items["a1"].payload or {})["successors"]] == ["a2"]
