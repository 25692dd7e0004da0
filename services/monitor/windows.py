"""The reference and current windows of one vector space, keyed by subject (an item or user id).

Reference, by mode:
- first: the first vector seen of each of the first `reference_size` subjects, then frozen.
- pinned: a uniform reservoir sample (Algorithm R) of the vectors that changed before `pinned_at`,
  at most one per subject (a sampled subject that changes again before the pin replaces its
  vector), frozen from then on. When nothing was seen before the pin (the monitor started later,
  or the basis changed after it), the first vectors after it, as in `first`.
- trailing: the `reference_size` vectors that most recently aged out of the current window, so the
  current window is compared with the period just before it.

Current, by count (`current_window_s` = 0): the latest vector of the `current_size` most recently
changed subjects. By time: the latest vectors of the subjects changed in the last
`current_window_s` seconds; when more than `current_size` changed, a random sample of them (each
vector draws a random priority and the window keeps the lowest, a bottom-k sample).

Until a `first` reference is full the two windows overlap; a sample compared with itself shows
no drift, so the overlap only makes the test conservative, and a small catalog that is
re-encoded still gets compared with its first vectors.
"""

from __future__ import annotations

import heapq
import itertools
from collections import OrderedDict
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import numpy as np

STATE_FORMAT = 1


class WindowError(ValueError):
    """A vector that cannot join a window (wrong shape)."""


class ReferenceMode(StrEnum):
    FIRST = "first"
    PINNED = "pinned"
    TRAILING = "trailing"


class _Phase(StrEnum):
    """What the reference does with the next vector."""

    FIRST = "first"  # fills with first vectors of new subjects until full
    RESERVOIR = "reservoir"  # samples until the pin time
    TRAILING = "trailing"  # takes what ages out of the current window
    FROZEN = "frozen"  # takes nothing


@dataclass(frozen=True)
class WindowPolicy:
    """Sizes and modes of a space's windows."""

    reference_size: int
    current_size: int
    reference_mode: ReferenceMode = ReferenceMode.FIRST
    # Pinned mode: vectors observed before this Unix time form the reference.
    pinned_at: float = 0.0
    # 0: the current window is the latest current_size subjects; > 0: those changed within this many seconds.
    current_window_s: float = 0.0


@dataclass(frozen=True)
class WindowSnapshot:
    """Copies of both windows at one version, safe to hand to another thread."""

    version: int
    reference: np.ndarray
    current: np.ndarray


@dataclass
class _Entry:
    vector: np.ndarray
    time: float
    priority: float


