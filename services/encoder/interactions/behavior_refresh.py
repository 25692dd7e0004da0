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

With the content map on (content_map.py), the refresh also reads every catalog item's content
vector, learns a map from content to behavior vectors on the warm items, saves it as the new
version's model record (recsys.shared.behavior_models) before writing any item, and writes a
vector for every item with content: observed and inferred blended by the item's evidence (with the
item evidence constant k the tuner chose, when it tunes), so items with few or no interactions are
carried by their content. Items whose stale vector it finds afterwards (an item.upserted that landed
meanwhile) get their inferred vector instead of none.

With each item's vector the refresh writes its successors (successors.py: what followed it in
users' histories, for ForYou's sequence signal), from the same log it factorized; an item the new
model leaves out gets none, so no list outlives the log it came from.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
from qdrant_client import models
from redis.asyncio import Redis

from recsys.encoder.content_map import ContentMap, inferred_item
from recsys.encoder.interactions.behavior_fold import ItemDirections, fold_in, history_weights
from recsys.encoder.interactions.behavior_log import BehaviorLog
from recsys.encoder.interactions.behavior_model import (
    InteractionMatrixBuilder,
    ItemFactors,
)
from recsys.encoder.interactions.blend_tuning import TuningPlan
from recsys.encoder.interactions.compare_and_set import revision_is, with_retries
from recsys.encoder.interactions.factorizer import Factorizer, InProcessFactorizer
from recsys.encoder.interactions.ingestion import stored_user, user_vectors
from recsys.encoder.interactions.refresh_tuning import (
    BlendTuning,
    ModelFit,
    RefreshTuning,
    blend_record,
    tune_on_log,
)
from recsys.encoder.interactions.rules import InteractionRules
from recsys.encoder.interactions.type_weights import TypeWeighting
from recsys.encoder.notices import NoticePublisher, notice
from recsys.shared.behavior_models import BehaviorModelRecord, save_model_record
from recsys.shared.blending import ForYouWeights
from recsys.shared.ids import point_id
from recsys.shared.lifecycle import cancel_and_wait
from recsys.shared.logs import log_event
from recsys.shared.points import BEHAVIOR, CONTENT, ITEMS, USERS, ItemField, UserField, keys
from recsys.shared.store import VectorStore
from recsys.shared.successors import KEEP, SuccessorTable, transition_matrix

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
    # Cold items carried by their content (content_map.py; RECSYS_BEHAVIOR_CONTENT_MAP and neighbours).
    content_map: bool = True
    item_evidence_k: float = 10.0
    content_min_evidence: int = 3
    # Successors kept per item for ForYou's sequence signal (RECSYS_BEHAVIOR_SUCCESSORS); 0 writes none.
    successors: int = KEEP
    # How much each interaction type counts in the model (type_weights.py); the tuner may choose another contrast.
    type_weighting: TypeWeighting = field(default_factory=TypeWeighting)


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
    # The ForYou weights tuned on the log (None: too few events or tuning off) and their validation figures.
    blend_weights: dict[str, float] | None = None
    blend_tuning: dict[str, float] | None = None
    # Each configured interaction type's weight in the model this refresh fit (type_weights.py).
    event_type_weights: dict[str, float] | None = None
    # The content map's item evidence constant k the model was fit with (None: no content map).
    item_evidence_k: float | None = None


@dataclass(frozen=True)
class CatalogContent:
    """The content vectors of every catalog item that has one (deleted items left out), row-aligned with ids.

    Held as float32: 100,000 items × 384 dimensions is 154 MB, read a page at a time.
    """

    item_ids: list[str]
    vectors: np.ndarray  # (items, content_dims) float32

    @classmethod
    def empty(cls) -> CatalogContent:
        return cls([], np.zeros((0, 0), dtype=np.float32))


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
    model: ModelFit, entries: InteractionMatrixBuilder, catalog: CatalogContent, version: int
) -> tuple[ItemFactors, ContentMap | None]:
    """The blocking part of a refresh (a worker thread): the model, its content map, the items it carries."""
    return model.fit_with_map(entries.events(), catalog.item_ids, catalog.vectors, version)


