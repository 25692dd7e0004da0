"""The drift statistics of each space over time: the figures of every fresh report, bounded per space."""

from __future__ import annotations

from collections import deque
from typing import Any

from recsys.monitor.drift import DriftReport


class DriftHistory:
    """The last `capacity` sufficient reports' figures per space, oldest first."""

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"history capacity must be positive, got {capacity}")
        self.capacity = capacity
        self._spaces: dict[str, deque[dict[str, Any]]] = {}

    def record(self, report: DriftReport) -> None:
        if not report.sufficient:
            return
        entry: dict[str, Any] = {"computed_at": report.computed_at, "drifted": report.drifted}
        entry.update(report.statistics())
        if report.version:
            entry["version"] = report.version
        self._spaces.setdefault(report.space, deque(maxlen=self.capacity)).append(entry)

    def of(self, space: str) -> list[dict[str, Any]]:
        return list(self._spaces.get(space, ()))

    def export(self) -> dict[str, list[dict[str, Any]]]:
        return {space: list(entries) for space, entries in self._spaces.items()}

    def restore(self, exported: dict[str, list[dict[str, Any]]]) -> None:
        for space, entries in exported.items():
            self._spaces[space] = deque(entries, maxlen=self.capacity)
