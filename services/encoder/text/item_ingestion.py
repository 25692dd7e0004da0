"""Consumes `recsys:items`: embeds catalog text on the bulk lane and writes version-guarded `items` points."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any, Protocol

from qdrant_client import models

from recsys.encoder.keyed_locks import KeyedLocks
from recsys.encoder.notices import NoticePublisher, notice
from recsys.encoder.text.batching import Lane
from recsys.encoder.text.catalog import catalog_fields, new_item_payload
from recsys.encoder.text.embedding import EmbeddingEngine
from recsys.shared.errors import InvalidRequest
from recsys.shared.events import DEFAULT_MAX_FUTURE_S, ItemDeleted, ItemUpserted, MalformedEvent, parse_item_event
from recsys.shared.ids import point_id
from recsys.shared.logs import log_event
from recsys.shared.points import CONTENT, ITEMS, ItemField, keys
from recsys.shared.store import VectorStore

_log = logging.getLogger(__name__)


def _older_than(version: int, ts: float) -> models.Filter:
    """Stored points this event may overwrite: a lower version, or the same version written earlier.

    The time breaks ties so that producers who never set versions (all 0) still update their items,
    while a replay of the same entry (same version, same time) changes nothing.
    """
    return models.Filter(
        should=[
            models.FieldCondition(key=ItemField.VERSION.key, range=models.Range(lt=version)),
            models.Filter(
                must=[
                    models.FieldCondition(key=ItemField.VERSION.key, match=models.MatchValue(value=version)),
                    models.FieldCondition(key=ItemField.UPDATED_AT.key, range=models.Range(lt=ts)),
                ]
            ),
        ]
    )


def _this_point(pid: str, *conditions: models.Filter | models.FieldCondition) -> models.Filter:
    return models.Filter(must=[models.HasIdCondition(has_id=[pid]), *conditions])


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

    async def handle(self, fields: dict[str, str], entry_id: str) -> None:
        """Applies one entry; raises MalformedEvent for an entry that can never be applied."""
        event = parse_item_event(fields, entry_id, max_future_s=self._max_future_s)
        async with self._locks.hold(event.item_id):
            if isinstance(event, ItemUpserted):
                await self._upsert(event)
            else:
                await self._delete(event)

    async def _stored_version(self, pid: str) -> tuple[bool, int, float]:
        """Whether the point exists, its version and when it was written."""
        records = await self._store.client.retrieve(
            ITEMS, [pid], with_payload=keys([ItemField.VERSION, ItemField.UPDATED_AT]), with_vectors=False
        )
        if not records:
            return False, -1, -1.0
        payload = records[0].payload
        return True, ItemField.VERSION.read(payload), ItemField.UPDATED_AT.read(payload)

    async def _upsert(self, event: ItemUpserted) -> None:
        pid = point_id(event.item_id)
        ts = event.ts if event.ts is not None else time.time()
        started = time.perf_counter()
        exists, stored, stored_at = await self._stored_version(pid)
        if (stored, stored_at) >= (event.version, ts):
            log_event(_log, "item_stale_skipped", item_id=event.item_id, version=event.version, stored_version=stored)
            return
        read = time.perf_counter()
        try:
            embedded = await self._engine.embed([event.content_text()], lane=Lane.BULK)
        except InvalidRequest as exc:
            raise MalformedEvent(f"item {event.item_id} cannot be embedded: {exc}") from exc
        embedded_at = time.perf_counter()
        self._observer.stage_done("embed", embedded_at - read)
        async with self._store_turn:
            await self._write(event, pid, ts, exists, embedded.vectors[0].tolist())
        written = time.perf_counter()
        self._observer.stage_done("store", (read - started) + (written - embedded_at))
        await self._notices.publish([notice("items", CONTENT, event.item_id, "updated")])
        self._observer.stage_done("notice", time.perf_counter() - written)
        log_event(
            _log,
            "item_embedded",
            logging.DEBUG,
            item_id=event.item_id,
            version=event.version,
            created=not exists,
            tokens=embedded.tokens[0],
            truncated=embedded.truncated[0],
        )

    async def _write(self, event: ItemUpserted, pid: str, ts: float, exists: bool, vector: list[float]) -> None:
        client = self._store.client
        if not exists:
            # The filter also refuses to overwrite a newer version another process wrote meanwhile.
            await client.upsert(
                ITEMS,
                [models.PointStruct(id=pid, vector={CONTENT: vector}, payload=new_item_payload(event, ts))],
                update_filter=_older_than(event.version, ts),
            )
        else:
            # An upsert would replace the whole point, wiping the behavior vector and the counters:
            # change the content vector, then the catalog fields, each only while the stored version is older.
            # The version is written last, so a crash in between leaves the entry to be redone.
            await client.update_vectors(
                ITEMS,
                [models.PointVectors(id=pid, vector={CONTENT: vector})],
                update_filter=_older_than(event.version, ts),
            )
            await client.set_payload(
                ITEMS, catalog_fields(event, ts), points=_this_point(pid, _older_than(event.version, ts))
            )

    async def _delete(self, event: ItemDeleted) -> None:
        pid = point_id(event.item_id)
        exists, stored, _ = await self._stored_version(pid)
        if not exists:
            log_event(_log, "item_delete_unknown", item_id=event.item_id, version=event.version)
            return
        if stored > event.version:
            log_event(_log, "item_stale_skipped", item_id=event.item_id, version=event.version, stored_version=stored)
            return
        await self._store.client.delete(
            ITEMS,
            models.FilterSelector(
                filter=_this_point(
                    pid, models.FieldCondition(key=ItemField.VERSION.key, range=models.Range(lte=event.version))
                )
            ),
        )
        await self._notices.publish([notice("items", CONTENT, event.item_id, "deleted")])
        log_event(_log, "item_deleted", item_id=event.item_id, version=event.version)