class VectorWindows:
    """Both windows of one space; every change bumps `version`, every reference change `reference_revision`."""

    def __init__(self, policy: WindowPolicy, seed: int = 0) -> None:
        if policy.reference_size < 1 or policy.current_size < 1:
            raise WindowError(
                f"window sizes must be positive, got reference {policy.reference_size}, current {policy.current_size}"
            )
        self.policy = policy
        self.dims: int | None = None
        self.version = 0
        self.reference_revision = 0
        self._rng = np.random.default_rng(seed)
        self._reference: dict[str, np.ndarray] = {}
        self._current: OrderedDict[str, _Entry] = OrderedDict()
        # Time mode: (-priority, sequence, subject) of the current entries, the lowest-priority on top;
        # entries that left the window stay until they surface (checked against _current).
        self._sampled_out: list[tuple[float, int, str]] = []
        self._sequence = itertools.count()
        self._phase = self._initial_phase()
        # Reservoir: subjects offered so far (not counting those already sampled).
        self._offered = 0

    @property
    def reference_count(self) -> int:
        return len(self._reference)

    @property
    def current_count(self) -> int:
        return len(self._current)

    @property
    def reference_phase(self) -> str:
        return self._phase.value

    def add(self, subject: str, vector: np.ndarray, now: float) -> None:
        """Records the subject's latest vector, changed at `now` (Unix seconds)."""
        vector = np.asarray(vector, dtype=np.float32)
        if vector.ndim != 1 or vector.size == 0:
            raise WindowError(f"vector of {subject!r} must be one non-empty row, got shape {vector.shape}")
        if self.dims is None:
            self.dims = vector.size
        elif vector.size != self.dims:
            raise WindowError(f"vector of {subject!r} has {vector.size} dimensions, the window holds {self.dims}")
        vector = vector.copy()
        self._expire(now)
        self._offer_reference(subject, vector, now)
        self._current.pop(subject, None)
        if self.policy.current_window_s > 0:
            self._add_sampled(subject, _Entry(vector, now, float(self._rng.random())))
        else:
            self._current[subject] = _Entry(vector, now, 0.0)
            if len(self._current) > self.policy.current_size:
                old_subject, old = self._current.popitem(last=False)
                self._trail(old_subject, old.vector)
        self.version += 1

    def remove(self, subject: str) -> bool:
        """Drops the subject from the current window (the reference is a fixed baseline); True if it was there."""
        if self._current.pop(subject, None) is None:
            return False
        self.version += 1
        return True

    def expire(self, now: float) -> bool:
        """Time mode: vectors older than the window leave it (into a trailing reference); True if any did."""
        if self._expire(now):
            self.version += 1
            return True
        return False

    def reset_reference(self) -> None:
        """The current window becomes the reference: accepted as the new normal (a trailing one keeps trailing)."""
        self._reference = {subject: entry.vector for subject, entry in self._current.items()}
        if self._phase != _Phase.TRAILING:
            self._phase = _Phase.FROZEN
        self._changed_reference()

    def restart(self) -> None:
        """A new basis (another model or factorization version): both windows start empty."""
        self._reference.clear()
        self._current.clear()
        self._sampled_out.clear()
        self.dims = None
        self._offered = 0
        self._phase = self._initial_phase(restarted=True)
        self._changed_reference()

    def reference_pending(self, now: float) -> str:
        """Why there is no reference to compare with yet, or ""."""
        if self._phase == _Phase.RESERVOIR and now < self.policy.pinned_at:
            return f"the reference is pinned at Unix time {self.policy.pinned_at:.0f} and still being sampled"
        return ""

    def current_subjects(self) -> list[str]:
        """Subject ids of the current window, oldest change first (the row order of current_matrix)."""
        return list(self._current)

    def reference_subjects(self) -> list[str]:
        return list(self._reference)

    def current_matrix(self) -> np.ndarray:
        return self._stack(entry.vector for entry in self._current.values())

    def reference_matrix(self) -> np.ndarray:
        return self._stack(self._reference.values())

    def snapshot(self) -> WindowSnapshot:
        return WindowSnapshot(self.version, self.reference_matrix(), self.current_matrix())

    def export(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Arrays and JSON-ready metadata from which `restore` rebuilds these windows."""
        entries = list(self._current.values())
        arrays = {
            "reference": self.reference_matrix(),
            "current": self.current_matrix(),
            "current_times": np.array([e.time for e in entries], dtype=np.float64),
            "current_priorities": np.array([e.priority for e in entries], dtype=np.float64),
        }
        meta = {
            "format": STATE_FORMAT,
            "dims": self.dims,
            "mode": self.policy.reference_mode.value,
            "phase": self._phase.value,
            "offered": self._offered,
            "reference_subjects": self.reference_subjects(),
            "current_subjects": self.current_subjects(),
            "rng": self._rng.bit_generator.state,
        }
        return arrays, meta

    @classmethod
    def restore(cls, policy: WindowPolicy, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> VectorWindows:
        """Windows as exported, under today's policy: what no longer fits the sizes is dropped (oldest first)."""
        if meta.get("format") != STATE_FORMAT:
            raise WindowError(f"unknown window state format {meta.get('format')!r}")
        windows = cls(policy)
        windows.dims = meta["dims"]
        if meta.get("mode") == policy.reference_mode.value:
            windows._phase = _Phase(meta["phase"])
            windows._offered = int(meta["offered"])
        with_rng = meta.get("rng")
        if with_rng:
            windows._rng.bit_generator.state = with_rng
        reference_subjects = meta["reference_subjects"][: policy.reference_size]
        windows._reference = dict(zip(reference_subjects, arrays["reference"], strict=False))
        current = zip(
            meta["current_subjects"],
            arrays["current"],
            arrays["current_times"],
            arrays["current_priorities"],
            strict=True,
        )
        for subject, vector, changed, priority in list(current)[-policy.current_size :]:
            windows._current[subject] = _Entry(np.asarray(vector, dtype=np.float32), float(changed), float(priority))
            if policy.current_window_s > 0:
                heapq.heappush(windows._sampled_out, (-float(priority), next(windows._sequence), subject))
        windows._changed_reference()
        return windows

    def _initial_phase(self, restarted: bool = False) -> _Phase:
        mode = self.policy.reference_mode
        if mode == ReferenceMode.TRAILING:
            return _Phase.TRAILING
        if mode == ReferenceMode.PINNED and not restarted:
            return _Phase.RESERVOIR
        return _Phase.FIRST

    def _offer_reference(self, subject: str, vector: np.ndarray, now: float) -> None:
        if self._phase == _Phase.RESERVOIR and now >= self.policy.pinned_at:
            # The pin has passed: freeze what was sampled, or fall back to the first vectors after it.
            self._phase = _Phase.FROZEN if self._reference else _Phase.FIRST
        if self._phase == _Phase.FIRST:
            if subject not in self._reference and len(self._reference) < self.policy.reference_size:
                self._reference[subject] = vector
                self._changed_reference()
        elif self._phase == _Phase.RESERVOIR:
            self._sample_reference(subject, vector)

    def _sample_reference(self, subject: str, vector: np.ndarray) -> None:
        capacity = self.policy.reference_size
        if subject in self._reference:
            self._reference[subject] = vector
        elif len(self._reference) < capacity:
            self._offered += 1
            self._reference[subject] = vector
        else:
            self._offered += 1
            slot = int(self._rng.integers(self._offered))
            if slot >= capacity:
                return
            victim = next(itertools.islice(iter(self._reference), slot, None))
            del self._reference[victim]
            self._reference[subject] = vector
        self._changed_reference()

    def _trail(self, subject: str, vector: np.ndarray) -> None:
        """A vector aged out of the current window; a trailing reference takes it, dropping its oldest."""
        if self._phase != _Phase.TRAILING:
            return
        self._reference.pop(subject, None)
        self._reference[subject] = vector
        while len(self._reference) > self.policy.reference_size:
            del self._reference[next(iter(self._reference))]
        self._changed_reference()

    def _add_sampled(self, subject: str, entry: _Entry) -> None:
        """Time mode: keep the current_size lowest priorities among the vectors in the window."""
        if len(self._current) >= self.policy.current_size:
            highest = self._highest_priority_subject()
            if highest is None or self._current[highest].priority <= entry.priority:
                return  # sampled out at once
            del self._current[highest]
        self._current[subject] = entry
        heapq.heappush(self._sampled_out, (-entry.priority, next(self._sequence), subject))

    def _highest_priority_subject(self) -> str | None:
        while self._sampled_out:
            negative, _, subject = self._sampled_out[0]
            entry = self._current.get(subject)
            if entry is not None and entry.priority == -negative:
                return subject
            heapq.heappop(self._sampled_out)  # stale: that entry left or was replaced
        return None

    def _expire(self, now: float) -> bool:
        window = self.policy.current_window_s
        if window <= 0:
            return False
        horizon = now - window
        expired = False
        # Entries are in order of change, so the expired ones are at the front.
        while self._current:
            subject, entry = next(iter(self._current.items()))
            if entry.time >= horizon:
                break
            del self._current[subject]
            self._trail(subject, entry.vector)
            expired = True
        if len(self._sampled_out) > 4 * max(len(self._current), 16):
            # Compact the lazily-deleted heap so it cannot outgrow the window for long.
            self._sampled_out = [(-e.priority, next(self._sequence), s) for s, e in self._current.items()]
            heapq.heapify(self._sampled_out)
        return expired

    def _changed_reference(self) -> None:
        self.reference_revision += 1
        self.version += 1

    def _stack(self, vectors: Any) -> np.ndarray:
        rows = list(vectors)
        if not rows:
            return np.empty((0, self.dims or 0), dtype=np.float32)
        return np.stack(rows)
