"""Turns blended scores into a feed order: only allowed candidates, optionally diversified by MMR."""

from __future__ import annotations

import numpy as np

from recsys.recommender.diversity import mmr_order


def feed_order(
    scores: np.ndarray, allowed: np.ndarray, limit: int, mmr_lambda: float, vectors: np.ndarray
) -> list[int]:
    """Row numbers of the best `limit` allowed candidates, best first (ties by row), diversified when λ < 1."""
    rows = np.flatnonzero(allowed)
    if len(rows) == 0:
        return []
    values = np.asarray(scores, dtype=np.float64)[rows]
    if mmr_lambda >= 1.0:
        if len(rows) > limit:
            # Only the top slice needs sorting; on a whole catalog this is what keeps a request cheap.
            head = np.argpartition(-values, limit - 1)[:limit]
            cutoff = values[head].min()
            head = np.flatnonzero(values >= cutoff)
        else:
            head = np.arange(len(rows))
        ordered = head[np.lexsort((rows[head], -values[head]))][:limit]
        return [int(rows[i]) for i in ordered]
    return [int(rows[i]) for i in mmr_order(values, vectors[rows], mmr_lambda, limit)]
