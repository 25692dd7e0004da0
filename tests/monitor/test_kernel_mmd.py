"""The MMD² test: the statistic against independent computations, the permutation p-value, its calibration."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.spatial.distance import cdist

from recsys.monitor.kernel_mmd import assignment_masks, mmd_permutation_test, permutation_p_value


def alibi_mmd2(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """MMD² and σ² the way Alibi Detect's MMDDrift computes them (GaussianRBF, mmd2_from_kernel_matrix), float64."""
    n, m = len(x), len(y)
    reference_distances = cdist(x, x, "sqeuclidean")
    # Alibi sorts the whole n×n reference distance matrix (diagonal included) and takes n + (n² - n)//2 - 1.
    sigma2 = 0.5 * np.sort(reference_distances.ravel())[n + (n * n - n) // 2 - 1]
    pooled = np.vstack([x, y])
    kernel = np.exp(-cdist(pooled, pooled, "sqeuclidean") / (2 * sigma2))
    np.fill_diagonal(kernel, 0.0)
    k_xx, k_yy, k_xy = kernel[:n, :n], kernel[n:, n:], kernel[n:, :n]
    return k_xx.sum() / (n * (n - 1)) + k_yy.sum() / (m * (m - 1)) - 2 * k_xy.mean(), sigma2


def loop_mmd2(x: np.ndarray, y: np.ndarray) -> float:
    """Unbiased MMD² written out pair by pair, σ² picked as Alibi Detect does."""
    n, m = len(x), len(y)

    def sq(a: np.ndarray, b: np.ndarray) -> float:
        return float(sum((float(p) - float(q)) ** 2 for p, q in zip(a, b, strict=True)))

    flat = sorted(sq(x[i], x[j]) for i in range(n) for j in range(n))
    sigma2 = 0.5 * flat[n + (n * n - n) // 2 - 1]

    def k(a: np.ndarray, b: np.ndarray) -> float:
        return math.exp(-sq(a, b) / (2 * sigma2))

    xx = sum(k(x[i], x[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    yy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    xy = sum(k(x[i], y[j]) for i in range(n) for j in range(m)) / (n * m)
    return xx + yy - 2 * xy


def test_mmd2_matches_a_pair_by_pair_loop() -> None:
    rng = np.random.default_rng(7)
    # An even number of reference pairs (32·31/2) makes the lower-median choice matter.
    reference = rng.standard_normal((32, 12))
    current = rng.standard_normal((27, 12)) + 0.3

    result = mmd_permutation_test(reference, current, permutations=10, alpha=0.05)

    assert result.mmd2 == pytest.approx(loop_mmd2(reference, current), rel=1e-4)


@pytest.mark.parametrize(("shift", "offset"), [(0.1, 0.0), (0.3, 25.0)])
def test_mmd2_matches_the_alibi_detect_definition_on_384_dimensions(shift: float, offset: float) -> None:
    rng = np.random.default_rng(11)
    # An offset far from the origin: the fast path centres the data, which must not change anything.
    reference = rng.standard_normal((400, 384)) + offset
    current = rng.standard_normal((300, 384)) + offset + shift

    expected, sigma2 = alibi_mmd2(reference, current)
    result = mmd_permutation_test(reference, current, permutations=10, alpha=0.05)

    assert result.mmd2 == pytest.approx(expected, rel=1e-4)
    assert result.sigma**2 == pytest.approx(sigma2, rel=1e-4)


def test_mmd2_is_near_the_published_figure_for_a_small_shift_in_384_dimensions() -> None:
    # Field notes: Alibi Detect and Evidently both give ≈0.00359 for n=500, d=384, shift 0.1.
    rng = np.random.default_rng(0)
    reference = rng.standard_normal((500, 384))
    current = rng.standard_normal((500, 384)) + 0.1

    result = mmd_permutation_test(reference, current, permutations=1, alpha=0.05)

    assert result.mmd2 == pytest.approx(0.00359, rel=0.1)


def test_masks_put_the_observed_split_first_and_n_vectors_in_every_reference() -> None:
    masks = assignment_masks(np.random.default_rng(3), 45, 20, 25)

    assert masks.shape == (26, 45)
    assert masks[0, :20].tolist() == [1.0] * 20 and masks[0, 20:].sum() == 0
    assert masks.sum(axis=1).tolist() == [20.0] * 26
    assert len({tuple(row) for row in masks[1:]}) > 20  # different reshuffles


def test_permuted_statistics_equal_the_statistic_of_the_reshuffled_samples() -> None:
    rng = np.random.default_rng(3)
    pooled = rng.standard_normal((45, 8))
    n = 20
    reference, current = pooled[:n], pooled[n:]
    result = mmd_permutation_test(reference, current, permutations=30, alpha=0.05, seed=4)
    masks = assignment_masks(np.random.default_rng(4), 45, n, 30)[1:]

    # Recompute each reshuffled statistic directly (same σ, from the original reference).
    _, sigma2 = alibi_mmd2(reference, current)
    kernel = np.exp(-cdist(pooled, pooled, "sqeuclidean") / (2 * sigma2))
    np.fill_diagonal(kernel, 0.0)
    permuted = []
    for mask in masks:
        x, y = np.flatnonzero(mask == 1.0), np.flatnonzero(mask == 0.0)
        permuted.append(
            kernel[np.ix_(x, x)].sum() / (n * (n - 1))
            + kernel[np.ix_(y, y)].sum() / (len(y) * (len(y) - 1))
            - 2 * kernel[np.ix_(x, y)].mean()
        )
    observed, _ = alibi_mmd2(reference, current)

    assert result.p_value == pytest.approx((1 + sum(p >= observed for p in permuted)) / 31)
    assert result.threshold == pytest.approx(np.quantile(permuted, 0.95), rel=1e-4)


def test_p_value_counts_the_observed_statistic_among_the_permutations() -> None:
    permuted = np.array([0.1, 0.5, 0.9, 0.2, 0.7])

    assert permutation_p_value(0.5, permuted) == pytest.approx((1 + 3) / 6)  # 0.5, 0.7 and 0.9 reach it
    assert permutation_p_value(10.0, permuted) == pytest.approx(1 / 6)  # never 0


def test_a_half_unit_mean_shift_is_detected_with_the_smallest_possible_p_value() -> None:
    rng = np.random.default_rng(1)

    result = mmd_permutation_test(
        rng.standard_normal((200, 384)), rng.standard_normal((200, 384)) + 0.5, permutations=99, alpha=0.05
    )

    assert result.p_value == pytest.approx(1 / 100)
    assert result.mmd2 > result.threshold


def test_samples_of_one_distribution_rarely_look_drifted() -> None:
    p_values = []
    for seed in range(40):
        rng = np.random.default_rng(100 + seed)
        p_values.append(
            mmd_permutation_test(
                rng.standard_normal((40, 64)), rng.standard_normal((40, 64)), permutations=99, alpha=0.05, seed=seed
            ).p_value
        )

    # Calibrated: p-values are uniform. 40 trials at α = 5%: 7 or more alarms has probability < 0.5%.
    assert sum(p < 0.05 for p in p_values) <= 6
    assert 0.3 < float(np.median(p_values)) < 0.7


def test_the_same_seed_gives_the_same_p_value() -> None:
    rng = np.random.default_rng(5)
    reference, current = rng.standard_normal((50, 16)), rng.standard_normal((50, 16)) + 0.15

    first = mmd_permutation_test(reference, current, permutations=50, alpha=0.05, seed=9)
    again = mmd_permutation_test(reference, current, permutations=50, alpha=0.05, seed=9)

    assert (first.p_value, first.mmd2) == (again.p_value, again.mmd2)


def test_identical_reference_vectors_do_not_divide_by_zero() -> None:
    reference = np.ones((10, 4))
    current = np.ones((10, 4)) * 2

    result = mmd_permutation_test(reference, current, permutations=20, alpha=0.05)

    assert math.isfinite(result.mmd2) and math.isfinite(result.sigma)


def test_too_few_vectors_are_refused() -> None:
    with pytest.raises(ValueError, match="at least 2 vectors"):
        mmd_permutation_test(np.ones((1, 3)), np.ones((5, 3)), permutations=5, alpha=0.05)
