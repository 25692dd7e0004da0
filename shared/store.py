"""The vector store: one Qdrant client (a server by URL, or embedded under the data folder) and its collections.

What the collections hold is defined in recsys.shared.points.
"""

from __future__ import annotations

import logging
import sqlite3
import ssl
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple, Protocol

import numpy as np
from qdrant_client import AsyncQdrantClient, models
from qdrant_client.local.payload_filters import check_filter

from recsys.shared.embedded_commits import group_commits
from recsys.shared.embedded_reads import StoredPoint, VectorRow, local_points, read_points, read_vector_rows
from recsys.shared.logs import log_event
from recsys.shared.points import ITEMS, MODELS, USERS, collection_vectors, payload_indexes

# SQLite journal mode and synchronous level of embedded Qdrant's files, by `embedded_sync`.
_EMBEDDED_SYNC = {"normal": ("WAL", "NORMAL"), "full": ("DELETE", "FULL")}
# Pages the WAL may hold before a commit copies them into the file (SQLite's default: 1,000). A
# checkpoint syncs the disk on the event loop, and a point rewritten several times between two is
# copied once: the interactions role rewrites its users and items all the time. At 20,000 (≈ 80 MB
# of WAL per collection at most), 64 rewrites of 7 KB points committed in 3.7 ms instead of 5.8 ms.
_WAL_CHECKPOINT_PAGES = 20_000

_log = logging.getLogger(__name__)


class _CollectionLayoutSettings(Protocol):
    qdrant_shard_number: int | None
    qdrant_replication_factor: int | None
    qdrant_write_consistency_factor: int | None
    qdrant_on_disk_vectors: bool
    qdrant_scalar_quantization: bool


@dataclass(frozen=True)
class CollectionLayout:
    """How a Qdrant server lays out the collections the store creates; None leaves the server's default."""

    shard_number: int | None = None
    replication_factor: int | None = None
    write_consistency_factor: int | None = None
    on_disk_vectors: bool = False
    scalar_quantization: bool = False

    @classmethod
    def from_settings(cls, settings: _CollectionLayoutSettings) -> CollectionLayout:
        return cls(
            shard_number=settings.qdrant_shard_number,
            replication_factor=settings.qdrant_replication_factor,
            write_consistency_factor=settings.qdrant_write_consistency_factor,
            on_disk_vectors=settings.qdrant_on_disk_vectors,
            scalar_quantization=settings.qdrant_scalar_quantization,
        )


def create_collection_arguments(vectors: dict[str, int], layout: CollectionLayout) -> dict[str, Any]:
    """The keyword arguments of `create_collection` for named cosine vectors of these dimensions.

    Arguments the layout leaves unset are left out, so the server's own defaults (its
    QDRANT__STORAGE__COLLECTION__* variables) apply. Quantized vectors stay in RAM even when the
    originals are on disk: searches run on the int8 copy and read the disk only to rescore.
    """
    writes, replicas = layout.write_consistency_factor, layout.replication_factor
    if writes is not None and replicas is not None and writes > replicas:
        raise ValueError(
            f"write consistency factor {writes} exceeds the replication factor {replicas}:"
            " no write could ever be acknowledged"
        )
    arguments: dict[str, Any] = {
        "vectors_config": {
            name: models.VectorParams(
                size=dims, distance=models.Distance.COSINE, on_disk=True if layout.on_disk_vectors else None
            )
            for name, dims in vectors.items()
        }
    }
    optional = {
        "shard_number": layout.shard_number,
        "replication_factor": layout.replication_factor,
        "write_consistency_factor": layout.write_consistency_factor,
    }
    arguments.update({key: value for key, value in optional.items() if value is not None})
    if layout.scalar_quantization:
        arguments["quantization_config"] = models.ScalarQuantization(
            scalar=models.ScalarQuantizationConfig(type=models.ScalarType.INT8, quantile=0.99, always_ram=True)
        )
    return arguments


class GuardedPayload(NamedTuple):
    """Payload fields to set on one point, only while the point matches `condition`."""

    point: str
    payload: dict[str, Any]
    condition: models.Filter


