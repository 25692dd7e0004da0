"""Compact payload encodings for the long lists on user and item points that only recsys reads.

A user point holds its history (up to RECSYS_HISTORY_SIZE entries of item, weight and time), its
seen items (up to RECSYS_SEEN_SIZE ids) and a replay ledger (up to RECSYS_RECENT_EVENTS_SIZE event
ids and times); an item point holds a ledger too. Stored as JSON lists that is up to ~2,000 JSON
values per user, and embedded Qdrant (qdrant-client local mode) walks every one of them several
times per write (a JSON round trip, a pickle, a copy on each read): on a steady 1,000
interactions/s that was about a third of the interactions role's CPU once users had a few dozen
events (`recsys bench interactions`, README "Interactions"). Packed, each list is one JSON string:

- ids: joined by newlines. recsys ids cannot hold a newline (`recsys.shared.events.ExternalId`);
  packing refuses one that does rather than split it into two ids on the way back.
- numbers: little-endian float64 in base64, exact to the bit (times, weights, -inf included, which
  JSON lists could not hold).

Readers take both forms: points written before packing hold JSON lists, read as they always were.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

_FLOAT64 = np.dtype("<f8")
# History as stored: one packed string per column, rows aligned.
HISTORY_ITEMS, HISTORY_WEIGHTS, HISTORY_TIMES = "item_ids", "weights", "ts"


def pack_ids(ids: Sequence[str]) -> str:
    """Ids joined by newlines; "" for none (an id is never empty)."""
    joined = "\n".join(ids)
    if joined.count("\n") != max(len(ids) - 1, 0) or (len(ids) == 1 and not joined):
        raise ValueError("an id to pack is empty or holds a newline")
    return joined


def unpack_ids(value: Any) -> list[str]:
    """The ids of a packed string, or of a JSON list (the form before packing); [] for anything else."""
    if isinstance(value, str):
        return value.split("\n") if value else []
    if isinstance(value, list | tuple):
        return [str(v) for v in value]
    return []


def pack_floats(values: Sequence[float] | np.ndarray) -> str:
    """Floats as base64 of little-endian float64: exact, infinities included."""
    return base64.b64encode(np.asarray(values, dtype=_FLOAT64).tobytes()).decode("ascii")


def unpack_floats(value: Any, absent: float = float("-inf")) -> list[float]:
    """The floats of a packed string, or of a JSON list (where null, or anything not a number, reads as `absent`)."""
    if isinstance(value, str):
        try:
            raw = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            return []
        if len(raw) % _FLOAT64.itemsize:
            return []
        return np.frombuffer(raw, dtype=_FLOAT64).tolist()
    if isinstance(value, list | tuple):
        return [float(v) if isinstance(v, int | float) and not isinstance(v, bool) else absent for v in value]
    return []


def pack_history(entries: Sequence[tuple[str, float, float]]) -> dict[str, str]:
    """A history of (item id, weight, ts) rows as three aligned packed columns."""
    return {
        HISTORY_ITEMS: pack_ids([entry[0] for entry in entries]),
        HISTORY_WEIGHTS: pack_floats([entry[1] for entry in entries]),
        HISTORY_TIMES: pack_floats([entry[2] for entry in entries]),
    }


def unpack_history(value: Any) -> list[tuple[str, float, float]]:
    """(item id, weight, ts) rows of packed columns, or of a JSON list of [item, weight, ts] (before packing)."""
    if isinstance(value, Mapping):
        items = unpack_ids(value.get(HISTORY_ITEMS))
        weights = unpack_floats(value.get(HISTORY_WEIGHTS))
        times = unpack_floats(value.get(HISTORY_TIMES))
        if not len(items) == len(weights) == len(times):
            return []  # columns that disagree cannot be paired up: no history rather than a wrong one
        return list(zip(items, weights, times, strict=True))
    if isinstance(value, list):
        return [(str(i), float(w), float(t)) for i, w, t in value]
    return []
