"""The benchmark's building blocks: alarm rates with intervals, the float64 baseline, the genre-mix windows."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from recsys.monitor.drift import DriftTest
from recsys.monitor.kernel_mmd import mmd_permutation_test
from recsys.tools.drift_bench.run import MovieTexts
from recsys.tools.drift_bench.trials import Rate, alarm_rates, dense_mmd_test, gaussian_pairs, run_trials


def test_rate_interval_is_the_clopper_pearson_interval() -> None:
    interval = stats.binomtest(4, 100).proportion_ci(confidence_level=0.95, method="exact")

    assert Rate(4, 100).interval() == pytest.approx((interval.low, interval.high))
    assert Rate(0, 50).interval()[0] == 0.0 and Rate(50, 50).interval()[1] == 1.0


def test_the_dense_baseline_and_the_fast_test_agree() -> None:
    rng = np.random.default_rng(0)
    reference, current = rng.standard_normal((150, 48)), rng.standard_normal((120, 48)) + 0.1

    dense_mmd2, dense_p = dense_mmd_test(reference, current, permutations=50)
    fast = mmd_permutation_test(reference, current, permutations=50, alpha=0.05)

    assert fast.mmd2 == pytest.approx(dense_mmd2, rel=1e-4)
    assert 0 < dense_p <= 1


def test_trials_give_every_detector_a_rate() -> None:
    reports = list(run_trials(gaussian_pairs(40, 8, 1.0), DriftTest(2, 39, 0.05), trials=3, seed=1))
    rates = alarm_rates(reports)

    assert rates["MMD² permutation test (the verdict)"] == Rate(3, 3)
    assert all(rate.trials == 3 for rate in rates.values())


def test_genre_mix_windows_are_disjoint_and_follow_the_mix(tmp_path: Path) -> None:
    rows = ["movieId,title,genres"]
    rows += [f"{i},Comedy {i} (2000),Comedy" for i in range(100)]
    rows += [f"{100 + i},Horror {i} (2001),Horror|Thriller" for i in range(100)]
    rows += ["999,Nothing (1990),(no genres listed)"]
    (tmp_path / "movies.csv").write_text("\n".join(rows))
    movies = MovieTexts.load(tmp_path / "movies.csv", 500, seed=0)
    vectors = np.arange(len(movies.texts), dtype=np.float32)[:, None]  # row i holds i: windows show which rows

    source = movies.pairs(vectors, {"Comedy": 1.0}, {"Comedy": 0.5, "Horror": 0.5}, n=40)
    reference, current = source(np.random.default_rng(3))

    assert len(movies.texts) == 200 and movies.texts[0].startswith("Comedy 0 (2000). Comedy")
    chosen_reference, chosen_current = set(reference[:, 0].astype(int)), set(current[:, 0].astype(int))
    assert len(chosen_reference) == 40 and len(chosen_current) == 40 and not chosen_reference & chosen_current
    assert all("Comedy" in movies.genres[i] for i in chosen_reference)
    horror = sum("Horror" in movies.genres[i] for i in chosen_current)
    assert 10 <= horror <= 30
