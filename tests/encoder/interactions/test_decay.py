"""Exponential decay of values and of vector sums, including events that arrive out of order."""

from __future__ import annotations

import numpy as np
import pytest

from recsys.encoder.interactions.decay import DecayedSum, add_decayed, decay_factor, decayed

HALF_LIFE = 100.0


def test_a_value_halves_after_one_half_life_and_quarters_after_two() -> None:
    assert decayed(8.0, 0.0, HALF_LIFE, HALF_LIFE) == pytest.approx(4.0)
    assert decayed(8.0, 50.0, 50.0 + 2 * HALF_LIFE, HALF_LIFE) == pytest.approx(2.0)


def test_time_running_backwards_never_grows_a_value() -> None:
    assert decay_factor(-50.0, HALF_LIFE) == 1.0


def test_a_non_positive_half_life_is_refused() -> None:
    with pytest.raises(ValueError, match="half-life"):
        decay_factor(1.0, 0.0)


def test_an_event_older_than_the_total_is_decayed_instead_of_the_total() -> None:
    total, ts = add_decayed(2.0, 1000.0, 2.0, 1000.0 - HALF_LIFE, HALF_LIFE)

    assert ts == 1000.0
    assert total == pytest.approx(2.0 + 1.0)


def test_adding_in_either_order_gives_the_same_total() -> None:
    first = add_decayed(*add_decayed(0.0, 0.0, 3.0, 10.0, HALF_LIFE), 5.0, 70.0, HALF_LIFE)
    second = add_decayed(*add_decayed(0.0, 0.0, 5.0, 70.0, HALF_LIFE), 3.0, 10.0, HALF_LIFE)

    assert first[0] == pytest.approx(second[0])
    assert first[1] == second[1] == 70.0


def test_a_vector_sum_decays_its_past_before_adding_a_newer_event() -> None:
    x, y = np.eye(2)
    total = DecayedSum.empty().add(x, 2.0, 0.0, HALF_LIFE).add(y, 2.0, HALF_LIFE, HALF_LIFE)

    assert total.ts == HALF_LIFE
    assert total.total is not None
    np.testing.assert_allclose(total.total, [1.0, 2.0])
    assert total.norm == pytest.approx(np.sqrt(5.0))


def test_vector_sums_do_not_depend_on_the_order_events_arrive_in() -> None:
    rng = np.random.default_rng(7)
    events = [(rng.standard_normal(8), float(rng.uniform(-3, 4)), float(rng.uniform(0, 500))) for _ in range(6)]
    forward = DecayedSum.empty()
    for vector, weight, ts in events:
        forward = forward.add(vector, weight, ts, HALF_LIFE)
    backward = DecayedSum.empty()
    for vector, weight, ts in reversed(events):
        backward = backward.add(vector, weight, ts, HALF_LIFE)

    assert forward.ts == backward.ts
    assert forward.total is not None and backward.total is not None
    np.testing.assert_allclose(forward.total, backward.total)


def test_subtracting_what_was_added_leaves_no_vector() -> None:
    vector = np.array([0.6, 0.8])
    total = DecayedSum.empty().add(vector, 3.0, 10.0, HALF_LIFE).add(vector, -3.0, 10.0, HALF_LIFE)

    assert total.total is None and total.unit is None and total.norm == 0.0


def test_a_stored_direction_and_norm_rebuild_the_same_sum() -> None:
    original = DecayedSum.empty().add(np.array([3.0, 4.0, 0.0]), 2.0, 5.0, HALF_LIFE)
    assert original.unit is not None
    rebuilt = DecayedSum.from_stored(original.unit.astype(np.float32).tolist(), original.norm, original.ts)

    assert rebuilt.total is not None and original.total is not None
    np.testing.assert_allclose(rebuilt.total, original.total, rtol=1e-6)
    assert DecayedSum.from_stored(None, 4.0, 1.0).total is None
    assert DecayedSum.from_stored([1.0, 0.0], 0.0, 1.0).total is None
