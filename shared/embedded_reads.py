"""Point reads from embedded Qdrant without qdrant-client's per-point Record building.

Local mode's `retrieve` validates a pydantic Record per point, turns every stored vector into a list
of Python floats and deep-copies the payload; in the interactions role that was a fifth of its CPU,
for vectors the role turns straight back into arrays. `read_points` reads the same points from the
local collection's own arrays: each vector a numpy copy, each payload value copied as the JSON value
it is. Its answers match `retrieve`'s (tests/shared/test_embedded_reads.py) but for the vectors'
type and the record's (a plain StoredPoint).

Reaches into qdrant-client's local mode, like recsys.shared.embedded_commits: where a collection is
not laid out as expected, or the read asks for what only the client knows (nested payload keys,
selectors, sparse or multi-vectors), `local_points` or `read_points` answers None and the caller
uses the client's own retrieve.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np
from qdrant_client.local.utils import normalize_point_id


class StoredPoint(NamedTuple):
    """A point as read: as qdrant-client's Record, without its validation (a fifth of a read's cost here)."""

    id: str | int
    payload: dict[str, Any] | None  # None: not asked for
    vector: Any  # vectors by name (numpy arrays or lists of floats), a bare unnamed one, or None: not asked for


# The name of a collection's one unnamed vector in local mode, which retrieve returns bare.
_UNNAMED = ""
# What the reads below use of a LocalCollection; any missing means another layout.
_LAYOUT = ("ids", "deleted", "payload", "vectors", "deleted_per_vector", "sparse_vectors", "multivectors")


def local_points(client: Any, collection: str) -> Any | None:
    """The local collection behind an embedded AsyncQdrantClient, or None (a server, or an unknown layout)."""
    collections = getattr(getattr(client, "_client", None), "collections", None)
    if not isinstance(collections, dict):
        return None
    local = collections.get(collection)
    if local is None or not all(hasattr(local, name) for name in _LAYOUT):
        return None
    return local


def read_points(
    local: Any,
    ids: Sequence[str | int],
    with_payload: bool | Sequence[str] = True,
    with_vectors: bool | Sequence[str] = False,
) -> list[StoredPoint] | None:
    """The points of `ids` that exist, in the order asked, as `retrieve` gives them but with numpy vectors.

    `with_payload`: all of it, none, or top-level keys; `with_vectors`: all dense vectors, none, or
    some by name. None when the read needs more than that (the caller then asks the client).
    """
    if not isinstance(with_payload, bool) and any("." in key or "[" in key for key in with_payload):
        return None  # nested paths: the client's selector semantics
    if local.sparse_vectors or local.multivectors:
        return None
    if with_vectors is True:
        names: list[str] = list(local.vectors)
    elif with_vectors is False:
        names = []
    else:
        names = list(with_vectors)
        if any(name not in local.vectors for name in names):
            return None  # the client's error for an unknown vector name
    found = _live_points(local, ids)
    rows = np.fromiter((idx for _, idx in found), dtype=np.int64, count=len(found))
    # Each vector kind in one gather (a copy) rather than one numpy call per point: reads come in hundreds.
    blocks = {name: (local.vectors[name][rows], local.deleted_per_vector[name][rows] == 0) for name in names}
    records: list[StoredPoint] = []
    for at, (key, idx) in enumerate(found):
        stored = local.payload[idx]
        if with_payload is True:
            payload: dict[str, Any] | None = _json_copy(stored)
        elif with_payload is False:
            payload = None
        else:
            payload = {name: _json_copy(stored[name]) for name in with_payload if name in stored}
        vectors: Any = None
        if with_vectors is not False:
            vectors = {name: block[at] for name, (block, present) in blocks.items() if present[at]}
            if len(vectors) == 1 and _UNNAMED in vectors:
                vectors = vectors[_UNNAMED]
        records.append(StoredPoint(key, payload, vectors))
    return records


def _live_points(local: Any, ids: Sequence[str | int]) -> list[tuple[Any, int]]:
    """(stored id, row) of each point of `ids` the collection holds and has not deleted, in the order asked."""
    held: list[tuple[Any, int]] = []
    for point_id in ids:
        stored_id: Any = point_id
        idx = local.ids.get(stored_id)  # recsys's ids are canonical already: normalized only when not found
        if idx is None:
            stored_id = normalize_point_id(point_id)
            idx = local.ids.get(stored_id)
        if idx is not None:
            held.append((stored_id, idx))
    # One numpy lookup for all of them: indexing `deleted` point by point was a tenth of a read's cost.
    rows = np.fromiter((idx for _, idx in held), dtype=np.int64, count=len(held))
    deleted = (local.deleted[rows] == 1).tolist()
    return [point for point, gone in zip(held, deleted, strict=True) if not gone]


def _json_copy(value: Any) -> Any:
    """A copy of a JSON value (what local mode stores as payload): a fraction of deepcopy's cost, no memo needed."""
    if isinstance(value, dict):
        return {key: _json_copy(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_json_copy(item) for item in value]
    return value


class VectorRow(NamedTuple):
    """One point's vector of one name, and one payload value (None where the point has no such key)."""

    id: str | int
    vector: np.ndarray
    value: Any


def read_vector_rows(local: Any, ids: Sequence[str | int], name: str, key: str) -> list[VectorRow] | None:
    """Each point of `ids` that exists and has vector `name`, in the order asked, with its payload's `key`.

    A narrow read for the hot loop that folds users in from hundreds of items per batch: no payload dict or
    vector dict per point (read_points built both, five times this read's cost at 500 items). The vectors
    are rows of one gathered copy. None where the collection does not hold `name` as a dense vector.
    """
    if name not in local.vectors or "." in key or "[" in key:
        return None
    found = _live_points(local, ids)
    rows = np.fromiter((idx for _, idx in found), dtype=np.int64, count=len(found))
    block = local.vectors[name][rows]
    present = (local.deleted_per_vector[name][rows] == 0).tolist()
    payloads = local.payload
    return [
        VectorRow(stored_id, block[at], _json_copy(payloads[idx].get(key)))
        for at, (stored_id, idx) in enumerate(found)
        if present[at]
    ]