def item_successors(entries: InteractionMatrixBuilder, policy: RefreshPolicy) -> SuccessorTable:
    """The blocking part of the successor lists: each item's strongest successors in the log (a worker thread)."""
    if policy.successors <= 0:
        return SuccessorTable.empty()
    user, item, weight, ts, _, item_ids = entries.columns()
    return SuccessorTable(transition_matrix(user, item, weight, ts, len(item_ids), keep=policy.successors), item_ids)


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
        blend_tuning: BlendTuning | None = None,
    ) -> None:
        self._store = store
        self._blend_tuning = blend_tuning or BlendTuning(False, ForYouWeights(1.0, 0.0, 0.0, 0.0, 1.0), TuningPlan())
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
        # What a running refresh is doing: idle, reading, factorizing, tuning, writing (for logs and tests).
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
            version = await self._next_version()
            needs_content = self.policy.content_map or self._blend_tuning.enabled
            catalog = await self._read_content() if needs_content else CatalogContent.empty()
            read_done = time.monotonic()
            # Tuned first: it chooses the blend weights, how much each interaction type counts in the model and
            # the content map's item evidence k.
            configured = self._model_fit()
            chosen = RefreshTuning(None, configured.type_weighting, configured.item_evidence_k)
            if self._blend_tuning.enabled:
                self.phase = "tuning"
                chosen = await asyncio.to_thread(
                    tune_on_log,
                    entries,
                    catalog.item_ids,
                    catalog.vectors,
                    configured,
                    self._rules,
                    self._blend_tuning,
                )
            self.phase = "factorizing"
            model = chosen.model(configured)
            # The map saved below records the k it was fit with: the chosen one.
            factors, content_map = await asyncio.to_thread(fit, model, entries, catalog, version)
            successors = await asyncio.to_thread(item_successors, entries, self.policy)
            del catalog
            fitted = time.monotonic()
            self.phase = "writing"
            # Before any item: an item.upserted from now on infers its vector with this version's map.
            tuned, weighting = chosen.blend, chosen.type_weighting
            blend_weights, blend_tuning = blend_record(tuned, self._blend_tuning)
            if weighting.configured:
                blend_tuning = {**blend_tuning, "event_type_contrast": weighting.contrast}
            if model.content_map:
                evidence = chosen.evidence.as_record() if chosen.evidence is not None else {}
                blend_tuning = {**blend_tuning, "item_evidence_k": model.item_evidence_k, **evidence}
            # Untuned, the record holds no weights: each recommender then ranks with its own configuration.
            record = BehaviorModelRecord(
                version,
                content_map.to_dict() if content_map is not None else None,
                blend_weights if tuned is not None else None,
                blend_tuning,
                weighting.weights() or None,
            )
            await save_model_record(self._store, record)
            written = await self._write_items(factors, version, successors)
            cleared = await self._clear_stale_items(version, content_map)
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
            blend_weights=blend_weights,
            blend_tuning=blend_tuning,
            event_type_weights=weighting.weights() or None,
            item_evidence_k=model.item_evidence_k if model.content_map else None,
        )

    def _model_fit(self) -> ModelFit:
        """How the tuning fits its validation model: exactly as this refresh fits the real one."""
        return ModelFit(
            self._factorizer,
            self.policy.model_half_life_s,
            self.policy.dims,
            self.policy.content_map,
            self.policy.item_evidence_k,
            self.policy.content_min_evidence,
            self.policy.type_weighting,
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

    async def _read_content(self) -> CatalogContent:
        """Every catalog item's content vector, a page at a time (deleted items and items without content left out)."""
        with_content = models.Filter(
            must=[
                models.HasVectorCondition(has_vector=CONTENT),
                models.FieldCondition(key=ItemField.IN_CATALOG.key, match=models.MatchValue(value=True)),
                _NOT_DELETED,
            ]
        )
        item_ids: list[str] = []
        pages: list[np.ndarray] = []
        offset: Any = None
        while True:
            records, offset = await self._store.client.scroll(
                ITEMS,
                scroll_filter=with_content,
                limit=self.policy.batch_size,
                offset=offset,
                with_payload=keys([ItemField.ITEM_ID]),
                with_vectors=[CONTENT],
            )
            rows = [(ItemField.ITEM_ID.read(r.payload), _vector_of(r, CONTENT)) for r in records]
            rows = [(item_id, vector) for item_id, vector in rows if item_id and vector is not None]
            if rows:
                item_ids += [item_id for item_id, _ in rows]
                pages.append(np.asarray([vector for _, vector in rows], dtype=np.float32))
            if offset is None:
                break
        vectors = np.concatenate(pages) if pages else np.zeros((0, 0), dtype=np.float32)
        return CatalogContent(item_ids, vectors)

    async def _write_items(self, factors: ItemFactors, version: int, successors: SuccessorTable | None = None) -> int:
        """New vectors and successor lists for the items that still exist (deleted ones excepted), in batches.

        Each batch yields. A successor may be an item deleted since: harmless, since the recommender
        only takes successors through its catalog filter, as every other candidate.
        """
        successors = successors or SuccessorTable.empty()
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
                            ItemField.SUCCESSORS.key: successors.payload_of(factors.item_ids[row]),
                        },
                        # By id: a filter makes embedded Qdrant scan the whole collection per item. A
                        # deletion landing since the read leaves these fields on its tombstone, harmless.
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

    async def _clear_stale_items(self, version: int, content_map: ContentMap | None = None) -> int:
        """Items the new model does not cover lose their old vector; with a map, ones with content get one inferred.

        Without a map such items are ones nobody engages with any more. With one, they are items whose
        content arrived after the refresh read the catalog (their item.upserted used the previous map).
        Either way they lose their successor list: the new model has none for them.
        """
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
                with_payload=keys([ItemField.ITEM_ID, ItemField.DELETED_AT]),
                with_vectors=[CONTENT] if content_map is not None else False,
            )
            if content_map is not None:
                records = await self._infer_stale(records, content_map, version)
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
                                payload={
                                    ItemField.BEHAVIOR_VERSION.key: None,
                                    ItemField.BEHAVIOR_NORM.key: 0.0,
                                    ItemField.SUCCESSORS.key: [],
                                },
                                points=ids,
                            )
                        ),
                    ],
                )
                cleared += len(ids)
            if offset is None:
                return cleared

    async def _infer_stale(
        self, records: list[models.Record], content_map: ContentMap, version: int
    ) -> list[models.Record]:
        """Writes the inferred vector of each stale item with content; returns the others, to be cleared."""
        left: list[models.Record] = []
        operations: list[Any] = []
        inferred_ids: list[str] = []
        for record in records:
            content = _vector_of(record, CONTENT)
            inferred = None
            if content is not None and ItemField.DELETED_AT.read(record.payload) is None:
                inferred = inferred_item(content_map, np.asarray(content, dtype=np.float32))
            if inferred is None:
                left.append(record)
                continue
            unit, strength = inferred
            operations += [
                models.UpdateVectorsOperation(
                    update_vectors=models.UpdateVectors(
                        points=[models.PointVectors(id=record.id, vector={BEHAVIOR: unit.tolist()})],
                        update_filter=_NOT_DELETED,
                    )
                ),
                models.SetPayloadOperation(
                    set_payload=models.SetPayload(
                        payload={
                            ItemField.BEHAVIOR_VERSION.key: version,
                            ItemField.BEHAVIOR_NORM.key: strength,
                            ItemField.SUCCESSORS.key: [],
                        },
                        points=[record.id],
                    )
                ),
            ]
            inferred_ids.append(ItemField.ITEM_ID.read(record.payload))
        if operations:
            await self._store.client.batch_update_points(ITEMS, operations)
            await self._notices.publish([notice("items", BEHAVIOR, i, "updated", version) for i in inferred_ids])
        return left

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


def _vector_of(record: models.Record, name: str) -> list[float] | None:
    vectors = record.vector if isinstance(record.vector, dict) else {}
    value = vectors.get(name)
    if not isinstance(value, list) or not all(isinstance(v, float | int) for v in value):
        return None  # absent, or a multi-vector (not a content vector)
    return [float(v) for v in value if isinstance(v, float | int)]
