"""Shape figures of a window of vectors: centroid distances, norm statistics and collapse indicators."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class WindowProfile:
    """How one window's vectors are spread.

    A collapse (every vector pointing the same way, or into a few directions) shows as a mean
    pairwise cosine near 1 and an effective rank far below the dimensions.
    """

    norm_mean: float
    norm_std: float
    norm_min: float
    norm_max: float
    mean_pairwise_cosine: float
    # exp of the entropy of the normalised singular values of the centred window (Roy & Vetterli, 2007):
    # d for an isotropic cloud, 1 when all variance lies along one direction.
    effective_rank: float


def centroid_distances(reference: np.ndarray, current: np.ndarray) -> tuple[float, float]:
    """Cosine and Euclidean distance between the window means; cosine distance is 1 when a mean is zero."""
    ref_mean = np.asarray(reference, dtype=np.float64).mean(axis=0)
    cur_mean = np.asarray(current, dtype=np.float64).mean(axis=0)
    euclidean = float(np.linalg.norm(ref_mean - cur_mean))
    norms = float(np.linalg.norm(ref_mean) * np.linalg.norm(cur_mean))
    cosine = 1.0 if norms == 0.0 else 1.0 - float(ref_mean @ cur_mean) / norms
    return cosine, euclidean


def mean_pairwise_cosine(vectors: np.ndarray) -> float:
    """Mean cosine over all pairs i ≠ j, in O(n·d): |Σ uᵢ|² = n + Σ_{i≠j} uᵢ·uⱼ for unit rows uᵢ."""
    vectors = np.asarray(vectors, dtype=np.float64)
    count = len(vectors)
    if count < 2:
        raise ValueError(f"a pairwise mean needs at least 2 vectors, got {count}")
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    units = np.divide(vectors, norms, out=np.zeros_like(vectors), where=norms > 0)
    total = units.sum(axis=0)
    self_pairs = float(np.count_nonzero(norms > 0))
    return (float(total @ total) - self_pairs) / (count * (count - 1))


def effective_rank(vectors: np.ndarray) -> float:
    """exp(entropy) of the singular values of the centred vectors, normalised to sum to 1; 0 for a single point."""
    centred = np.asarray(vectors, dtype=np.float64)
    centred = centred - centred.mean(axis=0)
    # Singular values from the d×d scatter's eigenvalues: far cheaper than an SVD of n×d when n ≫ d.
    small = centred if len(centred) < centred.shape[1] else None
    scatter = small @ small.T if small is not None else centred.T @ centred
    singular = np.sqrt(np.clip(np.linalg.eigvalsh(scatter), 0.0, None))
    total = float(singular.sum())
    if total <= 0.0:
        return 0.0
    shares = singular[singular > 0] / total
    return float(np.exp(-(shares * np.log(shares)).sum()))


def window_profile(vectors: np.ndarray) -> WindowProfile:
    vectors = np.asarray(vectors, dtype=np.float64)
    norms = np.linalg.norm(vectors, axis=1)
    return WindowProfile(
        norm_mean=float(norms.mean()),
        norm_std=float(norms.std()),
        norm_min=float(norms.min()),
        norm_max=float(norms.max()),
        mean_pairwise_cosine=mean_pairwise_cosine(vectors),
        effective_rank=effective_rank(vectors),
    )
