"""User behavior: the decayed, weighted fold-in of the current item vectors of one model version."""

from __future__ import annotations

import numpy as np

from recsys.encoder.interactions.user_behavior import newest_version, of_version, user_behavior

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


def test_only_vectors_of_the_newest_model_version_are_folded_in() -> None:
    vectors = {"a": np.array([1.0, 0.0]), "b": np.array([0.0, 1.0])}
    versions = {"a": 7, "b": 8}

    assert newest_version(versions) == 8
    assert list(of_version(vectors, versions, 8)) == ["b"]
    assert newest_version({}) is None
