"""Consumes `recsys:interactions`: updates the item's counters and popularity, then the user's vectors."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
from qdrant_client import models

from recsys.encoder.interactions.behavior_log import BehaviorLog
from recsys.encoder.interactions.behavior_model import LoggedInteraction
from recsys.encoder.interactions.compare_and_set import revision_is, with_retries
from recsys.encoder.interactions.item_activity import ItemActivity, activity_only_payload
from recsys.encoder.interactions.rules import EventWeights, InteractionRules
from recsys.encoder.interactions.user_behavior import newest_version, of_version
from recsys.encoder.interactions.user_profile import UserProfile
from recsys.encoder.keyed_locks import KeyedLocks
from recsys.encoder.notices import NoticePublisher, notice
from recsys.shared.events import DEFAULT_MAX_FUTURE_S, Interaction, parse_interaction
from recsys.shared.ids import point_id
from recsys.shared.logs import log_event
from recsys.shared.points import BEHAVIOR, CONTENT, ITEMS, SESSION, TASTE, USERS, ItemField, UserField, keys
from recsys.shared.store import VectorStore

_log = logging.getLogger(__name__)


def _vector(record: models.Record, name: str) -> list[float] | None:
    vectors: Any = record.vector
    if not isinstance(vectors, dict):
        return None
    value = vectors.get(name)
    return list(value) if value is not None else None


def stored_user(record: models.Record) -> UserProfile:
    return UserProfile.from_stored(
        record.payload or {}, _vector(record, TASTE), _vector(record, SESSION), _vector(record, BEHAVIOR)
    )


def user_vectors(profile: UserProfile) -> dict[str, Any]:
    vectors: dict[str, Any] = {}
    for name, accumulated in ((TASTE, profile.taste), (SESSION, profile.session), (BEHAVIOR, profile.behavior)):
        unit = accumulated.unit
        if unit is not None:
            vectors[name] = unit.tolist()
    return vectors


class IngestionObserver(Protocol):
    """What interaction ingestion reports: each interaction applied, or skipped and why."""

    def interaction_applied(self) -> None: ...

    def interaction_skipped(self, reason: str) -> None: ...


class _Unobserved:
    def interaction_applied(self) -> None:
        pass

    def interaction_skipped(self, reason: str) -> None:
        pass


@dataclass
class _ItemSide:
    """What an interaction found on its item's side."""

    content: np.ndarray | None = None
    deleted: bool = False


