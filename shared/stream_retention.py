"""Keeps consumed streams bounded without losing unread data, and their consumer groups free of dead consumers.

Every entry every group has acknowledged can go: the stream is trimmed below the oldest entry some
group still needs (its oldest pending entry, or the first it has not read yet), with XTRIM MINID.
A group that is stuck would then let the stream grow until Redis refuses writes, so past a hard
cap the oldest entries go even though unread: that drops data, so it is logged as an error,
counted, and reported to whoever runs the retention (an alert). A consumer that has left (its
process died or was replaced) stays in its group forever unless removed; one with nothing pending
is removed once idle for a while: removing a live one costs nothing, its next read re-creates it.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import ResponseError

from recsys.shared.logs import log_event
from recsys.shared.settings import ConnectionSettings
from recsys.shared.stream_failures import FailureLedger

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RetentionPolicy:
    """How long entries and consumers are kept."""

    # Entries kept at most, read or not (0: no cap). Past it the oldest go: data loss, made loud.
    max_entries: int = 2_000_000
    # A consumer with nothing pending is removed once idle this long.
    consumer_expiry_ms: int = 3_600_000
    # Caps of particular streams, in place of max_entries (item entries carry texts: ten times the bytes).
    max_entries_of: dict[str, int] = field(default_factory=dict)

    @classmethod
    def from_settings(cls, settings: ConnectionSettings) -> RetentionPolicy:
        return cls(
            max_entries=settings.stream_max_entries,
            consumer_expiry_ms=int(settings.consumer_expiry_s * 1000),
            # Each partition of the items stream is capped like the stream (a cap per partition stream).
            max_entries_of={stream: settings.items_stream_max_entries for stream in settings.streams.item_streams},
        )

    def cap(self, stream: str) -> int:
        return self.max_entries_of.get(stream, self.max_entries)


@dataclass(frozen=True)
class RetentionReport:
    """What one pass did to one stream."""

    stream: str
    trimmed: int
    dropped_unread: int
    consumers_removed: list[str]
    length: int
    # Per group: (entries not read yet, entries read and not acknowledged), after the pass.
    groups: dict[str, tuple[int, int]] = field(default_factory=dict)


# Told when the hard cap dropped entries some group had not processed yet.
CapHandler = Callable[[RetentionReport], Awaitable[None]]


def _parse(entry_id: str) -> tuple[int, int]:
    milliseconds, _, sequence = entry_id.partition("-")
    return int(milliseconds), int(sequence or 0)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def following(entry_id: str) -> str:
    """The smallest id after `entry_id`."""
    milliseconds, sequence = _parse(entry_id)
    return f"{milliseconds}-{sequence + 1}"


async def first_needed(redis: Redis, stream: str) -> str | None:
    """The oldest entry some group still needs (pending, or not read yet); None when no group reads the stream.

    Entries below it were delivered to every group and acknowledged by all of them.
    """
    try:
        groups = await redis.xinfo_groups(stream)
    except ResponseError:  # no such stream
        return None
    if not groups:
        return None
    floor: tuple[int, int] | None = None
    for group in groups:
        candidate = _parse(following(_text(group["last-delivered-id"])))
        if int(group["pending"]) > 0:
            summary = await redis.xpending(stream, _text(group["name"]))
            if summary.get("min") is not None:
                candidate = min(candidate, _parse(_text(summary["min"])))
        floor = candidate if floor is None else min(floor, candidate)
    assert floor is not None
    return f"{floor[0]}-{floor[1]}"


async def remove_idle_consumers(redis: Redis, stream: str, expiry_ms: int) -> list[str]:
    """Removes consumers with nothing pending that have been idle for `expiry_ms`; returns their names."""
    removed: list[str] = []
    try:
        groups = await redis.xinfo_groups(stream)
    except ResponseError:
        return removed
    for group in groups:
        group_name = _text(group["name"])
        for consumer in await redis.xinfo_consumers(stream, group_name):
            # A consumer with pending entries is never removed: its entries would become unclaimable.
            if int(consumer["pending"]) == 0 and int(consumer["idle"]) >= expiry_ms:
                name = _text(consumer["name"])
                await redis.xgroup_delconsumer(stream, group_name, name)
                removed.append(f"{group_name}/{name}")
    return removed


async def _group_backlogs(redis: Redis, stream: str) -> dict[str, tuple[int, int]]:
    try:
        groups = await redis.xinfo_groups(stream)
    except ResponseError:
        return {}
    # Redis reports no lag (None) when it cannot tell, after deletions in the stream: counted as 0 here.
    return {_text(g["name"]): (int(g.get("lag") or 0), int(g["pending"])) for g in groups}


async def enforce_retention(
    redis: Redis,
    stream: str,
    policy: RetentionPolicy,
    ledgers: list[FailureLedger] | None = None,
    on_cap: CapHandler | None = None,
) -> RetentionReport:
    """One pass over one stream: trim what every group acknowledged, enforce the cap, remove idle consumers."""
    before = int(await redis.xlen(stream))
    floor = await first_needed(redis, stream)
    if floor is not None:
        await redis.xtrim(stream, minid=floor, approximate=False)
        for ledger in ledgers or []:
            await ledger.prune_below(floor)
    after_trim = int(await redis.xlen(stream))
    dropped = 0
    cap = policy.cap(stream)
    if cap and after_trim > cap:
        await redis.xtrim(stream, maxlen=cap, approximate=False)
        dropped = after_trim - int(await redis.xlen(stream))
    removed = await remove_idle_consumers(redis, stream, policy.consumer_expiry_ms)
    report = RetentionReport(
        stream,
        before - after_trim,
        dropped,
        removed,
        int(await redis.xlen(stream)),
        await _group_backlogs(redis, stream),
    )
    if dropped:
        log_event(
            _log,
            "stream_capped_unread_entries_dropped",
            logging.ERROR,
            stream=stream,
            dropped=dropped,
            max_entries=cap,
            reason="a consumer group is stuck or far behind; entries it had not processed were deleted",
        )
        if on_cap is not None:
            await on_cap(report)
    if removed:
        log_event(_log, "stream_consumers_removed", stream=stream, consumers=removed)
    return report


# The alerts stream is capped at its publishers' side (the monitor's RECSYS_ALERTS_STREAM_MAXLEN).
_ALERTS_MAXLEN = 10_000
STREAM_CAPPED_EVENT = "stream.capped"


def alert_on_cap(redis: Redis, alerts_stream: str) -> CapHandler:
    """A cap handler that publishes a `stream.capped` alert (WatchAlerts shows it, kind stream_capped)."""

    async def alert(report: RetentionReport) -> None:
        data = {
            "kind": "stream_capped",
            "subject": report.stream,
            "space": "streams",
            "reason": f"{report.dropped_unread} entries deleted before every consumer group processed them",
            "statistics": {"dropped": report.dropped_unread, "length": report.length},
            "detected_at": time.time(),
        }
        await redis.xadd(
            alerts_stream,
            {"event": STREAM_CAPPED_EVENT, "data": json.dumps(data)},
            maxlen=_ALERTS_MAXLEN,
            approximate=True,
        )

    return alert
