"""What interactions do to an item: counts, decayed popularity and replay memory."""

from __future__ import annotations

import pytest

from recsys.encoder.interactions.item_activity import ItemActivity
from recsys.encoder.interactions.rules import InteractionRules
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


def test_a_dislike_is_neither_counted_nor_popular() -> None:
    activity = ItemActivity()
    activity.record(event(1), 3.0, 1.0, RULES)
    activity.record(event(2, kind=InteractionType.DISLIKE), -3.0, 1.0, RULES)

    assert activity.interaction_count == 1
    assert activity.popularity == pytest.approx(3.0)
    assert activity.has_recorded("e2")


def test_recent_event_ids_are_bounded_and_the_payload_reads_back() -> None:
    activity = ItemActivity(revision=4)
    for n in range(5):
        activity.record(event(n, f"u{n}"), 1.0, float(n), RULES)
    assert activity.recent_event_ids == ["e2", "e3", "e4"]

    rebuilt = ItemActivity.from_stored(activity.payload())
    assert rebuilt == activity
    assert "behavior_norm" not in activity.payload()  # the refresh owns the behavior fields
