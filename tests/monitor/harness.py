"""Test helpers of the monitor: writing vectors into Qdrant and announcing them as the encoder would."""

from __future__ import annotations

import time
from collections.abc import Mapping

import numpy as np
from qdrant_client import models
from redis.asyncio import Redis

from recsys.shared.events import EmbeddingNotice
from recsys.shared.ids import point_id
from recsys.shared.store import CONTENT, ITEMS, VectorStore

CONTENT_DIMS = 384


class Catalog:
    """Writes vectors into Qdrant the way the encoder would, then publishes the notices."""

    def __init__(self, store: VectorStore, redis: Redis, stream: str) -> None:
        self.store = store
        self.redis = redis
        self.stream = stream

    async def put(self, vectors: Mapping[str, np.ndarray], collection: str = ITEMS, vector: str = CONTENT) -> None:
        id_field = "item_id" if collection == ITEMS else "user_id"
        await self.store.client.upsert(
            collection,
            [
                models.PointStruct(id=point_id(s), vector={vector: v.tolist()}, payload={id_field: s})
                for s, v in vectors.items()
            ],
        )
        for subject in vectors:
            await self.notify(subject, "updated", collection, vector)

    async def notify(self, subject: str, change: str, collection: str = ITEMS, vector: str = CONTENT) -> None:
        notice = EmbeddingNotice(
            collection=collection,  # type: ignore[arg-type]
            vector=vector,
            subject_id=subject,
            change=change,  # type: ignore[arg-type]
            ts=time.time(),
        )
        await self.redis.xadd(self.stream, notice.to_fields())  # type: ignore[arg-type]
