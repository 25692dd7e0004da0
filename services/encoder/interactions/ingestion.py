"""Consumes `recsys:interactions`: updates the item's counters and popularity, then the user's vectors."""

from __future__ import annotations

import asyncio
import copy
import logging
import random
import time
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
from qdrant_client import models

from recsys.encoder.interactions.behavior_fold import fold_by_newest_version
from recsys.encoder.interactions.behavior_log import BehaviorLog
from recsys.encoder.interactions.behavior_model import LoggedInteraction
from recsys.encoder.interactions.compare_and_set import MAX_ATTEMPTS, WriteConflict, revision_is
from recsys.encoder.interactions.item_activity import ItemActivity, activity_only_payload
from recsys.encoder.interactions.rules import EventWeights, InteractionRules
from recsys.encoder.interactions.user_profile import UserProfile
from recsys.encoder.keyed_locks import KeyedLocks
from recsys.encoder.notices import NoticePublisher, notice
from recsys.shared.embedded_reads import StoredPoint
from recsys.shared.events import DEFAULT_MAX_FUTURE_S, Interaction, parse_interaction
from recsys.shared.ids import point_id
from recsys.shared.logs import log_event
from recsys.shared.points import BEHAVIOR, CONTENT, ITEMS, SESSION, TASTE, USERS, ItemField, UserField, keys
from recsys.shared.store import GuardedPayload, GuardedPoint, VectorStore

_log = logging.getLogger(__name__)


def _vector(record: StoredPoint | models.Record, name: str) -> np.ndarray | None:
    vectors: Any = record.vector
    if not isinstance(vectors, dict):
        return None
    value = vectors.get(name)
    return np.asarray(value, dtype=np.float64) if value is not None else None


def stored_user(record: StoredPoint | models.Record) -> UserProfile:
    return UserProfile.from_stored(
        record.payload or {}, _vector(record, TASTE), _vector(record, SESSION), _vector(record, BEHAVIOR)
    )


def user_vectors(profile: UserProfile, value: Callable[[np.ndarray], Any] = np.ndarray.tolist) -> dict[str, Any]:
    """The user's stored vectors by name, each as `value` makes it (VectorStore.vector_value for a write)."""
    vectors: dict[str, Any] = {}
    for name, accumulated in ((TASTE, profile.taste), (SESSION, profile.session), (BEHAVIOR, profile.behavior)):
        unit = accumulated.unit
        if unit is not None:
            vectors[name] = value(unit)
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
class _Pending:
    """One entry waiting in a batch, and what the batch found out about it."""

    event: Interaction
    order: tuple[int, int]
    weight: float
    ts: float
    done: asyncio.Future[None]
    content: np.ndarray | None = None
    deleted: bool = False
    item_skip: str | None = None
    user_skip: str | None = None
    applied: bool = False
    replayed: bool = False
    failure: BaseException | None = None

    def reset_user_side(self) -> None:
        self.user_skip, self.applied, self.replayed = None, False, False

    @property
    def reaches_user(self) -> bool:
        return not self.deleted and self.failure is None


@dataclass
class _UserOutcome:
    """What a user's write in a batch changed: a notice to publish when its taste changed or was replayed."""

    taste_change: str | None
    revision: int


