"""Calibration trials of the drift detectors: alarm rates over repeated window pairs, with fixed-threshold baselines.

A detector is calibrated when, on window pairs drawn from one distribution, it alarms in at most
α of the trials, whatever the sample size and dimensions; it is useful when it alarms on a real
change. The baselines are the fixed thresholds a team would set by hand (Evidently-style defaults:
centroid Euclidean distance 0.2, MMD² 0.015, classifier AUC 0.55), judged on the same pairs.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
from scipy import stats

from recsys.monitor.drift import DriftReport, DriftTest, compare_windows

# (reference, current) for one trial, from the trial's random generator.
PairSource = Callable[[np.random.Generator], tuple[np.ndarray, np.ndarray]]


@dataclass(frozen=True)
class Detector:
    """A yes/no drift decision read off a report."""

    name: str
    alarms: Callable[[DriftReport], bool]
    ours: bool


def _mmd(report: DriftReport) -> bool:
    return report.drifted


def _classifier(report: DriftReport) -> bool:
    return report.classifier_p_value is not None and report.classifier_p_value < report.alpha


def _dimensions(report: DriftReport) -> bool:
    return bool(report.drifted_dimensions)


DETECTORS: tuple[Detector, ...] = (
    Detector("MMD² permutation test (the verdict)", _mmd, True),
    Detector("classifier AUC, permutation p-value", _classifier, True),
    Detector("any dimension drifted (KS + BH)", _dimensions, True),
    Detector("fixed: centroid Euclidean > 0.2", lambda r: (r.centroid_euclidean_distance or 0.0) > 0.2, False),
    Detector("fixed: MMD² > 0.015", lambda r: (r.mmd2 or 0.0) > 0.015, False),
    Detector("fixed: classifier AUC > 0.55", lambda r: (r.classifier_auc or 0.0) > 0.55, False),
)


@dataclass(frozen=True)
class Rate:
    """How often a detector alarmed, with a 95% Clopper–Pearson interval."""

    alarms: int
    trials: int

    @property
    def value(self) -> float:
        return self.alarms / self.trials if self.trials else 0.0

    def interval(self) -> tuple[float, float]:
        alarms, quiet = self.alarms, self.trials - self.alarms
        low = 0.0 if alarms == 0 else float(stats.beta.ppf(0.025, alarms, quiet + 1))
        high = 1.0 if quiet == 0 else float(stats.beta.ppf(0.975, alarms + 1, quiet))
        return low, high


def run_trials(source: PairSource, test: DriftTest, trials: int, seed: int) -> Iterator[DriftReport]:
    """One full report per trial; each trial draws its windows and its permutations from its own seed."""
    for trial in range(trials):
        rng = np.random.default_rng([seed, trial])
        reference, current = source(rng)
        trial_test = DriftTest(test.min_window, test.permutations, test.alpha, seed=trial, classifier_folds=5)
        yield compare_windows("calibration", reference, current, trial_test, now=0.0)


def alarm_rates(reports: list[DriftReport]) -> dict[str, Rate]:
    return {d.name: Rate(sum(d.alarms(r) for r in reports), len(reports)) for d in DETECTORS}


def gaussian_pairs(n: int, dims: int, shift: float) -> PairSource:
    """Standard normal reference; current the same, moved by `shift` along every dimension."""

    def source(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        return rng.standard_normal((n, dims)), rng.standard_normal((n, dims)) + shift

    return source


def dense_mmd_test(reference: np.ndarray, current: np.ndarray, permutations: int, seed: int = 0) -> tuple[float, float]:
    """The straightforward implementation (the monitor's first): float64, the full pooled kernel matrix, every
    permutation from one dense product. The speed baseline, and a cross-check of the fast path's figures."""
    n = len(reference)
    pooled = np.vstack([reference, current]).astype(np.float64)
    squared = (pooled * pooled).sum(axis=1)
    distances = np.maximum(squared[:, None] + squared[None, :] - 2.0 * pooled @ pooled.T, 0.0)
    pairs = np.sort(distances[:n, :n][np.triu_indices(n, k=1)])
    sigma2 = 0.5 * float(pairs[(pairs.size - 1) // 2])
    kernel = np.exp(-distances / (2.0 * sigma2))
    np.fill_diagonal(kernel, 0.0)
    rng = np.random.default_rng(seed)
    masks = np.zeros((permutations + 1, len(pooled)))
    masks[0, :n] = 1.0
    order = np.argsort(rng.random((permutations, len(pooled))), axis=1)
    np.put_along_axis(masks[1:], order[:, :n], 1.0, axis=1)
    m = len(pooled) - n
    row_sums = kernel.sum(axis=1)
    a_k_a = ((masks @ kernel) * masks).sum(axis=1)
    a_k_1 = masks @ row_sums
    statistics = (
        a_k_a / (n * (n - 1)) + (row_sums.sum() - 2 * a_k_1 + a_k_a) / (m * (m - 1)) - 2 * (a_k_1 - a_k_a) / (n * m)
    )
    observed, permuted = float(statistics[0]), statistics[1:]
    return observed, (1 + int(np.count_nonzero(permuted >= observed))) / (1 + permutations)


def timed(action: Callable[[], object], repeats: int, warm_up: bool = True) -> tuple[float, object]:
    """The median wall time of repeats runs (after one untimed warm-up run, if asked), and the last result."""
    result = action() if warm_up else None
    seconds = []
    for _ in range(repeats):
        started = time.perf_counter()
        result = action()
        seconds.append(time.perf_counter() - started)
    return float(np.median(seconds)), result
