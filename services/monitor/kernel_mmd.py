"""MMD² two-sample test: RBF kernel, median-heuristic bandwidth, unbiased estimator, permutation p-value.

The statistic is Alibi Detect's MMDDrift with its defaults (alibi_detect/cd/pytorch/mmd.py,
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
Unlike Alibi (share of permuted statistics ≥ observed, which reads 0 whenever no permutation
reaches the observed value), the p-value is (1 + #{≥}) / (1 + P): never 0, and exactly valid
for a finite number of permutations, so the false-alarm rate is α whatever the sample size.

Speed (5,000 vs 5,000 vectors, 384 dims, 200 permutations in about 2 s on two cores): the data
is centred (distances do not change) and cast to float32; BLAS forms only one triangle of the
Gram matrix (syrk), the kernel is evaluated on that triangle, and every permutation's statistic
comes from one triangular matrix product (trmm) of the 0/1 assignment masks with the kernel.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.linalg import blas

# Below this, σ² would make every off-diagonal kernel entry 0 (all reference vectors identical).
_MIN_SIGMA2 = 1e-12
# Rows of the kernel triangle transformed at once: big enough for vectorised numpy, small enough for cache.
_ROW_BLOCK = 1024


@dataclass(frozen=True)
class MmdResult:
    """The observed statistic, its permutation p-value and the figures that explain it."""

    mmd2: float
    p_value: float
    sigma: float
    permutations: int
    # The permuted statistics' (1 - α) quantile: roughly the MMD² drift would have to exceed at α.
    threshold: float


def mmd_permutation_test(
    reference: np.ndarray, current: np.ndarray, *, permutations: int, alpha: float, seed: int = 0
) -> MmdResult:
    """Unbiased MMD² of current against reference and its permutation p-value."""
    n, m = len(reference), len(current)
    if n < 2 or m < 2:
        raise ValueError(f"unbiased MMD² needs at least 2 vectors per sample, got {n} and {m}")
    if permutations < 1:
        raise ValueError(f"the permutation test needs at least 1 permutation, got {permutations}")
    pooled = np.vstack([np.asarray(reference, dtype=np.float64), np.asarray(current, dtype=np.float64)])
    pooled -= pooled.mean(axis=0)
    squared_norms = np.einsum("ij,ij->i", pooled, pooled).astype(np.float32)
    lower = _gram_lower_triangle(pooled.astype(np.float32))
    sigma2 = _median_heuristic_sigma2(lower, squared_norms, n)
    _kernel_in_place(lower, squared_norms, sigma2)
    masks = assignment_masks(np.random.default_rng(seed), n + m, n, permutations)
    observed, statistics = _mmd2_for_masks(lower, masks, n)
    # The p-value compares like with like: the observed split computed the same way as the permutations.
    permuted = statistics[1:]
    return MmdResult(
        mmd2=observed,
        p_value=permutation_p_value(float(statistics[0]), permuted),
        sigma=float(np.sqrt(sigma2)),
        permutations=permutations,
        threshold=float(np.quantile(permuted, 1.0 - alpha)),
    )


def assignment_masks(rng: np.random.Generator, pooled: int, n_reference: int, permutations: int) -> np.ndarray:
    """Row 0: the observed split (the first n_reference vectors are the reference); then one row per
    permutation. 1.0 marks a vector assigned to the reference sample."""
    masks = np.zeros((permutations + 1, pooled), dtype=np.float32)
    masks[0, :n_reference] = 1.0
    if n_reference < pooled:
        # Which n of the pooled vectors go to the reference: a partition, not a full sort, per row.
        chosen = np.argpartition(rng.random((permutations, pooled)), n_reference - 1, axis=1)[:, :n_reference]
        np.put_along_axis(masks[1:], chosen, 1.0, axis=1)
    else:
        masks[1:] = 1.0
    return masks


def permutation_p_value(observed: float, permuted: np.ndarray) -> float:
    """(1 + #{permuted ≥ observed}) / (1 + P)."""
    # A hair of tolerance: a permutation that reproduces the split must count as ≥ despite rounding.
    at_least = int(np.count_nonzero(permuted >= observed - 1e-7 * max(abs(observed), 1e-6)))
    return (1 + at_least) / (1 + permuted.size)


def _gram_lower_triangle(points: np.ndarray) -> np.ndarray:
    """points @ points.T with only the lower triangle (diagonal included) filled, C-ordered."""
    # A C-ordered (N, d) array is a Fortran (d, N) one: syrk with trans=1 forms its AᵀA, filling the
    # Fortran upper triangle, which is the lower triangle of the C-ordered transpose.
    upper = blas.ssyrk(1.0, np.ascontiguousarray(points).T, trans=1, lower=0)
    lower: np.ndarray = upper.T
    return lower


def _median_heuristic_sigma2(lower_gram: np.ndarray, squared_norms: np.ndarray, n: int) -> float:
    """σ² = ½ · the lower median of the reference's pairwise squared distances (pairs i < j)."""
    pairs = np.empty(n * (n - 1) // 2, dtype=np.float32)
    start = 0
    for row in range(1, n):
        segment = pairs[start : start + row]
        np.multiply(lower_gram[row, :row], np.float32(-2.0), out=segment)
        segment += squared_norms[row]
        segment += squared_norms[:row]
        start += row
    np.maximum(pairs, 0.0, out=pairs)  # rounding makes tiny negatives where vectors coincide
    middle = (pairs.size - 1) // 2
    median = float(np.partition(pairs, middle)[middle])
    return max(0.5 * median, _MIN_SIGMA2)


def _kernel_in_place(lower: np.ndarray, squared_norms: np.ndarray, sigma2: float) -> None:
    """Turns the Gram triangle into the RBF kernel's strict lower triangle (diagonal and above are 0).

    exp(-(|x|² + |y|² - 2x·y) / 2σ²), clipped at exp(0) where rounding makes a distance negative.
    """
    size = lower.shape[0]
    scale = np.float32(1.0 / (2.0 * sigma2))
    half = squared_norms * scale
    for start in range(0, size, _ROW_BLOCK):
        stop = min(size, start + _ROW_BLOCK)
        block = lower[start:stop, :stop]
        block *= np.float32(2.0) * scale
        block -= half[start:stop, None]
        block -= half[None, :stop]
        np.minimum(block, 0.0, out=block)
        np.exp(block, out=block)
        block[:, start:stop] = np.tril(block[:, start:stop], -1)


def _mmd2_for_masks(kernel_lower: np.ndarray, masks: np.ndarray, n: int) -> tuple[float, np.ndarray]:
    """The observed unbiased MMD² (float64 sums) and the statistic for every row of masks (float32 products).

    K = L + Lᵀ with L the strict lower kernel triangle. With a the reference indicator:
    ΣK_xx = aᵀKa = 2·aᵀLa, ΣK_xy = aᵀK1 - aᵀKa and ΣK_yy = 1ᵀK1 - 2aᵀK1 + aᵀKa; one triangular
    product [masks; 1ᵀ] · L gives aᵀL for every row at once, and 1ᵀL (the column sums) with it.
    """
    size = kernel_lower.shape[0]
    m = size - n
    rows = np.vstack([masks, np.ones((1, size), dtype=np.float32)])
    # B := op(A) · B in Fortran terms, with B = rowsᵀ (the Fortran view of C-ordered rows) and A = Lᵀ.
    products = blas.strmm(1.0, kernel_lower.T, rows.T, side=0, lower=0, trans_a=0, diag=0).T
    a_l, column_sums = products[:-1].astype(np.float64), products[-1].astype(np.float64)
    masks64 = masks.astype(np.float64)
    # Row sums per block of the triangle, exactly in float64: the observed statistic is a small
    # difference of large sums, where float32 accumulation would cost digits.
    xx = kernel_lower[:n, :n].sum(axis=1, dtype=np.float64)
    xy = kernel_lower[n:, :n].sum(axis=1, dtype=np.float64)
    yy = kernel_lower[n:, n:].sum(axis=1, dtype=np.float64)
    observed = 2.0 * xx.sum() / (n * (n - 1)) + 2.0 * yy.sum() / (m * (m - 1)) - 2.0 * xy.sum() / (n * m)
    k_1 = np.concatenate([xx, xy + yy]) + column_sums
    a_k_a = 2.0 * np.einsum("ij,ij->i", a_l, masks64)
    a_k_1 = masks64 @ k_1
    total = float(k_1.sum())
    k_xx = a_k_a
    k_xy = a_k_1 - a_k_a
    k_yy = total - 2.0 * a_k_1 + a_k_a
    statistics: np.ndarray = k_xx / (n * (n - 1)) + k_yy / (m * (m - 1)) - 2.0 * k_xy / (n * m)
    return float(observed), statistics
