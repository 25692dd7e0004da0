"""Interactions as columns for the evaluation's tests: user and item rows are the numbers given."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from recsys.encoder.interactions.rules import EventWeights
from recsys.encoder.settings import EncoderSettings
from recsys.shared.events import InteractionType
from recsys.tools.evaluation.dataset import NO_SESSION, TYPE_CODE, Interactions

WEIGHTS = EventWeights.from_settings(EncoderSettings())


def typed(rows: Sequence[tuple[int, int, InteractionType, float | None, float]]) -> Interactions:
    """(user, item, type, value or None, ts) per interaction; ids are u<n> and i<n>, weights the defaults'."""
    columns = Interactions(
        user=np.asarray([r[0] for r in rows], dtype=np.int64),
        item=np.asarray([r[1] for r in rows], dtype=np.int64),
        type=np.asarray([TYPE_CODE[r[2]] for r in rows], dtype=np.int8),
        value=np.asarray([np.nan if r[3] is None else r[3] for r in rows], dtype=np.float64),
        ts=np.asarray([r[4] for r in rows], dtype=np.float64),
        weight=np.zeros(len(rows)),
        session=np.full(len(rows), NO_SESSION, dtype=np.int64),
        event=np.arange(len(rows), dtype=np.int64),
        user_ids=[f"u{n}" for n in range(max(r[0] for r in rows) + 1)],
        item_ids=[f"i{n}" for n in range(max(r[1] for r in rows) + 1)],
        session_ids=[],
        event_ids=[f"e{n}" for n in range(len(rows))],
    )
    return columns.reweighted(WEIGHTS)


def ratings(rows: Sequence[tuple[int, int, float, float]]) -> Interactions:
    """(user, item, rating, ts) per `rate` interaction."""
    return typed([(user, item, InteractionType.RATE, rating, ts) for user, item, rating, ts in rows])
