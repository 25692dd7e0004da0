"""A user's profile under interactions: taste, session, bounded lists, replays and unknown items."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from recsys.encoder.interactions.rules import InteractionRules
from recsys.encoder.interactions.user_profile import UserProfile
from recsys.shared.events import Interaction, InteractionType

RULES = InteractionRules(
    taste_half_life_s=30 * 86_400.0,
    session_half_life_s=1800.0,
    behavior_half_life_s=30 * 86_400.0,
    popularity_half_life_s=7 * 86_400.0,
    history_size=3,
    seen_size=4,
    recent_events_size=5,
    behavior_dims=16,
)
SPACE, COOKING, GARDEN = np.eye(3)


def event(n: int, item_id: str = "i1", session_id: str | None = None) -> Interaction:
    return Interaction(
        event_id=f"e{n}", user_id="u1", item_id=item_id, type=InteractionType.CLICK, session_id=session_id, ts=n
    )


def cosine(a: np.ndarray | None, b: np.ndarray) -> float:
    assert a is not None
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def test_taste_moves_toward_the_items_engaged_with() -> None:
    profile = UserProfile("u1")
    profile.record(event(1, "cook"), 1.0, 1.0, COOKING, RULES)
    before = cosine(profile.taste.unit, SPACE)
    for n in range(2, 5):
        profile.record(event(n, "space"), 2.0, float(n), SPACE, RULES)

    assert cosine(profile.taste.unit, SPACE) > before
    assert cosine(profile.taste.unit, SPACE) > cosine(profile.taste.unit, COOKING)


def test_a_dislike_pushes_taste_away_from_the_item() -> None:
    profile = UserProfile("u1")
    profile.record(event(1, "space"), 1.0, 1.0, SPACE, RULES)
    profile.record(event(2, "cook"), 1.0, 2.0, COOKING, RULES)
    before = cosine(profile.taste.unit, SPACE)
    profile.record(event(3, "space"), -0.5, 3.0, SPACE, RULES)

    assert cosine(profile.taste.unit, SPACE) < before


def test_an_item_outside_the_catalog_counts_but_does_not_move_taste() -> None:
    profile = UserProfile("u1")
    profile.record(event(1, "ghost"), 1.0, 1.0, None, RULES)

    assert profile.event_count == 1
    assert [entry.item_id for entry in profile.history] == ["ghost"]
    assert profile.seen == ["ghost"]
    assert profile.taste.total is None and profile.session.total is None


def test_history_seen_and_event_ids_keep_only_the_newest_within_their_bounds() -> None:
    profile = UserProfile("u1")
    for n, item in enumerate(["a", "b", "c", "a", "d", "e", "f"], start=1):
        profile.record(event(n, item), 1.0, float(n), None, RULES)

    assert [entry.item_id for entry in profile.history] == ["d", "e", "f"]
    assert profile.seen == ["a", "d", "e", "f"]
    assert profile.recent_event_ids == [f"e{n}" for n in range(3, 8)]
    assert profile.has_recorded("e7") and not profile.has_recorded("e1")


def test_a_late_event_takes_its_place_in_time_in_the_history() -> None:
    profile = UserProfile("u1")
    profile.record(event(10, "new"), 1.0, 10.0, None, RULES)
    profile.record(event(5, "old"), 1.0, 5.0, None, RULES)

    assert [entry.item_id for entry in profile.history] == ["old", "new"]
    assert profile.last_event_ts == 10.0


def test_a_new_session_id_starts_the_session_vector_afresh() -> None:
    profile = UserProfile("u1")
    profile.record(event(1, "space", "s1"), 1.0, 1.0, SPACE, RULES)
    profile.record(event(2, "cook", "s2"), 1.0, 2.0, COOKING, RULES)

    assert profile.session_id == "s2"
    assert cosine(profile.session.unit, COOKING) == pytest.approx(1.0)
    assert cosine(profile.taste.unit, SPACE) > 0.5


def test_a_late_event_from_an_ended_session_leaves_the_session_vector_alone() -> None:
    profile = UserProfile("u1")
    profile.record(event(5, "cook", "s2"), 1.0, 5.0, COOKING, RULES)
    profile.record(event(1, "garden", "s1"), 1.0, 1.0, GARDEN, RULES)

    assert profile.session_id == "s2"
    assert cosine(profile.session.unit, COOKING) == pytest.approx(1.0)
    assert cosine(profile.taste.unit, GARDEN) > 0


def test_a_stored_profile_reads_back_as_it_was_written() -> None:
    profile = UserProfile("u1")
    profile.record(event(1, "space", "s1"), 2.0, 1.0, SPACE, RULES)
    profile.record(event(2, "cook", "s1"), 1.0, 2.0, COOKING, RULES)
    taste, session = profile.taste.unit, profile.session.unit
    assert taste is not None and session is not None

    rebuilt = UserProfile.from_stored(profile.payload(), taste.tolist(), session.tolist(), None)

    assert rebuilt.payload() == profile.payload()


def test_an_item_engaged_with_only_through_repeatable_types_is_not_seen() -> None:
    rules = replace(RULES, repeatable_types=frozenset({InteractionType.PURCHASE}))
    profile = UserProfile("u1")
    bought = Interaction(event_id="e1", user_id="u1", item_id="coffee", type=InteractionType.PURCHASE, ts=1)
    profile.record(bought, 4.0, 1.0, COOKING, rules)
    profile.record(event(2, "kettle"), 1.0, 2.0, COOKING, rules)

    assert profile.seen == ["kettle"]
    assert [entry.item_id for entry in profile.history] == ["coffee", "kettle"]  # it still counts and moves taste
    assert profile.event_count == 2

    profile.record(event(3, "coffee"), 1.0, 3.0, COOKING, rules)  # a click is not repeatable: now it is seen
    profile.record(
        Interaction(event_id="e4", user_id="u1", item_id="coffee", type=InteractionType.PURCHASE, ts=4), 4.0, 4.0,
        COOKING, rules,
    )  # fmt: skip
    assert profile.seen == ["kettle", "coffee"]


def test_without_repeatable_types_a_purchase_marks_its_item_seen() -> None:
    profile = UserProfile("u1")
    bought = Interaction(event_id="e1", user_id="u1", item_id="coffee", type=InteractionType.PURCHASE, ts=1)
    profile.record(bought, 4.0, 1.0, COOKING, RULES)

    assert profile.seen == ["coffee"]
