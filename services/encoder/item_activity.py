"""What interactions do to an item: positive-event count, decayed popularity, and its behavior sum."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from recsys.encoder.behavior import item_behavior_after
from recsys.encoder.decay import DecayedSum, add_decayed
from recsys.encoder.interaction_rules import InteractionRules
from recsys.shared.events import Interaction


@dataclass
class ItemActivity:
    """The interaction fields of an `items` point; `record` applies one interaction."""

    interaction_count: int = 0
    popularity: float = 0.0
    popularity_ts: float = 0.0
    behavior: DecayedSum = field(default_factory=DecayedSum.empty)
    recent_event_ids: list[str] = field(default_factory=list)

    @classmethod
    def from_stored(cls, payload: Mapping[str, Any], behavior: list[float] | None = None) -> ItemActivity:
        return cls(
            interaction_count=int(payload.get("interaction_count", 0)),
            popularity=float(payload.get("popularity", 0.0)),
            popularity_ts=float(payload.get("popularity_ts", 0.0)),
            # The behavior sum is stated as of the last event that moved it, kept with the popularity.
            behavior=DecayedSum.from_stored(
                behavior, float(payload.get("behavior_norm", 0.0)), float(payload.get("behavior_ts", 0.0))
            ),
            recent_event_ids=[str(event_id) for event_id in payload.get("recent_event_ids", [])],
        )

    def payload(self) -> dict[str, Any]:
        return {
            "interaction_count": self.interaction_count,
            "popularity": self.popularity,
            "popularity_ts": self.popularity_ts,
            "behavior_norm": self.behavior.norm,
            "behavior_ts": self.behavior.ts,
            "recent_event_ids": list(self.recent_event_ids),
        }

    def has_recorded(self, event_id: str) -> bool:
        return event_id in self.recent_event_ids

    def record(self, event: Interaction, weight: float, ts: float, rules: InteractionRules) -> None:
        """Counts a positive event, adds to popularity, and moves the behavior sum by the user's code."""
        self.recent_event_ids = [*self.recent_event_ids, event.event_id][-rules.recent_events_size :]
        if weight > 0:
            self.interaction_count += 1
            self.popularity, self.popularity_ts = add_decayed(
                self.popularity, self.popularity_ts, weight, ts, rules.popularity_half_life_s
            )
        if weight != 0:
            self.behavior = item_behavior_after(
                self.behavior, event.user_id, weight, ts, rules.behavior_half_life_s, rules.behavior_dims
            )
