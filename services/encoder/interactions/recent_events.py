"""The bounded memory of applied interactions that makes replays harmless, and the horizon it guarantees.

A user (and an item) remembers the ids of its last `recent_events_size` interactions: a replayed one
among them is recognised and changes nothing. An older replay cannot be recognised, so the rule is
stated and enforced instead of hoped for: once an id is forgotten, its time becomes the horizon, and
an interaction not remembered with a time at or before the horizon is refused (counted as skipped,
never applied). The guarantee: an interaction is counted at most once; one that arrives after
`recent_events_size` later interactions of the same user (or item) and is older than all of them
may be refused although it was never counted.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class RecentEvents:
    """Ids and times of the latest applied interactions, oldest first, and the replay horizon."""

    ids: tuple[str, ...] = ()
    times: tuple[float, ...] = ()
    # The newest time among forgotten interactions (-inf while none was forgotten).
    horizon: float = field(default=float("-inf"))

    @classmethod
    def stored(cls, ids: list[str], times: list[float], horizon: float | None) -> RecentEvents:
        # Points written before times were kept have ids only: their events count as infinitely old.
        aligned = tuple(times) if len(times) == len(ids) else (float("-inf"),) * len(ids)
        return cls(tuple(ids), aligned, float("-inf") if horizon is None else horizon)

    def has(self, event_id: str) -> bool:
        return event_id in self.ids

    def beyond_horizon(self, event_id: str, ts: float) -> bool:
        """True for an interaction that may have been applied and forgotten: it must be refused."""
        return ts <= self.horizon and not self.has(event_id)

    def remember(self, event_id: str, ts: float, size: int) -> RecentEvents:
        ids, times = (*self.ids, event_id), (*self.times, ts)
        forgotten = times[:-size] if len(ids) > size else ()
        horizon = max((self.horizon, *forgotten))
        return RecentEvents(ids[-size:], times[-size:], horizon)

    def horizon_or_none(self) -> float | None:
        """The horizon as stored (JSON has no infinity)."""
        return None if self.horizon == float("-inf") else self.horizon
