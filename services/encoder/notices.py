"""Publishes EmbeddingNotices on the embeddings stream after Qdrant confirmed a vector change."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Literal

from redis.asyncio import Redis

from recsys.shared.events import EmbeddingNotice


class NoticePublisher:
    """XADDs notices to one capped stream; the cap is approximate so Redis trims whole nodes cheaply."""

    def __init__(self, redis: Redis, stream: str, maxlen: int) -> None:
        self._redis = redis
        self.stream = stream
        self._maxlen = maxlen

    async def publish(self, notices: Sequence[EmbeddingNotice]) -> None:
        if not notices:
            return
        async with self._redis.pipeline(transaction=False) as pipe:
            for notice in notices:
                pipe.xadd(self.stream, notice.to_fields(), maxlen=self._maxlen, approximate=True)  # type: ignore[arg-type]
            await pipe.execute()


def notice(
    collection: Literal["items", "users"], vector: str, subject_id: str, change: Literal["updated", "deleted"]
) -> EmbeddingNotice:
    """A notice stamped now: the moment the store confirmed the change."""
    return EmbeddingNotice(collection=collection, vector=vector, subject_id=subject_id, change=change, ts=time.time())
