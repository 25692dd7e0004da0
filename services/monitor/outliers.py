"""Outlier vectors: a vector whose k-th nearest reference neighbour is farther than the reference's own usually are.

The threshold is a quantile of the reference's leave-one-out k-NN cosine distances, so it adapts
to how spread out a space is: no fixed distance fits both 384-d text vectors and 64-d behavior ones.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from recsys.monitor.anomalies import unit_rows

# Reference rows compared at once while calibrating: bounds the memory of a large reference.
_CALIBRATION_BLOCK = 1024


@dataclass(frozen=True)
class OutlierModel:
    """The reference as unit rows, and the k-th-neighbour distance above which a vector is an outlier."""

    subjects: dict[str, int]
    units: np.ndarray
    neighbours: int
    quantile: float
    threshold: float


def kth_largest(values: np.ndarray, k: int, axis: int = -1) -> np.ndarray:
    """The k-th largest entry along axis (k = 1 is the maximum)."""
    size = values.shape[axis]
    result: np.ndarray = np.take(np.partition(values, size - k, axis=axis), size - k, axis=axis)
    return result


def calibrate(subjects: list[str], reference: np.ndarray, *, neighbours: int, quantile: float) -> OutlierModel | None:
    """The outlier model of a reference window, or None when it has too few vectors for k neighbours."""
    count = len(reference)
    if count <= neighbours:
        return None
    units = unit_rows(reference)
    distances = np.empty(count)
    for start in range(0, count, _CALIBRATION_BLOCK):
        block = units[start : start + _CALIBRATION_BLOCK] @ units.T
        rows = np.arange(block.shape[0])
        block[rows, start + rows] = -np.inf  # a vector is not its own neighbour
        distances[start : start + block.shape[0]] = 1.0 - kth_largest(block, neighbours)
    threshold = float(np.quantile(distances, quantile))
    return OutlierModel({subject: i for i, subject in enumerate(subjects)}, units, neighbours, quantile, threshold)


def neighbour_distance(model: OutlierModel, subject: str, vector: np.ndarray) -> float:
    """Cosine distance from vector to its k-th nearest reference vector, the subject's own reference vector excluded."""
    norm = float(np.linalg.norm(vector))
    if norm == 0.0:
        return 1.0
    cosines = model.units @ (np.asarray(vector, dtype=np.float64) / norm)
    own = model.subjects.get(subject)
    if own is not None:
        cosines[own] = -np.inf
    return float(1.0 - kth_largest(cosines, model.neighbours))
