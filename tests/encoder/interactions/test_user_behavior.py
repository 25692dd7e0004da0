"""User behavior: the decayed, weighted fold-in of the current item vectors of one model version."""

from __future__ import annotations

import numpy as np

from recsys.encoder.interactions.behavior_fold import fold_by_newest_version
from recsys.encoder.interactions.decay import DecayedSum
from recsys.encoder.interactions.user_behavior import user_behavior

HALF_LIFE = 30 * 86_400.0


def test_user_behavior_skips_items_without_behavior_and_weighs_recent_events_more() -> None:
    a, b = np.eye(2)
    history = [("a", 1.0, 0.0), ("unknown", 5.0, 50.0), ("b", 1.0, HALF_LIFE)]
    behavior = user_behavior(history, {"a": a, "b": b}, now=HALF_LIFE, half_life_s=HALF_LIFE)

    assert behavior.total is not None
    np.testing.assert_allclose(behavior.total, [0.5, 1.0])


def test_item_directions_count_whatever_their_stored_length_and_negative_weights_push_away() -> None:
    a, b = np.eye(2)
    behavior = user_behavior([("a", 2.0, 0.0), ("b", -1.0, 0.0)], {"a": 5 * a, "b": b}, now=0.0, half_life_s=HALF_LIFE)

    assert behavior.total is not None
    np.testing.assert_allclose(behavior.total, [2.0, -1.0])


def test_only_vectors_of_the_newest_model_version_the_user_reaches_are_folded_in() -> None:
    a, b = np.eye(2)
    history = [("a", 1.0, 0.0), ("b", 1.0, 0.0)]
    both, only_a, neither = fold_by_newest_version(
        [history, history[:1], [("c", 1.0, 0.0)]], [0.0, 0.0, 0.0], ["a", "b"], np.array([a, b]), [7, 8], HALF_LIFE
    )

    assert both[1] == 8 and both[0].total is not None
    np.testing.assert_allclose(both[0].total, b)  # a is of another factorization's basis: left out
    assert only_a[1] == 7 and only_a[0].total is not None
    np.testing.assert_allclose(only_a[0].total, a)
    assert neither == (DecayedSum.empty(0.0), None)


def test_the_fold_is_the_sum_one_add_per_entry_builds() -> None:
    # Out of order, negative and zero weights, an item without a vector, one whose vector has no length.
    rng = np.random.default_rng(3)
    vectors = {f"i{n}": rng.normal(size=8) for n in range(30)}
    vectors["flat"] = np.zeros(8)
    history = [
        (f"i{rng.integers(30)}", float(rng.choice([1.0, 0.5, -1.0, 0.0])), float(rng.uniform(0, 5e6)))
        for _ in range(100)
    ]
    history += [("flat", 1.0, 10.0), ("unknown", 1.0, 20.0)]
    now = 4e6  # some entries are later than now: the sum moves to the latest

    expected = DecayedSum.empty(now)
    for item_id, weight, ts in history:
        direction = vectors.get(item_id)
        if direction is None or weight == 0 or not np.linalg.norm(direction):
            continue
        expected = expected.add(direction / np.linalg.norm(direction), weight, ts, HALF_LIFE)
    folded = user_behavior(history, vectors, now, HALF_LIFE)

    assert folded.ts == expected.ts
    assert folded.total is not None and expected.total is not None
    np.testing.assert_allclose(folded.total, expected.total, rtol=1e-12, atol=1e-12)
    assert user_behavior([("unknown", 1.0, 0.0)], vectors, now, HALF_LIFE) == DecayedSum.empty(now)
