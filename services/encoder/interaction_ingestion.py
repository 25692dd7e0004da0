"""Consumes `recsys:interactions`: updates the item's counters and behavior vector, then the user's vectors."""

from __future__ import annotations

import logging
import time
from typing import Any

import numpy as np
from qdrant_client import models

from recsys.encoder.catalog import activity_only_payload
from recsys.encoder.interaction_rules import EventWeights, InteractionRules
from recsys.encoder.item_activity import ItemActivity
from recsys.encoder.keyed_locks import KeyedLocks
from recsys.encoder.notices import NoticePublisher, notice
from recsys.encoder.user_profile import UserProfile
from recsys.shared.events import EmbeddingNotice, Interaction, parse_interaction
from recsys.shared.ids import point_id
from recsys.shared.logs import log_event
from recsys.shared.store import BEHAVIOR, CONTENT, ITEMS, SESSION, TASTE, USERS, VectorStore

_log = logging.getLogger(__name__)

_ITEM_ACTIVITY_FIELDS = [
    "interaction_count",
    "popularity",
    "popularity_ts",
    "behavior_norm",
    "behavior_ts",
    "recent_event_ids",
]


def _vector(record: models.Record, name: str) -> list[float] | None:
    vectors: Any = record.vector
    if not isinstance(vectors, dict):
        return None
    value = vectors.get(name)
    return list(value) if value is not None else None


