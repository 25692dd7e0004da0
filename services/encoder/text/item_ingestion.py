"""Consumes `recsys:items`: embeds catalog text on the bulk lane and writes version-guarded `items` points.

The rules, each enforced by a filter on the write itself so that two writers (replicas, or the
interactions role creating an item's point from its first interaction) never undo each other:
- a higher version wins; at equal versions the later `ts`; a replay changes nothing;
- a delete leaves a tombstone (no vectors, out of the catalog) that refuses any upsert whose version
  is not above the deletion's, so a replayed or late upsert never brings the item back;
- the point an interaction made before the item arrived (its activity counters) is completed in
  place, never replaced;
- the notice of a write is published after it, and again when the entry is redelivered (at least once);
- with a current behavior model whose record holds a content map (the behavior refresh learns it), an
  item without a behavior vector of that version gets its inferred one at once; one that has a vector
  of that version keeps it (a text change reaches it at the next refresh).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
from qdrant_client import models

from recsys.encoder.content_map import ContentMap, inferred_item
from recsys.encoder.keyed_locks import KeyedLocks
from recsys.encoder.notices import NoticePublisher, notice
from recsys.encoder.text.batching import Lane
from recsys.encoder.text.catalog import catalog_fields, new_item_payload, tombstone_payload
from recsys.encoder.text.embedding import EmbeddingEngine
from recsys.shared.behavior_models import current_model_version, load_model_record
from recsys.shared.errors import InvalidRequest
from recsys.shared.events import DEFAULT_MAX_FUTURE_S, ItemDeleted, ItemUpserted, MalformedEvent, parse_item_event
from recsys.shared.ids import point_id
from recsys.shared.logs import log_event
from recsys.shared.points import BEHAVIOR, CONTENT, ITEMS, ItemField, keys
from recsys.shared.store import GuardedPayload, VectorStore

_log = logging.getLogger(__name__)


def _older_than(version: int, ts: float) -> models.Filter:
    """Stored points this upsert may overwrite: a lower version, or the same version written earlier and not deleted.

    The time breaks ties so that producers who never set versions (all 0) still update their items,
    while a replay of the same entry (same version, same time) changes nothing, and a tombstone
    gives way only to a higher version.
    """
    return models.Filter(
        should=[
            models.FieldCondition(key=ItemField.VERSION.key, range=models.Range(lt=version)),
            models.Filter(
                must=[
                    models.FieldCondition(key=ItemField.VERSION.key, match=models.MatchValue(value=version)),
                    models.FieldCondition(key=ItemField.UPDATED_AT.key, range=models.Range(lt=ts)),
                    models.IsEmptyCondition(is_empty=models.PayloadField(key=ItemField.DELETED_AT.key)),
                ]
            ),
        ]
    )


# A point made by interactions before the item arrived: its counters must survive the first upsert.
_ACTIVITY_ONLY = models.Filter(
    must=[
        models.FieldCondition(key=ItemField.IN_CATALOG.key, match=models.MatchValue(value=False)),
        models.IsEmptyCondition(is_empty=models.PayloadField(key=ItemField.DELETED_AT.key)),
    ]
)


@dataclass(frozen=True)
class StoredItem:
    """What an item's point says about whether an event may change it."""

    exists: bool
    version: int = -1
    updated_at: float = -1.0
    in_catalog: bool = False
    deleted: bool = False

    @classmethod
    def of(cls, record: models.Record | None) -> StoredItem:
        if record is None:
            return cls(exists=False)
        payload = record.payload
        return cls(
            exists=True,
            version=ItemField.VERSION.read(payload),
            updated_at=ItemField.UPDATED_AT.read(payload),
            in_catalog=ItemField.IN_CATALOG.read(payload),
            deleted=ItemField.DELETED_AT.read(payload) is not None,
        )

    @property
    def activity_only(self) -> bool:
        return self.exists and not self.in_catalog and not self.deleted

    def upsert_outcome(self, version: int, ts: float) -> str:
        """ "write", "replay" (this very write is stored already) or "stale" (something newer is)."""
        if self.deleted:
            return "write" if version > self.version else "stale"
        if not self.exists or self.activity_only:
            return "write"
        stored, incoming = (self.version, self.updated_at), (version, ts)
        if stored == incoming:
            return "replay"
        return "write" if incoming > stored else "stale"


