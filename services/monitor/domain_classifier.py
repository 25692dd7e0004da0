"""Domain-classifier drift: how well a cross-validated linear classifier tells current vectors from reference ones.

AUC 0.5 means the windows are indistinguishable; 1.0 means every current vector is told apart.
The classifier is ridge regression on the window label (a regularised linear discriminant) with
features standardised on each training fold: closed form and deterministic. Scores are only read
on vectors the model was not trained on (k-fold cross-validation), so 384 dimensions cannot be
overfitted into a high AUC.

An out-of-fold AUC has no simple null distribution (a Mann–Whitney p-value on pooled
out-of-fold scores alarms about twice as often as it should), so its p-value comes from a
permutation test: the labels are shuffled and the whole cross-validation repeated. In closed
form that is cheap, because the training features of a fold, and so the matrix to solve with,
do not depend on the labels: one solve per fold serves every permutation at once.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.linalg import cho_factor, cho_solve

from recsys.monitor.kernel_mmd import permutation_p_value


@dataclass(frozen=True)
class ClassifierResult:
    """Out-of-fold AUC and its permutation p-value (1.0 when no permutations were asked for)."""

    auc: float
    p_value: float
    folds: int


def rank_auc(scores: np.ndarray, positive: np.ndarray) -> np.ndarray:
    """AUC of every column of scores, positives marked by 1.0 in the same column of positive (Mann–Whitney U / nm)."""
    ranks = np.empty_like(scores)
    order = np.argsort(scores, axis=0)
    np.put_along_axis(ranks, order, np.arange(1, len(scores) + 1, dtype=np.float64)[:, None], axis=0)
    m = positive.sum(axis=0)
    n = len(scores) - m
    auc: np.ndarray = ((ranks * positive).sum(axis=0) - m * (m + 1) / 2) / (n * m)
    return auc


def domain_classifier(
    reference: np.ndarray,
    current: np.ndarray,
    *,
    folds: int = 5,
    permutations: int = 0,
    seed: int = 0,
    ridge: float = 1.0,
) -> ClassifierResult:
    """Cross-validated AUC of a ridge classifier predicting "current" (positive) against "reference".

    ridge is relative to the data: with standardised features, ridge = 1 weighs the penalty like
    one more copy of the training fold's variance.
    """
    n, m = len(reference), len(current)
    size = n + m
    folds = min(folds, n, m)
    if folds < 2:
        raise ValueError(f"cross-validation needs at least 2 vectors per window, got {n} and {m}")
    pooled = np.vstack([np.asarray(reference, dtype=np.float64), np.asarray(current, dtype=np.float64)])
    rng = np.random.default_rng(seed)
    # Folds are drawn without looking at the labels, so shuffled labels are exchangeable with the real ones.
    assignment = rng.permutation(np.arange(size) % folds)
    observed = np.concatenate([np.zeros(n), np.ones(m)])
    labels = np.column_stack([observed, *(rng.permutation(observed) for _ in range(permutations))])
    scores = np.empty_like(labels)
    total = pooled.sum(axis=0)
    scatter = pooled.T @ pooled
    for fold in range(folds):
        test = assignment == fold
        held_out = pooled[test]
        trained = size - len(held_out)
        centre = (total - held_out.sum(axis=0)) / trained
        # Centred scatter of the training rows, without forming them: all rows minus the held-out ones.
        centred_scatter = scatter - held_out.T @ held_out - trained * np.outer(centre, centre)
        variance = np.diag(centred_scatter) / trained
        variance = np.where(variance > 0, variance, max(float(variance.mean()), 1e-12))
        # Ridge on standardised features is ridge on raw features with a penalty scaled by each variance.
        system = centred_scatter + np.diag(ridge * trained * variance)
        train_labels = labels[~test]
        # Xcᵀt for centred training rows Xc; the labels need no centring, Xc's columns sum to zero.
        moments = pooled[~test].T @ train_labels - np.outer(centre, train_labels.sum(axis=0))
        directions = cho_solve(cho_factor(system), moments)  # symmetric positive definite: Cholesky
        # Plus the intercept (the training share of positives), so scores of different folds are comparable.
        scores[test] = (held_out - centre) @ directions + train_labels.mean(axis=0)
    auc = rank_auc(scores, labels)
    p_value = permutation_p_value(float(auc[0]), auc[1:]) if permutations else 1.0
    return ClassifierResult(auc=float(auc[0]), p_value=p_value, folds=folds)
