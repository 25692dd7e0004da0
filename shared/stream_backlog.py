"""What a consumed stream holds back: its length, each group's lag, pending entries and the oldest one's age,
and how many entries wait in its dead-letter stream. Measured with read-only commands."""

from __future__ import annotations

from dataclasses import dataclass, field

from redis.asyncio import Redis
from redis.exceptions import ResponseError


@dataclass(frozen=True)
class GroupBacklog:
    """One consumer group: entries not read yet (lag), read but not acknowledged (pending), and how long
    the oldest pending entry has existed."""

    lag: int
    pending: int
    oldest_pending_age_s: float


@dataclass(frozen=True)
class StreamBacklog:
    stream: str
    length: int
    dead_letter_length: int
    groups: dict[str, GroupBacklog] = field(default_factory=dict)


def entry_time_ms(entry_id: str) -> int:
    """The Unix time in milliseconds an entry id carries ("1700000000000-3" -> 1700000000000)."""
    return int(entry_id.split("-", 1)[0])


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


async def measure_backlog(redis: Redis, stream: str, dead_letter_stream: str) -> StreamBacklog:
    """One stream's backlog; a group Redis cannot tell the lag of (after deletions) reports lag 0."""
    seconds, microseconds = await redis.time()  # the server's clock: entry ids carry its time, not ours
    now_ms = seconds * 1000 + microseconds // 1000
    try:
        groups = await redis.xinfo_groups(stream)
    except ResponseError:  # the stream does not exist yet
        groups = []
    backlogs = {}
    for group in groups:
        name = _text(group["name"])
        pending = int(group["pending"])
        oldest_age_s = 0.0
        if pending:
            summary = await redis.xpending(stream, name)
            if summary.get("min"):
                oldest_age_s = max(0.0, (now_ms - entry_time_ms(_text(summary["min"]))) / 1000)
        backlogs[name] = GroupBacklog(int(group.get("lag") or 0), pending, oldest_age_s)
    return StreamBacklog(stream, int(await redis.xlen(stream)), int(await redis.xlen(dead_letter_stream)), backlogs)
