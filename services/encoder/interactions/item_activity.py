"""What interactions do to an item: positive-event count, decayed popularity (trending), and replay memory.

The item's behavior vector is not moved here: the periodic factorization (behavior_refresh.py)
writes it, with its version and strength, to fields this update never touches.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from recsys.encoder.interactions.decay import add_decayed
from recsys.encoder.interactions.recent_events import RecentEvents
from recsys.encoder.interactions.rules import InteractionRules
from recsys.shared.events import Interaction
from recsys.shared.packed import pack_floats, pack_ids
from recsys.shared.points import ItemField


@dataclass
class ItemActivity:
    """The interaction fields of an `items` point; `record` applies one interaction."""

    interaction_count: int = 0
    popularity: float = 0.0
    popularity_ts: float = 0.0
    recent: RecentEvents = field(default_factory=RecentEvents)
    # The writer bumps it with every write, so a compare-and-set can tell whether someone else wrote meanwhile.
    revision: int = 0

    @classmethod
    def from_stored(cls, payload: Mapping[str, Any]) -> ItemActivity:
        return cls(
            interaction_count=ItemField.INTERACTION_COUNT.read(payload),
            popularity=ItemField.POPULARITY.read(payload),
            popularity_ts=ItemField.POPULARITY_TS.read(payload),
            recent=RecentEvents.stored(
                ItemField.RECENT_EVENT_IDS.read(payload),
                ItemField.RECENT_EVENT_TIMES.read(payload),
                ItemField.REPLAY_HORIZON_TS.read(payload),
            ),
            revision=ItemField.REVISION.read(payload),
        )

    def payload(self) -> dict[str, Any]:
        """The activity fields (ItemField.ACTIVITY) as stored, the ledger packed (recsys.shared.packed)."""
        return {
            ItemField.INTERACTION_COUNT.key: self.interaction_count,
            ItemField.POPULARITY.key: self.popularity,
            ItemField.POPULARITY_TS.key: self.popularity_ts,
            ItemField.RECENT_EVENT_IDS.key: pack_ids(self.recent.ids),
            ItemField.RECENT_EVENT_TIMES.key: pack_floats(self.recent.times),
            ItemField.REPLAY_HORIZON_TS.key: self.recent.horizon_or_none(),
            ItemField.REVISION.key: self.revision,
        }

    @property
    def recent_event_ids(self) -> list[str]:
        return list(self.recent.ids)

    def has_recorded(self, event_id: str) -> bool:
        return self.recent.has(event_id)

    def beyond_horizon(self, event_id: str, ts: float) -> bool:
        """An interaction this item may have counted and forgotten: it must not be counted (recent_events.py)."""
        return self.recent.beyond_horizon(event_id, ts)

    def record(self, event: Interaction, weight: float, ts: float, rules: InteractionRules) -> None:
        """Counts a positive event and adds its weight to the decayed popularity."""
        self.recent = self.recent.remember(event.event_id, ts, rules.recent_events_size)
        if weight > 0:
            self.interaction_count += 1
            self.popularity, self.popularity_ts = add_decayed(
                self.popularity, self.popularity_ts, weight, ts, rules.popularity_half_life_s
            )


def activity_only_payload(item_id: str, activity: ItemActivity, ts: float) -> dict[str, Any]:
    """The payload of an item seen in interactions before its item.upserted: activity, no catalog entry.

    Version -1 and updated_at -1 let the first item.upserted of any version complete it in place,
    keeping the activity gathered so far.
    """
    return {
        ItemField.ITEM_ID.key: item_id,
        ItemField.IN_CATALOG.key: False,
        ItemField.VERSION.key: -1,
        ItemField.UPDATED_AT.key: -1.0,
        ItemField.CREATED_AT.key: ts,
        **activity.payload(),
    }
