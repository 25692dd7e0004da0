"""The collaborative model: a truncated SVD of the time-decayed user-item matrix gives the item behavior vectors.

An item's behavior vector is its row of V·Σ^½ (V, Σ from the SVD), stored as a unit direction plus
a `strength` in 0..1 (its length relative to the longest item's). The recommender scores
user · item as cosine × strength, i.e. a dot product: the length carries how much evidence the
model has for the item, which cosine alone would throw away (the offline evaluation measured
NDCG@10 0.061 for cosine against 0.087 for the dot product on MovieLens).
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from scipy import sparse
from scipy.sparse.linalg import svds

# Σ^½ splits the singular values evenly between users and items; measured best of 0, ¼, ½, ¾, 1.
_SINGULAR_POWER = 0.5


@dataclass(frozen=True)
class LoggedInteraction:
    """One applied interaction as the behavior log keeps it: who, what, its signed weight and when."""

    event_id: str
    user_id: str
    item_id: str
    weight: float
    ts: float
    # The interaction type's name (InteractionType); None for lines logged before the log kept it.
    type: str | None = None


@dataclass(frozen=True)
class EventColumns:
    """A log of interactions as parallel columns; `user` and `item` are rows into `user_ids` / `item_ids`.

    `kind`, when the log kept types: each event's row into `kinds` (the type names), −1 where unknown.
    """

    user: np.ndarray
    item: np.ndarray
    weight: np.ndarray
    ts: np.ndarray
    user_ids: list[str]
    item_ids: list[str]
    kind: np.ndarray | None = None
    kinds: tuple[str, ...] = ()

    def __len__(self) -> int:
        return len(self.user)

    def subset(self, rows: np.ndarray) -> EventColumns:
        return EventColumns(
            self.user[rows],
            self.item[rows],
            self.weight[rows],
            self.ts[rows],
            self.user_ids,
            self.item_ids,
            self.kind[rows] if self.kind is not None else None,
            self.kinds,
        )


@dataclass(frozen=True)
class InteractionMatrix:
    """Rows are users, columns items; each cell the decayed sum of the pair's event weights."""

    user_ids: list[str]
    item_ids: list[str]
    values: sparse.csr_matrix

    @property
    def interactions(self) -> int:
        return int(self.values.nnz)


@dataclass(frozen=True)
class ItemFactors:
    """Item behavior vectors of one model version: unit directions and their relative strengths."""

    item_ids: list[str]
    vectors: np.ndarray  # (items, dims) float32, unit rows
    strengths: np.ndarray  # (items,) in 0..1

    def as_mapping(self) -> dict[str, np.ndarray]:
        return {item_id: self.vectors[row] for row, item_id in enumerate(self.item_ids)}


def interaction_matrix(entries: Iterable[LoggedInteraction], half_life_s: float = 0.0) -> InteractionMatrix:
    """The user-item matrix of the logged interactions, each event counted once (by event id).

    With a positive half-life an event counts less the older it is than its user's latest event,
    so every user's recent taste weighs most whatever the wall clock says; 0 counts every event fully.
    """
    builder = InteractionMatrixBuilder()
    for entry in entries:
        builder.add(entry)
    return builder.build(half_life_s)


class InteractionMatrixBuilder:
    """Collects logged interactions one at a time as compact columns, so no list of per-event objects is held.

    A refresh reads the log entry by entry into it: memory is the ids seen plus 33 bytes per event.
    """

    def __init__(self) -> None:
        self.read = 0
        self._seen_events: set[str] = set()
        self._users: dict[str, int] = {}
        self._items: dict[str, int] = {}
        self._rows = array("q")
        self._cols = array("q")
        self._weights = array("d")
        self._times = array("d")
        self._kind_codes: dict[str, int] = {}
        self._kinds = array("b")

    def add(self, entry: LoggedInteraction) -> None:
        self.read += 1
        if entry.event_id in self._seen_events or entry.weight == 0 or not math.isfinite(entry.weight):
            return
        self._seen_events.add(entry.event_id)
        self._rows.append(self._users.setdefault(entry.user_id, len(self._users)))
        self._cols.append(self._items.setdefault(entry.item_id, len(self._items)))
        self._weights.append(entry.weight)
        self._times.append(entry.ts)
        self._kinds.append(-1 if entry.type is None else self._kind_codes.setdefault(entry.type, len(self._kind_codes)))

    def columns(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, list[str], list[str]]:
        """The deduplicated events as (user row, item row, weight, ts) columns, with the user and item ids."""
        return (
            np.frombuffer(self._rows, dtype=np.int64),
            np.frombuffer(self._cols, dtype=np.int64),
            np.frombuffer(self._weights, dtype=np.float64),
            np.frombuffer(self._times, dtype=np.float64),
            list(self._users),
            list(self._items),
        )

    def events(self) -> EventColumns:
        """The deduplicated events as columns, each with its type where the log kept it."""
        return EventColumns(
            *self.columns(), kind=np.frombuffer(self._kinds, dtype=np.int8), kinds=tuple(self._kind_codes)
        )

    def build(self, half_life_s: float = 0.0) -> InteractionMatrix:
        values = decayed_matrix(
            np.frombuffer(self._rows, dtype=np.int64),
            np.frombuffer(self._cols, dtype=np.int64),
            np.frombuffer(self._weights, dtype=np.float64),
            np.frombuffer(self._times, dtype=np.float64),
            (len(self._users), len(self._items)),
            half_life_s,
        )
        return InteractionMatrix(list(self._users), list(self._items), values)


