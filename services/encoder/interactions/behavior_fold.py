"""Folds many users into the behavior space at once: one sparse product of decayed histories and item directions.

It computes what `user_behavior` computes one user at a time (the decayed, weighted sum of the
unit directions of the items in a user's history, decayed to the user's latest event), as
H · D where H is the users × items matrix of decayed history weights and D the items' unit
directions. Memory is linear in the histories plus users × dims for the result: never a dense
users × items matrix.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import sparse

from recsys.encoder.interactions.decay import DecayedSum

# The same rule as DecayedSum: a sum far shorter than its largest part has cancelled out.
_VANISHING = 1e-6


@dataclass(frozen=True)
class ItemDirections:
    """The items of one model version as row indices into a matrix of float64 unit directions."""

    rows: Mapping[str, int]
    units: np.ndarray  # (items, dims) float64, unit rows (zero rows for zero vectors)

    @classmethod
    def of(cls, item_ids: Sequence[str], vectors: np.ndarray) -> ItemDirections:
        return cls({item_id: row for row, item_id in enumerate(item_ids)}, unit_rows(vectors))


@dataclass(frozen=True)
class FoldedUsers:
    """Behavior sums of many users: `totals` rows are the sums, `has_vector` false where nothing net is left."""

    totals: np.ndarray  # (users, dims) float64
    has_vector: np.ndarray  # (users,) bool

    def behavior(self, row: int, ts: float) -> DecayedSum:
        """One user's sum as the per-user path stores it (stated at the user's latest event)."""
        return DecayedSum(self.totals[row].copy() if self.has_vector[row] else None, ts)


def unit_rows(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to length 1 (zero rows stay zero), as `user_behavior` normalizes each item's vector."""
    vectors = np.asarray(vectors, dtype=np.float64)
    lengths = np.linalg.norm(vectors, axis=1)
    return np.divide(vectors, lengths[:, None], out=np.zeros_like(vectors), where=lengths[:, None] > 0)


def history_weights(
    histories: Sequence[Sequence[tuple[str, float, float]]],
    nows: Sequence[float],
    item_rows: Mapping[str, int],
    half_life_s: float,
) -> sparse.csr_matrix:
    """Users × items: each history (item_id, weight, ts) decayed to its user's `now`; unknown items skipped."""
    rows: list[int] = []
    cols: list[int] = []
    weights: list[float] = []
    times: list[float] = []
    for user, history in enumerate(histories):
        for item_id, weight, ts in history:
            col = item_rows.get(item_id)
            if col is None or weight == 0:
                continue
            rows.append(user)
            cols.append(col)
            weights.append(weight)
            times.append(ts)
    return decayed_history_matrix(
        np.asarray(rows, dtype=np.int64),
        np.asarray(cols, dtype=np.int64),
        np.asarray(weights, dtype=np.float64),
        np.asarray(times, dtype=np.float64),
        np.asarray(nows, dtype=np.float64),
        len(item_rows),
        half_life_s,
    )


def decayed_history_matrix(
    rows: np.ndarray,
    cols: np.ndarray,
    weights: np.ndarray,
    times: np.ndarray,
    nows: np.ndarray,
    items: int,
    half_life_s: float,
) -> sparse.csr_matrix:
    """The same matrix from columns (one entry per history event); duplicates of a (user, item) pair are summed."""
    # Events newer than `now` are not decayed (DecayedSum restates the sum at the later time instead;
    # `now` is the user's latest event, so no history event is newer).
    elapsed = np.maximum(0.0, nows[rows] - times) if len(rows) else np.zeros(0)
    decayed = weights * np.power(0.5, elapsed / half_life_s)
    return sparse.csr_matrix((decayed, (rows, cols)), shape=(len(nows), items))


def fold_in(weights: sparse.csr_matrix, directions: np.ndarray) -> FoldedUsers:
    """Every user's behavior sum in one sparse × dense product."""
    totals = np.asarray(weights @ directions)
    norms = np.linalg.norm(totals, axis=1)
    # The scale a cancellation is judged against: the user's largest single (decayed) part.
    largest = abs(weights).max(axis=1).toarray().ravel() if weights.shape[1] else np.zeros(weights.shape[0])
    has_vector = (norms > _VANISHING * largest) & (norms > 0)
    return FoldedUsers(totals, has_vector)


def fold_by_newest_version(
    histories: Sequence[Sequence[tuple[str, float, float]]],
    nows: Sequence[float],
    item_ids: Sequence[str],
    vectors: np.ndarray,
    versions: Sequence[int],
    half_life_s: float,
) -> list[tuple[DecayedSum, int | None]]:
    """Each user's behavior sum and version, folded against the newest model version among their own items.

    What `user_behavior` gives one user at a time over the items of that version (ingestion's rule while a refresh is
    half-written: vectors of two factorizations live in unrelated bases, so a user takes only the items
    of the newest version their history reaches), for a batch of users in one product per version.
    `item_ids`, `vectors` and `versions` are the items read, row for row; a user none of whose items has
    a vector gets an empty sum and no version.
    """
    version_of = dict(zip(item_ids, versions, strict=True))
    newest: list[int | None] = [
        max((version_of[i] for i, weight, _ in history if weight != 0 and i in version_of), default=None)
        for history in histories
    ]
    folded: list[tuple[DecayedSum, int | None]] = [(DecayedSum.empty(now), None) for now in nows]
    for version in {v for v in newest if v is not None}:
        users = [user for user, v in enumerate(newest) if v == version]
        rows = [row for row, item_version in enumerate(versions) if item_version == version]
        directions = ItemDirections.of([item_ids[row] for row in rows], vectors[rows])
        weights = history_weights(
            [histories[user] for user in users], [nows[user] for user in users], directions.rows, half_life_s
        )
        sums = fold_in(weights, directions.units)
        for at, user in enumerate(users):
            folded[user] = (sums.behavior(at, nows[user]), version)
    return folded
