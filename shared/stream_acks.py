"""Acknowledges stream entries in batches: the entries finished in one turn of the event loop share one XACK."""

from __future__ import annotations

import asyncio
import logging

from redis.asyncio import Redis

from recsys.shared.logs import log_event

_log = logging.getLogger(__name__)


class AckBatcher:
    """XACKs entries of one stream and group; an entry is handed over only once its handler finished.

    One XACK per entry cost a Redis round trip and a task switch each; during a backlog dozens of
    entries finish together when a model pass ends. An XACK that fails leaves its entries pending:
    the claimer delivers them again and their handlers see a replay, so nothing is lost.
    """

    def __init__(self, redis: Redis, stream: str, group: str) -> None:
        self._redis = redis
        self._stream = stream
        self._group = group
        self._waiting: list[str] = []
        self._flushes: set[asyncio.Task[None]] = set()

    def ack(self, entry_id: str) -> None:
        self._waiting.append(entry_id)
        if len(self._waiting) == 1:
            # Runs after the handlers that finish in this turn of the loop have added theirs.
            flush = asyncio.get_running_loop().create_task(self._flush())
            self._flushes.add(flush)
            flush.add_done_callback(self._flushes.discard)

    async def _flush(self) -> None:
        ids, self._waiting = self._waiting, []
        try:
            await self._redis.xack(self._stream, self._group, *ids)
        except Exception as exc:
            log_event(_log, "ack_failed", logging.WARNING, stream=self._stream, entries=len(ids), error=repr(exc))

    async def flush(self) -> None:
        """Returns once every entry handed over so far was acked (or its XACK failed)."""
        while self._flushes:
            await asyncio.gather(*self._flushes, return_exceptions=True)
