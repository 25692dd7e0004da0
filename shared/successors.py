"""What users engage with next: per item, the items that followed it in users' histories (a sparse transition model).

The collaborative space says which items go together over whole histories; it is low-rank, so it
blurs what is local in time. This model keeps that: item j is a successor of item i when a user's
positive event on j came within WINDOW positive events after one on i (nearer ones count more,
1/gap), divided by i's positive events, so a row reads "of what followed i, how much was j". Only
the KEEP strongest successors of each item are kept: memory and the payload stay bounded.

A user's sequence score of an item is the decayed sum, over the user's RECENT latest positive
items (newest first, DECAY per step), of that item's weight as their successor, scaled so the best
candidate scores 1. The constants are the usual ones of session-based nearest-neighbour methods
(Ludewig & Jannach 2018), set before any evaluation and not fitted to a dataset.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np
from scipy import sparse

WINDOW = 5
KEEP = 50
RECENT = 10
DECAY = 0.8


def transition_matrix(
    user: np.ndarray,
    item: np.ndarray,
    weight: np.ndarray,
    ts: np.ndarray,
    n_items: int,
    window: int = WINDOW,
    keep: int = KEEP,
) -> sparse.csr_matrix:
    """Items × items: row i holds the kept successors of item i and their weights (see the module docstring).

    Events are columns (user row, item row, weight, ts); only positive ones count. Memory is a few
    arrays of the log's length per gap, then `keep` entries per item.
    """
    positive = np.flatnonzero(weight > 0)
    order = positive[np.lexsort((item[positive], ts[positive], user[positive]))]
    users, items = user[order], item[order].astype(np.int32)
    # One gap at a time into a float32 matrix: a log of 20M events never holds all its pairs at once.
    matrix = sparse.csr_matrix((n_items, n_items), dtype=np.float32)
    for gap in range(1, window + 1):
        pairs = np.flatnonzero(users[gap:] == users[:-gap])
        if not len(pairs):
            break
        step = sparse.csr_matrix(
            (np.full(len(pairs), 1.0 / gap, dtype=np.float32), (items[pairs], items[pairs + gap])),
            shape=(n_items, n_items),
        )
        matrix = matrix + step
    counts = np.bincount(items, minlength=n_items).astype(np.float32)
    matrix = sparse.diags(1.0 / np.maximum(counts, 1.0)) @ matrix
    return strongest_per_row(matrix.tocsr(), keep)


def strongest_per_row(matrix: sparse.csr_matrix, keep: int, rows_per_block: int = 4096) -> sparse.csr_matrix:
    """The `keep` largest entries of every row (ties: the lower column first), the rest dropped.

    A block of rows at a time, so the sort's arrays are a block's entries, not the whole matrix's.
    """
    matrix = matrix.tocsr()
    matrix.sum_duplicates()
    if keep <= 0:
        return sparse.csr_matrix(matrix.shape, dtype=matrix.dtype)
    if np.diff(matrix.indptr).max(initial=0) <= keep:
        return matrix
    blocks = []
    for start in range(0, matrix.shape[0], rows_per_block):
        block = matrix[start : start + rows_per_block]
        lengths = np.diff(block.indptr)
        rows = np.repeat(np.arange(block.shape[0]), lengths)
        # Sort each row's entries by weight, descending, then keep each row's first `keep`.
        order = np.lexsort((block.indices, -block.data, rows))
        rank = np.arange(len(order)) - np.repeat(block.indptr[:-1], lengths)
        kept = order[rank < keep]
        blocks.append(sparse.csr_matrix((block.data[kept], (rows[kept], block.indices[kept])), shape=block.shape))
    return sparse.vstack(blocks, format="csr")


def successor_lists(matrix: sparse.csr_matrix, item_ids: Sequence[str]) -> dict[str, list[tuple[str, float]]]:
    """Row i of the matrix as item i's successor list [(item id, weight)], strongest first; empty rows left out."""
    lists: dict[str, list[tuple[str, float]]] = {}
    for row in np.flatnonzero(np.diff(matrix.indptr)):
        start, end = matrix.indptr[row], matrix.indptr[row + 1]
        order = np.argsort(-matrix.data[start:end], kind="stable")
        lists[item_ids[int(row)]] = [
            (item_ids[int(matrix.indices[start + k])], float(matrix.data[start + k])) for k in order
        ]
    return lists


def recent_items(
    history: Iterable[tuple[str, float, float]], count: int = RECENT, decay: float = DECAY
) -> list[tuple[str, float]]:
    """The user's latest `count` positive items (history entries are (item id, weight, ts)), newest first,
    each with its decayed weight decay^k; an item met twice keeps its newest place."""
    positives = sorted((entry for entry in history if entry[1] > 0), key=lambda entry: entry[2], reverse=True)
    recent: list[tuple[str, float]] = []
    placed: set[str] = set()
    for item_id, _, _ in positives:
        if item_id in placed:
            continue
        placed.add(item_id)
        recent.append((item_id, decay ** len(recent)))
        if len(recent) == count:
            break
    return recent


def sequence_scores(
    recent: Sequence[tuple[str, float]], successors: Mapping[str, Sequence[tuple[str, float]]]
) -> dict[str, float]:
    """Every item that followed one of the recent items, with its score scaled to 0..1 (the best is 1)."""
    scores: dict[str, float] = {}
    for item_id, weight in recent:
        for successor, strength in successors.get(item_id, ()):
            scores[successor] = scores.get(successor, 0.0) + weight * strength
    best = max(scores.values(), default=0.0)
    if best <= 0:
        return {}
    return {item_id: score / best for item_id, score in scores.items()}


def sequence_signal(scores: Mapping[str, float], candidate_ids: Sequence[str]) -> np.ndarray:
    """The scores as a signal over the candidates: 0 where nothing recent led to the item."""
    return np.asarray([scores.get(item_id, 0.0) for item_id in candidate_ids], dtype=np.float64)


def sequence_array(
    recent: Sequence[tuple[str, float]], row_of: Mapping[str, int], matrix: sparse.csr_matrix
) -> np.ndarray:
    """sequence_scores over every row of the matrix at once (rows are items in `row_of`'s numbering)."""
    weights = np.zeros(matrix.shape[0])
    for item_id, weight in recent:
        row = row_of.get(item_id)
        if row is not None:
            weights[row] += weight
    scores = np.asarray(matrix.T @ weights, dtype=np.float64).ravel()
    best = float(scores.max(initial=0.0))
    return scores / best if best > 0 else np.zeros(matrix.shape[1])


class SuccessorTable:
    """Every item's successor list, made from the sparse matrix when asked for: a refresh writing 100,000
    items holds the matrix (`keep` floats and ints per item), not a Python list per item."""

    def __init__(self, matrix: sparse.csr_matrix, item_ids: Sequence[str]) -> None:
        self._matrix = matrix.tocsr()
        self._item_ids = item_ids
        self._row_of = {item_id: row for row, item_id in enumerate(item_ids)}

    @classmethod
    def empty(cls) -> SuccessorTable:
        return cls(sparse.csr_matrix((0, 0)), [])

    def payload_of(self, item_id: str) -> list[list[str | float]]:
        """The item's successors as its payload stores them: [[item id, weight], ...], strongest first."""
        row = self._row_of.get(item_id)
        if row is None:
            return []
        start, end = self._matrix.indptr[row], self._matrix.indptr[row + 1]
        order = np.argsort(-self._matrix.data[start:end], kind="stable")
        return [
            [self._item_ids[int(self._matrix.indices[start + k])], round(float(self._matrix.data[start + k]), 6)]
            for k in order
        ]
