"""Exponential time decay of counts and vectors, with accumulators that accept events out of order."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

# A sum whose length falls below this share of the parts that made it has cancelled out:
# its direction is rounding noise, so the vector is dropped rather than stored.
_VANISHING = 1e-6


def decay_factor(elapsed_s: float, half_life_s: float) -> float:
    """The share of a value left after `elapsed_s`; never above 1 (time running backwards does not grow it)."""
    if half_life_s <= 0:
        raise ValueError(f"half-life must be positive, got {half_life_s}")
    return math.pow(0.5, max(0.0, elapsed_s) / half_life_s)


def decayed(value: float, from_ts: float, to_ts: float, half_life_s: float) -> float:
    """`value` as of `from_ts`, decayed to `to_ts`."""
    return value * decay_factor(to_ts - from_ts, half_life_s)


def add_decayed(
    total: float, total_ts: float, amount: float, amount_ts: float, half_life_s: float
) -> tuple[float, float]:
    """Adds `amount` (as of `amount_ts`) to a decayed `total` (as of `total_ts`); returns the new total and its time.

    The result is stated at the later of the two times, so an event older than the total is decayed
    instead of the total.
    """
    if amount_ts >= total_ts:
        return decayed(total, total_ts, amount_ts, half_life_s) + amount, amount_ts
    return total + decayed(amount, amount_ts, total_ts, half_life_s), total_ts


@dataclass(frozen=True)
class DecayedSum:
    """A decayed, weighted sum of vectors as of `ts`; `total` is None when nothing (or nothing net) is left.

    Stored as a unit vector plus its norm, because cosine collections keep only directions.
    """

    total: np.ndarray | None
    ts: float

    @classmethod
    def empty(cls, ts: float = 0.0) -> DecayedSum:
        return cls(None, ts)

    @classmethod
    def from_stored(cls, unit: list[float] | np.ndarray | None, norm: float, ts: float) -> DecayedSum:
        """Rebuilds the sum from a stored direction and length."""
        if unit is None or norm <= 0:
            return cls(None, ts)
        direction = np.asarray(unit, dtype=np.float64)
        length = float(np.linalg.norm(direction))
        if length == 0 or not math.isfinite(length):
            return cls(None, ts)
        return cls(direction * (norm / length), ts)

    @property
    def norm(self) -> float:
        return 0.0 if self.total is None else float(np.linalg.norm(self.total))

    @property
    def unit(self) -> np.ndarray | None:
        """The direction to store, or None when the sum is empty."""
        return None if self.total is None else self.total / self.norm

    def add(self, vector: np.ndarray, weight: float, ts: float, half_life_s: float) -> DecayedSum:
        """Adds `weight * vector` happening at `ts`; a negative weight subtracts."""
        contribution = np.asarray(vector, dtype=np.float64) * weight
        if ts >= self.ts:
            base = None if self.total is None else self.total * decay_factor(ts - self.ts, half_life_s)
            at = ts
        else:
            base, at = self.total, self.ts
            contribution = contribution * decay_factor(self.ts - ts, half_life_s)
        if base is None:
            return _settled(contribution, float(np.linalg.norm(contribution)), at)
        total = base + contribution
        scale = max(float(np.linalg.norm(base)), float(np.linalg.norm(contribution)))
        return _settled(total, scale, at)


def summed(directions: np.ndarray, weights: np.ndarray, times: np.ndarray, ts: float, half_life_s: float) -> DecayedSum:
    """What DecayedSum.empty(ts).add(...) of each row (direction, weight, time) in turn builds, in one array
    operation: each part decayed to the latest of `ts` and the times. A sum that cancels out is dropped as add
    drops it, against the largest decayed part (add tests each step: the two differ only by rounding noise)."""
    if half_life_s <= 0:
        raise ValueError(f"half-life must be positive, got {half_life_s}")
    if not len(weights):
        return DecayedSum(None, ts)
    at = max(ts, float(times.max()))
    parts = weights * np.power(0.5, (at - times) / half_life_s)
    total = parts @ directions
    return _settled(total, float(np.max(np.abs(parts) * np.linalg.norm(directions, axis=1))), at)


def _settled(total: np.ndarray, scale: float, ts: float) -> DecayedSum:
    norm = float(np.linalg.norm(total))
    if norm <= _VANISHING * scale or norm == 0.0:
        return DecayedSum(None, ts)
    return DecayedSum(total, ts)
