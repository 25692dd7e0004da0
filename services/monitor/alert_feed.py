"""Follows the alerts stream for WatchAlerts: every alert published after a position, as it arrives."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from typing import Any

from redis.asyncio import Redis

from recsys.monitor.alerts import AlertRecord, alert_record
from recsys.shared.errors import InvalidRequest

# How long one XREAD waits for new entries before checking whether the watch should end.
BLOCK_MS = 500
_ENTRY_ID = re.compile(r"^\d+(-\d+)?$")


def start_position(after_id: str) -> str:
    """The stream position to read after: "" means only alerts published from now on, "0" every kept alert."""
    if after_id and not _ENTRY_ID.match(after_id):
        raise InvalidRequest(f"after_id must be an alerts stream entry id like 1700000000000-0 or 0, got {after_id!r}")
    return after_id


class AlertFeed:
    """Reads one alerts stream; every watch ends when `closing` is set (the service is stopping)."""

    def __init__(self, redis: Redis, stream: str, closing: asyncio.Event) -> None:
        self._redis = redis
        self._stream = stream
        self._closing = closing

    async def follow(self, after_id: str) -> AsyncIterator[AlertRecord]:
        position = start_position(after_id) or await self._last_id()
        while not self._closing.is_set():
            answer: Any = await self._redis.xread({self._stream: position}, count=100, block=BLOCK_MS)
            for _, entries in answer or []:
                for raw_id, raw_fields in entries:
                    position = _text(raw_id)
                    yield alert_record(position, {_text(k): _text(v) for k, v in raw_fields.items()})

    async def _last_id(self) -> str:
        newest: Any = await self._redis.xrevrange(self._stream, count=1)
        return _text(newest[0][0]) if newest else "0-0"


def _text(value: bytes | str) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else value