def _stream_order(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    try:
        return int(ms), int(seq or 0)
    except ValueError:
        return (0, 0)  # ids that are not stream ids (direct calls in tests) keep their arrival order


class InteractionIngestion:
    """The handler of the interactions stream; one instance serves every concurrent entry.

    Concurrent entries are applied together in batches of up to `batch_size` (see `_apply`): one
    task owns the queue, and each batch reads its items and users in one request each and writes
    them in one request each, so the round trips per interaction fall with the batch's size. Each
    entry's handler still returns or raises on its own: an entry that cannot be applied fails alone.

    Each entry updates the item first, then the user; several entries of one user or item in a
    batch apply in stream order. Each side remembers recent event ids, so a replayed entry
    (redelivered after a crash between the two writes, or published twice) changes nothing twice.
    Each side is a compare-and-set on its `revision` (see compare_and_set.py), so two processes
    updating the same user or item never lose an update; a point that lost is re-read and written
    again alone. Within this process, the item locks keep item ingestion's writes out of the way.
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
        batch_size: int = 64,
    ) -> None:
        self._store = store
        self._observer = observer or _Unobserved()
        self._max_future_s = max_future_s
        self._notices = notices
        self._weights = weights
        self._rules = rules
        self._item_locks = item_locks
        self._behavior_log = behavior_log
        # Told of every newly applied interaction: the behavior refresh counts them.
        self._on_applied = on_applied
        self._batch_size = batch_size
        self._queue: list[_Pending] = []
        self._drain: asyncio.Task[None] | None = None

    async def handle(self, fields: dict[str, str], entry_id: str) -> None:
        """Applies one entry; raises MalformedEvent for an entry that can never be applied."""
        event = parse_interaction(fields, entry_id, max_future_s=self._max_future_s)
        weight = self._weights.weight(event)
        ts = event.ts if event.ts is not None else time.time()
        loop = asyncio.get_running_loop()
        pending = _Pending(event, _stream_order(entry_id), weight, ts, loop.create_future())
        self._queue.append(pending)
        if self._drain is None or self._drain.done():
            # Starts after the handlers ready in this turn of the loop have queued theirs; while a
            # batch is applied, the next one gathers what arrives meanwhile.
            self._drain = loop.create_task(self._drain_queue())
        await asyncio.shield(pending.done)

    async def _drain_queue(self) -> None:
        while self._queue:
            batch, self._queue = self._queue[: self._batch_size], self._queue[self._batch_size :]
            try:
                await self._apply(batch)
            except BaseException as exc:
                for pending in batch:
                    if not pending.done.done():
                        pending.done.set_exception(exc)
                if isinstance(exc, asyncio.CancelledError):
                    raise
            else:
                for pending in batch:
                    if pending.done.done():
                        continue
                    if pending.failure is not None:
                        pending.done.set_exception(pending.failure)
                    else:
                        pending.done.set_result(None)

    async def _apply(self, batch: list[_Pending]) -> None:
        """Items first (all of them locked against item ingestion), then users, then one Redis round trip."""
        batch = sorted(batch, key=lambda pending: pending.order)  # stable: equal orders keep arrival order
        by_item: dict[str, list[_Pending]] = {}
        for pending in batch:
            by_item.setdefault(pending.event.item_id, []).append(pending)
        async with AsyncExitStack() as locks:
            for item_id in sorted(by_item):  # one order for everyone holding several
                await locks.enter_async_context(self._item_locks.hold(item_id))
            await with_retries_of(by_item, self._update_items, "items")
        for pending in batch:
            if pending.deleted:
                self._skipped(pending.event, "item_deleted")
            elif pending.item_skip is not None:
                self._skipped(pending.event, pending.item_skip)
        by_user: dict[str, list[_Pending]] = {}
        for pending in batch:
            if pending.reaches_user:
                by_user.setdefault(pending.event.user_id, []).append(pending)
        outcomes: dict[str, _UserOutcome] = {}

        async def update_users(todo: dict[str, list[_Pending]]) -> set[str]:
            return await self._update_users(todo, outcomes)

        await with_retries_of(by_user, update_users, "users")
        for user_id, events in by_user.items():
            if any(isinstance(pending.failure, WriteConflict) for pending in events):
                outcomes.pop(user_id, None)  # its write never landed: nothing to announce
        await self._announce(batch, outcomes)
        for pending in batch:
            if pending.user_skip is not None:
                self._skipped(pending.event, pending.user_skip)
            if pending.applied:
                self._observer.interaction_applied()
                if self._on_applied is not None:
                    self._on_applied()

    def _skipped(self, event: Interaction, reason: str) -> None:
        self._observer.interaction_skipped(reason)
        log_event(_log, "interaction_skipped", reason=reason, event_id=event.event_id, item_id=event.item_id)

    async def _update_items(self, todo: dict[str, list[_Pending]]) -> set[str]:
        """Counts each item's events on it; returns the items whose write another writer beat (to do again).

        Reports on each entry its item's content vector (None outside the catalog) or its deletion.
        """
        pids = {item_id: point_id(item_id) for item_id in todo}
        records = await self._store.retrieve(
            ITEMS,
            list(pids.values()),
            with_payload=keys([*ItemField.ACTIVITY, ItemField.IN_CATALOG, ItemField.DELETED_AT]),
            with_vectors=[CONTENT],
        )
        stored = {str(record.id): record for record in records}
        payloads: list[GuardedPayload] = []
        missing: list[models.PointStruct] = []
        written: dict[str, list[str]] = {}
        for item_id, events in todo.items():
            record = stored.get(pids[item_id])
            for pending in events:
                pending.item_skip, pending.deleted, pending.content = None, False, None
            if record is not None and ItemField.DELETED_AT.read(record.payload) is not None:
                for pending in events:
                    pending.deleted = True  # a tombstone: interactions with a deleted item count nowhere
                continue
            if record is None:
                activity = ItemActivity(popularity_ts=events[0].ts)
            else:
                activity = ItemActivity.from_stored(record.payload or {})
                content = _vector(record, CONTENT)
                for pending in events:
                    pending.content = content
            expected = activity.revision
            activity, recorded = self._record_on_item(activity, events)
            if not recorded:
                continue
            written[item_id] = recorded
            if record is None:
                missing.append(
                    models.PointStruct(
                        id=pids[item_id], vector={}, payload=activity_only_payload(item_id, activity, events[0].ts)
                    )
                )
                log_event(_log, "interaction_before_catalog", item_id=item_id, event_ids=recorded)
            else:
                payloads.append(GuardedPayload(pids[item_id], activity.payload(), revision_is(expected)))
        # Inserts when missing; never overwrites a point another writer made meanwhile (it has a revision).
        before_catalog = models.Filter(
            must=[
                models.FieldCondition(key=ItemField.IN_CATALOG.key, match=models.MatchValue(value=False)),
                models.IsEmptyCondition(is_empty=models.PayloadField(key=ItemField.DELETED_AT.key)),
                revision_is(0),
            ]
        )
        await self._store.write_where(ITEMS, payloads, [GuardedPoint(point, before_catalog) for point in missing])
        return await self._not_landed(ITEMS, ItemField.RECENT_EVENT_IDS, written)

    def _record_on_item(self, activity: ItemActivity, events: list[_Pending]) -> tuple[ItemActivity, list[str]]:
        """Applies the item's events in order; returns the activity and the ids recorded (the write must hold them)."""
        recorded: list[str] = []
        for pending in events:
            event = pending.event
            if pending.failure is not None:
                continue
            if activity.has_recorded(event.event_id):
                continue
            if activity.beyond_horizon(event.event_id, pending.ts):
                # Possibly counted already and forgotten since: skipped on the item only, the user decides for itself.
                pending.item_skip = "item_replay_horizon"
                continue
            before = copy.copy(activity)
            try:
                activity.record(event, pending.weight, pending.ts, self._rules)
            except Exception as exc:  # this entry's own failure: the others of the batch go on
                activity, pending.failure = before, exc  # record() may have changed part of it
                continue
            activity.revision += 1
            recorded.append(event.event_id)
        return activity, recorded

    async def _not_landed(self, collection: str, field: Any, written: dict[str, list[str]]) -> set[str]:
        """The subjects whose stored recent event ids lack some event just written: another writer won."""
        if not written:
            return set()
        pids = {subject: point_id(subject) for subject in written}
        records = await self._store.retrieve(collection, list(pids.values()), with_payload=keys([field]))
        stored = {str(record.id): set(field.read(record.payload)) for record in records}
        return {
            subject for subject, event_ids in written.items() if not set(event_ids) <= stored.get(pids[subject], set())
        }

    async def _update_users(self, todo: dict[str, list[_Pending]], outcomes: dict[str, _UserOutcome]) -> set[str]:
        """Applies each user's events in order; returns the users whose write another writer beat."""
        pids = {user_id: point_id(user_id) for user_id in todo}
        records = await self._store.retrieve(USERS, list(pids.values()), with_payload=True, with_vectors=True)
        stored = {str(record.id): record for record in records}
        changed: dict[str, tuple[UserProfile, int, bool]] = {}
        for user_id, events in todo.items():
            record = stored.get(pids[user_id])
            profile = stored_user(record) if record is not None else UserProfile(user_id=user_id)
            expected, taste_before = profile.revision, profile.taste
            replayed = False
            for pending in events:
                pending.reset_user_side()
                profile, applied = self._record_on_user(profile, pending)
                replayed = replayed or pending.replayed
                if applied:
                    profile.revision += 1
            if profile.revision != expected:
                changed[user_id] = (profile, expected, profile.taste is not taste_before)
            elif replayed:
                # Applied by an earlier delivery, which may have failed before its notice went out.
                taste = "updated" if TASTE in user_vectors(profile) else None
                outcomes[user_id] = _UserOutcome(taste, profile.revision)
        await self._fold_behaviors([profile for profile, _, _ in changed.values()])
        points: list[GuardedPoint] = []
        written: dict[str, list[str]] = {}
        for user_id, (profile, expected, taste_moved) in changed.items():
            vectors = user_vectors(profile, self._store.vector_value)
            # Built without pydantic's element-by-element check of ~800 floats: they are the profile's own
            # finite unit vectors, and embedded Qdrant checks dimensions and NaNs again on upsert.
            point = models.PointStruct.model_construct(id=pids[user_id], vector=vectors, payload=profile.payload())
            points.append(GuardedPoint(point, revision_is(expected)))
            written[user_id] = [p.event.event_id for p in todo[user_id] if p.applied]
            taste = None if not taste_moved else ("updated" if TASTE in vectors else "deleted")
            if taste is None and any(p.replayed for p in todo[user_id]) and TASTE in vectors:
                taste = "updated"
            outcomes[user_id] = _UserOutcome(taste, profile.revision)
        await self._store.write_where(USERS, points=points)
        return await self._not_landed(USERS, UserField.RECENT_EVENT_IDS, written)

    def _record_on_user(self, profile: UserProfile, pending: _Pending) -> tuple[UserProfile, bool]:
        event = pending.event
        if profile.has_recorded(event.event_id):
            log_event(_log, "interaction_replay_skipped", user_id=event.user_id, event_id=event.event_id)
            pending.replayed = True
            return profile, False
        if profile.beyond_horizon(event.event_id, pending.ts):
            pending.user_skip = "user_replay_horizon"
            return profile, False
        before = copy.copy(profile)
        try:
            profile.record(event, pending.weight, pending.ts, pending.content, self._rules)
        except Exception as exc:  # this entry's own failure: the others of the batch go on
            pending.failure = exc
            return before, False
        pending.applied = True
        return profile, True

    async def _fold_behaviors(self, profiles: list[UserProfile]) -> None:
        """Refolds these users' behavior vectors from their histories: one read of their items, one product per version.

        The rule is UserProfile.refresh_behavior's against the newest model version each user's items reach
        (behavior_fold.fold_by_newest_version): one product for the batch instead of an array build per user.
        """
        item_ids = list(dict.fromkeys(item_id for profile in profiles for item_id in _history_items(profile)))
        item_of = {point_id(item_id): item_id for item_id in item_ids}
        rows = (
            await self._store.vector_rows(ITEMS, list(item_of), BEHAVIOR, ItemField.BEHAVIOR_VERSION.key)
            if item_ids
            else []
        )
        read_version = ItemField.BEHAVIOR_VERSION.read_as
        found = [
            (item_id, row.vector, version)
            for row in rows
            if (item_id := item_of.get(str(row.id))) and (version := read_version(row.value)) is not None
        ]
        folded = fold_by_newest_version(
            [profile.history for profile in profiles],
            [profile.last_event_ts for profile in profiles],
            [item_id for item_id, _, _ in found],
            np.stack([vector for _, vector, _ in found]) if found else np.zeros((0, 0)),
            [version for _, _, version in found],
            self._rules.behavior_half_life_s,
        )
        for profile, (behavior, version) in zip(profiles, folded, strict=True):
            profile.adopt_behavior(behavior, version)

    async def _announce(self, batch: list[_Pending], outcomes: dict[str, _UserOutcome]) -> None:
        """The batch's behavior log lines and taste notices, in one Redis round trip.

        After the user writes: a crash before this redelivers the entries, whose replays append their
        log lines again (the factorization counts an event id once) and publish their notices again.
        """
        log = self._behavior_log
        lines = (
            [
                LoggedInteraction(
                    p.event.event_id, p.event.user_id, p.event.item_id, p.weight, p.ts, p.event.type.value
                )
                for p in batch
                if (p.applied or p.replayed) and p.weight != 0
            ]
            if log is not None
            else []
        )
        notices = [
            notice("users", TASTE, user_id, outcome.taste_change, outcome.revision)
            for user_id, outcome in outcomes.items()
            if outcome.taste_change is not None
        ]
        if not lines and not notices:
            return
        async with self._notices.redis.pipeline(transaction=False) as pipe:
            if log is not None:
                for line in lines:
                    log.add_to(pipe, line)
            self._notices.add_to(pipe, notices)
            await pipe.execute()


def _history_items(profile: UserProfile) -> dict[str, None]:
    """The distinct items of a user's history that move its behavior vector (weight not 0), in order."""
    return dict.fromkeys(entry.item_id for entry in profile.history if entry.weight != 0)


async def with_retries_of(
    todo: dict[str, list[_Pending]], attempt: Callable[[dict[str, list[_Pending]]], Awaitable[set[str]]], what: str
) -> None:
    """Runs `attempt` on the subjects whose write has not landed yet, until none is left (compare_and_set.py).

    Only the subjects another writer beat are read and written again; those that keep losing fail
    their own entries (WriteConflict, retried later), not the batch.
    """
    for tries in range(MAX_ATTEMPTS):
        if not todo:
            return
        lost = await attempt(todo)
        todo = {subject: events for subject, events in todo.items() if subject in lost}
        if todo:
            # A short random pause lets the competing writer finish, so the retry reads its result.
            await asyncio.sleep(random.uniform(0, 0.002 * (tries + 1)))
    for subject, events in todo.items():
        for pending in events:
            pending.reset_user_side()
            pending.failure = WriteConflict(f"{what} {subject}: still conflicting after {MAX_ATTEMPTS} attempts")
