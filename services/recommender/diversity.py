"""Maximal marginal relevance: re-ranks candidates so a list does not repeat one kind of item."""

from __future__ import annotations

import numpy as np

from recsys.shared.errors import InvalidRequest


def validate_lambda(value: float) -> float:
    if not 0.0 <= value <= 1.0:
        raise InvalidRequest(f"mmr_lambda must be between 0 and 1, got {value}")
    return value


def mmr_order(scores: np.ndarray, vectors: np.ndarray, lam: float, count: int) -> list[int]:
    """The first `count` candidates in MMR order: each next pick maximizes λ·relevance − (1−λ)·max similarity.

    Relevance is the score rescaled to 0..1 over the candidates, so λ means the same whatever the
    score scale; similarity is the cosine of the (unit, possibly zero) rows of `vectors`. λ = 1 is
    plain best-first order. Ties go to the earlier candidate, so the order is repeatable.
    """
    validate_lambda(lam)
    count = min(count, len(scores))
    by_score = list(np.lexsort((np.arange(len(scores)), -np.asarray(scores))))
    if lam >= 1.0 or count <= 1:
        return [int(i) for i in by_score[:count]]
    values = np.asarray(scores, dtype=np.float64)
    spread = float(values.max() - values.min())
    relevance = (values - values.min()) / spread if spread > 0 else np.ones_like(values)
    rows = np.asarray(vectors, dtype=np.float32)
    chosen: list[int] = []
    closest = np.full(len(values), -np.inf)  # each candidate's highest similarity to anything chosen
    available = np.ones(len(values), dtype=bool)
    for _ in range(count):
        penalty = np.where(np.isfinite(closest), closest, 0.0)
        gain = np.where(available, lam * relevance - (1.0 - lam) * penalty, -np.inf)
        pick = int(np.argmax(gain))
        chosen.append(pick)
        available[pick] = False
        closest = np.maximum(closest, rows @ rows[pick])
    return chosen
