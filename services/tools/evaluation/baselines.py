"""The baselines a team would try first: popularity, item-kNN, ALS and BPR from `implicit`, EASE and RP3beta."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy import linalg, sparse

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


# The literature's search ranges, sampled on a grid (not values tuned for MovieLens): Ferrari Dacrema et al.
# (2019, 2021) search EASE's l2 log-uniformly in [1, 1e7] and RP3beta's alpha and beta uniformly in [0, 2]
# (MaurizioFD/RecSys2019_DeepLearning_Evaluation, ParameterTuning/run_parameter_search.py); Steck (2019) reports
# l2 of 200–1000 on ML-20M, Netflix and MSD, inside this grid. Half-decades cover [10, 10^4]; beta past 1 ranks
# by unpopularity, so the beta grid stops at 1.
EASE_L2_GRID: tuple[float, ...] = (10.0, 30.0, 100.0, 300.0, 1000.0, 3000.0, 10000.0)
RP3BETA_GRID: tuple[tuple[float, float], ...] = tuple(
    (alpha, beta) for alpha in (0.25, 0.5, 0.75, 1.0, 1.5) for beta in (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
)

EASE_MAX_ITEMS = 30_000


class MemoryBudgetExceeded(ValueError):
    """A baseline that would need more memory than it may take: refused before anything is allocated."""


def ease(matrix: sparse.csr_matrix, l2: float, max_items: int = EASE_MAX_ITEMS) -> Scorer:
    """EASE (Steck 2019): B = −P / diag(P) off the diagonal, diag(B) = 0, with P = (XᵀX + l2·I)⁻¹; score = X[u] @ B.

    B is a dense items × items matrix, so more than `max_items` items is refused before anything is allocated.
    """
    n_users, n_items = matrix.shape
    if n_items > max_items:
        raise MemoryBudgetExceeded(
            f"EASE on {n_items} items needs about {_ease_bytes(n_users, n_items) / 2**30:.1f} GiB "
            f"of dense item-item matrices; refusing above max_items={max_items}"
        )
    x = sparse.csr_matrix(matrix, dtype=np.float64)
    weights = _ease_weights_dual(x, l2) if n_users < n_items else _ease_weights_primal(x, l2)

    # In B's dtype: scipy's sparse row @ dense B reads B's rows in place, 10× faster here than gathering them first.
    history = x.astype(weights.dtype)
    return lambda user: np.asarray(history[user] @ weights, dtype=np.float64).ravel()


def _ease_bytes(n_users: int, n_items: int) -> int:
    if n_users < n_items:  # float32 B; float64 user-side system; X dense, its solution and their float32 copies
        return 4 * n_items**2 + 8 * n_users**2 + 20 * n_users * n_items
    return 8 * n_items**2  # the float64 Gram matrix, inverted and turned into B in place


def _ease_weights_dual(x: sparse.csr_matrix, l2: float) -> np.ndarray:
    """EASE's B through Woodbury when there are fewer users than items: the inverse is users × users.

    (XᵀX + λI)⁻¹ = (I − Xᵀ(XXᵀ + λI)⁻¹X) / λ = (I − M) / λ, so B_ij = −P_ij / P_jj = M_ij / (1 − M_jj), λ cancelling.
    On MovieLens small (610 users, 9.7k items) this takes ~2 s; inverting the 9.7k × 9.7k Gram matrix in float64
    took 11–34 s here with LAPACK potrf + potri, 45–65 s with np.linalg.inv and 59–62 s with cho_factor + cho_solve
    (2 cores shared with other jobs); the two give the same top 10 for every user.
    """
    n_users = x.shape[0]
    user_gram = (x @ x.T).toarray()
    user_gram[np.diag_indices(n_users)] += l2
    solved = linalg.cho_solve(linalg.cho_factor(user_gram, check_finite=False), x.toarray(), check_finite=False)
    diagonal = np.asarray(x.multiply(solved).sum(axis=0)).ravel()  # M_jj, in float64
    # float32 halves B's memory and the product's time; on MovieLens small every user's top 10 is the same as
    # with float64 (largest entry difference 6e-8 against entries up to 0.18).
    weights = np.asarray(x.T.tocsr().astype(np.float32) @ solved.astype(np.float32))
    weights /= (1.0 - diagonal).astype(np.float32)
    np.fill_diagonal(weights, 0.0)
    return weights


def _ease_weights_primal(x: sparse.csr_matrix, l2: float) -> np.ndarray:
    """EASE's B from the Cholesky inverse of the items × items Gram matrix, in place (potrf + potri: the fastest
    inverse measured here, see `_ease_weights_dual`).

    float64: cond(XᵀX + l2·I) = (σ_max² + l2) / l2 is 2·10³ on MovieLens small at l2 = 10 and grows with the data,
    too close to float32's 10⁻⁷ for the small weights that order the long tail.
    """
    n_items = x.shape[1]
    # Dense a block of columns at a time: a sparse Gram matrix of dense-ish co-occurrences would cost 12 bytes an entry.
    # Fortran order, so that LAPACK works in place instead of copying it.
    gram = np.empty((n_items, n_items), order="F")
    by_column, transposed = x.tocsc(), x.T.tocsr()
    for start in range(0, n_items, 1024):
        gram[:, start : start + 1024] = (transposed @ by_column[:, start : start + 1024]).toarray()
    gram[np.diag_indices(n_items)] += l2
    potrf, potri = linalg.lapack.get_lapack_funcs(("potrf", "potri"), (gram,))
    factor, info = potrf(gram, lower=False, overwrite_a=True, clean=False)
    if info != 0:
        raise np.linalg.LinAlgError(f"EASE Gram matrix not positive definite (potrf info {info})")
    inverse, info = potri(factor, lower=False, overwrite_c=True)
    if info != 0:
        raise np.linalg.LinAlgError(f"EASE Gram matrix not invertible (potri info {info})")
    _mirror_upper_triangle(inverse)
    weights = inverse
    weights /= -np.diag(weights).copy()
    np.fill_diagonal(weights, 0.0)
    return weights


def _mirror_upper_triangle(square: np.ndarray, block: int = 1024) -> None:
    """Copy the upper triangle onto the lower one in blocks of rows, without an n × n temporary (potri fills one)."""
    for start in range(0, square.shape[0], block):
        rows = slice(start, start + block)
        square[rows, :start] = square[:start, rows].T
        diagonal_block = square[rows, rows]
        lower = np.tril_indices(diagonal_block.shape[0], -1)
        diagonal_block[lower] = diagonal_block.T[lower]


def rp3beta(
    matrix: sparse.csr_matrix,
    alpha: float,
    beta: float,
    neighbours: int | None = None,
    normalize_similarity: bool = False,
) -> Scorer:
    """RP3beta (Paudel et al. 2017): score = X[u] @ W with W from `rp3beta_weights`.

    Without `neighbours` W is never formed: X[u] @ W = ((X[u] @ P_iu) @ P_ui) · discount − X[u] · W_jj, all sparse.
    """
    if neighbours is not None:
        weights = rp3beta_weights(matrix, alpha, beta, neighbours, normalize_similarity)
        x = sparse.csr_matrix(matrix, dtype=np.float64)
        return lambda user: np.asarray((x[user] @ weights).todense()).ravel()

    walk = _RandomWalk(matrix, alpha, beta)
    row_scale = np.ones(walk.n_items)
    if normalize_similarity:
        row_sums = walk.item_to_user @ (walk.user_to_item @ walk.discount) - walk.returning
        row_scale = np.divide(1.0, row_sums, out=np.zeros_like(row_sums), where=row_sums > 0)
    scaled = (sparse.csr_matrix(matrix, dtype=np.float64) @ sparse.diags(row_scale)).tocsr()

    def score(user: int) -> np.ndarray:
        history = scaled[user]
        arrived = np.asarray((history @ walk.item_to_user @ walk.user_to_item).todense()).ravel() * walk.discount
        return arrived - history.toarray().ravel() * walk.returning

    return score


def rp3beta_weights(
    matrix: sparse.csr_matrix,
    alpha: float,
    beta: float,
    neighbours: int | None = None,
    normalize_similarity: bool = False,
) -> sparse.csr_matrix:
    """RP3beta's item-item matrix W: 3-step item→user→item walk probabilities, each step raised to alpha, the arrival
    item j divided by popularity_j^beta, an item never its own neighbour.

    Follows Ferrari Dacrema et al.'s RP3betaRecommender (MaurizioFD/RecSys2019_DeepLearning_Evaluation,
    GraphBased/RP3betaRecommender.py) step for step: P_ui is X row-normalised (its values), P_iu the binarised Xᵀ
    row-normalised, both raised to alpha after normalising; W = P_iu @ P_ui with column j × popularity_j^−beta
    (items nobody has get 0) and a zero diagonal; with `neighbours` the top k of each row are kept, then rows are
    l1-normalised if `normalize_similarity` (the reference's default, a hyperparameter of its search), then the top
    k of each column are kept. Ties keep the lower item index. Without `neighbours` W can be dense: n_items² entries.
    """
    if neighbours is not None and neighbours < 1:
        raise ValueError(f"neighbours must be at least 1, got {neighbours}")
    walk = _RandomWalk(matrix, alpha, beta)
    block = 512
    rows = []
    for start in range(0, walk.n_items, block):
        # W a block of rows at a time, each pruned to its top k before the next is computed.
        walked = (walk.item_to_user[start : start + block] @ walk.user_to_item @ sparse.diags(walk.discount)).tocoo()
        walked.data[walked.row + start == walked.col] = 0.0
        rows.append(_top_k_per_row(walked.tocsr(), neighbours) if neighbours else walked.tocsr())
    weights = sparse.vstack(rows, format="csr")
    weights.eliminate_zeros()
    if normalize_similarity:
        weights = _row_normalized(weights)
    return _top_k_per_row(weights.T.tocsr(), neighbours).T.tocsr() if neighbours else weights


class _RandomWalk:
    """The transition matrices of RP3beta, with the popularity discount and each item's return probability W_jj."""

    def __init__(self, matrix: sparse.csr_matrix, alpha: float, beta: float) -> None:
        x = sparse.csr_matrix(matrix, dtype=np.float64)
        binary = x.copy()
        binary.data[:] = 1.0
        popularity = np.asarray(binary.sum(axis=0)).ravel()
        self.n_items: int = x.shape[1]
        self.discount = np.zeros_like(popularity)
        self.discount[popularity > 0] = popularity[popularity > 0] ** -beta
        self.user_to_item = _row_normalized(x).power(alpha).tocsr()
        self.item_to_user = _row_normalized(binary.T.tocsr()).power(alpha).tocsr()
        walks_back = self.item_to_user.multiply(self.user_to_item.T)
        self.returning = np.asarray(walks_back.sum(axis=1)).ravel() * self.discount


def _top_k_per_row(matrix: sparse.csr_matrix, k: int) -> sparse.csr_matrix:
    """The k largest non-zero entries of each row (ties: the lower column), the rest dropped."""
    matrix = matrix.tocsr(copy=True)
    matrix.eliminate_zeros()
    row_of_entry = np.repeat(np.arange(matrix.shape[0]), np.diff(matrix.indptr))
    order = np.lexsort((matrix.indices, -matrix.data, row_of_entry))
    rank_in_row = np.empty_like(order)
    rank_in_row[order] = np.arange(len(order)) - matrix.indptr[row_of_entry[order]]
    matrix.data[rank_in_row >= k] = 0.0
    matrix.eliminate_zeros()
    return matrix


def _row_normalized(matrix: sparse.csr_matrix) -> sparse.csr_matrix:
    """Each row divided by its sum of absolute values (sklearn's l1 normalize); empty rows stay empty."""
    sums = np.asarray(abs(matrix).sum(axis=1)).ravel()
    return (sparse.diags(np.divide(1.0, sums, out=np.zeros_like(sums), where=sums > 0)) @ matrix).tocsr()