def decayed_matrix(
    rows: np.ndarray,
    cols: np.ndarray,
    weights: np.ndarray,
    times: np.ndarray,
    shape: tuple[int, int],
    half_life_s: float = 0.0,
) -> sparse.csr_matrix:
    """The matrix of already deduplicated interactions given as columns (row, column, weight, ts per event).

    Memory is a few arrays of the log's length: no per-event objects, no dense users × items.
    """
    value = weights
    if half_life_s > 0 and len(rows):
        latest = np.full(shape[0], -np.inf)
        np.maximum.at(latest, rows, times)
        value = value * np.power(0.5, np.maximum(0.0, latest[rows] - times) / half_life_s)
    # Duplicate (user, item) pairs are summed by the conversion.
    return sparse.coo_matrix((value, (rows, cols)), shape=shape).tocsr()


def factorize(matrix: InteractionMatrix, dims: int, device: str = "cpu") -> ItemFactors:
    """Item vectors from a rank-`dims` truncated SVD; items whose column is empty get none.

    `device` "cuda…" runs a randomized SVD on the GPU through torch; anything else uses scipy.
    The result is deterministic for a given matrix on the CPU.
    """
    values = matrix.values
    keep = np.flatnonzero(np.abs(values).sum(axis=0).A1 > 0)
    if len(keep) == 0:
        return ItemFactors([], np.zeros((0, dims), dtype=np.float32), np.zeros(0, dtype=np.float32))
    values = values[:, keep]
    item_ids = [matrix.item_ids[column] for column in keep]
    singular, right = _truncated_svd(values, dims, device)
    return item_factors(item_ids, singular, right, dims)


def item_factors(item_ids: list[str], singular: np.ndarray, right: np.ndarray, dims: int) -> ItemFactors:
    """Item vectors from the singular values and right singular vectors (items × rank) of any truncated SVD."""
    # A singular vector's sign is arbitrary; fixing it (largest component positive) makes refits comparable.
    signs = np.sign(right[np.abs(right).argmax(axis=0), np.arange(right.shape[1])])
    right = right * np.where(signs == 0, 1.0, signs)
    scaled = right * np.power(np.maximum(singular, 0.0), _SINGULAR_POWER)
    padded = np.zeros((len(item_ids), dims))
    padded[:, : scaled.shape[1]] = scaled  # a matrix smaller than dims leaves the last dimensions at 0
    lengths = np.linalg.norm(padded, axis=1)
    if not len(lengths):
        return ItemFactors([], np.zeros((0, dims), dtype=np.float32), np.zeros(0, dtype=np.float32))
    has_vector = lengths > 1e-12 * max(float(lengths.max()), 1e-300)
    rows = np.flatnonzero(has_vector)
    units = padded[rows] / lengths[rows, None]
    strengths = lengths[rows] / float(lengths[rows].max())
    return ItemFactors([item_ids[r] for r in rows], units.astype(np.float32), strengths.astype(np.float32))


def _truncated_svd(values: sparse.csr_matrix, dims: int, device: str) -> tuple[np.ndarray, np.ndarray]:
    """Singular values and right singular vectors (items × rank), rank ≤ dims."""
    smaller = min(values.shape)
    if device.startswith("cuda"):
        return _svd_on_gpu(values, min(dims, smaller), device)
    if dims >= smaller:
        # svds needs k < min(shape); a matrix this small is cheap to decompose exactly.
        _, singular, right_t = np.linalg.svd(values.toarray(), full_matrices=False)
        return singular[:dims], right_t[:dims].T
    # A fixed start vector makes the decomposition repeatable run after run.
    start = np.full(smaller, 1.0 / math.sqrt(smaller))
    _, singular, right_t = svds(values.astype(np.float64), k=dims, v0=start)
    order = np.argsort(-singular)
    return singular[order], right_t[order].T


def _svd_on_gpu(values: sparse.csr_matrix, rank: int, device: str) -> tuple[np.ndarray, np.ndarray]:
    import torch

    coo = values.tocoo()
    indices = torch.from_numpy(np.vstack([coo.row, coo.col]).astype(np.int64))
    tensor = torch.sparse_coo_tensor(
        indices, torch.from_numpy(coo.data.astype(np.float32)), size=coo.shape, device=device
    )
    generator_state = torch.random.get_rng_state()
    torch.manual_seed(0)
    try:
        _, singular, right = torch.svd_lowrank(tensor, q=min(rank + 10, min(values.shape)), niter=6)
    finally:
        torch.random.set_rng_state(generator_state)
    return singular[:rank].double().cpu().numpy(), right[:, :rank].double().cpu().numpy()
