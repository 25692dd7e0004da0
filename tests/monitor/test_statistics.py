"""The explaining statistics against independent computations: KS per dimension, Benjamini–Hochberg, the
domain classifier, centroid distances and window profiles."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats
from sklearn.linear_model import Ridge
from sklearn.metrics import roc_auc_score
from sklearn.preprocessing import StandardScaler

from recsys.monitor.dimension_drift import benjamini_hochberg, dimension_drift, ks_p_values, ks_statistics
from recsys.monitor.domain_classifier import domain_classifier
from recsys.monitor.geometry import centroid_distances, effective_rank, mean_pairwise_cosine, window_profile


def test_ks_statistics_and_p_values_match_scipy_column_by_column_ties_included() -> None:
    rng = np.random.default_rng(0)
    reference = rng.standard_normal((300, 12)).astype(np.float32)
    current = (rng.standard_normal((250, 12)) + 0.2).astype(np.float32)
    reference[:40, 0] = current[:40, 0]  # ties across the windows
    rounded_reference, rounded_current = np.round(reference * 2), np.round(current * 2)  # many ties

    for x, y in ((reference, current), (rounded_reference, rounded_current)):
        expected = stats.ks_2samp(x, y, axis=0, method="asymp")
        d = ks_statistics(x, y)
        np.testing.assert_allclose(d, expected.statistic, atol=1e-12)
        np.testing.assert_allclose(ks_p_values(d, len(x), len(y)), expected.pvalue, rtol=1e-9, atol=1e-15)


def test_benjamini_hochberg_matches_scipy() -> None:
    p_values = np.random.default_rng(1).random(60) ** 3

    np.testing.assert_allclose(benjamini_hochberg(p_values), stats.false_discovery_control(p_values), rtol=1e-12)


def test_shifted_dimensions_are_found_and_ranked_first() -> None:
    rng = np.random.default_rng(2)
    reference = rng.standard_normal((400, 64))
    current = rng.standard_normal((400, 64))
    current[:, [5, 17]] += 0.6

    drift = dimension_drift(reference, current, alpha=0.05)

    assert drift.drifted >= 2
    assert {shift.dimension for shift in drift.top[:2]} == {5, 17}
    assert all(shift.mean_shift > 0.3 for shift in drift.top[:2])
    assert drift.share == drift.drifted / 64


def test_no_dimension_drifts_between_samples_of_one_distribution_in_most_trials() -> None:
    flagged = 0
    for seed in range(30):
        rng = np.random.default_rng(seed)
        flagged += (
            dimension_drift(rng.standard_normal((100, 64)), rng.standard_normal((100, 64)), alpha=0.05).drifted > 0
        )
    # BH at 5% flags any dimension in at most 5% of null trials; 6 or more of 30 has probability < 0.3%.
    assert flagged <= 5


def test_classifier_auc_matches_scaled_ridge_out_of_fold_scores() -> None:
    rng = np.random.default_rng(3)
    reference = rng.standard_normal((200, 30))
    current = rng.standard_normal((150, 30)) + 0.2

    result = domain_classifier(reference, current, folds=5, seed=1)

    # The same folds (drawn the same way), scored by scikit-learn: standardised ridge with the same penalty.
    pooled = np.vstack([reference, current])
    labels = np.r_[np.zeros(200), np.ones(150)]
    folds = np.random.default_rng(1).permutation(np.arange(350) % 5)
    scores = np.empty(350)
    for fold in range(5):
        test = folds == fold
        scaler = StandardScaler().fit(pooled[~test])
        model = Ridge(alpha=float((~test).sum())).fit(scaler.transform(pooled[~test]), labels[~test])
        scores[test] = model.predict(scaler.transform(pooled[test]))
    assert result.auc == pytest.approx(roc_auc_score(labels, scores), abs=1e-12)
    assert result.folds == 5


def test_classifier_separates_shifted_windows_and_not_samples_of_one_distribution() -> None:
    rng = np.random.default_rng(4)
    same = domain_classifier(rng.standard_normal((150, 64)), rng.standard_normal((150, 64)), permutations=49)
    shifted = domain_classifier(rng.standard_normal((150, 64)), rng.standard_normal((150, 64)) + 0.3, permutations=49)

    assert abs(same.auc - 0.5) < 0.1 and same.p_value > 0.05
    assert shifted.auc > 0.8 and shifted.p_value == pytest.approx(1 / 50)


def test_classifier_p_value_is_calibrated_on_samples_of_one_distribution() -> None:
    alarms = 0
    for seed in range(40):
        rng = np.random.default_rng(200 + seed)
        result = domain_classifier(
            rng.standard_normal((40, 32)), rng.standard_normal((40, 32)), permutations=39, seed=seed
        )
        alarms += result.p_value < 0.05
    assert alarms <= 6  # 7 or more of 40 at α = 5% has probability < 0.5%


def test_centroid_distances_of_orthogonal_windows() -> None:
    reference = np.tile(np.array([1.0, 0.0, 0.0]), (5, 1))
    current = np.tile(np.array([0.0, 2.0, 0.0]), (7, 1))

    cosine, euclidean = centroid_distances(reference, current)

    assert cosine == pytest.approx(1.0)
    assert euclidean == pytest.approx(math.sqrt(1.0 + 4.0))
    assert centroid_distances(reference, reference) == pytest.approx((0.0, 0.0))


def test_mean_pairwise_cosine_equals_the_mean_of_the_cosine_matrix() -> None:
    vectors = np.random.default_rng(5).standard_normal((30, 16)) + 0.5
    units = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    cosines = units @ units.T

    assert mean_pairwise_cosine(vectors) == pytest.approx((cosines.sum() - 30) / (30 * 29))


def test_effective_rank_of_an_isotropic_cloud_is_high_and_of_a_collapsed_one_is_low() -> None:
    rng = np.random.default_rng(6)
    spread = rng.standard_normal((2000, 32))
    collapsed = rng.standard_normal((2000, 2)) @ rng.standard_normal((2, 32))
    singular = np.linalg.svd(spread - spread.mean(axis=0), compute_uv=False)
    shares = singular / singular.sum()

    assert effective_rank(spread) == pytest.approx(math.exp(-(shares * np.log(shares)).sum()), rel=1e-9)
    assert effective_rank(spread) > 28
    assert effective_rank(collapsed) < 2.05


def test_window_profile_reads_norms() -> None:
    vectors = np.array([[3.0, 4.0], [0.0, 1.0], [0.0, 2.0]])

    profile = window_profile(vectors)

    assert (profile.norm_min, profile.norm_max) == (1.0, 5.0)
    assert profile.norm_mean == pytest.approx(8 / 3)
