"""What the monitor knows about one vector space: its windows, its basis version, the checks on each new vector."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from recsys.monitor.anomalies import (
    ZERO_NORM,
    Anomaly,
    AnomalyKind,
    degenerate_vector,
    near_duplicates,
    unit_rows,
)
from recsys.monitor.outliers import OutlierModel, calibrate, neighbour_distance
from recsys.monitor.windows import VectorWindows, WindowPolicy, WindowSnapshot

# The outlier model is recalibrated once this share of the reference has changed (a trailing
# reference changes with nearly every vector; recalibrating each time would cost a k-NN pass each).
RECALIBRATE_SHARE = 0.05


@dataclass(frozen=True)
class WatchPolicy:
    """Windows and anomaly thresholds of a space."""

    windows: WindowPolicy
    min_window: int
    # None: the space is not checked for near-duplicates.
    near_duplicate_cosine: float | None
    degenerate_norm_ratio: float
    # None: the space is not checked for outliers; else the k of the k-NN distance.
    outlier_neighbours: int | None = None
    outlier_quantile: float = 0.999


def ordinal(number: int) -> str:
    """1st, 2nd, 3rd, 4th, ..., 11th, 12th, 13th, ..., 21st."""
    suffix = "th" if 10 <= number % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(number % 10, "th")
    return f"{number}{suffix}"


def version_order(version: str) -> tuple[int, int, str]:
    """Sort key of a basis version: none first (vectors from before versioning), numbers by value, then text."""
    if not version:
        return (-1, 0, "")
    try:
        return (0, int(version), "")
    except ValueError:
        return (1, 0, version)


class SpaceWatch:
    """Windows of one space plus the checks on every vector that enters them."""

    def __init__(self, space: str, policy: WatchPolicy, seed: int = 0) -> None:
        self.space = space
        self.policy = policy
        self.windows = VectorWindows(policy.windows, seed=seed)
        # The basis the windows hold (a factorization version); "" for spaces that have one basis.
        self.basis_version = ""
        # The current window as unit rows for the duplicate check, rebuilt only when the window changed.
        self._unit_cache: tuple[int, list[str], np.ndarray, float | None] | None = None
        self._outliers: tuple[int, OutlierModel | None] | None = None

    def observe(self, subject: str, vector: np.ndarray, now: float, version: str = "") -> list[Anomaly]:
        """Checks the subject's new vector, then puts it into the windows unless it is unusable.

        A NaN/infinite or zero vector stays out of the windows (it would poison every statistic)
        and the subject's previous vector leaves the current window, since it is no longer what
        is stored. A vector of a newer basis version (or other dimensions: another model) starts
        both windows afresh; one of an older version is ignored, its refresh is on its way.
        """
        vector = np.asarray(vector)
        if not self._same_basis(vector, version):
            return []
        subjects, unit, median_norm = self._current_view()
        degenerate = degenerate_vector(
            self.space,
            subject,
            vector,
            median_norm=median_norm,
            norm_ratio=self.policy.degenerate_norm_ratio,
            now=now,
        )
        found = [degenerate] if degenerate is not None else []
        if not _usable(vector):
            self.windows.remove(subject)
            return found
        threshold = self.policy.near_duplicate_cosine
        if threshold is not None:
            found.extend(near_duplicates(self.space, subject, vector, subjects, unit, threshold=threshold, now=now))
        outlier = self._outlier(subject, vector, now)
        if outlier is not None:
            found.append(outlier)
        self.windows.add(subject, vector, now)
        return found

    def forget(self, subject: str) -> bool:
        """The subject's vector was deleted: it leaves the current window."""
        return self.windows.remove(subject)

    def snapshot(self) -> WindowSnapshot:
        return self.windows.snapshot()

    def export(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        arrays, meta = self.windows.export()
        meta["basis_version"] = self.basis_version
        return arrays, meta

    def restore(self, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
        self.windows = VectorWindows.restore(self.policy.windows, arrays, meta)
        self.basis_version = str(meta.get("basis_version", ""))
        self._unit_cache = None
        self._outliers = None

    def _same_basis(self, vector: np.ndarray, version: str) -> bool:
        """False when the vector belongs to an older basis; restarts the windows for a newer one."""
        if version != self.basis_version:
            if self.basis_version and version_order(version) < version_order(self.basis_version):
                return False
            self.windows.restart()
            self.basis_version = version
        elif self.windows.dims is not None and vector.ndim == 1 and vector.size != self.windows.dims:
            self.windows.restart()
        return True

    def _current_view(self) -> tuple[list[str], np.ndarray, float | None]:
        version = self.windows.version
        if self._unit_cache is None or self._unit_cache[0] != version:
            matrix = self.windows.current_matrix()
            norms = np.linalg.norm(matrix.astype(np.float64), axis=1)
            # A median over a handful of vectors says nothing about what is typical.
            median = float(np.median(norms)) if len(norms) >= self.policy.min_window else None
            self._unit_cache = (version, self.windows.current_subjects(), unit_rows(matrix), median)
        _, subjects, unit, median = self._unit_cache
        return subjects, unit, median

    def _outlier(self, subject: str, vector: np.ndarray, now: float) -> Anomaly | None:
        neighbours = self.policy.outlier_neighbours
        if neighbours is None or self.windows.reference_count < max(self.policy.min_window, neighbours + 1):
            return None
        model = self._outlier_model()
        if model is None:
            return None
        distance = neighbour_distance(model, subject, vector)
        if distance <= model.threshold:
            return None
        return Anomaly(
            AnomalyKind.OUTLIER,
            self.space,
            subject,
            distance,
            model.threshold,
            now,
            f"its {ordinal(neighbours)}-nearest reference vector is at cosine distance {distance:.3f}, beyond the "
            f"{model.quantile:.1%} quantile {model.threshold:.3f} of the reference's own",
        )

    def _outlier_model(self) -> OutlierModel | None:
        revision = self.windows.reference_revision
        cached = self._outliers
        stale_after = max(1, int(RECALIBRATE_SHARE * self.windows.reference_count))
        if cached is None or revision - cached[0] >= stale_after or revision < cached[0]:
            neighbours = self.policy.outlier_neighbours or 1
            model = calibrate(
                self.windows.reference_subjects(),
                self.windows.reference_matrix(),
                neighbours=neighbours,
                quantile=self.policy.outlier_quantile,
            )
            self._outliers = cached = (revision, model)
        return cached[1]


def _usable(vector: np.ndarray) -> bool:
    values = np.asarray(vector, dtype=np.float64)
    return bool(np.all(np.isfinite(values))) and float(np.linalg.norm(values)) > ZERO_NORM