def _inferable(version: int, behavior_version: int) -> models.Filter:
    """Points that may take an inferred behavior vector: this content version, not deleted, none of this model yet."""
    return models.Filter(
        must=[
            models.FieldCondition(key=ItemField.VERSION.key, match=models.MatchValue(value=version)),
            models.IsEmptyCondition(is_empty=models.PayloadField(key=ItemField.DELETED_AT.key)),
        ],
        must_not=[models.FieldCondition(key=ItemField.BEHAVIOR_VERSION.key, range=models.Range(gte=behavior_version))],
    )


class StageObserver(Protocol):
    """Where an entry's time goes: `embed` (queue and model), `store` (Qdrant reads and writes), `notice`."""

    def stage_done(self, stage: str, seconds: float) -> None: ...


class _Unobserved:
    def stage_done(self, stage: str, seconds: float) -> None:
        pass


class ItemIngestion:
    """The handler of the items stream; one instance serves every concurrent entry."""

    def __init__(
        self,
        store: VectorStore,
        engine: EmbeddingEngine,
        notices: NoticePublisher,
        locks: KeyedLocks,
        observer: StageObserver | None = None,
        *,
        max_future_s: float = DEFAULT_MAX_FUTURE_S,
    ) -> None:
        self._store = store
        self._max_future_s = max_future_s
        self._engine = engine
        self._notices = notices
        # Shared with interaction ingestion: an item's events are handled one at a time in this process.
        self._locks = locks
        self._observer = observer or _Unobserved()
        # Embedded Qdrant writes block the event loop (a SQLite commit each): when a model pass ends,
        # dozens of entries would write one after another before the loop reads a socket again.
        # Taking turns puts one write per turn of the loop, so gRPC calls are answered in between.
        self._store_turn: contextlib.AbstractAsyncContextManager[Any] = (
            asyncio.Lock() if store.embedded else contextlib.nullcontext()
        )
        # The current behavior model's content map, reloaded only when the current version changes.
        self._model_version: int | None = None
        self._content_map: ContentMap | None = None

    async def handle(self, fields: dict[str, str], entry_id: str) -> None:
        """Applies one entry; raises MalformedEvent for an entry that can never be applied."""
        event = parse_item_event(fields, entry_id, max_future_s=self._max_future_s)
        async with self._locks.hold(event.item_id):
            if isinstance(event, ItemUpserted):
                await self._upsert(event)
            else:
                await self._delete(event)

    async def _stored(self, pid: str) -> StoredItem:
        records = await self._store.client.retrieve(
            ITEMS,
            [pid],
            with_payload=keys([ItemField.VERSION, ItemField.UPDATED_AT, ItemField.IN_CATALOG, ItemField.DELETED_AT]),
            with_vectors=False,
        )
        return StoredItem.of(records[0] if records else None)

    async def _upsert(self, event: ItemUpserted) -> None:
        pid = point_id(event.item_id)
        ts = event.ts if event.ts is not None else time.time()
        started = time.perf_counter()
        stored = await self._stored(pid)
        outcome = stored.upsert_outcome(event.version, ts)
        if outcome == "stale":
            reason = "deleted" if stored.deleted else "newer version stored"
            log_event(
                _log,
                "item_stale_skipped",
                item_id=event.item_id,
                version=event.version,
                stored=stored.version,
                why=reason,
            )
            return
        if outcome == "replay":
            # Stored by an earlier delivery that may have failed before its notice went out.
            await self._notices.publish([notice("items", CONTENT, event.item_id, "updated", event.version)])
            return
        read = time.perf_counter()
        try:
            embedded = await self._engine.embed([event.content_text()], lane=Lane.BULK)
        except InvalidRequest as exc:
            raise MalformedEvent(f"item {event.item_id} cannot be embedded: {exc}") from exc
        embedded_at = time.perf_counter()
        self._observer.stage_done("embed", embedded_at - read)
        async with self._store_turn:
            await self._write(event, pid, ts, stored, embedded.vectors[0].tolist())
            behavior_version = await self._write_inferred_behavior(event, pid, embedded.vectors[0])
        written = time.perf_counter()
        self._observer.stage_done("store", (read - started) + (written - embedded_at))
        published = [notice("items", CONTENT, event.item_id, "updated", event.version)]
        if behavior_version is not None:
            published.append(notice("items", BEHAVIOR, event.item_id, "updated", behavior_version))
        await self._notices.publish(published)
        self._observer.stage_done("notice", time.perf_counter() - written)
        log_event(
            _log,
            "item_embedded",
            logging.DEBUG,
            item_id=event.item_id,
            version=event.version,
            created=not stored.exists,
            tokens=embedded.tokens[0],
            truncated=embedded.truncated[0],
        )

    async def _write(self, event: ItemUpserted, pid: str, ts: float, stored: StoredItem, vector: list[float]) -> None:
        client = self._store.client
        if not stored.exists or stored.deleted:
            # The whole point, so a tombstone leaves nothing behind. The filter also refuses to overwrite a
            # newer version another process wrote meanwhile, or the counters of a point that interactions
            # made meanwhile: read back, such a point is completed in place below.
            await client.upsert(
                ITEMS,
                [models.PointStruct(id=pid, vector={CONTENT: vector}, payload=new_item_payload(event, ts))],
                update_filter=models.Filter(must=[_older_than(event.version, ts)], must_not=[_ACTIVITY_ONLY]),
            )
            stored = await self._stored(pid)
            if not stored.activity_only:
                return
        # An upsert would replace the whole point, wiping the behavior vector and the counters:
        # change the content vector, then the catalog fields, each only while the stored version is older.
        # The version is written last, so a crash in between leaves the entry to be redone.
        await client.update_vectors(
            ITEMS,
            [models.PointVectors(id=pid, vector={CONTENT: vector})],
            update_filter=_older_than(event.version, ts),
        )
        await self._store.set_payload_where(ITEMS, pid, catalog_fields(event, ts), _older_than(event.version, ts))

    async def _current_content_map(self) -> ContentMap | None:
        """The current model's content map: one small read per item, the map itself read once per version."""
        version = await current_model_version(self._store)
        if version != self._model_version:
            record = await load_model_record(self._store, version) if version is not None else None
            self._content_map = (
                ContentMap.from_dict(record.content_map) if record is not None and record.content_map else None
            )
            self._model_version = version
        return self._content_map

    async def _write_inferred_behavior(self, event: ItemUpserted, pid: str, content: np.ndarray) -> int | None:
        """Gives the item its content-inferred behavior vector unless it has one of the current version; the version."""
        content_map = await self._current_content_map()
        if content_map is None or content_map.content_dims != len(content) or self._model_version is None:
            return None
        inferred = inferred_item(content_map, content)
        if inferred is None:
            return None
        version = self._model_version
        records = await self._store.client.retrieve(
            ITEMS, [pid], with_payload=keys([ItemField.BEHAVIOR_VERSION]), with_vectors=False
        )
        stored_version = ItemField.BEHAVIOR_VERSION.read(records[0].payload) if records else None
        if not records or (stored_version is not None and stored_version >= version):
            return None
        unit, strength = inferred
        condition = _inferable(event.version, version)
        # Vector first, then its version and strength, each only while no vector of this version landed
        # (the refresh writing the item meanwhile wins).
        await self._store.client.update_vectors(
            ITEMS, [models.PointVectors(id=pid, vector={BEHAVIOR: unit.tolist()})], update_filter=condition
        )
        await self._store.write_where(
            ITEMS,
            payloads=[
                GuardedPayload(
                    pid, {ItemField.BEHAVIOR_VERSION.key: version, ItemField.BEHAVIOR_NORM.key: strength}, condition
                )
            ],
        )
        return version

    async def _delete(self, event: ItemDeleted) -> None:
        pid = point_id(event.item_id)
        ts = event.ts if event.ts is not None else time.time()
        stored = await self._stored(pid)
        if stored.exists and stored.version > event.version:
            log_event(_log, "item_stale_skipped", item_id=event.item_id, version=event.version, stored=stored.version)
            return
        if not (stored.deleted and stored.version == event.version):
            # Created even for an item never seen: an upsert arriving after its deletion must find the tombstone.
            await self._store.client.upsert(
                ITEMS,
                [models.PointStruct(id=pid, vector={}, payload=tombstone_payload(event, ts))],
                update_filter=models.Filter(
                    must=[models.FieldCondition(key=ItemField.VERSION.key, range=models.Range(lte=event.version))]
                ),
            )
        # Published again on a replay: the first delivery may have failed before its notices went out.
        await self._notices.publish(
            [notice("items", vector, event.item_id, "deleted", event.version) for vector in (CONTENT, BEHAVIOR)]
        )
        log_event(_log, "item_deleted", item_id=event.item_id, version=event.version)
