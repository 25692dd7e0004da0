"""Test helpers of the monitor: writing vectors into Qdrant and announcing them as the encoder would."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping

import numpy as np
from qdrant_client import models
from redis.asyncio import Redis

from recsys.shared.events import EmbeddingNotice
from recsys.shared.ids import point_id
from recsys.shared.points import CONTENT, ITEMS
from recsys.shared.settings import StreamNames
from recsys.shared.store import VectorStore
from recsys_client.aio import MonitorClient
from tests.support import eventually

CONTENT_DIMS = 384


class Catalog:
    """Writes vectors into Qdrant the way the encoder would, then publishes the notices."""

    def __init__(self, store: VectorStore, redis: Redis, stream: str) -> None:
        self.store = store
        self.redis = redis
        self.stream = stream

    async def put(
        self,
        vectors: Mapping[str, np.ndarray],
        collection: str = ITEMS,
        vector: str = CONTENT,
        payload: Mapping[str, object] | None = None,
    ) -> None:
        id_field = "item_id" if collection == ITEMS else "user_id"
        await self.store.client.upsert(
            collection,
            [
                models.PointStruct(
                    id=point_id(s), vector={vector: v.tolist()}, payload={id_field: s, **(payload or {})}
                )
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


def gaussian(rng: np.random.Generator, count: int, prefix: str, shift: float = 0.0) -> dict[str, np.ndarray]:
    """Item vectors around the origin (shift 0) or around shift·(1, …, 1); Qdrant stores them normalized."""
    return {f"{prefix}{i}": rng.standard_normal(CONTENT_DIMS) + shift for i in range(count)}


async def alerts(redis: Redis, event: str) -> list[dict[str, object]]:
    entries: list[tuple[bytes, dict[bytes, bytes]]] = await redis.xrange(StreamNames("recsys").alerts)  # type: ignore[assignment]
    return [json.loads(fields[b"data"]) for _, fields in entries if fields[b"event"] == event.encode()]


async def sizes_reach(client: MonitorClient, reference: int, current: int, space: str = "items.content") -> None:
    async def reached() -> bool:
        report = await client.drift_report(space)
        return (report.reference_size, report.current_size) == (reference, current)

    await eventually(reached, timeout_s=15, what=f"{space} windows of {reference} and {current} vectors")
