"""A user's state as the encoder keeps it: counts, bounded history, seen items, and taste/session/behavior sums."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np

from recsys.encoder.interactions.decay import DecayedSum
from recsys.encoder.interactions.recent_events import RecentEvents
from recsys.encoder.interactions.rules import InteractionRules
from recsys.encoder.interactions.user_behavior import user_behavior
from recsys.shared.events import Interaction
from recsys.shared.packed import pack_floats, pack_history, pack_ids
from recsys.shared.points import UserField


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
    recent: RecentEvents = field(default_factory=RecentEvents)
    # The factorization version the behavior vector was folded in from (None: no behavior vector yet).
    behavior_version: int | None = None
    # The writer bumps it with every write, so a compare-and-set can tell whether someone else wrote meanwhile.
    revision: int = 0

    @classmethod
    def from_stored(
        cls,
        payload: Mapping[str, Any],
        taste: Sequence[float] | None = None,
        session: Sequence[float] | None = None,
        behavior: Sequence[float] | None = None,
    ) -> UserProfile:
        """Rebuilds the profile from a stored payload and its unit vectors (None where absent)."""
        return cls(
            user_id=UserField.USER_ID.read(payload),
            event_count=UserField.EVENT_COUNT.read(payload),
            last_event_ts=UserField.LAST_EVENT_TS.read(payload),
            taste=DecayedSum.from_stored(taste, UserField.TASTE_NORM.read(payload), UserField.TASTE_TS.read(payload)),
            session=DecayedSum.from_stored(
                session, UserField.SESSION_NORM.read(payload), UserField.SESSION_TS.read(payload)
            ),
            session_id=UserField.SESSION_ID.read(payload),
            behavior=DecayedSum.from_stored(
                behavior, UserField.BEHAVIOR_NORM.read(payload), UserField.BEHAVIOR_TS.read(payload)
            ),
            history=[HistoryEntry(*entry) for entry in UserField.HISTORY.read(payload)],
            seen=UserField.SEEN.read(payload),
            recent=RecentEvents.stored(
                UserField.RECENT_EVENT_IDS.read(payload),
                UserField.RECENT_EVENT_TIMES.read(payload),
                UserField.REPLAY_HORIZON_TS.read(payload),
            ),
            behavior_version=UserField.BEHAVIOR_VERSION.read(payload),
            revision=UserField.REVISION.read(payload),
        )

    def payload(self) -> dict[str, Any]:
        """The payload to store (recsys.shared.points.UserField), its long lists packed (recsys.shared.packed)."""
        return {
            UserField.USER_ID.key: self.user_id,
            UserField.EVENT_COUNT.key: self.event_count,
            UserField.LAST_EVENT_TS.key: self.last_event_ts,
            UserField.TASTE_NORM.key: self.taste.norm,
            UserField.TASTE_TS.key: self.taste.ts,
            UserField.SESSION_ID.key: self.session_id,
            UserField.SESSION_NORM.key: self.session.norm,
            UserField.SESSION_TS.key: self.session.ts,
            UserField.BEHAVIOR_NORM.key: self.behavior.norm,
            UserField.BEHAVIOR_TS.key: self.behavior.ts,
            UserField.HISTORY.key: pack_history(self.history),
            UserField.SEEN.key: pack_ids(self.seen),
            UserField.RECENT_EVENT_IDS.key: pack_ids(self.recent.ids),
            UserField.RECENT_EVENT_TIMES.key: pack_floats(self.recent.times),
            UserField.REPLAY_HORIZON_TS.key: self.recent.horizon_or_none(),
            UserField.BEHAVIOR_VERSION.key: self.behavior_version,
            UserField.REVISION.key: self.revision,
        }

    @property
    def recent_event_ids(self) -> list[str]:
        return list(self.recent.ids)

    def has_recorded(self, event_id: str) -> bool:
        return self.recent.has(event_id)

    def beyond_horizon(self, event_id: str, ts: float) -> bool:
        """An interaction this user may have had counted and forgotten: it must not be counted (recent_events.py)."""
        return self.recent.beyond_horizon(event_id, ts)

    def record(
        self, event: Interaction, weight: float, ts: float, item_content: np.ndarray | None, rules: InteractionRules
    ) -> None:
        """Applies one interaction; `item_content` is None when the item is not in the catalog.

        An unknown item still counts in the history, the seen list and the counts; it cannot move
        the taste or session vectors because it has no content vector. An interaction of a repeatable
        type (rules.repeatable_types) leaves the seen list as it is: an item engaged with only that
        way stays recommendable.
        """
        self.recent = self.recent.remember(event.event_id, ts, rules.recent_events_size)
        self.event_count += 1
        self.last_event_ts = max(self.last_event_ts, ts)
        self.history = _bounded_history(self.history, HistoryEntry(event.item_id, weight, ts), rules.history_size)
        if event.type not in rules.repeatable_types:
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
        self.adopt_behavior(
            user_behavior(self.history, item_behaviors, self.last_event_ts, rules.behavior_half_life_s), version
        )

    def adopt_behavior(self, behavior: DecayedSum, version: int | None) -> None:
        """Takes a behavior sum folded in against model `version` (here or in a batch, behavior_fold.py)."""
        self.behavior = behavior
        self.behavior_version = version if behavior.total is not None else None

    def _follow_session(self, session_id: str | None, ts: float) -> bool:
        """Starts a new session when a newer event names another one; False when the event belongs to an older one."""
        if session_id is None or session_id == self.session_id:
            return True
        if self.session_id is not None and ts < self.session.ts:
            return False  # a late event from a session that has already ended
        self.session_id = session_id
        self.session = DecayedSum.empty(ts)
        return True


def _bounded_append(values: list[str], value: str, limit: int) -> list[str]:
    return [*values, value][-limit:]


def _bounded_history(history: list[HistoryEntry], entry: HistoryEntry, limit: int) -> list[HistoryEntry]:
    # Oldest first; a late event takes its place in time so that trimming drops the truly oldest.
    return sorted([*history, entry], key=lambda item: item.ts)[-limit:]
