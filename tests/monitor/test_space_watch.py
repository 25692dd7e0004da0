"""What one space does with each incoming vector: checks first, then the windows."""

from __future__ import annotations

import numpy as np

from recsys.monitor.anomalies import AnomalyKind
from recsys.monitor.space_watch import SpaceWatch, WatchPolicy, version_order
from recsys.monitor.windows import WindowPolicy

WINDOWS = WindowPolicy(reference_size=50, current_size=50)
POLICY = WatchPolicy(windows=WINDOWS, min_window=5, near_duplicate_cosine=0.98, degenerate_norm_ratio=10)


def unit(rng: np.random.Generator, dims: int = 32) -> np.ndarray:
    v = rng.standard_normal(dims)
    return v / np.linalg.norm(v)


def test_a_degenerate_vector_stays_out_and_takes_the_old_one_out_of_the_current_window() -> None:
    rng = np.random.default_rng(0)
    watch = SpaceWatch("items.content", POLICY)
    watch.observe("a", unit(rng), now=1.0)

    found = watch.observe("a", np.full(32, np.nan), now=2.0)

    assert [a.kind for a in found] == [AnomalyKind.DEGENERATE_VECTOR]
    assert watch.windows.current_count == 0
    assert not np.isnan(watch.snapshot().reference).any()


def test_a_long_vector_is_reported_once_the_window_has_a_median_and_still_kept() -> None:
    rng = np.random.default_rng(1)
    watch = SpaceWatch("items.content", POLICY)
    early = watch.observe("early", unit(rng) * 50, now=1.0)
    for i in range(POLICY.min_window):
        watch.observe(f"s{i}", unit(rng), now=1.0)

    late = watch.observe("late", unit(rng) * 50, now=2.0)

    assert early == []
    assert [a.subject for a in late] == ["late"]
    assert "late" in watch.windows.current_subjects()


def test_a_copy_under_another_id_is_a_near_duplicate_and_a_re_sent_vector_is_not() -> None:
    rng = np.random.default_rng(2)
    watch = SpaceWatch("items.content", POLICY)
    original = unit(rng)
    watch.observe("a", original, now=1.0)
    watch.observe("b", unit(rng), now=1.0)

    again = watch.observe("a", original, now=2.0)
    copy = watch.observe("c", original * 2, now=3.0)

    assert again == []
    assert [(x.kind, x.subject) for x in copy] == [(AnomalyKind.NEAR_DUPLICATE, "a|c")]


def test_forgetting_a_subject_removes_it_from_duplicate_checks() -> None:
    rng = np.random.default_rng(3)
    watch = SpaceWatch("items.content", POLICY)
    original = unit(rng)
    watch.observe("a", original, now=1.0)

    assert watch.forget("a")
    assert watch.observe("c", original, now=2.0) == []


def test_a_space_without_duplicate_checks_accepts_identical_vectors_silently() -> None:
    rng = np.random.default_rng(4)
    policy = WatchPolicy(windows=WINDOWS, min_window=5, near_duplicate_cosine=None, degenerate_norm_ratio=10)
    watch = SpaceWatch("users.taste", policy)
    shared_taste = unit(rng)
    watch.observe("u1", shared_taste, now=1.0)

    assert watch.observe("u2", shared_taste, now=2.0) == []
    assert watch.windows.current_count == 2


def test_a_newer_basis_version_starts_the_windows_afresh_and_an_older_one_is_ignored() -> None:
    rng = np.random.default_rng(5)
    watch = SpaceWatch("items.behavior", POLICY)
    for i in range(10):
        watch.observe(f"v1-{i}", unit(rng), now=1.0, version="1")

    watch.observe("fresh", unit(rng), now=2.0, version="2")
    late = watch.observe("stale", unit(rng), now=3.0, version="1")

    assert late == []
    assert watch.basis_version == "2"
    assert watch.windows.reference_subjects() == ["fresh"] and watch.windows.current_subjects() == ["fresh"]


def test_versions_order_none_first_then_numbers_by_value_then_text() -> None:
    assert version_order("10") > version_order("9") > version_order("")
    assert version_order("2026-01-02") > version_order("2026-01-01") > version_order("999")


def test_vectors_of_other_dimensions_mean_another_model_and_restart_the_windows() -> None:
    rng = np.random.default_rng(6)
    watch = SpaceWatch("items.content", POLICY)
    for i in range(5):
        watch.observe(f"old-{i}", unit(rng, dims=32), now=1.0)

    watch.observe("new", unit(rng, dims=16), now=2.0)

    assert watch.windows.dims == 16 and watch.windows.current_subjects() == ["new"]


def test_a_vector_far_from_every_reference_vector_is_an_outlier_and_a_typical_one_is_not() -> None:
    rng = np.random.default_rng(7)
    centre = unit(rng)
    policy = WatchPolicy(
        windows=WINDOWS, min_window=5, near_duplicate_cosine=None, degenerate_norm_ratio=10, outlier_neighbours=3
    )
    watch = SpaceWatch("items.content", policy)
    for i in range(50):
        watch.observe(f"s{i}", centre + 0.3 * unit(rng), now=1.0)  # a cluster around centre

    typical = watch.observe("typical", centre + 0.3 * unit(rng), now=2.0)
    far = watch.observe("far", -centre, now=2.0)

    assert typical == []
    assert [(a.kind, a.subject) for a in far] == [(AnomalyKind.OUTLIER, "far")]
    assert far[0].score > far[0].threshold
    assert "3rd-nearest reference vector" in far[0].detail


def test_export_and_restore_keep_the_basis_version() -> None:
    rng = np.random.default_rng(8)
    watch = SpaceWatch("items.behavior", POLICY)
    watch.observe("a", unit(rng), now=1.0, version="4")

    restored = SpaceWatch("items.behavior", POLICY)
    restored.restore(*watch.export())

    assert restored.basis_version == "4"
    assert restored.windows.current_subjects() == ["a"]
