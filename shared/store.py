"""The vector store: one Qdrant client (server by URL, or embedded under the data folder) and the collection layout.

Payload of an `items` point (written by the encoder, read by the recommender and monitor):
    item_id, title, category, tags[], attributes{}, version, created_at, updated_at,
    interaction_count (positive interactions seen), popularity (decayed sum of positive event
    weights as of popularity_ts), popularity_ts, recent_event_ids[] (bounded), in_catalog, revision
    (bumped by every interaction write: the compare-and-set guard), behavior_version (the
    factorization the behavior vector comes from) and behavior_norm (the vector's strength, 0..1;
    0 without one), both written only by the encoder's behavior refresh.
An item seen in interactions before its item.upserted has a point with in_catalog=false,
    version -1, its activity fields (and, after a refresh, a behavior vector) but no content; feeds never return it,
    and the first item.upserted completes it in place (in_catalog=true).
Payload of a `users` point:
    user_id, event_count, last_event_ts, taste_norm, taste_ts, session_id, session_norm,
    session_ts, behavior_norm, behavior_ts, behavior_version (the item model it was folded in
    from), history[] ([item_id, weight, ts], oldest first, bounded), seen[] (item ids, bounded),
    recent_event_ids[] (bounded), revision (the compare-and-set guard).
The *_norm fields keep the length of the un-normalized accumulator: cosine collections store
unit vectors, and decayed sums need their magnitude to add the next event correctly.
"""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

from qdrant_client import AsyncQdrantClient, models

from recsys.shared.logs import log_event

ITEMS = "items"
USERS = "users"

# Named vectors. Content space: the text model's; behavior space: the collaborative one.
CONTENT = "content"
BEHAVIOR = "behavior"
TASTE = "taste"
SESSION = "session"

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
    def connect(cls, qdrant_url: str, data_dir: Path, api_key: str = "", embedded_sync: str = "normal") -> VectorStore:
        """A server when a URL is given; otherwise embedded on disk (one process only: it locks the folder).

        `embedded_sync` (embedded on disk only): "normal" or "full", see `_set_embedded_sync`.
        """
        if qdrant_url:
            return cls(AsyncQdrantClient(url=qdrant_url, api_key=api_key or None, timeout=30), qdrant_url)
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
        layouts = {
            ITEMS: {CONTENT: content_dims, BEHAVIOR: behavior_dims},
            USERS: {TASTE: content_dims, SESSION: content_dims, BEHAVIOR: behavior_dims},
        }
        for name, vectors in layouts.items():
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
        # Indexes make attribute filters cheap on a server.
        for field in ("item_id", "category", "tags"):
            await self.client.create_payload_index(ITEMS, field, models.PayloadSchemaType.KEYWORD)
        # Cold users get items ordered by popularity: order_by needs a range index on a server.
        await self.client.create_payload_index(ITEMS, "popularity", models.PayloadSchemaType.FLOAT)

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
