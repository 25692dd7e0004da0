"""Degenerate vectors, near-duplicates and the anomaly log."""

from __future__ import annotations

import numpy as np
import pytest

from recsys.monitor.anomalies import (
    Anomaly,
    AnomalyKind,
    AnomalyLog,
    degenerate_vector,
    near_duplicates,
    pair_subject,
    unit_rows,
)

SPACE = "items.content"


def check(vector: np.ndarray, median_norm: float | None = 1.0) -> Anomaly | None:
    return degenerate_vector(SPACE, "x", vector, median_norm=median_norm, norm_ratio=10.0, now=5.0)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_components_make_a_vector_degenerate(bad: float) -> None:
    vector = np.ones(8)
    vector[[2, 5]] = bad

    anomaly = check(vector)

    assert anomaly is not None
    assert anomaly.kind is AnomalyKind.DEGENERATE_VECTOR
    assert anomaly.score == 2.0
    assert "2 of 8 components" in anomaly.detail


def test_a_zero_vector_is_degenerate_even_without_a_median() -> None:
    anomaly = check(np.zeros(8), median_norm=None)

    assert anomaly is not None
    assert anomaly.detail == "zero vector"


def test_norms_far_from_the_window_median_are_degenerate_and_near_ones_are_not() -> None:
    unit = np.zeros(4)
    unit[0] = 1.0

    too_long, too_short = check(unit * 10.5, median_norm=1.0), check(unit * 0.09, median_norm=1.0)

    assert too_long is not None and too_long.threshold == pytest.approx(10.0)
    assert too_short is not None and too_short.threshold == pytest.approx(0.1)
    assert check(unit * 9.5, median_norm=1.0) is None
    assert check(unit * 0.11, median_norm=1.0) is None
    assert check(unit * 1000, median_norm=None) is None


def test_near_duplicates_are_found_against_other_subjects_only() -> None:
    rng = np.random.default_rng(0)
    others = ["a", "b", "c"]
    matrix = rng.standard_normal((3, 16))
    vector = matrix[1] * 3 + 1e-3 * rng.standard_normal(16)

    found = near_duplicates(SPACE, "new", vector, others, unit_rows(matrix), threshold=0.98, now=1.0)

    assert [a.subject for a in found] == [pair_subject("new", "b")]
    assert found[0].score >= 0.98
    assert found[0].kind is AnomalyKind.NEAR_DUPLICATE
    assert near_duplicates(SPACE, "b", matrix[1], others, unit_rows(matrix), threshold=0.98, now=1.0) == []


def test_a_pair_is_named_the_same_whichever_came_first() -> None:
    assert pair_subject("z", "a") == pair_subject("a", "z") == "a|z"


def anomaly(subject: str, kind: AnomalyKind = AnomalyKind.DEGENERATE_VECTOR, at: float = 0.0) -> Anomaly:
    return Anomaly(kind, SPACE, subject, 0.0, 0.0, at, "")


def test_log_lists_newest_first_and_filters_by_kind() -> None:
    log = AnomalyLog(capacity=10)
    log.record(anomaly("a"))
    log.record(anomaly("a|b", AnomalyKind.NEAR_DUPLICATE))
    log.record(anomaly("c"))

    assert [a.subject for a in log.recent()] == ["c", "a|b", "a"]
    assert [a.subject for a in log.recent(AnomalyKind.DEGENERATE_VECTOR)] == ["c", "a"]
    assert [a.subject for a in log.recent(limit=1)] == ["c"]


def test_a_repeated_anomaly_replaces_the_old_entry() -> None:
    log = AnomalyLog(capacity=10)

    assert log.record(anomaly("a", at=1.0))
    log.record(anomaly("b", at=2.0))
    assert not log.record(anomaly("a", at=3.0))

    assert [(a.subject, a.detected_at) for a in log.recent()] == [("a", 3.0), ("b", 2.0)]


def test_log_forgets_the_oldest_beyond_capacity() -> None:
    log = AnomalyLog(capacity=3)
    for i in range(5):
        log.record(anomaly(f"s{i}"))

    assert [a.subject for a in log.recent()] == ["s4", "s3", "s2"]
