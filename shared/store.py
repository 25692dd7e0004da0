"""The vector store: one Qdrant client (a server by URL, or embedded under the data folder) and its collections.

What the collections hold is defined in recsys.shared.points.
"""

from __future__ import annotations

import logging
import sqlite3
import ssl
from pathlib import Path
from typing import Any

from qdrant_client import AsyncQdrantClient, models
from qdrant_client.local.payload_filters import check_filter

from recsys.shared.logs import log_event
from recsys.shared.points import ITEMS, USERS, collection_vectors, payload_indexes

# SQLite journal mode and synchronous level of embedded Qdrant's files, by `embedded_sync`.
_EMBEDDED_SYNC = {"normal": ("WAL", "NORMAL"), "full": ("DELETE", "FULL")}

_log = logging.getLogger(__name__)


class VectorStore:
    """Owns the Qdrant client that every service in the process uses."""

    def __init__(self, client: AsyncQdrantClient, location: str, embedded_sync: str = "normal") -> None:
        self.client = client
        self.location = location
        self.embedded_sync = embedded_sync

    @classmethod
    def connect(
        cls,
        qdrant_url: str,
        data_dir: Path,
        api_key: str = "",
        embedded_sync: str = "normal",
        tls_ca_file: Path | None = None,
    ) -> VectorStore:
        """A server when a URL is given; otherwise embedded on disk (one process only: it locks the folder).

        `embedded_sync` (embedded on disk only): "normal" or "full", see `_set_embedded_sync`.
        `tls_ca_file` (an https:// server): the CA its certificate must chain to, instead of the system's.
        """
        if qdrant_url:
            extra: dict[str, Any] = {}
            if tls_ca_file is not None:
                extra["verify"] = ssl.create_default_context(cafile=str(tls_ca_file))
            client = AsyncQdrantClient(url=qdrant_url, api_key=api_key or None, timeout=30, **extra)
            return cls(client, qdrant_url)
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
        """Creates the items and users collections when they do not exist yet."""
        for name, vectors in collection_vectors(content_dims, behavior_dims).items():
            if await self.client.collection_exists(name):
                continue
            await self.client.create_collection(
                name,
                vectors_config={
                    vector: models.VectorParams(size=dims, distance=models.Distance.COSINE)
                    for vector, dims in vectors.items()
                },
            )
            log_event(_log, "collection_created", collection=name, vectors=vectors, location=self.location)
        if self.embedded:
            self._set_embedded_sync()
            return  # embedded mode has no payload indexes (it scans) and warns when asked for one
        for collection in (ITEMS, USERS):
            for key, index in payload_indexes(collection):
                await self.client.create_payload_index(collection, key, models.PayloadSchemaType(index))

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
            log_event(_log, "embedded_sync_set", collection=name, journal=journal, synchronous=synchronous)

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
