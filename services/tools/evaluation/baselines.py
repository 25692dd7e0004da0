"""The baselines a team would try first: popularity, item-kNN on co-occurrence, ALS and BPR from `implicit`."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy import sparse

Scorer = Callable[[int], np.ndarray]  # user row -> a score for every item


def interactions(users: np.ndarray, items: np.ndarray, n_users: int, n_items: int) -> sparse.csr_matrix:
    """Binary user-item matrix of the training interactions (any rating counts as an interaction)."""
    values = np.ones(len(users), dtype=np.float32)
    matrix = sparse.csr_matrix((values, (users, items)), shape=(n_users, n_items))
    matrix.data[:] = 1.0
    return matrix


def popularity(matrix: sparse.csr_matrix) -> Scorer:
    counts = np.asarray(matrix.sum(axis=0)).ravel().astype(np.float64)
    return lambda user: counts


def item_knn(matrix: sparse.csr_matrix) -> Scorer:
    """Score of item j for user u: Σ over u's items i of cosine(i, j) on co-occurrence counts."""
    norms = np.sqrt(np.asarray(matrix.sum(axis=0)).ravel())
    scaled = matrix @ sparse.diags(1.0 / np.maximum(norms, 1e-12))
    # Σ_i x_ui x_vi / n_i^½ over users v, then × x_vj / n_j^½: users × users first keeps it small.
    user_overlap = (scaled @ matrix.T).tocsr()
    return lambda user: np.asarray((user_overlap[user] @ scaled).todense()).ravel()


def _factor_scorer(user_factors: np.ndarray, item_factors: np.ndarray) -> Scorer:
    return lambda user: item_factors @ user_factors[user]


def als(matrix: sparse.csr_matrix, factors: int, seed: int = 0) -> Scorer:
    from implicit.cpu.als import AlternatingLeastSquares
    from threadpoolctl import threadpool_limits

    # implicit parallelizes itself; a multi-threaded BLAS underneath only oversubscribes the cores.
    with threadpool_limits(1, "blas"):
        model = AlternatingLeastSquares(factors=factors, iterations=15, random_state=seed)
        model.fit(matrix, show_progress=False)
    return _factor_scorer(np.asarray(model.user_factors), np.asarray(model.item_factors))


def bpr(matrix: sparse.csr_matrix, factors: int, seed: int = 0) -> Scorer:
    from implicit.cpu.bpr import BayesianPersonalizedRanking
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1, "blas"):
        model = BayesianPersonalizedRanking(factors=factors, iterations=100, random_state=seed)
        model.fit(matrix, show_progress=False)
    return _factor_scorer(np.asarray(model.user_factors), np.asarray(model.item_factors))
