"""Refits the collaborative model periodically and writes the new item and user behavior vectors, versioned.

A refresh reads the behavior log, factorizes in a worker thread (so ingestion keeps running on
the event loop) with a `Factorizer` (in this process by default, or on Spark), then writes every
item's vector with the new `behavior_version` in batches, removes vectors of items the new model
does not cover, and re-folds every user against the new item vectors, a page of users at a time:
one sparse product folds the page in (behavior_fold.py), one batch writes it (compare-and-set per
user, like ingestion), and a user someone else wrote meanwhile is redone alone, so no user is
left in the old basis. While a refresh is writing, ingestion and the recommender only combine
vectors of one version.
A Redis lock keeps two encoder processes from refreshing at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
from qdrant_client import models
from redis.asyncio import Redis

from recsys.encoder.interactions.behavior_fold import ItemDirections, fold_in, history_weights
from recsys.encoder.interactions.behavior_log import BehaviorLog
from recsys.encoder.interactions.behavior_model import (
    InteractionMatrixBuilder,
    ItemFactors,
    LoggedInteraction,
    interaction_matrix,
)
from recsys.encoder.interactions.compare_and_set import revision_is, with_retries
from recsys.encoder.interactions.factorizer import Factorizer, InProcessFactorizer
from recsys.encoder.interactions.ingestion import stored_user, user_vectors
from recsys.encoder.interactions.rules import InteractionRules
from recsys.encoder.notices import NoticePublisher, notice
from recsys.shared.ids import point_id
from recsys.shared.lifecycle import cancel_and_wait
from recsys.shared.logs import log_event
from recsys.shared.points import BEHAVIOR, ITEMS, USERS, ItemField, UserField, keys
from recsys.shared.store import VectorStore

_log = logging.getLogger(__name__)

_RELEASE_LOCK = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end"


@dataclass(frozen=True)
class RefreshPolicy:
    """When to refit and how: every `every_interactions` applied here, or every `interval_s` when any arrived."""

    every_interactions: int
    interval_s: float
    model_half_life_s: float
    dims: int
    batch_size: int
    device: str
    lock_key: str
    lock_ttl_s: int = 3600


@dataclass(frozen=True)
class RefreshReport:
    """What one refresh did, and how long its parts took."""

    version: int
    interactions: int
    items: int
    users: int
    items_cleared: int
    read_s: float
    factorize_s: float
    write_s: float


class RefreshObserver(Protocol):
    """What the refresh reports: each refresh written (with its figures), each one that failed."""

    def refresh_succeeded(self, report: RefreshReport) -> None: ...

    def refresh_failed(self) -> None: ...


class _Unobserved:
    def refresh_succeeded(self, report: RefreshReport) -> None:
        pass

    def refresh_failed(self) -> None:
        pass


_NOT_DELETED = models.Filter(must=[models.IsEmptyCondition(is_empty=models.PayloadField(key=ItemField.DELETED_AT.key))])


def fit(
    entries: Iterable[LoggedInteraction] | InteractionMatrixBuilder,
    policy: RefreshPolicy,
    factorizer: Factorizer | None = None,
) -> ItemFactors:
    """The blocking part of a refresh: matrix and factorization (run in a worker thread)."""
    if isinstance(entries, InteractionMatrixBuilder):
        matrix = entries.build(policy.model_half_life_s)
    else:
        matrix = interaction_matrix(entries, policy.model_half_life_s)
    return (factorizer or InProcessFactorizer(policy.device)).factorize(matrix, policy.dims)


class BehaviorRefresh:
    """Owns the periodic refresh task; `note_interaction` is called by ingestion for every applied event."""

    def __init__(
        self,
        store: VectorStore,
        redis: Redis,
        log: BehaviorLog,
        notices: NoticePublisher,
        rules: InteractionRules,
        policy: RefreshPolicy,
        observer: RefreshObserver | None = None,
        factorizer: Factorizer | None = None,
    ) -> None:
        self._store = store
        self._factorizer = factorizer or InProcessFactorizer(policy.device)
        self._observer = observer or _Unobserved()
        self._redis = redis
        self._log = log
        self._notices = notices
        self._rules = rules
        self.policy = policy
        self._pending = 0
        self._due = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.last_report: RefreshReport | None = None
        # What a running refresh is doing: idle, reading, factorizing, writing (for logs and tests).
        self.phase = "idle"

    def note_interaction(self) -> None:
        self._pending += 1
        if self.policy.every_interactions and self._pending >= self.policy.every_interactions:
            self._due.set()

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="behavior-refresh")

    async def stop(self) -> None:
        task, self._task = self._task, None
        await cancel_and_wait(task)

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._due.wait(), self.policy.interval_s)
            self._due.clear()
            if self._pending == 0:
                continue
            try:
                await self.refresh()
            except Exception as exc:  # a failed refresh keeps the old vectors; the next one tries again
                self._observer.refresh_failed()
                log_event(_log, "behavior_refresh_failed", logging.ERROR, error=repr(exc))

    async def refresh(self) -> RefreshReport | None:
        """Refits and rewrites; None when another process holds the refresh lock."""
        token = uuid.uuid4().hex
        if not await self._redis.set(self.policy.lock_key, token, nx=True, ex=self.policy.lock_ttl_s):
            log_event(_log, "behavior_refresh_skipped", reason="another process is refreshing")
            return None
        try:
            pending_before = self._pending
            report = await self._refresh()
            self._pending = max(0, self._pending - pending_before)
            self.last_report = report
            self._observer.refresh_succeeded(report)
            log_event(_log, "behavior_refreshed", **report.__dict__)
            return report
        finally:
            await self._redis.eval(_RELEASE_LOCK, 1, self.policy.lock_key, token)  # type: ignore[misc]

    async def _refresh(self) -> RefreshReport:
        started = time.monotonic()
        try:
            self.phase = "reading"
            entries = InteractionMatrixBuilder()
            async for entry in self._log.entries():
                entries.add(entry)
            read_done = time.monotonic()
            self.phase = "factorizing"
            factors = await asyncio.to_thread(fit, entries, self.policy, self._factorizer)
            fitted = time.monotonic()
            self.phase = "writing"
            version = await self._next_version()
            written = await self._write_items(factors, version)
            cleared = await self._clear_stale_items(version)
            users = await self._refold_users(factors, version)
        finally:
            self.phase = "idle"
        return RefreshReport(
            version=version,
            interactions=entries.read,
            items=written,
            users=users,
            items_cleared=cleared,
            read_s=round(read_done - started, 3),
            factorize_s=round(fitted - read_done, 3),
            write_s=round(time.monotonic() - fitted, 3),
        )

    async def _next_version(self) -> int:
        """Milliseconds now, and above every version written before (clocks of two hosts may disagree)."""
        records, _ = await self._store.client.scroll(
            ITEMS,
            scroll_filter=models.Filter(
                must=[
                    models.FieldCondition(
                        key=ItemField.BEHAVIOR_VERSION.key, range=models.Range(gte=int(time.time() * 1000))
                    )
                ]
            ),
            limit=1,
            with_payload=keys([ItemField.BEHAVIOR_VERSION]),
        )
        newest = max((ItemField.BEHAVIOR_VERSION.read(r.payload) or 0 for r in records), default=0)
        return max(int(time.time() * 1000), newest + 1)

    async def _write_items(self, factors: ItemFactors, version: int) -> int:
        """New vectors for the items that still exist (deleted ones excepted), in batches; each batch yields."""
        written = 0
        size = self.policy.batch_size
        for start in range(0, len(factors.item_ids), size):
            rows = range(start, min(start + size, len(factors.item_ids)))
            ids = {point_id(factors.item_ids[row]): row for row in rows}
            existing = await self._store.client.retrieve(
                ITEMS, list(ids), with_payload=keys([ItemField.DELETED_AT]), with_vectors=False
            )
            present = [ids[str(r.id)] for r in existing if ItemField.DELETED_AT.read(r.payload) is None]
            if not present:
                continue
            operations: list[Any] = [
                models.UpdateVectorsOperation(
                    update_vectors=models.UpdateVectors(
                        points=[
                            models.PointVectors(
                                id=point_id(factors.item_ids[row]), vector={BEHAVIOR: factors.vectors[row].tolist()}
                            )
                            for row in present
                        ],
                        # A deletion that landed since the read keeps its tombstone bare.
                        update_filter=_NOT_DELETED,
                    )
                )
            ]
            operations += [
                models.SetPayloadOperation(
                    set_payload=models.SetPayload(
                        payload={
                            ItemField.BEHAVIOR_VERSION.key: version,
                            ItemField.BEHAVIOR_NORM.key: float(factors.strengths[row]),
                        },
                        # By id: a filter makes embedded Qdrant scan the whole collection per item. A
                        # deletion landing since the read leaves these two fields on its tombstone, harmless.
                        points=[point_id(factors.item_ids[row])],
                    )
                )
                for row in present
            ]
            await self._store.client.batch_update_points(ITEMS, operations)
            await self._notices.publish(
                [notice("items", BEHAVIOR, factors.item_ids[row], "updated", version) for row in present]
            )
            written += len(present)
        return written

    async def _clear_stale_items(self, version: int) -> int:
        """Items the new model does not cover (nobody engages with them any more) lose their old-basis vector."""
        stale = models.Filter(
            should=[
                models.FieldCondition(key=ItemField.BEHAVIOR_VERSION.key, range=models.Range(lt=version)),
                models.Filter(
                    must=[
                        models.IsEmptyCondition(is_empty=models.PayloadField(key=ItemField.BEHAVIOR_VERSION.key)),
                        models.HasVectorCondition(has_vector=BEHAVIOR),
                    ]
                ),
            ]
        )
        cleared = 0
        offset: Any = None
        while True:
            records, offset = await self._store.client.scroll(
                ITEMS,
                scroll_filter=stale,
                limit=self.policy.batch_size,
                offset=offset,
                with_payload=keys([ItemField.ITEM_ID]),
            )
            if records:
                ids = [record.id for record in records]
                await self._store.client.batch_update_points(
                    ITEMS,
                    [
                        models.DeleteVectorsOperation(
                            delete_vectors=models.DeleteVectors(points=ids, vector=[BEHAVIOR])
                        ),
                        models.SetPayloadOperation(
                            set_payload=models.SetPayload(
                                payload={ItemField.BEHAVIOR_VERSION.key: None, ItemField.BEHAVIOR_NORM.key: 0.0},
                                points=ids,
                            )
                        ),
                    ],
                )
                cleared += len(ids)
            if offset is None:
                return cleared

    async def _refold_users(self, factors: ItemFactors, version: int) -> int:
        """Every user's behavior vector recomputed from their history against the new item vectors, a page at a time."""
        directions = ItemDirections.of(factors.item_ids, factors.vectors)
        item_behaviors = factors.as_mapping()
        refolded = 0
        offset: Any = None
        while True:
            records, offset = await self._store.client.scroll(
                USERS, limit=self.policy.batch_size, offset=offset, with_payload=True, with_vectors=True
            )
            if records:
                losers = await self._refold_page(records, directions, version)
                for pid in losers:
                    await with_retries(lambda pid=pid: self._refold_user(pid, item_behaviors, version), f"user {pid}")
                refolded += len(records)
            if offset is None:
                return refolded

    async def _refold_page(self, records: list[models.Record], directions: ItemDirections, version: int) -> list[str]:
        """Folds a page of users in one product and writes it in one batch; returns the users to redo one by one.

        The rule is the per-user one (_refold_user): each user's write lands only while their stored
        revision is the one read, and a user counts as done when the stored vector is in the new
        basis (or there is none), whoever wrote it last; the others are redone alone.
        """
        profiles = [stored_user(record) for record in records]
        folded = fold_in(
            history_weights(
                [profile.history for profile in profiles],
                [profile.last_event_ts for profile in profiles],
                directions.rows,
                self._rules.behavior_half_life_s,
            ),
            directions.units,
        )
        operations: list[Any] = []
        for row, (record, profile) in enumerate(zip(records, profiles, strict=True)):
            expected = profile.revision
            profile.adopt_behavior(folded.behavior(row, profile.last_event_ts), version)
            profile.revision = expected + 1
            operations.append(
                models.UpsertOperation(
                    upsert=models.PointsList(
                        points=[
                            models.PointStruct(id=record.id, vector=user_vectors(profile), payload=profile.payload())
                        ],
                        update_filter=revision_is(expected),
                    )
                )
            )
        await self._store.client.batch_update_points(USERS, operations)
        pids = [str(record.id) for record in records]
        stored = await self._store.client.retrieve(USERS, pids, with_payload=keys([UserField.BEHAVIOR_VERSION]))
        done = {str(r.id) for r in stored if UserField.BEHAVIOR_VERSION.read(r.payload) in (version, None)}
        # A user deleted meanwhile is done as well: nothing is left to re-fold.
        present = {str(r.id) for r in stored}
        return [pid for pid in pids if pid in present and pid not in done]

    async def _refold_user(self, pid: str, item_behaviors: dict[str, np.ndarray], version: int) -> bool:
        records = await self._store.client.retrieve(USERS, [pid], with_payload=True, with_vectors=True)
        if not records:
            return True
        profile = stored_user(records[0])
        expected = profile.revision
        profile.refresh_behavior(item_behaviors, version, self._rules)
        profile.revision = expected + 1
        await self._store.client.upsert(
            USERS,
            [models.PointStruct(id=pid, vector=user_vectors(profile), payload=profile.payload())],
            update_filter=revision_is(expected),
        )
        stored = await self._store.client.retrieve(USERS, [pid], with_payload=keys([UserField.BEHAVIOR_VERSION]))
        # Done when the stored vector is in the new basis (or there is none), whoever wrote it last;
        # an ingestion that read the old item vectors and won the race is redone here.
        return not stored or UserField.BEHAVIOR_VERSION.read(stored[0].payload) in (version, None)
