"""The drift report of one space: every statistic of current against reference, the verdict, and why.

The verdict is the MMD² permutation test alone (one calibrated test, so the false-alarm rate is
α); the other figures explain what changed: the classifier AUC says how separable the windows
are, the per-dimension tests say where, the profiles say whether vectors collapsed or changed length.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from recsys.monitor.dimension_drift import DimensionShift, dimension_drift
from recsys.monitor.domain_classifier import domain_classifier
from recsys.monitor.geometry import WindowProfile, centroid_distances, window_profile
from recsys.monitor.kernel_mmd import mmd_permutation_test

# An effective rank below this share of the reference's, or a mean pairwise cosine this much higher, reads as collapse.
COLLAPSE_RANK_RATIO = 0.5
COLLAPSE_COSINE_RISE = 0.2
# A mean norm this far (relative) from the reference's is worth a sentence.
NORM_CHANGE = 0.1
# From this many pooled vectors on, the MMD's two big matrix products gain from BLAS threads. Everything
# else runs on one: small LAPACK calls (Cholesky, eigenvalues) slow down tenfold or more when BLAS
# threads compete for busy cores.
PARALLEL_MMD_SIZE = 2000


@dataclass(frozen=True)
class DriftTest:
    """How the windows are compared."""

    min_window: int
    permutations: int
    alpha: float
    seed: int = 0
    classifier_folds: int = 5


@dataclass(frozen=True)
class DriftReport:
    """One comparison of a space's current window with its reference window."""

    space: str
    reference_size: int
    current_size: int
    sufficient: bool
    reason: str
    permutations: int
    alpha: float
    computed_at: float
    drifted: bool = False
    # Which reference the current window was compared with, and for versioned spaces the version.
    reference_mode: str = ""
    version: str = ""
    # The statistics are None when the windows are insufficient.
    centroid_cosine_distance: float | None = None
    centroid_euclidean_distance: float | None = None
    mmd2: float | None = None
    p_value: float | None = None
    kernel_sigma: float | None = None
    mmd2_threshold: float | None = None
    classifier_auc: float | None = None
    classifier_p_value: float | None = None
    dimensions: int | None = None
    drifted_dimensions: int | None = None
    top_dimensions: tuple[DimensionShift, ...] = ()
    reference_profile: WindowProfile | None = None
    current_profile: WindowProfile | None = None
    explanation: tuple[str, ...] = field(default_factory=tuple)

    @property
    def drifted_dimension_share(self) -> float | None:
        if self.dimensions is None or self.drifted_dimensions is None or not self.dimensions:
            return None
        return self.drifted_dimensions / self.dimensions

    def statistics(self) -> dict[str, float | int | None]:
        """The headline figures, for alerts, logs and the history."""
        figures: dict[str, float | int | None] = {
            "reference_size": self.reference_size,
            "current_size": self.current_size,
            "centroid_cosine_distance": self.centroid_cosine_distance,
            "centroid_euclidean_distance": self.centroid_euclidean_distance,
            "mmd2": self.mmd2,
            "mmd2_threshold": self.mmd2_threshold,
            "p_value": self.p_value,
            "alpha": self.alpha,
            "permutations": self.permutations,
            "kernel_sigma": self.kernel_sigma,
            "classifier_auc": self.classifier_auc,
            "classifier_p_value": self.classifier_p_value,
            "drifted_dimension_share": self.drifted_dimension_share,
        }
        for window, profile in (("reference", self.reference_profile), ("current", self.current_profile)):
            if profile is not None:
                figures[f"{window}_mean_pairwise_cosine"] = profile.mean_pairwise_cosine
                figures[f"{window}_effective_rank"] = profile.effective_rank
                figures[f"{window}_norm_mean"] = profile.norm_mean
        return figures

    def to_dict(self) -> dict[str, Any]:
        """Everything, JSON-ready (for the state file and the HTML report)."""
        data = asdict(self)
        data["top_dimensions"] = [asdict(shift) for shift in self.top_dimensions]
        data["explanation"] = list(self.explanation)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DriftReport:
        values = dict(data)
        values["top_dimensions"] = tuple(DimensionShift(**shift) for shift in values.get("top_dimensions", []))
        values["explanation"] = tuple(values.get("explanation", []))
        for window in ("reference_profile", "current_profile"):
            if values.get(window) is not None:
                values[window] = WindowProfile(**values[window])
        known = set(cls.__dataclass_fields__)
        return cls(**{key: value for key, value in values.items() if key in known})


def insufficiency(reference_size: int, current_size: int, min_window: int) -> str:
    """Why the windows are too small for a test, or "" when both are large enough."""
    short = [
        f"{name} window has {size} vectors, at least {min_window} needed"
        for name, size in (("reference", reference_size), ("current", current_size))
        if size < min_window
    ]
    return "; ".join(short)


def insufficient_report(
    space: str, reference_size: int, current_size: int, reason: str, test: DriftTest, *, now: float, **context: str
) -> DriftReport:
    """A report that says why there are no figures."""
    return DriftReport(
        space=space,
        reference_size=reference_size,
        current_size=current_size,
        sufficient=False,
        reason=reason,
        permutations=test.permutations,
        alpha=test.alpha,
        computed_at=now,
        explanation=(f"No test: {reason}.",),
        **context,  # type: ignore[arg-type]
    )


