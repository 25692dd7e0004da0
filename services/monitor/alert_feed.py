"""Follows the alerts stream for WatchAlerts: one reader per process, its alerts fanned out to every watcher.

A watcher costs a bounded queue, not a Redis connection: with one blocking XREAD per watcher, a
thousand watchers took the whole connection pool and every other command of the process failed.
A watcher that asks for alerts after an older id first catches up with a few paged XRANGEs. One
that falls behind the reader by more than its queue holds is ended (RESOURCE_EXHAUSTED) with the
id to resume from, so nothing is lost and nobody's memory grows without bound.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator
from typing import Any

from redis.asyncio import Redis

from recsys.monitor.alerts import AlertRecord, alert_record
from recsys.shared.errors import InvalidRequest, Overloaded
from recsys.shared.lifecycle import cancel_and_wait
from recsys.shared.logs import log_event

# How long one XREAD waits for new entries before checking whether the feed should end.
BLOCK_MS = 500
# Alerts one catch-up read takes; a watcher's queue holds this many too.
PAGE = 100
QUEUE_SIZE = 1000
_RETRY_S = 1.0
_ENTRY_ID = re.compile(r"^\d+(-\d+)?$")

_log = logging.getLogger(__name__)


def start_position(after_id: str) -> str:
    """The stream position to read after: "" means only alerts published from now on, "0" every kept alert."""
    if after_id and not _ENTRY_ID.match(after_id):
        raise InvalidRequest(f"after_id must be an alerts stream entry id like 1700000000000-0 or 0, got {after_id!r}")
    return after_id


def _order(entry_id: str) -> tuple[int, int]:
    milliseconds, _, sequence = entry_id.partition("-")
    return int(milliseconds), int(sequence or 0)


class _Watcher:
    def __init__(self) -> None:
        self.queue: asyncio.Queue[AlertRecord | None] = asyncio.Queue(QUEUE_SIZE)
        self.overflowed = False

    def offer(self, record: AlertRecord) -> None:
        if self.overflowed:
            return
        try:
            self.queue.put_nowait(record)
        except asyncio.QueueFull:
            self.overflowed = True
            # Room for the end marker: the queue holds QUEUE_SIZE records, the marker replaces the last.
            self.close()

    def close(self) -> None:
        """Puts the end marker in, in place of the newest record when the queue is full."""
        if self.queue.full():
            self.queue.get_nowait()
        self.queue.put_nowait(None)


class AlertFeed:
    """One reader of one alerts stream for all watchers; every watch ends when `closing` is set."""

    def __init__(self, redis: Redis, stream: str, closing: asyncio.Event, max_watchers: int = 512) -> None:
        self._redis = redis
        self._stream = stream
        self._closing = closing
        self.max_watchers = max_watchers
        self._watchers: set[_Watcher] = set()
        # The id of the newest alert the reader has handed out ("" until it knows where the stream ends).
        self._position = ""
        self._positioned = asyncio.Event()
        self._reader: asyncio.Task[None] | None = None

    @property
    def watchers(self) -> int:
        return len(self._watchers)

    def start(self) -> None:
        if self._reader is None:
            self._reader = asyncio.create_task(self._read(), name="alert-feed")

    async def stop(self) -> None:
        reader, self._reader = self._reader, None
        await cancel_and_wait(reader)
        for watcher in self._watchers:
            watcher.close()

    async def follow(self, after_id: str) -> AsyncIterator[AlertRecord]:
        """Alerts after `after_id` ("" from now on) as they come, until the feed closes."""
        if len(self._watchers) >= self.max_watchers:
            raise Overloaded(f"{len(self._watchers)} alert watchers already (at most {self.max_watchers}); retry later")
        watcher = _Watcher()
        self._watchers.add(watcher)
        try:
            await self._positioned.wait()
            joined = self._position
            last = start_position(after_id) or joined
            if _order(last) < _order(joined):
                async for record in self._range(last, joined):
                    last = record.entry_id
                    yield record
            while not self._closing.is_set():
                record = await watcher.queue.get()
                if record is None:
                    if watcher.overflowed:
                        raise Overloaded(f"this watcher fell behind; watch again with after_id={last!r}")
                    return
                if _order(record.entry_id) > _order(last):
                    last = record.entry_id
                    yield record
        finally:
            self._watchers.discard(watcher)

    async def _range(self, after: str, until: str) -> AsyncIterator[AlertRecord]:
        """Alerts after `after` up to `until`, a page at a time."""
        position = after
        while True:
            entries: Any = await self._redis.xrange(self._stream, min=f"({position}", max=until, count=PAGE)
            for raw_id, raw_fields in entries:
                position = _text(raw_id)
                yield alert_record(position, {_text(k): _text(v) for k, v in raw_fields.items()})
            if len(entries) < PAGE:
                return

    async def _read(self) -> None:
        while not self._positioned.is_set():
            try:
                newest: Any = await self._redis.xrevrange(self._stream, count=1)
                self._position = _text(newest[0][0]) if newest else "0-0"
                self._positioned.set()
            except Exception as exc:  # Redis away: watchers wait; the reader tries again
                log_event(_log, "alert_feed_failed", logging.WARNING, error=repr(exc))
                await asyncio.sleep(_RETRY_S)
        while not self._closing.is_set():
            try:
                answer: Any = await self._redis.xread({self._stream: self._position}, count=PAGE, block=BLOCK_MS)
            except Exception as exc:
                log_event(_log, "alert_feed_failed", logging.WARNING, error=repr(exc))
                await asyncio.sleep(_RETRY_S)
                continue
            for _, entries in answer or []:
                for raw_id, raw_fields in entries:
                    self._position = _text(raw_id)
                    record = alert_record(self._position, {_text(k): _text(v) for k, v in raw_fields.items()})
                    for watcher in list(self._watchers):
                        watcher.offer(record)


def _text(value: bytes | str) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else value
