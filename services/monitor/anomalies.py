"""What an anomaly is, the checks on one vector (degenerate, near-duplicate), and a bounded log of the recent ones."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import numpy as np

# A norm at or below this is a zero vector: nothing to compare by cosine.
ZERO_NORM = 1e-12


class AnomalyKind(StrEnum):
    DEGENERATE_VECTOR = "degenerate_vector"
    NEAR_DUPLICATE = "near_duplicate"
    OUTLIER = "outlier"
    BOT_LIKE_USER = "bot_like_user"
    POPULARITY_SPIKE = "popularity_spike"


@dataclass(frozen=True)
class Anomaly:
    """Something wrong with one stored vector (or a pair of them)."""

    kind: AnomalyKind
    space: str
    # An item or user id; for a near-duplicate pair both ids, sorted, joined by "|".
    subject: str
    # Near duplicates: the cosine. Degenerate vectors: the norm, or for non-finite vectors the
    # number of NaN/infinite components (a norm would be NaN, which JSON cannot carry). Outliers:
    # the k-th-neighbour cosine distance. Bots: events in the burst window, or the coefficient of
    # variation of their intervals (below the threshold). Spikes: the recent-to-usual rate ratio.
    score: float
    threshold: float
    detected_at: float
    detail: str

    @property
    def key(self) -> tuple[str, str, str]:
        """What makes two findings the same anomaly."""
        return (self.kind.value, self.space, self.subject)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind.value,
            "space": self.space,
            "subject": self.subject,
            "score": self.score,
            "threshold": self.threshold,
            "detected_at": self.detected_at,
            "detail": self.detail,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Anomaly:
        return cls(
            AnomalyKind(data["kind"]),
            str(data["space"]),
            str(data["subject"]),
            float(data["score"]),
            float(data["threshold"]),
            float(data["detected_at"]),
            str(data["detail"]),
        )


def pair_subject(a: str, b: str) -> str:
    """The subject of a near-duplicate pair, independent of which one came first."""
    first, second = sorted((a, b))
    return f"{first}|{second}"


def degenerate_vector(
    space: str,
    subject: str,
    vector: np.ndarray,
    *,
    median_norm: float | None,
    norm_ratio: float,
    now: float,
) -> Anomaly | None:
    """A degenerate-vector anomaly when the vector is non-finite, zero, or its norm is far from the median.

    median_norm is the median norm of the window the vector is judged against, or None when that
    window is too small for a median to mean anything (then only non-finite and zero are checked).
    """
    vector = np.asarray(vector, dtype=np.float64)
    bad = int(np.count_nonzero(~np.isfinite(vector)))
    if bad:
        return Anomaly(
            AnomalyKind.DEGENERATE_VECTOR,
            space,
            subject,
            float(bad),
            0.0,
            now,
            f"{bad} of {vector.size} components are NaN or infinite",
        )
    norm = float(np.linalg.norm(vector))
    if norm <= ZERO_NORM:
        return Anomaly(AnomalyKind.DEGENERATE_VECTOR, space, subject, norm, ZERO_NORM, now, "zero vector")
    if median_norm is None or median_norm <= ZERO_NORM:
        return None
    low, high = median_norm / norm_ratio, median_norm * norm_ratio
    if norm < low:
        return Anomaly(
            AnomalyKind.DEGENERATE_VECTOR,
            space,
            subject,
            norm,
            low,
            now,
            f"norm {norm:.4g} is below median/{norm_ratio:g} = {low:.4g} of the current window",
        )
    if norm > high:
        return Anomaly(
            AnomalyKind.DEGENERATE_VECTOR,
            space,
            subject,
            norm,
            high,
            now,
            f"norm {norm:.4g} is above median*{norm_ratio:g} = {high:.4g} of the current window",
        )
    return None


def unit_rows(matrix: np.ndarray) -> np.ndarray:
    """Rows scaled to length 1; zero rows stay zero (they match nothing)."""
    matrix = np.asarray(matrix, dtype=np.float64)
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return np.divide(matrix, norms, out=np.zeros_like(matrix), where=norms > ZERO_NORM)


def near_duplicates(
    space: str,
    subject: str,
    vector: np.ndarray,
    others: list[str],
    others_unit: np.ndarray,
    *,
    threshold: float,
    now: float,
) -> list[Anomaly]:
    """One anomaly per other subject whose vector has cosine ≥ threshold with this one (the subject itself excluded).

    others_unit holds the others' vectors as unit rows (see unit_rows), in the order of others.
    """
    if not others:
        return []
    vector = np.asarray(vector, dtype=np.float64)
    norm = float(np.linalg.norm(vector))
    if norm <= ZERO_NORM or not np.isfinite(norm):
        return []
    cosines = others_unit @ (vector / norm)
    found = []
    for index in np.flatnonzero(cosines >= threshold):
        other = others[index]
        if other == subject:
            continue
        cosine = float(min(cosines[index], 1.0))
        found.append(
            Anomaly(
                AnomalyKind.NEAR_DUPLICATE,
                space,
                pair_subject(subject, other),
                cosine,
                threshold,
                now,
                f"{subject!r} and {other!r} have cosine {cosine:.4f} (threshold {threshold:g})",
            )
        )
    return found


class AnomalyLog:
    """The most recent anomalies, newest first, one per (kind, space, subject): a repeat replaces the old one."""

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"anomaly capacity must be positive, got {capacity}")
        self.capacity = capacity
        self._entries: OrderedDict[tuple[str, str, str], Anomaly] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def record(self, anomaly: Anomaly) -> bool:
        """Keeps the anomaly as the newest; True when its key was not in the log."""
        new = self._entries.pop(anomaly.key, None) is None
        self._entries[anomaly.key] = anomaly
        while len(self._entries) > self.capacity:
            self._entries.popitem(last=False)
        return new

    def recent(self, kind: AnomalyKind | None = None, limit: int = 100, space: str = "") -> list[Anomaly]:
        """Up to limit anomalies, newest first, of one kind (or all) in one space (or all)."""
        found: list[Anomaly] = []
        for anomaly in reversed(self._entries.values()):
            if len(found) >= limit:
                break
            if (kind is None or anomaly.kind == kind) and (not space or anomaly.space == space):
                found.append(anomaly)
        return found

    def export(self) -> list[dict[str, Any]]:
        """Oldest first, JSON-ready."""
        return [anomaly.to_dict() for anomaly in self._entries.values()]

    def restore(self, exported: list[dict[str, Any]]) -> None:
        for data in exported:
            self.record(Anomaly.from_dict(data))
