"""What interactions do to an item: counts, popularity and behavior."""

from __future__ import annotations

import pytest

from recsys.encoder.interaction_rules import InteractionRules
from recsys.encoder.item_activity import ItemActivity
from recsys.shared.events import Interaction, InteractionType

RULES = InteractionRules(
    taste_half_life_s=86_400.0,
    session_half_life_s=1800.0,
    behavior_half_life_s=86_400.0,
    popularity_half_life_s=100.0,
    history_size=10,
    seen_size=10,
    recent_events_size=3,
    behavior_dims=16,
)


def event(n: int, user_id: str = "u1", kind: InteractionType = InteractionType.CLICK) -> Interaction:
    return Interaction(event_id=f"e{n}", user_id=user_id, item_id="i1", type=kind, ts=n)


def test_positive_events_count_and_add_decayed_popularity() -> None:
    activity = ItemActivity()
    activity.record(event(0), 2.0, 0.0, RULES)
    activity.record(event(100, "u2"), 1.0, 100.0, RULES)

    assert activity.interaction_count == 2
    assert activity.popularity == pytest.approx(2.0 / 2 + 1.0)
    assert activity.popularity_ts == 100.0


def test_a_dislike_is_not_counted_and_takes_back_the_users_behavior() -> None:
    activity = ItemActivity()
    activity.record(event(1), 3.0, 1.0, RULES)
    activity.record(event(2, kind=InteractionType.DISLIKE), -3.0, 1.0, RULES)

    assert activity.interaction_count == 1
    assert activity.behavior.total is None


def test_recent_event_ids_are_bounded_and_read_back() -> None:
    activity = ItemActivity()
    for n in range(5):
        activity.record(event(n, f"u{n}"), 1.0, float(n), RULES)
    assert activity.recent_event_ids == ["e2", "e3", "e4"]
    assert activity.behavior.unit is not None

    rebuilt = ItemActivity.from_stored(activity.payload(), activity.behavior.unit.tolist())
    stored, read_back = activity.payload(), rebuilt.payload()
    assert read_back["recent_event_ids"] == stored["recent_event_ids"]
    assert read_back["interaction_count"] == stored["interaction_count"]
    assert read_back["popularity"] == stored["popularity"]
    assert read_back["behavior_norm"] == pytest.approx(stored["behavior_norm"])
