"""Drift statistics between a reference and a current window: centroid distances and MMD² with a permutation test.

MMD² follows Alibi Detect's MMDDrift with its defaults (alibi_detect/cd/pytorch/mmd.py,
alibi_detect/utils/pytorch/kernels.py GaussianRBF, distance.mmd2_from_kernel_matrix), which
Evidently's MMD shares:
- kernel k(x, y) = exp(-||x - y||² / (2σ²));
- bandwidth from the reference window only (configure_kernel_from_x_ref=True):
  σ² = ½ · the lower median of the reference's pairwise squared distances (pairs i < j), which
  is the element Alibi picks with n_median = n + (n² - n) // 2 - 1 from the sorted flattened
  matrix whose first n entries are the zero diagonal;
- the unbiased estimator: the kernel matrix of the pooled sample with a zeroed diagonal,
  MMD² = ΣK_xx / (n(n-1)) + ΣK_yy / (m(m-1)) - 2 · mean(K_xy);
- the permutation test reshuffles the pooled sample and keeps σ.
Unlike Alibi (share of permuted statistics ≥ observed), the p-value is (1 + #{≥}) / (1 + P),
which never reports 0 and is a valid p-value for a finite number of permutations.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

# Below this, σ² would make every off-diagonal kernel entry 0 (all reference vectors identical).
_MIN_SIGMA2 = 1e-12


@dataclass(frozen=True)
class DriftReport:
    """One comparison of a space's current window with its reference window."""

    space: str
    reference_size: int
    current_size: int
    sufficient: bool
    reason: str
    permutations: int
    alpha: float
    computed_at: float
    drifted: bool = False
    # The statistics are None when the windows are insufficient.
    centroid_cosine_distance: float | None = None
    centroid_euclidean_distance: float | None = None
    mmd2: float | None = None
    p_value: float | None = None
    kernel_sigma: float | None = None

    def statistics(self) -> dict[str, float | int | None]:
        """The figures, for alerts and logs."""
        return {
            "reference_size": self.reference_size,
            "current_size": self.current_size,
            "centroid_cosine_distance": self.centroid_cosine_distance,
            "centroid_euclidean_distance": self.centroid_euclidean_distance,
            "mmd2": self.mmd2,
            "p_value": self.p_value,
            "alpha": self.alpha,
            "permutations": self.permutations,
            "kernel_sigma": self.kernel_sigma,
        }


def insufficiency(reference_size: int, current_size: int, min_window: int) -> str:
    """Why the windows are too small for a test, or "" when both are large enough."""
    short = [
        f"{name} window has {size} vectors, at least {min_window} needed"
        for name, size in (("reference", reference_size), ("current", current_size))
        if size < min_window
    ]
    return "; ".join(short)


def centroid_distances(reference: np.ndarray, current: np.ndarray) -> tuple[float, float]:
    """Cosine and Euclidean distance between the window means; cosine distance is 1 when a mean is zero."""
    ref_mean = np.asarray(reference, dtype=np.float64).mean(axis=0)
    cur_mean = np.asarray(current, dtype=np.float64).mean(axis=0)
    euclidean = float(np.linalg.norm(ref_mean - cur_mean))
    norms = float(np.linalg.norm(ref_mean) * np.linalg.norm(cur_mean))
    cosine = 1.0 if norms == 0.0 else 1.0 - float(ref_mean @ cur_mean) / norms
    return cosine, euclidean


def squared_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise squared Euclidean distances, rows of a against rows of b."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    dist = (a * a).sum(axis=1)[:, None] + (b * b).sum(axis=1)[None, :] - 2.0 * (a @ b.T)
    # Rounding makes tiny negatives where vectors coincide.
    return np.maximum(dist, 0.0)