class InteractionIngestion:
    """The handler of the interactions stream; one instance serves every concurrent entry.

    Each entry updates the item first, then the user. Each side remembers recent event ids, so a
    replayed entry (redelivered after a crash between the two writes, or published twice) changes
    nothing twice. Each side is a compare-and-set on its `revision` (see compare_and_set.py), so
    two processes updating the same user or item never lose an update; within this process, keyed
    locks keep such conflicts from happening in the first place.
    """

    def __init__(
        self,
        store: VectorStore,
        notices: NoticePublisher,
        weights: EventWeights,
        rules: InteractionRules,
        item_locks: KeyedLocks,
        behavior_log: BehaviorLog | None = None,
        on_applied: Callable[[], None] | None = None,
        *,
        max_future_s: float = DEFAULT_MAX_FUTURE_S,
        observer: IngestionObserver | None = None,
    ) -> None:
        self._store = store
        self._observer = observer or _Unobserved()
        self._max_future_s = max_future_s
        self._notices = notices
        self._weights = weights
        self._rules = rules
        self._item_locks = item_locks
        self._user_locks = KeyedLocks()
        self._behavior_log = behavior_log
        # Told of every newly applied interaction: the behavior refresh counts them.
        self._on_applied = on_applied

    async def handle(self, fields: dict[str, str], entry_id: str) -> None:
        """Applies one entry; raises MalformedEvent for an entry that can never be applied."""
        event = parse_interaction(fields, entry_id, max_future_s=self._max_future_s)
        weight = self._weights.weight(event)
        ts = event.ts if event.ts is not None else time.time()
        async with self._item_locks.hold(event.item_id):
            item = await self._update_item(event, weight, ts)
        if item.deleted:
            self._skipped(event, "item_deleted")
            return
        async with self._user_locks.hold(event.user_id):
            await self._update_user(event, weight, ts, item.content)

    def _skipped(self, event: Interaction, reason: str) -> None:
        self._observer.interaction_skipped(reason)
        log_event(_log, "interaction_skipped", reason=reason, event_id=event.event_id, item_id=event.item_id)

    async def _update_item(self, event: Interaction, weight: float, ts: float) -> _ItemSide:
        """Counts the event on the item; reports its content vector (None outside the catalog) or its deletion."""
        pid = point_id(event.item_id)
        item = _ItemSide()

        async def attempt() -> bool:
            records = await self._store.client.retrieve(
                ITEMS,
                [pid],
                with_payload=keys([*ItemField.ACTIVITY, ItemField.IN_CATALOG, ItemField.DELETED_AT]),
                with_vectors=[CONTENT],
            )
            if not records:
                return await self._record_before_catalog(event, weight, ts)
            record = records[0]
            if ItemField.DELETED_AT.read(record.payload) is not None:
                item.deleted = True  # a tombstone: interactions with a deleted item count nowhere
                return True
            content_values = _vector(record, CONTENT)
            item.content = np.asarray(content_values, dtype=np.float64) if content_values is not None else None
            activity = ItemActivity.from_stored(record.payload or {})
            if activity.has_recorded(event.event_id):
                return True
            if activity.beyond_horizon(event.event_id, ts):
                # Possibly counted already and forgotten since: skipped on the item only, the user decides for itself.
                self._skipped(event, "item_replay_horizon")
                return True
            expected = activity.revision
            activity.record(event, weight, ts, self._rules)
            activity.revision = expected + 1
            await self._store.set_payload_where(ITEMS, pid, activity.payload(), revision_is(expected))
            return await self._item_has(pid, event.event_id)

        await with_retries(attempt, f"item {event.item_id}")
        return item

    async def _item_has(self, pid: str, event_id: str) -> bool:
        records = await self._store.client.retrieve(ITEMS, [pid], with_payload=keys([ItemField.RECENT_EVENT_IDS]))
        return bool(records) and event_id in ItemField.RECENT_EVENT_IDS.read(records[0].payload)

    async def _record_before_catalog(self, event: Interaction, weight: float, ts: float) -> bool:
        """Interactions may arrive before their item.upserted: keep the activity on a point outside the catalog.

        The item ingestion completes that point in place when the item arrives, so popularity
        gathered meanwhile is not lost; feeds never return a point outside the catalog.
        """
        pid = point_id(event.item_id)
        activity = ItemActivity(popularity_ts=ts)
        activity.record(event, weight, ts, self._rules)
        activity.revision = 1
        # Inserts when missing; never overwrites a point another writer made meanwhile (it has a revision).
        await self._store.client.upsert(
            ITEMS,
            [models.PointStruct(id=pid, vector={}, payload=activity_only_payload(event.item_id, activity, ts))],
            update_filter=models.Filter(
                must=[
                    models.FieldCondition(key=ItemField.IN_CATALOG.key, match=models.MatchValue(value=False)),
                    models.IsEmptyCondition(is_empty=models.PayloadField(key=ItemField.DELETED_AT.key)),
                    revision_is(0),
                ]
            ),
        )
        log_event(_log, "interaction_before_catalog", item_id=event.item_id, event_id=event.event_id)
        return await self._item_has(pid, event.event_id)

    async def _update_user(self, event: Interaction, weight: float, ts: float, content: np.ndarray | None) -> None:
        pid = point_id(event.user_id)
        taste_change: str | None = None
        applied = False
        revision = 0
        logged = False

        async def attempt() -> bool:
            nonlocal taste_change, applied, revision, logged
            applied = False
            records = await self._store.client.retrieve(USERS, [pid], with_payload=True, with_vectors=True)
            profile = stored_user(records[0]) if records else UserProfile(user_id=event.user_id)
            if profile.has_recorded(event.event_id):
                # Applied by an earlier delivery, which may have failed before its notice went out.
                log_event(_log, "interaction_replay_skipped", user_id=event.user_id, event_id=event.event_id)
                taste_change = "updated" if TASTE in user_vectors(profile) else None
                revision = profile.revision
                return True
            if profile.beyond_horizon(event.event_id, ts):
                self._skipped(event, "user_replay_horizon")
                return True
            if not logged and self._behavior_log is not None and weight != 0:
                # Before the user write: a crash in between redelivers the entry, and the duplicate
                # log line carries the same event id, which the factorization counts once.
                await self._behavior_log.append(
                    LoggedInteraction(event.event_id, event.user_id, event.item_id, weight, ts)
                )
                logged = True
            expected = profile.revision
            taste_before = profile.taste
            profile.record(event, weight, ts, content, self._rules)
            behaviors, version = await self.item_behaviors(profile)
            profile.refresh_behavior(behaviors, version, self._rules)
            profile.revision = expected + 1
            vectors = user_vectors(profile)
            taste_change = None if profile.taste is taste_before else ("updated" if TASTE in vectors else "deleted")
            applied, revision = True, profile.revision
            await self._store.client.upsert(
                USERS,
                [models.PointStruct(id=pid, vector=vectors, payload=profile.payload())],
                update_filter=revision_is(expected),
            )
            stored = await self._store.client.retrieve(USERS, [pid], with_payload=keys([UserField.RECENT_EVENT_IDS]))
            return bool(stored) and event.event_id in UserField.RECENT_EVENT_IDS.read(stored[0].payload)

        await with_retries(attempt, f"user {event.user_id}")
        if applied:
            self._observer.interaction_applied()
            if self._on_applied is not None:
                self._on_applied()
        if taste_change is not None:
            await self._notices.publish([notice("users", TASTE, event.user_id, taste_change, revision)])

    async def item_behaviors(self, profile: UserProfile) -> tuple[dict[str, np.ndarray], int | None]:
        """Behavior vectors of the distinct items in the user's history, all of the newest model version."""
        item_ids = list(dict.fromkeys(entry.item_id for entry in profile.history if entry.weight != 0))
        if not item_ids:
            return {}, None
        records = await self._store.client.retrieve(
            ITEMS,
            [point_id(item_id) for item_id in item_ids],
            with_payload=keys([ItemField.ITEM_ID, ItemField.BEHAVIOR_VERSION]),
            with_vectors=[BEHAVIOR],
        )
        behaviors: dict[str, np.ndarray] = {}
        versions: dict[str, int] = {}
        for record in records:
            values = _vector(record, BEHAVIOR)
            item_id, version = ItemField.ITEM_ID.read(record.payload), ItemField.BEHAVIOR_VERSION.read(record.payload)
            if values is not None and item_id and version is not None:
                behaviors[item_id] = np.asarray(values, dtype=np.float64)
                versions[item_id] = version
        version_now = newest_version(versions)
        return of_version(behaviors, versions, version_now), version_now
