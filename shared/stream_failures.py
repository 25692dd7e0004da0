"""Which handler failures count against an entry, and the count of each entry's failed attempts.

An entry is dead-lettered for failing, never for being slow or redelivered: Redis' delivery count
also grows when a consumer dies or an entry is claimed, so it cannot tell. Here only attempts that
ended in an error about the entry itself are counted; a dependency that is down or busy (Redis or
Qdrant unreachable, a compare-and-set that keeps losing, a full queue) says nothing about the entry,
so the entry stays pending and is retried for as long as the outage lasts.
"""

from __future__ import annotations

import asyncio

import grpc
import httpx
from qdrant_client.http.exceptions import ResponseHandlingException, UnexpectedResponse
from redis import exceptions as redis_errors
from redis.asyncio import Redis

from recsys.shared.errors import Overloaded, RetryLater, Unavailable

_TRANSIENT = (
    RetryLater,
    Unavailable,
    Overloaded,
    redis_errors.ConnectionError,
    redis_errors.TimeoutError,
    redis_errors.BusyLoadingError,
    redis_errors.TryAgainError,
    redis_errors.ClusterDownError,
    redis_errors.ReadOnlyError,
    httpx.TransportError,
    ResponseHandlingException,
    ConnectionError,
    TimeoutError,
    asyncio.TimeoutError,
)
_TRANSIENT_GRPC = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.RESOURCE_EXHAUSTED}


def is_transient(exc: BaseException) -> bool:
    """Whether the failure is about the world rather than the entry (retry it, do not count it)."""
    if isinstance(exc, _TRANSIENT):
        return True
    if isinstance(exc, UnexpectedResponse):
        return exc.status_code is None or exc.status_code == 429 or exc.status_code >= 500
    if isinstance(exc, grpc.aio.AioRpcError):
        return exc.code() in _TRANSIENT_GRPC
    if isinstance(exc, redis_errors.ResponseError):
        # A server that just restarted answers LOADING; a replica in failover, READONLY or MASTERDOWN.
        return str(exc).split(" ", 1)[0] in {"LOADING", "READONLY", "MASTERDOWN", "TRYAGAIN"}
    return False


class FailureLedger:
    """Failed attempts per entry of one stream and group, in a Redis hash next to the stream.

    The count survives restarts and is shared by every consumer of the group, so an entry that
    crashes whichever consumer takes it is still recognised after a few tries. Entries leave the
    ledger when they are acked or dead-lettered; retention prunes what was trimmed meanwhile.
    """

    def __init__(self, redis: Redis, stream: str, group: str) -> None:
        self._redis = redis
        self.key = f"{stream}:{group}:failures"

    async def failures(self, entry_id: str) -> tuple[int, str]:
        """Failed attempts so far and the last error."""
        value = await self._redis.hget(self.key, entry_id)  # type: ignore[misc]
        if value is None:
            return 0, ""
        count, _, error = (value.decode() if isinstance(value, bytes) else str(value)).partition("|")
        return int(count), error

    async def record(self, entry_id: str, error: str) -> int:
        """Counts one more failed attempt; returns the count."""
        count, _ = await self.failures(entry_id)
        count += 1
        await self._redis.hset(self.key, entry_id, f"{count}|{error[:500]}")  # type: ignore[misc]
        return count

    async def forget(self, *entry_ids: str) -> None:
        if entry_ids:
            await self._redis.hdel(self.key, *entry_ids)  # type: ignore[misc]

    async def prune_below(self, first_kept_id: str) -> int:
        """Forgets entries older than `first_kept_id` (trimmed from the stream); returns how many."""
        floor = _stream_id(first_kept_id)
        stale = [
            key
            async for key, _ in self._redis.hscan_iter(self.key)
            if _stream_id(key.decode() if isinstance(key, bytes) else str(key)) < floor
        ]
        if stale:
            await self._redis.hdel(self.key, *stale)  # type: ignore[misc]
        return len(stale)


def _stream_id(entry_id: str) -> tuple[int, int]:
    milliseconds, _, sequence = entry_id.partition("-")
    return int(milliseconds), int(sequence or 0)
