"""What interactions do to an item: positive-event count, decayed popularity (trending), and replay memory.

The item's behavior vector is not moved here: the periodic factorization (behavior_refresh.py)
writes it, with its version and strength, to fields this update never touches.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from recsys.encoder.decay import add_decayed
from recsys.encoder.interaction_rules import InteractionRules
from recsys.shared.events import Interaction

# The payload fields an interaction rewrites; `revision` guards them against a concurrent writer.
ACTIVITY_FIELDS = ["interaction_count", "popularity", "popularity_ts", "recent_event_ids", "revision"]


@dataclass
class ItemActivity:
    """The interaction fields of an `items` point; `record` applies one interaction."""

    interaction_count: int = 0
    popularity: float = 0.0
    popularity_ts: float = 0.0
    recent_event_ids: list[str] = field(default_factory=list)
    # The writer bumps it with every write, so a compare-and-set can tell whether someone else wrote meanwhile.
    revision: int = 0

    @classmethod
    def from_stored(cls, payload: Mapping[str, Any]) -> ItemActivity:
        return cls(
            interaction_count=int(payload.get("interaction_count", 0)),
            popularity=float(payload.get("popularity", 0.0)),
            popularity_ts=float(payload.get("popularity_ts", 0.0)),
            recent_event_ids=[str(event_id) for event_id in payload.get("recent_event_ids", [])],
            revision=int(payload.get("revision", 0)),
        )

    def payload(self) -> dict[str, Any]:
        return {
            "interaction_count": self.interaction_count,
            "popularity": self.popularity,
            "popularity_ts": self.popularity_ts,
            "recent_event_ids": list(self.recent_event_ids),
            "revision": self.revision,
        }

    def has_recorded(self, event_id: str) -> bool:
        return event_id in self.recent_event_ids

    def record(self, event: Interaction, weight: float, ts: float, rules: InteractionRules) -> None:
        """Counts a positive event and adds its weight to the decayed popularity."""
        self.recent_event_ids = [*self.recent_event_ids, event.event_id][-rules.recent_events_size :]
        if weight > 0:
            self.interaction_count += 1
            self.popularity, self.popularity_ts = add_decayed(
                self.popularity, self.popularity_ts, weight, ts, rules.popularity_half_life_s
            )