def median_heuristic_sigma2(reference_distances: np.ndarray) -> float:
    """σ² of the RBF kernel: half the lower median of the pairwise squared distances i < j (Alibi's choice)."""
    n = reference_distances.shape[0]
    if n < 2:
        raise ValueError(f"the median heuristic needs at least 2 reference vectors, got {n}")
    pairs = np.sort(reference_distances[np.triu_indices(n, k=1)])
    return max(0.5 * float(pairs[(pairs.size - 1) // 2]), _MIN_SIGMA2)


def rbf_kernel(distances: np.ndarray, sigma2: float) -> np.ndarray:
    """k = exp(-d² / (2σ²)) from squared distances."""
    return np.exp(-distances / (2.0 * sigma2))


def mmd2_unbiased(kernel: np.ndarray, n_reference: int) -> float:
    """Unbiased MMD² from the pooled kernel matrix (reference rows first); the diagonal is ignored."""
    n = n_reference
    m = kernel.shape[0] - n
    if n < 2 or m < 2:
        raise ValueError(f"unbiased MMD² needs at least 2 vectors per sample, got {n} and {m}")
    k_xx = kernel[:n, :n].sum() - np.trace(kernel[:n, :n])
    k_yy = kernel[n:, n:].sum() - np.trace(kernel[n:, n:])
    k_xy = kernel[:n, n:].sum()
    return float(k_xx / (n * (n - 1)) + k_yy / (m * (m - 1)) - 2.0 * k_xy / (n * m))


def permutation_masks(rng: np.random.Generator, pooled: int, n_reference: int, permutations: int) -> np.ndarray:
    """One row per permutation: 1.0 where a pooled vector is assigned to the reference sample, else 0.0."""
    order = np.argsort(rng.random((permutations, pooled)), axis=1)
    masks = np.zeros((permutations, pooled), dtype=np.float64)
    np.put_along_axis(masks, order[:, :n_reference], 1.0, axis=1)
    return masks


def permuted_mmd2(kernel: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """Unbiased MMD² for every reassignment in masks, from one kernel matrix.

    With a the reference indicator, b = 1 - a and K with a zero diagonal: ΣK_xx = aᵀKa,
    ΣK_xy = aᵀK1 - aᵀKa and ΣK_yy = 1ᵀK1 - 2aᵀK1 + aᵀKa, so one product masks @ K gives all
    permutations at once instead of P reindexed copies of K.
    """
    k = kernel - np.diag(np.diag(kernel))
    n = int(masks[0].sum() + 0.5)
    m = k.shape[0] - n
    row_sums = k.sum(axis=1)
    total = row_sums.sum()
    a_k_a = ((masks @ k) * masks).sum(axis=1)
    a_k_1 = masks @ row_sums
    k_xx = a_k_a
    k_xy = a_k_1 - a_k_a
    k_yy = total - 2.0 * a_k_1 + a_k_a
    result: np.ndarray = k_xx / (n * (n - 1)) + k_yy / (m * (m - 1)) - 2.0 * k_xy / (n * m)
    return result


def permutation_p_value(observed: float, permuted: np.ndarray) -> float:
    """(1 + #{permuted ≥ observed}) / (1 + P)."""
    # A hair of tolerance: the permutation that reproduces the split must count as ≥ despite rounding.
    at_least = int(np.count_nonzero(permuted >= observed - 1e-12 * max(1.0, abs(observed))))
    return (1 + at_least) / (1 + permuted.size)


def compare_windows(
    space: str,
    reference: np.ndarray,
    current: np.ndarray,
    *,
    min_window: int,
    permutations: int,
    alpha: float,
    seed: int = 0,
    now: float | None = None,
) -> DriftReport:
    """The drift report of current against reference; insufficient (with the reason) when a window is too small."""
    computed_at = time.time() if now is None else now
    n, m = len(reference), len(current)
    reason = insufficiency(n, m, max(min_window, 2))
    if reason:
        return DriftReport(
            space=space,
            reference_size=n,
            current_size=m,
            sufficient=False,
            reason=reason,
            permutations=permutations,
            alpha=alpha,
            computed_at=computed_at,
        )
    if reference.shape[1] != current.shape[1]:
        raise ValueError(f"reference has {reference.shape[1]} dimensions, current has {current.shape[1]}")
    cosine, euclidean = centroid_distances(reference, current)
    pooled = np.vstack([np.asarray(reference, dtype=np.float64), np.asarray(current, dtype=np.float64)])
    distances = squared_distances(pooled, pooled)
    sigma2 = median_heuristic_sigma2(distances[:n, :n])
    kernel = rbf_kernel(distances, sigma2)
    observed = mmd2_unbiased(kernel, n)
    rng = np.random.default_rng(seed)
    permuted = permuted_mmd2(kernel, permutation_masks(rng, n + m, n, permutations))
    p_value = permutation_p_value(observed, permuted)
    return DriftReport(
        space=space,
        reference_size=n,
        current_size=m,
        sufficient=True,
        reason="",
        permutations=permutations,
        alpha=alpha,
        computed_at=computed_at,
        drifted=p_value < alpha,
        centroid_cosine_distance=cosine,
        centroid_euclidean_distance=euclidean,
        mmd2=observed,
        p_value=p_value,
        kernel_sigma=float(np.sqrt(sigma2)),
    )
