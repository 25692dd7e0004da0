"""Ranking metrics and the paired bootstrap."""

from __future__ import annotations

import math

import numpy as np
import pytest

from recsys.tools.evaluation.metrics import intra_list_diversity, paired_bootstrap, ranking_scores


def test_ndcg_counts_every_target_against_the_ideal_order() -> None:
    scores = ranking_scores([7, 1, 8, 2], {1, 2, 3}, k=10)
    ideal = 1 + 1 / math.log2(3) + 1 / math.log2(4)

    assert scores.ndcg == pytest.approx((1 / math.log2(3) + 1 / math.log2(5)) / ideal)
    assert scores.recall == pytest.approx(2 / 3) and scores.hit == 1.0
    assert ranking_scores([1, 2, 3], {1, 2, 3}).ndcg == pytest.approx(1.0)
    assert ranking_scores([9] * 10 + [1], {1}, k=10).hit == 0.0


def test_intra_list_diversity_is_one_minus_the_mean_pairwise_cosine() -> None:
    vectors = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])

    assert intra_list_diversity([0, 1], vectors) == pytest.approx(1.0)
    assert intra_list_diversity([0, 2], vectors) == pytest.approx(0.0)
    assert intra_list_diversity([0], vectors) == 0.0


def test_the_paired_bootstrap_resamples_users_for_both_methods_at_once() -> None:
    base = np.random.default_rng(0).uniform(0, 1, size=200)
    # A constant per-user improvement: pairing leaves no spread, though each method varies a lot.
    interval = paired_bootstrap(base + 0.05, base, resamples=500)

    assert interval.mean == pytest.approx(0.05)
    assert interval.low == pytest.approx(0.05) and interval.high == pytest.approx(0.05)
    noisy = paired_bootstrap(base, base[::-1], resamples=500)
    assert noisy.low < 0 < noisy.high
