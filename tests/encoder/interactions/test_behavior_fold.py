"""The batched fold-in: one sparse product gives every user the vector the per-user path gives, and keeps its guards."""

from __future__ import annotations

import warnings
from collections.abc import AsyncIterator

import numpy as np
import pytest
from qdrant_client import models
from redis.asyncio import Redis

from recsys.encoder.interactions.behavior_fold import ItemDirections, fold_by_newest_version, fold_in, history_weights
from recsys.encoder.interactions.behavior_log import BehaviorLog
from recsys.encoder.interactions.behavior_model import LoggedInteraction, factorize, interaction_matrix
from recsys.encoder.interactions.behavior_refresh import BehaviorRefresh, RefreshPolicy
from recsys.encoder.interactions.decay import DecayedSum
from recsys.encoder.interactions.ingestion import stored_user, user_vectors
from recsys.encoder.interactions.rules import InteractionRules
from recsys.encoder.interactions.user_profile import HistoryEntry, UserProfile
from recsys.encoder.notices import NoticePublisher
from recsys.encoder.settings import EncoderSettings
from recsys.shared.ids import point_id
from recsys.shared.points import BEHAVIOR, USERS, UserField
from recsys.shared.store import VectorStore

T0 = 1_700_000_000.0
DIMS = 8


def small_log(users: int = 60, items: int = 40, seed: int = 3) -> list[LoggedInteraction]:
    rng = np.random.default_rng(seed)
    log = []
    for n in range(users * 12):
        user = int(rng.integers(users))
        item = min(int(rng.zipf(1.6)) - 1, items - 1)
        weight = float(rng.choice([0.5, 1.0, 4.0, -3.0, 0.0]))
        log.append(LoggedInteraction(f"e{n}", f"u{user}", f"i{item}", weight, T0 + float(rng.uniform(0, 200 * 86_400))))
    return log


def profiles_of(log: list[LoggedInteraction], rules: InteractionRules) -> list[UserProfile]:
    by_user: dict[str, UserProfile] = {}
    for entry in log:
        profile = by_user.setdefault(entry.user_id, UserProfile(entry.user_id))
        profile.history = sorted([*profile.history, HistoryEntry(entry.item_id, entry.weight, entry.ts)])[
            -rules.history_size :
        ]
        profile.last_event_ts = max(profile.last_event_ts, entry.ts)
    # Items outside the model (never factorized) and a user with no history at all.
    by_user["u0"].history.append(HistoryEntry("not-in-model", 2.0, by_user["u0"].last_event_ts))
    by_user["nobody"] = UserProfile("nobody", last_event_ts=T0)
    return list(by_user.values())


def rules() -> InteractionRules:
    return InteractionRules.from_settings(EncoderSettings(redis_url="redis://unused"))


def test_the_batched_fold_in_gives_every_user_the_per_user_vector() -> None:
    log, interaction_rules = small_log(), rules()
    factors = factorize(interaction_matrix(log), DIMS)
    profiles = profiles_of(log, interaction_rules)

    directions = ItemDirections.of(factors.item_ids, factors.vectors)
    folded = fold_in(
        history_weights(
            [p.history for p in profiles],
            [p.last_event_ts for p in profiles],
            directions.rows,
            interaction_rules.behavior_half_life_s,
        ),
        directions.units,
    )

    compared = 0
    for row, profile in enumerate(profiles):
        one_by_one = UserProfile(profile.user_id, last_event_ts=profile.last_event_ts, history=list(profile.history))
        one_by_one.refresh_behavior(factors.as_mapping(), 7, interaction_rules)
        batched = UserProfile(profile.user_id, last_event_ts=profile.last_event_ts, history=list(profile.history))
        batched.adopt_behavior(folded.behavior(row, profile.last_event_ts), 7)

        assert batched.behavior_version == one_by_one.behavior_version
        assert batched.behavior.ts == one_by_one.behavior.ts
        if one_by_one.behavior.total is None:
            assert batched.behavior.total is None
            continue
        assert batched.behavior.total is not None
        np.testing.assert_allclose(batched.behavior.total, one_by_one.behavior.total, rtol=0, atol=1e-6)
        np.testing.assert_allclose(batched.behavior.unit, one_by_one.behavior.unit, rtol=0, atol=1e-6)
        compared += 1
    assert compared > 40
    assert folded.behavior(profiles.index(next(p for p in profiles if p.user_id == "nobody")), T0).total is None


@pytest.fixture
async def store() -> AsyncIterator[VectorStore]:
    store = VectorStore.in_memory()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Payload indexes have no effect")
        await store.ensure_collections(DIMS, DIMS)
    yield store
    await store.close()


