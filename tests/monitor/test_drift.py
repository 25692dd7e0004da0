"""Drift statistics: MMD² against a plain loop implementation, the permutation test, and insufficient windows."""

from __future__ import annotations

import math

import numpy as np
import pytest

from recsys.monitor.drift import (
    centroid_distances,
    compare_windows,
    mmd2_unbiased,
    permutation_masks,
    permutation_p_value,
    permuted_mmd2,
    rbf_kernel,
    squared_distances,
)


def loop_mmd2(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Unbiased MMD² and σ² written out pair by pair, σ² picked the way Alibi Detect's GaussianRBF does."""
    n, m = len(x), len(y)

    def sq(a: np.ndarray, b: np.ndarray) -> float:
        return float(sum((float(p) - float(q)) ** 2 for p, q in zip(a, b, strict=True)))

    # Alibi: sort the whole n×n reference distance matrix (diagonal included) and take n + (n² - n)//2 - 1.
    flat = sorted(sq(x[i], x[j]) for i in range(n) for j in range(n))
    sigma2 = 0.5 * flat[n + (n * n - n) // 2 - 1]

    def k(a: np.ndarray, b: np.ndarray) -> float:
        return math.exp(-sq(a, b) / (2 * sigma2))

    xx = sum(k(x[i], x[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    yy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    xy = sum(k(x[i], y[j]) for i in range(n) for j in range(m)) / (n * m)
    return xx + yy - 2 * xy, sigma2


def report_for(reference: np.ndarray, current: np.ndarray, *, permutations: int = 100, seed: int = 0):  # type: ignore[no-untyped-def]
    return compare_windows(
        "items.content", reference, current, min_window=10, permutations=permutations, alpha=0.05, seed=seed, now=1.0
    )


def test_mmd2_matches_a_pair_by_pair_loop() -> None:
    rng = np.random.default_rng(7)
    # An even number of reference pairs (32·31/2) makes the lower-median choice matter.
    reference = rng.standard_normal((32, 12))
    current = rng.standard_normal((27, 12)) + 0.3

    expected_mmd2, expected_sigma2 = loop_mmd2(reference, current)
    report = report_for(reference, current)

    assert report.mmd2 == pytest.approx(expected_mmd2, rel=1e-4)
    assert report.kernel_sigma is not None
    assert report.kernel_sigma**2 == pytest.approx(expected_sigma2, rel=1e-9)


def test_mmd2_is_near_the_published_figure_for_a_small_shift_in_384_dimensions() -> None:
    # Field notes: Alibi Detect and Evidently both give ≈0.00359 for n=500, d=384, shift 0.1.
    rng = np.random.default_rng(0)
    reference = rng.standard_normal((500, 384))
    current = rng.standard_normal((500, 384)) + 0.1

    report = report_for(reference, current, permutations=1)

    assert report.mmd2 == pytest.approx(0.00359, rel=0.25)


def test_permuted_statistics_from_one_kernel_equal_reindexing_the_kernel() -> None:
    rng = np.random.default_rng(3)
    pooled = rng.standard_normal((45, 8))
    n = 20
    distances = squared_distances(pooled, pooled)
    kernel = rbf_kernel(distances, 0.5 * float(np.median(distances)))
    masks = permutation_masks(np.random.default_rng(11), len(pooled), n, 25)

    fast = permuted_mmd2(kernel, masks)

    for mask, statistic in zip(masks, fast, strict=True):
        order = np.concatenate([np.flatnonzero(mask == 1.0), np.flatnonzero(mask == 0.0)])
        assert statistic == pytest.approx(mmd2_unbiased(kernel[np.ix_(order, order)], n), rel=1e-9, abs=1e-12)
    assert masks.sum(axis=1) == pytest.approx(np.full(25, n))


def test_p_value_counts_the_observed_statistic_among_the_permutations() -> None:
    permuted = np.array([0.1, 0.5, 0.9, 0.2, 0.7])
    observed = 0.5

    expected = (1 + int(np.sum(permuted >= observed))) / (1 + len(permuted))

    assert permutation_p_value(observed, permuted) == pytest.approx(expected)
    assert permutation_p_value(10.0, permuted) == pytest.approx(1 / (1 + len(permuted)))


def test_a_half_unit_mean_shift_in_384_dimensions_is_detected() -> None:
    rng = np.random.default_rng(1)
    reference = rng.standard_normal((200, 384))
    current = rng.standard_normal((200, 384)) + 0.5

    report = report_for(reference, current)

    assert report.sufficient
    assert report.drifted
    assert report.p_value is not None and report.p_value < report.alpha
    assert report.centroid_euclidean_distance is not None and report.centroid_euclidean_distance > 5.0


def test_samples_of_one_distribution_rarely_look_drifted() -> None:
    drifted = 0
    p_values = []
    for seed in range(20):
        rng = np.random.default_rng(100 + seed)
        report = report_for(rng.standard_normal((60, 384)), rng.standard_normal((60, 384)), seed=seed)
        drifted += report.drifted
        p_values.append(report.p_value)

    # alpha = 0.05: about one false alarm in 20 trials; five or more has probability ≈0.3%.
    assert drifted <= 4
    assert float(np.median(p_values)) > 0.2


def test_the_same_seed_gives_the_same_p_value() -> None:
    rng = np.random.default_rng(5)
    reference, current = rng.standard_normal((50, 16)), rng.standard_normal((50, 16)) + 0.05

    first, again = report_for(reference, current, seed=9), report_for(reference, current, seed=9)

    assert first.p_value == again.p_value
    assert first.mmd2 == again.mmd2


def test_windows_too_small_give_a_reason_and_no_figures() -> None:
    rng = np.random.default_rng(2)

    report = compare_windows(
        "items.content",
        rng.standard_normal((40, 8)),
        rng.standard_normal((12, 8)),
        min_window=30,
        permutations=50,
        alpha=0.05,
    )

    assert not report.sufficient
    assert not report.drifted
    assert report.reason == "current window has 12 vectors, at least 30 needed"
    assert report.mmd2 is None and report.p_value is None and report.centroid_cosine_distance is None
    assert (report.reference_size, report.current_size) == (40, 12)


def test_both_short_windows_are_named_in_the_reason() -> None:
    report = compare_windows(
        "users.taste", np.ones((3, 4)), np.ones((0, 4)), min_window=30, permutations=50, alpha=0.05
    )

    assert "reference window has 3 vectors" in report.reason
    assert "current window has 0 vectors" in report.reason


def test_centroid_distances_of_orthogonal_windows() -> None:
    reference = np.tile(np.array([1.0, 0.0, 0.0]), (5, 1))
    current = np.tile(np.array([0.0, 2.0, 0.0]), (7, 1))

    cosine, euclidean = centroid_distances(reference, current)

    assert cosine == pytest.approx(1.0)
    assert euclidean == pytest.approx(math.sqrt(1.0 + 4.0))
    assert centroid_distances(reference, reference) == pytest.approx((0.0, 0.0))
