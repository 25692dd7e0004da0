"""A user's state as the encoder keeps it: counts, bounded history, seen items, and taste/session/behavior sums."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np

from recsys.encoder.behavior import user_behavior
from recsys.encoder.decay import DecayedSum
from recsys.encoder.interaction_rules import InteractionRules
from recsys.shared.events import Interaction


class HistoryEntry(NamedTuple):
    """One interaction in a user's history, stored as [item_id, weight, ts]."""

    item_id: str
    weight: float
    ts: float


@dataclass
class UserProfile:
    """Everything stored on a `users` point; `record` applies one interaction."""

    user_id: str
    event_count: int = 0
    last_event_ts: float = 0.0
    taste: DecayedSum = field(default_factory=DecayedSum.empty)
    session: DecayedSum = field(default_factory=DecayedSum.empty)
    session_id: str | None = None
    behavior: DecayedSum = field(default_factory=DecayedSum.empty)
    history: list[HistoryEntry] = field(default_factory=list)
    seen: list[str] = field(default_factory=list)
    recent_event_ids: list[str] = field(default_factory=list)
    # The factorization version the behavior vector was folded in from (None: no behavior vector yet).
    behavior_version: int | None = None
    # The writer bumps it with every write, so a compare-and-set can tell whether someone else wrote meanwhile.
    revision: int = 0

    @classmethod
    def from_stored(
        cls,
        payload: Mapping[str, Any],
        taste: list[float] | None = None,
        session: list[float] | None = None,
        behavior: list[float] | None = None,
    ) -> UserProfile:
        """Rebuilds the profile from a stored payload and its unit vectors (None where absent)."""
        return cls(
            user_id=str(payload["user_id"]),
            event_count=int(payload.get("event_count", 0)),
            last_event_ts=float(payload.get("last_event_ts", 0.0)),
            taste=DecayedSum.from_stored(
                taste, float(payload.get("taste_norm", 0.0)), float(payload.get("taste_ts", 0.0))
            ),
            session=DecayedSum.from_stored(
                session, float(payload.get("session_norm", 0.0)), float(payload.get("session_ts", 0.0))
            ),
            session_id=payload.get("session_id"),
            behavior=DecayedSum.from_stored(
                behavior, float(payload.get("behavior_norm", 0.0)), float(payload.get("behavior_ts", 0.0))
            ),
            history=[HistoryEntry(str(i), float(w), float(t)) for i, w, t in payload.get("history", [])],
            seen=[str(item_id) for item_id in payload.get("seen", [])],
            recent_event_ids=[str(event_id) for event_id in payload.get("recent_event_ids", [])],
            behavior_version=_optional_int(payload.get("behavior_version")),
            revision=int(payload.get("revision", 0)),
        )

    def payload(self) -> dict[str, Any]:
        """The payload to store, as described in recsys.shared.store."""
        return {
            "user_id": self.user_id,
            "event_count": self.event_count,
            "last_event_ts": self.last_event_ts,
            "taste_norm": self.taste.norm,
            "taste_ts": self.taste.ts,
            "session_id": self.session_id,
            "session_norm": self.session.norm,
            "session_ts": self.session.ts,
            "behavior_norm": self.behavior.norm,
            "behavior_ts": self.behavior.ts,
            "history": [list(entry) for entry in self.history],
            "seen": list(self.seen),
            "recent_event_ids": list(self.recent_event_ids),
            "behavior_version": self.behavior_version,
            "revision": self.revision,
        }

    def has_recorded(self, event_id: str) -> bool:
        return event_id in self.recent_event_ids

    def record(
        self, event: Interaction, weight: float, ts: float, item_content: np.ndarray | None, rules: InteractionRules
    ) -> None:
        """Applies one interaction; `item_content` is None when the item is not in the catalog.

        An unknown item still counts in the history, the seen list and the counts; it cannot move
        the taste or session vectors because it has no content vector.
        """
        self.recent_event_ids = _bounded_append(self.recent_event_ids, event.event_id, rules.recent_events_size)
        self.event_count += 1
        self.last_event_ts = max(self.last_event_ts, ts)
        self.history = _bounded_history(self.history, HistoryEntry(event.item_id, weight, ts), rules.history_size)
        self.seen = _bounded_append([i for i in self.seen if i != event.item_id], event.item_id, rules.seen_size)

        in_current_session = self._follow_session(event.session_id, ts)
        if item_content is None or weight == 0:
            return
        self.taste = self.taste.add(item_content, weight, ts, rules.taste_half_life_s)
        if in_current_session:
            self.session = self.session.add(item_content, weight, ts, rules.session_half_life_s)

    def refresh_behavior(
        self, item_behaviors: Mapping[str, np.ndarray], version: int | None, rules: InteractionRules
    ) -> None:
        """Recomputes the behavior vector from the history against the item vectors of model `version`."""
        self.behavior = user_behavior(self.history, item_behaviors, self.last_event_ts, rules.behavior_half_life_s)
        self.behavior_version = version if self.behavior.total is not None else None

    def _follow_session(self, session_id: str | None, ts: float) -> bool:
        """Starts a new session when a newer event names another one; False when the event belongs to an older one."""
        if session_id is None or session_id == self.session_id:
            return True
        if self.session_id is not None and ts < self.session.ts:
            return False  # a late event from a session that has already ended
        self.session_id = session_id
        self.session = DecayedSum.empty(ts)
        return True


def _optional_int(value: Any) -> int | None:
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _bounded_append(values: list[str], value: str, limit: int) -> list[str]:
    return [*values, value][-limit:]


def _bounded_history(history: list[HistoryEntry], entry: HistoryEntry, limit: int) -> list[HistoryEntry]:
    # Oldest first; a late event takes its place in time so that trimming drops the truly oldest.
    return sorted([*history, entry], key=lambda item: item.ts)[-limit:]
