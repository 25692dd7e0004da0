"""EASE and RP3beta against their closed forms, hand-computed walks and the reference's pruning order."""

from __future__ import annotations

import tracemalloc
from fractions import Fraction

import numpy as np
import pytest
from scipy import sparse

from recsys.tools.evaluation import baselines
from recsys.tools.evaluation.baselines import ease, rp3beta, rp3beta_weights


def random_binary(n_users: int, n_items: int, density: float = 0.3, seed: int = 0) -> sparse.csr_matrix:
    rng = np.random.default_rng(seed)
    matrix = sparse.csr_matrix((rng.random((n_users, n_items)) < density).astype(np.float64))
    return matrix


def all_scores(scorer: baselines.Scorer, n_users: int) -> np.ndarray:
    return np.stack([scorer(user) for user in range(n_users)])


def ease_by_dense_algebra(matrix: sparse.csr_matrix, l2: float) -> np.ndarray:
    x = matrix.toarray()
    inverse = np.linalg.inv(x.T @ x + l2 * np.eye(x.shape[1]))
    weights = -inverse / np.diag(inverse)
    np.fill_diagonal(weights, 0.0)
    return x @ weights


@pytest.mark.parametrize(
    ("n_users", "n_items", "density"),
    [(12, 30, 0.3), (40, 15, 0.3), (1100, 1050, 0.02)],
    ids=["fewer-users", "fewer-items", "fewer-items-past-one-block"],
)
def test_ease_matches_its_closed_form(n_users: int, n_items: int, density: float) -> None:
    matrix = random_binary(n_users, n_items, density)

    got = all_scores(ease(matrix, 3.0), n_users)

    np.testing.assert_allclose(got, ease_by_dense_algebra(matrix, 3.0), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(("n_users", "n_items"), [(12, 30), (40, 15)], ids=["fewer-users", "fewer-items"])
def test_ease_never_recommends_an_item_from_itself(n_users: int, n_items: int) -> None:
    matrix = random_binary(n_users, n_items).tolil()
    matrix[0, :] = 0
    matrix[0, 4] = 1  # user 0 has item 4 only, so its scores are row 4 of B

    scores = ease(matrix.tocsr(), 3.0)(0)

    assert scores[4] == 0.0
    assert np.count_nonzero(scores) > n_items // 2


def test_a_larger_l2_shrinks_ease_weights() -> None:
    matrix = random_binary(20, 25)

    sizes = [np.abs(all_scores(ease(matrix, l2), 20)).sum() for l2 in (1.0, 10.0, 100.0, 1000.0)]

    assert sizes == sorted(sizes, reverse=True)
    assert sizes[-1] < sizes[0] / 10


def test_ease_refuses_too_many_items_before_allocating_anything_large() -> None:
    matrix = sparse.csr_matrix(([1.0, 1.0, 1.0], ([0, 1, 2], [0, 5, 99_999])), shape=(3, 100_000))

    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match=r"100000 items needs about 37\.\d GiB"):
            ease(matrix, 100.0, max_items=30_000)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert peak < 1_000_000  # one dense 3 × 100k float64 copy alone would be 2.4 MB


# 3 users, 4 items: u0 has {0, 1}, u1 has {1, 2}, u2 has {0, 1, 3}.
WALK_EXAMPLE = sparse.csr_matrix(([1.0] * 7, ([0, 0, 1, 1, 2, 2, 2], [0, 1, 1, 2, 0, 1, 3])), shape=(3, 4))


def test_rp3beta_with_alpha_one_and_beta_zero_is_the_three_step_walk_probability() -> None:
    # From item i to a user holding it (1 / item degree: 2, 3, 1, 1), then to an item of theirs (1 / items held:
    # 2, 2, 3); the walk back to the start item is dropped. Row 0: via u0 (1/2·1/2) and u2 (1/2·1/3); row 1: via
    # u0 (1/3·1/2), u1 (1/3·1/2), u2 (1/3·1/3); row 2: via u1 (1·1/2); row 3: via u2 (1·1/3).
    f = Fraction
    walk: list[list[Fraction | int]] = [
        [0, f(1, 4) + f(1, 6), 0, f(1, 6)],
        [f(1, 6) + f(1, 9), 0, f(1, 6), f(1, 9)],
        [0, f(1, 2), 0, 0],
        [f(1, 3), f(1, 3), 0, 0],
    ]
    expected_u0 = [float(a + b) for a, b in zip(walk[0], walk[1], strict=True)]  # holds items 0 and 1
    expected_u1 = [float(a + b) for a, b in zip(walk[1], walk[2], strict=True)]  # holds items 1 and 2

    for scorer in (rp3beta(WALK_EXAMPLE, 1.0, 0.0), rp3beta(WALK_EXAMPLE, 1.0, 0.0, neighbours=4)):
        np.testing.assert_allclose(scorer(0), expected_u0, rtol=1e-12)
        np.testing.assert_allclose(scorer(1), expected_u1, rtol=1e-12)
    np.testing.assert_allclose(rp3beta_weights(WALK_EXAMPLE, 1.0, 0.0).toarray(), np.array(walk, dtype=float))


