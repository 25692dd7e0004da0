"""What the monitor knows about one vector space: its windows, and the anomaly checks each new vector goes through."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from recsys.monitor.anomalies import ZERO_NORM, Anomaly, degenerate_vector, near_duplicates, unit_rows
from recsys.monitor.windows import VectorWindows, WindowSnapshot


@dataclass(frozen=True)
class WatchPolicy:
    """Window sizes and anomaly thresholds of a space."""

    reference_size: int
    current_size: int
    min_window: int
    # None: the space is not checked for near-duplicates.
    near_duplicate_cosine: float | None
    degenerate_norm_ratio: float


class SpaceWatch:
    """Windows of one space plus the checks on every vector that enters them."""

    def __init__(self, space: str, policy: WatchPolicy) -> None:
        self.space = space
        self.policy = policy
        self.windows = VectorWindows(policy.reference_size, policy.current_size)
        # The current window as unit rows for the duplicate check, rebuilt only when the window changed.
        self._unit_cache: tuple[int, list[str], np.ndarray, float | None] | None = None

    def observe(self, subject: str, vector: np.ndarray, now: float) -> list[Anomaly]:
        """Checks the subject's new vector, then puts it into the windows unless it is unusable.

        A NaN/infinite or zero vector stays out of the windows (it would poison every statistic)
        and the subject's previous vector leaves the current window, since it is no longer what
        is stored.
        """
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
        self.windows.add(subject, vector)
        return found

    def forget(self, subject: str) -> bool:
        """The subject's vector was deleted: it leaves the current window."""
        return self.windows.remove(subject)

    def snapshot(self) -> WindowSnapshot:
        return self.windows.snapshot()

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


def _usable(vector: np.ndarray) -> bool:
    values = np.asarray(vector, dtype=np.float64)
    return bool(np.all(np.isfinite(values))) and float(np.linalg.norm(values)) > ZERO_NORM
