"""The behavior sketch: co-engaged items end up close, user behavior follows the items' current vectors."""

from __future__ import annotations

import numpy as np
import pytest

from recsys.encoder.behavior import item_behavior_after, user_behavior, user_code
from recsys.encoder.decay import DecayedSum

DIMS = 64
HALF_LIFE = 30 * 86_400.0


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def engaged_by(user_ids: list[str], weight: float = 1.0) -> np.ndarray:
    behavior = DecayedSum.empty()
    for n, user_id in enumerate(user_ids):
        behavior = item_behavior_after(behavior, user_id, weight, 1000.0 + n, HALF_LIFE, DIMS)
    assert behavior.unit is not None
    return behavior.unit


def test_a_user_code_is_a_fixed_unit_vector_of_the_user_id() -> None:
    code = user_code("u-42", DIMS)

    np.testing.assert_array_equal(code, user_code("u-42", DIMS))
    assert code.shape == (DIMS,)
    assert np.linalg.norm(code) == pytest.approx(1.0)
    assert abs(cosine(code, user_code("u-43", DIMS))) < 0.5


def test_items_engaged_by_the_same_users_are_closer_than_items_engaged_by_disjoint_users() -> None:
    fans = [f"fan-{n}" for n in range(12)]
    others = [f"other-{n}" for n in range(12)]
    first, second = engaged_by(fans), engaged_by(fans[2:])
    unrelated = engaged_by(others)

    assert cosine(first, second) > 0.8
    assert cosine(first, second) > cosine(first, unrelated) + 0.5


def test_a_dislike_by_the_only_engaged_user_removes_the_item_behavior() -> None:
    behavior = item_behavior_after(DecayedSum.empty(), "u1", 3.0, 10.0, HALF_LIFE, DIMS)
    behavior = item_behavior_after(behavior, "u1", -3.0, 10.0, HALF_LIFE, DIMS)

    assert behavior.total is None


def test_user_behavior_points_to_items_co_engaged_with_their_history() -> None:
    fans = [f"fan-{n}" for n in range(12)]
    items = {
        "alien": engaged_by(fans),
        "aliens": engaged_by(fans[1:]),
        "soup": engaged_by([f"cook-{n}" for n in range(12)]),
    }
    behavior = user_behavior([("alien", 1.0, 100.0)], items, now=100.0, half_life_s=HALF_LIFE)

    assert behavior.unit is not None
    assert cosine(behavior.unit, items["aliens"]) > cosine(behavior.unit, items["soup"]) + 0.5


def test_user_behavior_skips_items_without_behavior_and_weighs_recent_events_more() -> None:
    a, b = np.eye(2)
    history = [("a", 1.0, 0.0), ("unknown", 5.0, 50.0), ("b", 1.0, HALF_LIFE)]
    behavior = user_behavior(history, {"a": a, "b": b}, now=HALF_LIFE, half_life_s=HALF_LIFE)

    assert behavior.total is not None
    np.testing.assert_allclose(behavior.total, [0.5, 1.0])