async def test_a_user_written_by_ingestion_during_the_batched_write_keeps_that_write_and_is_redone(
    store: VectorStore, redis_url: str
) -> None:
    log, interaction_rules = small_log(users=6, items=6), rules()
    factors = factorize(interaction_matrix(log), DIMS)
    profiles = [p for p in profiles_of(log, interaction_rules) if p.history][:4]
    for profile in profiles:
        await store.client.upsert(
            USERS, [models.PointStruct(id=point_id(profile.user_id), vector={}, payload=profile.payload())]
        )
    redis = Redis.from_url(redis_url)
    refresh = BehaviorRefresh(
        store,
        redis,
        BehaviorLog(redis, "test:behavior-log", 10_000),
        NoticePublisher(redis, "test:notices", 10_000),
        interaction_rules,
        RefreshPolicy(0, 60.0, 0.0, DIMS, 256, "cpu", "test:lock"),
    )
    records, _ = await store.client.scroll(USERS, limit=10, with_payload=True, with_vectors=True)
    # Ingestion writes one user after the page was read, with item vectors of the old model: its revision moves on.
    raced = stored_user(records[0])
    raced.revision += 1
    raced.event_count = 99
    raced.adopt_behavior(DecayedSum(np.ones(DIMS), raced.last_event_ts), 1)
    await store.client.upsert(
        USERS, [models.PointStruct(id=records[0].id, vector=user_vectors(raced), payload=raced.payload())]
    )

    redo = await refresh._refold_page(records, ItemDirections.of(factors.item_ids, factors.vectors), 7)

    assert redo == [str(records[0].id)]
    stored = {
        str(r.id): r
        for r in await store.client.retrieve(USERS, [r.id for r in records], with_payload=True, with_vectors=True)
    }
    assert UserField.EVENT_COUNT.read(stored[str(records[0].id)].payload) == 99  # the batch did not overwrite it
    for record in records[1:]:
        assert UserField.BEHAVIOR_VERSION.read(stored[str(record.id)].payload) == 7
        assert BEHAVIOR in (stored[str(record.id)].vector or {})

    await refresh._refold_users(factors, 7)
    again = await store.client.retrieve(USERS, [records[0].id], with_payload=True)
    assert UserField.BEHAVIOR_VERSION.read(again[0].payload) == 7
    assert UserField.EVENT_COUNT.read(again[0].payload) == 99
    await redis.aclose()


def test_a_batch_half_way_through_a_refresh_folds_each_user_against_the_newest_version_of_their_items() -> None:
    log, interaction_rules = small_log(), rules()
    factors = factorize(interaction_matrix(log), DIMS)
    profiles = profiles_of(log, interaction_rules)
    # As while a refresh writes its items: some already carry version 8, the rest still 7 (another basis).
    # (the rare ones: small_log's item ids rank by popularity, so some users reach none of them).
    versions = {item_id: 8 if int(item_id[1:]) >= 12 else 7 for item_id in factors.item_ids}
    vectors = factors.vectors.copy()
    vectors[1] = 0.0  # an item whose vector is all zeros counts for nothing

    folded = fold_by_newest_version(
        [p.history for p in profiles],
        [p.last_event_ts for p in profiles],
        factors.item_ids,
        vectors,
        [versions[i] for i in factors.item_ids],
        interaction_rules.behavior_half_life_s,
    )

    behaviors = dict(zip(factors.item_ids, vectors, strict=True))
    seen_versions = set()
    for profile, (behavior, version) in zip(profiles, folded, strict=True):
        # One user at a time: the newest version among their own items, and only that version's vectors.
        reached = [versions[e.item_id] for e in profile.history if e.weight != 0 and e.item_id in versions]
        newest = max(reached, default=None)
        own = {item_id: vector for item_id, vector in behaviors.items() if versions[item_id] == newest}
        one_by_one = UserProfile(profile.user_id, last_event_ts=profile.last_event_ts, history=list(profile.history))
        one_by_one.refresh_behavior(own, newest, interaction_rules)
        batched = UserProfile(profile.user_id, last_event_ts=profile.last_event_ts, history=list(profile.history))
        batched.adopt_behavior(behavior, version)

        assert batched.behavior_version == one_by_one.behavior_version
        assert batched.behavior.ts == one_by_one.behavior.ts
        seen_versions.add(batched.behavior_version)
        if one_by_one.behavior.total is None:
            assert batched.behavior.total is None
            continue
        assert batched.behavior.total is not None
        np.testing.assert_allclose(batched.behavior.total, one_by_one.behavior.total, rtol=0, atol=1e-9)
    assert seen_versions == {7, 8, None}  # users on each version, and one with nothing to fold