class GuardedPoint(NamedTuple):
    """A point to upsert: inserted when missing, an existing one replaced only while it matches `condition`."""

    point: models.PointStruct
    condition: models.Filter


def condition_keys(conditions: Sequence[models.Filter]) -> list[str] | None:
    """The payload keys these filters test; None when one holds a condition whose keys are not known here.

    Field, is-empty and is-null conditions and nested filters of them: what compare-and-set guards use.
    """
    found: dict[str, None] = {}

    def visit(condition: Any) -> bool:
        if isinstance(condition, models.Filter):
            parts = [*(condition.must or []), *(condition.should or []), *(condition.must_not or [])]
            if condition.min_should is not None:
                parts += condition.min_should.conditions
            return all(visit(part) for part in parts)
        if isinstance(condition, models.FieldCondition):
            found[condition.key] = None
            return True
        if isinstance(condition, models.IsEmptyCondition):
            found[condition.is_empty.key] = None
            return True
        if isinstance(condition, models.IsNullCondition):
            found[condition.is_null.key] = None
            return True
        return False

    if not all(visit(condition) for condition in conditions):
        return None
    return list(found)


class VectorStore:
    """Owns the Qdrant client that every service in the process uses."""

    def __init__(
        self,
        client: AsyncQdrantClient,
        location: str,
        embedded_sync: str = "normal",
        layout: CollectionLayout | None = None,
    ) -> None:
        self.client = client
        self.location = location
        self.embedded_sync = embedded_sync
        self.layout = layout or CollectionLayout()
        # Told of each request the store serves without its client (embedded reads), as the client's are counted.
        self.on_request: Callable[[str], None] = lambda op: None

    @classmethod
    def connect(
        cls,
        qdrant_url: str,
        data_dir: Path,
        api_key: str = "",
        embedded_sync: str = "normal",
        tls_ca_file: Path | None = None,
        layout: CollectionLayout | None = None,
    ) -> VectorStore:
        """A server when a URL is given; otherwise embedded on disk (one process only: it locks the folder).

        `embedded_sync` (embedded on disk only): "normal" or "full", see `_set_embedded_sync`.
        `tls_ca_file` (an https:// server): the CA its certificate must chain to, instead of the system's.
        `layout` (a server): shards, replicas, on-disk vectors, quantization of the collections it creates.
        """
        if qdrant_url:
            extra: dict[str, Any] = {}
            if tls_ca_file is not None:
                extra["verify"] = ssl.create_default_context(cafile=str(tls_ca_file))
            client = AsyncQdrantClient(url=qdrant_url, api_key=api_key or None, timeout=30, **extra)
            return cls(client, qdrant_url, layout=layout)
        if embedded_sync not in _EMBEDDED_SYNC:
            raise ValueError(f"embedded_sync must be one of {', '.join(_EMBEDDED_SYNC)}, got {embedded_sync!r}")
        path = data_dir / "qdrant"
        path.mkdir(parents=True, exist_ok=True)
        return cls(AsyncQdrantClient(path=str(path)), f"embedded:{path}", embedded_sync)

    @classmethod
    def in_memory(cls) -> VectorStore:
        """Embedded and in memory: for tests."""
        return cls(AsyncQdrantClient(":memory:"), "embedded:memory")

    async def ensure_collections(self, content_dims: int, behavior_dims: int) -> None:
        """Creates the items, users and behavior_models collections when they do not exist yet."""
        if not await self.client.collection_exists(MODELS):
            # Payload only: one record per behavior model version (recsys.shared.behavior_models);
            # replicated like the others on a server, nothing to quantize.
            arguments = create_collection_arguments({}, CollectionLayout() if self.embedded else self.layout)
            arguments.pop("quantization_config", None)
            await self.client.create_collection(MODELS, **arguments)
            log_event(_log, "collection_created", collection=MODELS, vectors={}, location=self.location)
        for name, vectors in collection_vectors(content_dims, behavior_dims).items():
            if await self.client.collection_exists(name):
                continue
            # Embedded Qdrant has one shard, no replicas and no quantization: the layout is a server's.
            layout = CollectionLayout() if self.embedded else self.layout
            await self.client.create_collection(name, **create_collection_arguments(vectors, layout))
            log_event(
                _log, "collection_created", collection=name, vectors=vectors, location=self.location, layout=layout
            )
        if self.embedded:
            self._set_embedded_sync()
            return  # embedded mode has no payload indexes (it scans) and warns when asked for one
        for collection in (ITEMS, USERS):
            for key, index in payload_indexes(collection):
                await self.client.create_payload_index(collection, key, models.PayloadSchemaType(index))

    async def retrieve(
        self,
        collection: str,
        ids: Sequence[str],
        with_payload: bool | Sequence[str] = True,
        with_vectors: bool | Sequence[str] = False,
    ) -> list[StoredPoint]:
        """The points of `ids` that exist, as the client's retrieve gives them, but each vector may be a numpy array.

        Embedded, they are read from the collection's own arrays (recsys.shared.embedded_reads), which skips
        local mode's per-point Record validation, vector-to-list conversion and payload deep copy.
        """
        if self.embedded:
            local = local_points(self.client, collection)
            records = read_points(local, ids, with_payload, with_vectors) if local is not None else None
            if records is not None:
                self.on_request("retrieve")
                return records
        payload = with_payload if isinstance(with_payload, bool) else list(with_payload)
        vectors = with_vectors if isinstance(with_vectors, bool) else list(with_vectors)
        records = await self.client.retrieve(collection, ids, with_payload=payload, with_vectors=vectors)
        return [StoredPoint(record.id, record.payload, record.vector) for record in records]

    async def vector_rows(self, collection: str, ids: Sequence[str], name: str, key: str) -> list[VectorRow]:
        """Each point of `ids` that has vector `name`, with its payload value at `key` (None where absent).

        Embedded, one narrow read of the collection's arrays (recsys.shared.embedded_reads.read_vector_rows).
        """
        if self.embedded:
            local = local_points(self.client, collection)
            rows = read_vector_rows(local, ids, name, key) if local is not None else None
            if rows is not None:
                self.on_request("retrieve")
                return rows
        records = await self.client.retrieve(collection, ids, with_payload=[key], with_vectors=[name])
        return [
            VectorRow(record.id, np.asarray(record.vector[name]), (record.payload or {}).get(key))
            for record in records
            if isinstance(record.vector, dict) and record.vector.get(name) is not None
        ]

    async def set_payload_where(
        self, collection: str, point: str, payload: dict[str, Any], condition: models.Filter
    ) -> None:
        """Sets payload fields of one point only while it matches `condition` (a compare-and-set's write).

        A server finds the point by its id. Embedded Qdrant (qdrant-client local mode) would test the
        condition on every point of the collection (set_payload by filter scans them: 16 of 19 s of
        2,000 interactions went there), so there the one point is read and tested with local mode's own
        filter check. Embedded Qdrant serves one process, whose writers to a point take turns (keyed
        locks), so nothing changes the point between the test and the write.
        """
        if not self.embedded:
            selector = models.Filter(must=[models.HasIdCondition(has_id=[point]), condition])
            await self.client.set_payload(collection, payload, points=selector)
            return
        records = await self.client.retrieve(collection, [point], with_payload=True, with_vectors=False)
        if records and check_filter(condition, records[0].payload or {}, records[0].id, {}):
            await self.client.set_payload(collection, payload, points=[point])

    async def write_where(
        self,
        collection: str,
        payloads: Sequence[GuardedPayload] = (),
        points: Sequence[GuardedPoint] = (),
    ) -> None:
        """Many compare-and-set writes to one collection in one request, each guarded by its own condition.

        Every write succeeds or is refused on its own (a refused one is not an error: read back to
        tell). Embedded Qdrant would scan the collection for a payload write by filter (see
        set_payload_where), so there the guarded points are read in one call and tested here.
        """
        operations: list[models.UpdateOperation] = []
        if self.embedded and payloads:
            ids = [write.point for write in payloads]
            # Only the fields the conditions test: local mode deep-copies every payload it returns.
            tested = condition_keys([write.condition for write in payloads])
            records = await self.retrieve(collection, ids, with_payload=True if tested is None else (tested or False))
            stored = {str(record.id): record for record in records}
            for write in payloads:
                record = stored.get(write.point)
                if record is not None and check_filter(write.condition, record.payload or {}, record.id, {}):
                    only_it = models.SetPayload(payload=write.payload, points=[write.point])
                    operations.append(models.SetPayloadOperation(set_payload=only_it))
        else:
            for write in payloads:
                selector = models.Filter(must=[models.HasIdCondition(has_id=[write.point]), write.condition])
                operations.append(
                    models.SetPayloadOperation(set_payload=models.SetPayload(payload=write.payload, filter=selector))
                )
        for guarded in points:
            guarded_list = models.PointsList(points=[guarded.point], update_filter=guarded.condition)
            operations.append(models.UpsertOperation(upsert=guarded_list))
        if operations:
            await self.client.batch_update_points(collection, operations)

    def apply_embedded_sync(self) -> None:
        """Sets `embedded_sync` on the files of collections another role created (ensure_collections sets it too).

        The interactions role never creates the collections, so without this its writes ran with
        SQLite's defaults: a synced commit per point.
        """
        if self.embedded:
            self._set_embedded_sync()

    async def collections_exist(self) -> bool:
        """Whether the store answers and holds both collections (the encoder's text role creates them)."""
        try:
            return await self.client.collection_exists(ITEMS) and await self.client.collection_exists(USERS)
        except Exception:  # a store failing mid-check is just not ready yet
            return False

    def _set_embedded_sync(self) -> None:
        """How embedded Qdrant's SQLite files commit: "full" syncs every point to disk, "normal" writes a WAL.

        Embedded Qdrant commits each point in its own transaction; with SQLite's default (rollback
        journal, synchronous FULL) every commit waits for the disk, on the event loop. "normal" (WAL,
        synchronous NORMAL) loses nothing when the process crashes, may lose the last commits when the
        machine loses power, and ingested 15-25% more items/s in `recsys bench encoder` here. Reaches
        into qdrant-client's local mode: when its layout is not as expected, the files are left as they are.
        Each write request then commits once, not once per point (recsys.shared.embedded_commits).
        """
        journal, synchronous = _EMBEDDED_SYNC[self.embedded_sync]
        collections = getattr(getattr(self.client, "_client", None), "collections", None)
        if not isinstance(collections, dict):
            log_event(_log, "embedded_sync_not_set", logging.WARNING, reason="unknown qdrant-client local layout")
            return
        for name, collection in collections.items():
            connection = getattr(getattr(collection, "storage", None), "storage", None)
            if not isinstance(connection, sqlite3.Connection):
                continue  # in memory
            connection.execute(f"PRAGMA journal_mode={journal}")
            connection.execute(f"PRAGMA synchronous={synchronous}")
            if journal == "WAL":
                connection.execute(f"PRAGMA wal_autocheckpoint={_WAL_CHECKPOINT_PAGES}")
            log_event(_log, "embedded_sync_set", collection=name, journal=journal, synchronous=synchronous)
        # After the pragmas: they cannot change inside a transaction, which a group may hold open.
        if group_commits(self.client):
            log_event(_log, "embedded_commits_grouped", collections=sorted(collections))

    def vector_value(self, vector: np.ndarray) -> Any:
        """A dense vector as this store's client takes it on a write: embedded, the array itself (local mode
        validates, normalizes and pickles an array much faster than a list of floats; with the cached point ids
        and revision filters, the interactions role went from 1.03 to 0.82 ms of CPU per interaction); a server, a
        list of floats, which its request encoders take."""
        return vector if self.embedded else vector.tolist()

    @property
    def embedded(self) -> bool:
        return self.location.startswith("embedded:")

    async def is_reachable(self) -> bool:
        try:
            await self.client.get_collections()
        except Exception:  # any failure means not ready, whatever its kind
            return False
        return True

    async def close(self) -> None:
        await self.client.close()
