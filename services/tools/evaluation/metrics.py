"""Ranking metrics per user, list-level coverage and diversity, and paired bootstrap intervals."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class UserScores:
    ndcg: float
    recall: float
    hit: float


def ranking_scores(ranked: list[int], targets: set[int], k: int = 10) -> UserScores:
    """NDCG@k with every target relevant (ideal: all targets first), Recall@k, and HR@k."""
    top = ranked[:k]
    gains = [1.0 / math.log2(rank + 2) for rank, item in enumerate(top) if item in targets]
    ideal = sum(1.0 / math.log2(rank + 2) for rank in range(min(len(targets), k)))
    hits = len(gains)
    return UserScores(
        ndcg=sum(gains) / ideal if ideal else 0.0,
        recall=hits / min(len(targets), k) if targets else 0.0,
        hit=1.0 if hits else 0.0,
    )


def intra_list_diversity(rows: list[int], unit_vectors: np.ndarray) -> float:
    """1 − mean pairwise cosine of the listed items' (unit) vectors; 0 for fewer than two items."""
    if len(rows) < 2:
        return 0.0
    vectors = unit_vectors[rows]
    similarity = vectors @ vectors.T
    pairs = len(rows) * (len(rows) - 1)
    return float(1.0 - (similarity.sum() - np.trace(similarity)) / pairs)


@dataclass(frozen=True)
class Interval:
    mean: float
    low: float
    high: float


def paired_bootstrap(ours: np.ndarray, theirs: np.ndarray, resamples: int = 2000, seed: int = 0) -> Interval:
    """Mean per-user difference and its 95% interval, resampling the same users for both methods."""
    difference = np.asarray(ours, dtype=np.float64) - np.asarray(theirs, dtype=np.float64)
    if len(difference) == 0:
        return Interval(0.0, 0.0, 0.0)
    picks = np.random.default_rng(seed).integers(0, len(difference), size=(resamples, len(difference)))
    means = difference[picks].mean(axis=1)
    return Interval(float(difference.mean()), float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5)))
