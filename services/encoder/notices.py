"""Publishes EmbeddingNotices on the embeddings stream after Qdrant confirmed a vector change."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Literal

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from recsys.shared.events import EmbeddingNotice


class NoticePublisher:
    """XADDs notices to one capped stream; the cap is approximate so Redis trims whole nodes cheaply.

    Notices published by many handlers at once (dozens of item entries in flight) go out in one
    pipeline: each caller still returns only once Redis took its notices, or raises what Redis raised.
    """

    def __init__(self, redis: Redis, stream: str, maxlen: int) -> None:
        self._redis = redis
        self.stream = stream
        self._maxlen = maxlen
        self._pending: list[tuple[list[EmbeddingNotice], asyncio.Future[None]]] = []
        self._flushes: set[asyncio.Task[None]] = set()

    @property
    def redis(self) -> Redis:
        return self._redis

    def add_to(self, pipe: Pipeline, notices: Sequence[EmbeddingNotice]) -> None:
        """Queues notices on a pipeline that the caller executes with writes of its own (one round trip)."""
        for item in notices:
            pipe.xadd(self.stream, item.to_fields(), maxlen=self._maxlen, approximate=True)  # type: ignore[arg-type]

    async def publish(self, notices: Sequence[EmbeddingNotice]) -> None:
        if not notices:
            return
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()
        self._pending.append((list(notices), done))
        if len(self._pending) == 1:
            # Runs after the handlers that are ready in this turn of the loop have added theirs.
            flush = loop.create_task(self._flush())
            self._flushes.add(flush)
            flush.add_done_callback(self._flushes.discard)
        await done

    async def _flush(self) -> None:
        batch, self._pending = self._pending, []
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                for notices, _ in batch:
                    for notice in notices:
                        pipe.xadd(self.stream, notice.to_fields(), maxlen=self._maxlen, approximate=True)  # type: ignore[arg-type]
                await pipe.execute()
        except asyncio.CancelledError:
            for _, done in batch:
                done.cancel()
            raise
        except Exception as exc:
            for _, done in batch:
                if not done.done():
                    done.set_exception(exc)
        else:
            for _, done in batch:
                if not done.done():
                    done.set_result(None)


def notice(
    collection: Literal["items", "users"],
    vector: str,
    subject_id: str,
    change: Literal["updated", "deleted"],
    version: int | None = None,
) -> EmbeddingNotice:
    """A notice stamped now: the moment the store confirmed the change (of the point at `version`)."""
    return EmbeddingNotice(
        collection=collection, vector=vector, subject_id=subject_id, change=change, ts=time.time(), version=version
    )
