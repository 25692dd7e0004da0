"""The reference and current windows of one vector space, keyed by subject (an item or user id)."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np


class WindowError(ValueError):
    """A vector that cannot join a window (wrong shape or dimensions)."""


@dataclass(frozen=True)
class WindowSnapshot:
    """Copies of both windows at one version, safe to hand to another thread."""

    version: int
    reference: np.ndarray
    current: np.ndarray


class VectorWindows:
    """Reference: the first vector seen of each of the first `reference_size` subjects, then frozen.

    Current: the latest vector of the `current_size` most recently changed subjects; an update
    replaces the subject's old vector and makes it the newest. The two windows overlap until more
    than `reference_size` subjects have been seen; a sample compared with itself shows no drift,
    so the overlap only makes the test conservative, and a small catalog that is re-encoded still
    gets compared with its first vectors.
    """

    def __init__(self, reference_size: int, current_size: int) -> None:
        if reference_size < 1 or current_size < 1:
            raise WindowError(f"window sizes must be positive, got reference {reference_size}, current {current_size}")
        self.reference_capacity = reference_size
        self.current_capacity = current_size
        self.dims: int | None = None
        # Bumped on every change so a report computed at one version can be reused until the next.
        self.version = 0
        self._reference: dict[str, np.ndarray] = {}
        self._current: OrderedDict[str, np.ndarray] = OrderedDict()

    @property
    def reference_count(self) -> int:
        return len(self._reference)

    @property
    def current_count(self) -> int:
        return len(self._current)

    def add(self, subject: str, vector: np.ndarray) -> None:
        """Records the subject's latest vector."""
        vector = np.asarray(vector, dtype=np.float32)
        if vector.ndim != 1 or vector.size == 0:
            raise WindowError(f"vector of {subject!r} must be one non-empty row, got shape {vector.shape}")
        if self.dims is None:
            self.dims = vector.size
        elif vector.size != self.dims:
            raise WindowError(f"vector of {subject!r} has {vector.size} dimensions, the window holds {self.dims}")
        vector = vector.copy()
        if len(self._reference) < self.reference_capacity and subject not in self._reference:
            self._reference[subject] = vector
        self._current.pop(subject, None)
        self._current[subject] = vector
        if len(self._current) > self.current_capacity:
            self._current.popitem(last=False)
        self.version += 1

    def remove(self, subject: str) -> bool:
        """Drops the subject from the current window (the reference is a fixed baseline); True if it was there."""
        if self._current.pop(subject, None) is None:
            return False
        self.version += 1
        return True

    def current_subjects(self) -> list[str]:
        """Subject ids of the current window, oldest first (the row order of current_matrix)."""
        return list(self._current)

    def current_matrix(self) -> np.ndarray:
        return self._stack(self._current.values())

    def reference_matrix(self) -> np.ndarray:
        return self._stack(self._reference.values())

    def snapshot(self) -> WindowSnapshot:
        return WindowSnapshot(self.version, self.reference_matrix(), self.current_matrix())

    def _stack(self, vectors: Iterable[np.ndarray]) -> np.ndarray:
        rows = list(vectors)
        if not rows:
            return np.empty((0, self.dims or 0), dtype=np.float32)
        return np.stack(rows)