def test_rp3beta_raises_each_step_to_alpha_and_walks_from_ratings_as_the_reference_does() -> None:
    rng = np.random.default_rng(5)
    matrix = random_binary(15, 10, density=0.4, seed=5)
    matrix.data = rng.uniform(1.0, 5.0, size=matrix.nnz)  # user → item follows the values, item → user does not
    x, alpha, beta = matrix.toarray(), 0.5, 0.3
    holders = (x > 0).sum(axis=0)
    expected = np.zeros((10, 10))
    for i in range(10):
        for j in range(10):
            for user in range(15):
                if i != j and x[user, i] > 0:
                    to_user, to_item = 1 / holders[i], x[user, j] / x[user].sum()
                    expected[i, j] += to_user**alpha * to_item**alpha * holders[j] ** -beta

    np.testing.assert_allclose(rp3beta_weights(matrix, alpha, beta).toarray(), expected, rtol=1e-12)
    np.testing.assert_allclose(all_scores(rp3beta(matrix, alpha, beta), 15), x @ expected, rtol=1e-10, atol=1e-14)


def test_rp3beta_beta_divides_each_item_by_its_popularity_and_lowers_popular_items() -> None:
    matrix = random_binary(30, 20, density=0.25, seed=4)
    popularity = np.asarray(matrix.sum(axis=0)).ravel()
    plain, discounted = all_scores(rp3beta(matrix, 0.8, 0.0), 30), all_scores(rp3beta(matrix, 0.8, 0.5), 30)

    np.testing.assert_allclose(discounted, plain * popularity**-0.5, rtol=1e-10, atol=1e-14)

    # User 0 has item 0 only; its neighbours: item 1 (held by 12 users) and item 2 (held by user 1 alone).
    planted = sparse.lil_matrix((13, 3))
    planted[0, 0] = 1
    planted[1, [0, 1, 2]] = 1
    planted[2, [0, 1]] = 1
    planted[3:, 1] = 1
    for beta, first in ((0.0, 1), (1.0, 2)):
        scores = rp3beta(planted.tocsr(), 1.0, beta)(0)
        assert int(np.argmax(scores)) == first


def reference_pruning(full: np.ndarray, k: int, normalize_similarity: bool) -> np.ndarray:
    """RP3betaRecommender's order written the plain way: top k of each row, l1 rows, top k of each column."""
    pruned = np.zeros_like(full)
    for row in range(full.shape[0]):
        best = np.argsort(-full[row], kind="stable")[:k]
        pruned[row, best] = full[row, best]
    if normalize_similarity:
        sums = pruned.sum(axis=1, keepdims=True)
        pruned = np.divide(pruned, sums, out=np.zeros_like(pruned), where=sums > 0)
    result = np.zeros_like(pruned)
    for column in range(full.shape[1]):
        best = np.argsort(-pruned[:, column], kind="stable")[:k]
        result[best, column] = pruned[best, column]
    return result


@pytest.mark.parametrize("normalize_similarity", [False, True])
def test_neighbours_prune_rows_then_columns_as_the_reference_does(normalize_similarity: bool) -> None:
    rng = np.random.default_rng(7)
    matrix = random_binary(50, 40, density=0.3, seed=7)
    matrix.data = rng.uniform(1.0, 5.0, size=matrix.nnz)  # ratings as values: no ties among the weights
    full = rp3beta_weights(matrix, 0.7, 0.3).toarray()

    pruned = rp3beta_weights(matrix, 0.7, 0.3, neighbours=5, normalize_similarity=normalize_similarity)

    assert np.diff(pruned.indptr).max() <= 5
    assert np.diff(pruned.tocsc().indptr).max() <= 5
    np.testing.assert_allclose(pruned.toarray(), reference_pruning(full, 5, normalize_similarity), rtol=1e-12)


@pytest.mark.parametrize("normalize_similarity", [False, True])
def test_rp3beta_without_neighbours_scores_with_the_full_weights(normalize_similarity: bool) -> None:
    matrix = random_binary(25, 18, seed=2)
    weights = rp3beta_weights(matrix, 0.6, 0.4, normalize_similarity=normalize_similarity)

    got = all_scores(rp3beta(matrix, 0.6, 0.4, normalize_similarity=normalize_similarity), 25)

    np.testing.assert_allclose(got, (matrix @ weights).toarray(), rtol=1e-10, atol=1e-14)


def test_both_scorers_rank_the_always_co_occurring_item_first() -> None:
    rng = np.random.default_rng(11)
    matrix = (rng.random((40, 30)) < 0.1).astype(np.float64)
    matrix[:20, 3] = matrix[:20, 17] = 1.0  # items 3 and 17 always together
    matrix[20:, 3] = matrix[20:, 17] = 0.0
    matrix[39, :] = 0.0
    matrix[39, 3] = 1.0  # a user with item 3 only
    training = sparse.csr_matrix(matrix)

    for scorer in (ease(training, 10.0), rp3beta(training, 0.75, 0.3), rp3beta(training, 0.75, 0.3, neighbours=5)):
        scores = scorer(39)
        scores[3] = -np.inf
        assert int(np.argmax(scores)) == 17