def compare_windows(
    space: str,
    reference: np.ndarray,
    current: np.ndarray,
    test: DriftTest,
    *,
    now: float | None = None,
    reference_mode: str = "",
    version: str = "",
) -> DriftReport:
    """The drift report of current against reference; insufficient (with the reason) when a window is too small."""
    computed_at = time.time() if now is None else now
    n, m = len(reference), len(current)
    context = {"reference_mode": reference_mode, "version": version}
    reason = insufficiency(n, m, max(test.min_window, 2))
    if reason:
        return insufficient_report(space, n, m, reason, test, now=computed_at, **context)
    if reference.shape[1] != current.shape[1]:
        raise ValueError(f"reference has {reference.shape[1]} dimensions, current has {current.shape[1]}")
    with threadpool_limits(limits=None if n + m >= PARALLEL_MMD_SIZE else 1):
        mmd = mmd_permutation_test(reference, current, permutations=test.permutations, alpha=test.alpha, seed=test.seed)
    with threadpool_limits(limits=1):
        cosine, euclidean = centroid_distances(reference, current)
        classifier = domain_classifier(
            reference, current, folds=test.classifier_folds, permutations=test.permutations, seed=test.seed
        )
        dimensions = dimension_drift(reference, current, alpha=test.alpha)
        profiles = window_profile(reference), window_profile(current)
    report = DriftReport(
        space=space,
        reference_size=n,
        current_size=m,
        sufficient=True,
        reason="",
        permutations=test.permutations,
        alpha=test.alpha,
        computed_at=computed_at,
        drifted=mmd.p_value < test.alpha,
        reference_mode=reference_mode,
        version=version,
        centroid_cosine_distance=cosine,
        centroid_euclidean_distance=euclidean,
        mmd2=mmd.mmd2,
        p_value=mmd.p_value,
        kernel_sigma=mmd.sigma,
        mmd2_threshold=mmd.threshold,
        classifier_auc=classifier.auc,
        classifier_p_value=classifier.p_value,
        dimensions=dimensions.dimensions,
        drifted_dimensions=dimensions.drifted,
        top_dimensions=dimensions.top,
        reference_profile=profiles[0],
        current_profile=profiles[1],
    )
    return replace(report, explanation=tuple(explain(report)))


def explain(report: DriftReport) -> list[str]:
    """Plain sentences: the verdict first, then what the other figures say about it."""
    if not report.sufficient:
        return [f"No test: {report.reason}."]
    assert report.mmd2 is not None and report.p_value is not None
    lines = []
    sizes = f"{report.current_size} current vs {report.reference_size} reference vectors"
    if report.drifted:
        lines.append(
            f"Drift: MMD² {report.mmd2:.3g} is above what {report.permutations} reshuffles of the same vectors give "
            f"(their {1 - report.alpha:.0%} quantile is {report.mmd2_threshold:.3g}); p-value {report.p_value:.3g} "
            f"< α {report.alpha:g} ({sizes})."
        )
    else:
        lines.append(
            f"No drift: MMD² {report.mmd2:.3g} is within what reshuffles of the same vectors give "
            f"(p-value {report.p_value:.3g} ≥ α {report.alpha:g}; {sizes})."
        )
    if report.classifier_auc is not None and report.classifier_p_value is not None:
        separable = report.classifier_p_value < report.alpha
        lines.append(
            f"A linear classifier tells current from reference with AUC {report.classifier_auc:.3f} "
            f"(0.5 = indistinguishable; permutation p-value {report.classifier_p_value:.3g}"
            f"{', separable' if separable else ', within chance'})."
        )
    if report.drifted_dimensions is not None and report.dimensions:
        line = (
            f"{report.drifted_dimensions} of {report.dimensions} dimensions drifted "
            f"(KS per dimension, Benjamini–Hochberg at {report.alpha:g})"
        )
        moved = [s for s in report.top_dimensions if s.q_value <= report.alpha]
        if moved:
            shown = ", ".join(f"#{s.dimension} (D {s.ks_statistic:.2f}, mean {s.mean_shift:+.2f} sd)" for s in moved)
            line += f"; most: {shown}"
        lines.append(line + ".")
    if report.centroid_cosine_distance is not None and report.centroid_euclidean_distance is not None:
        lines.append(
            f"The centroid moved by cosine distance {report.centroid_cosine_distance:.3g} "
            f"(Euclidean {report.centroid_euclidean_distance:.3g})."
        )
    lines.extend(_profile_findings(report.reference_profile, report.current_profile))
    return lines


def _profile_findings(reference: WindowProfile | None, current: WindowProfile | None) -> list[str]:
    if reference is None or current is None:
        return []
    findings = []
    narrower = current.effective_rank < COLLAPSE_RANK_RATIO * reference.effective_rank
    alike = current.mean_pairwise_cosine > reference.mean_pairwise_cosine + COLLAPSE_COSINE_RISE
    if narrower or alike:
        findings.append(
            f"Collapse: current vectors are more alike (mean pairwise cosine {current.mean_pairwise_cosine:.3f} vs "
            f"{reference.mean_pairwise_cosine:.3f}, effective rank {current.effective_rank:.1f} vs "
            f"{reference.effective_rank:.1f})."
        )
    if reference.norm_mean > 0 and abs(current.norm_mean / reference.norm_mean - 1.0) > NORM_CHANGE:
        findings.append(f"Norms changed: mean {current.norm_mean:.4g} vs {reference.norm_mean:.4g} in the reference.")
    return findings