class InteractionIngestion:
    """The handler of the interactions stream; one instance serves every concurrent entry.

    Each entry updates the item first (so the user's behavior vector is computed against the item's
    new behavior vector), then the user. Each side remembers recent event ids, so a replayed entry
    (redelivered after a crash between the two writes, or published twice) changes nothing twice.
    """

    def __init__(
        self,
        store: VectorStore,
        notices: NoticePublisher,
        weights: EventWeights,
        rules: InteractionRules,
        item_locks: KeyedLocks,
    ) -> None:
        self._store = store
        self._notices = notices
        self._weights = weights
        self._rules = rules
        self._item_locks = item_locks
        # Handlers for one user are serialized in this process, so concurrent entries never lose an
        # update of the same user. Two processes updating one user can still race: a compare-and-set
        # on the stored event count is planned in a later issue.
        self._user_locks = KeyedLocks()

    async def handle(self, fields: dict[str, str], entry_id: str) -> None:
        """Applies one entry; raises MalformedEvent for an entry that can never be applied."""
        event = parse_interaction(fields, entry_id)
        weight = self._weights.weight(event)
        ts = event.ts if event.ts is not None else time.time()
        async with self._item_locks.hold(event.item_id):
            content = await self._update_item(event, weight, ts)
        async with self._user_locks.hold(event.user_id):
            await self._update_user(event, weight, ts, content)

    async def _update_item(self, event: Interaction, weight: float, ts: float) -> np.ndarray | None:
        """Counts the event on the item; returns the item's content vector, or None when it is not in the catalog."""
        pid = point_id(event.item_id)
        records = await self._store.client.retrieve(
            ITEMS, [pid], with_payload=_ITEM_ACTIVITY_FIELDS, with_vectors=[CONTENT, BEHAVIOR]
        )
        if not records:
            await self._record_before_catalog(event, weight, ts)
            return None
        record = records[0]
        content_values = _vector(record, CONTENT)
        content = np.asarray(content_values, dtype=np.float64) if content_values is not None else None
        activity = ItemActivity.from_stored(record.payload or {}, _vector(record, BEHAVIOR))
        if activity.has_recorded(event.event_id):
            return content
        activity.record(event, weight, ts, self._rules)
        operations: list[Any] = []
        behavior = activity.behavior.unit
        if weight != 0:
            if behavior is None:
                operations.append(
                    models.DeleteVectorsOperation(delete_vectors=models.DeleteVectors(points=[pid], vector=[BEHAVIOR]))
                )
            else:
                operations.append(
                    models.UpdateVectorsOperation(
                        update_vectors=models.UpdateVectors(
                            points=[models.PointVectors(id=pid, vector={BEHAVIOR: behavior.tolist()})]
                        )
                    )
                )
        # The event id goes in with (after) the vector change: if the process dies before it, the
        # entry is redelivered and applied again rather than lost.
        operations.append(
            models.SetPayloadOperation(set_payload=models.SetPayload(payload=activity.payload(), points=[pid]))
        )
        await self._store.client.batch_update_points(ITEMS, operations)
        if weight != 0:
            change = "deleted" if behavior is None else "updated"
            await self._notices.publish([notice("items", BEHAVIOR, event.item_id, change)])
        return content

    async def _record_before_catalog(self, event: Interaction, weight: float, ts: float) -> None:
        """Interactions may arrive before their item.upserted: keep the activity on a point outside the catalog.

        The item ingestion completes that point in place when the item arrives, so popularity and
        behavior gathered meanwhile are not lost; feeds never return a point outside the catalog.
        """
        pid = point_id(event.item_id)
        activity = ItemActivity(popularity_ts=ts)
        activity.record(event, weight, ts, self._rules)
        behavior = activity.behavior.unit
        vectors = {BEHAVIOR: behavior.tolist()} if behavior is not None else {}
        # Inserts when missing; never overwrites a catalog item another process wrote meanwhile.
        await self._store.client.upsert(
            ITEMS,
            [models.PointStruct(id=pid, vector=vectors, payload=activity_only_payload(event.item_id, activity, ts))],
            update_filter=models.Filter(
                must=[models.FieldCondition(key="in_catalog", match=models.MatchValue(value=False))]
            ),
        )
        log_event(_log, "interaction_before_catalog", item_id=event.item_id, event_id=event.event_id)

    async def _update_user(self, event: Interaction, weight: float, ts: float, content: np.ndarray | None) -> None:
        pid = point_id(event.user_id)
        records = await self._store.client.retrieve(USERS, [pid], with_payload=True, with_vectors=True)
        if records:
            record = records[0]
            profile = UserProfile.from_stored(
                record.payload or {}, _vector(record, TASTE), _vector(record, SESSION), _vector(record, BEHAVIOR)
            )
        else:
            profile = UserProfile(user_id=event.user_id)
        if profile.has_recorded(event.event_id):
            log_event(_log, "interaction_replay_skipped", user_id=event.user_id, event_id=event.event_id)
            return
        taste_before = profile.taste
        profile.record(event, weight, ts, content, self._rules)
        profile.refresh_behavior(await self._item_behaviors(profile), self._rules)

        vectors: dict[str, Any] = {}
        for name, accumulated in ((TASTE, profile.taste), (SESSION, profile.session), (BEHAVIOR, profile.behavior)):
            unit = accumulated.unit
            if unit is not None:
                vectors[name] = unit.tolist()
        # The whole point is rewritten: this process holds the user's lock and computed every field.
        await self._store.client.upsert(USERS, [models.PointStruct(id=pid, vector=vectors, payload=profile.payload())])
        notices: list[EmbeddingNotice] = []
        if profile.taste is not taste_before:
            notices.append(notice("users", TASTE, event.user_id, "updated" if TASTE in vectors else "deleted"))
        await self._notices.publish(notices)

    async def _item_behaviors(self, profile: UserProfile) -> dict[str, np.ndarray]:
        """Current behavior vectors of the distinct items in the user's history."""
        item_ids = list(dict.fromkeys(entry.item_id for entry in profile.history if entry.weight != 0))
        if not item_ids:
            return {}
        records = await self._store.client.retrieve(
            ITEMS, [point_id(item_id) for item_id in item_ids], with_payload=["item_id"], with_vectors=[BEHAVIOR]
        )
        behaviors: dict[str, np.ndarray] = {}
        for record in records:
            values = _vector(record, BEHAVIOR)
            item_id = (record.payload or {}).get("item_id")
            if values is not None and item_id is not None:
                behaviors[str(item_id)] = np.asarray(values, dtype=np.float64)
        return behaviors
