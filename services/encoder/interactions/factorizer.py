"""Where the behavior refresh fits its model: in this process (the default) or on Spark, behind one interface."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from recsys.encoder.devices import resolve_device
from recsys.encoder.interactions.behavior_model import (
    EventColumns,
    InteractionMatrix,
    ItemFactors,
    decayed_matrix,
    factorize,
)
from recsys.encoder.interactions.settings import InteractionSettings


@dataclass(frozen=True)
class BehaviorFit:
    """A fitted behavior model: the item vectors, and how much evidence the log holds for each item."""

    factors: ItemFactors
    # Per item of the events' `item_ids`: the users with a cell in its column of the decayed matrix,
    # i.e. who interacted with it (a cell whose events cancel out still counts). The content map's evidence.
    evidence: np.ndarray


class Factorizer(Protocol):
    """Fits item factors of rank `dims` on the log's deduplicated events, each decayed by its age behind its
    user's latest event (`half_life_s`; 0: no decay) and summed per user-item cell. The factorizer builds that
    matrix where it fits, so the caller never holds it. Runs in a worker thread, may block."""

    def fit(self, events: EventColumns, half_life_s: float, dims: int) -> BehaviorFit: ...


@dataclass(frozen=True)
class InProcessFactorizer:
    """The matrix and its truncated SVD in this process: scipy on the CPU, torch on a GPU when `device` says so."""

    device: str = "cpu"

    def fit(self, events: EventColumns, half_life_s: float, dims: int) -> BehaviorFit:
        shape = (len(events.user_ids), len(events.item_ids))
        values = decayed_matrix(events.user, events.item, events.weight, events.ts, shape, half_life_s)
        factors = factorize(
            InteractionMatrix(events.user_ids, events.item_ids, values), dims, resolve_device(self.device)
        )
        return BehaviorFit(factors, np.asarray(values.getnnz(axis=0)).ravel())


def factorizer_from_settings(settings: InteractionSettings) -> Factorizer:
    """The factorizer RECSYS_BEHAVIOR_FACTORIZER names; Spark is imported only when chosen."""
    if settings.behavior_factorizer == "spark":
        from recsys.encoder.interactions.spark_factorizer import SparkFactorizer

        return SparkFactorizer(settings.spark_master, settings.spark_shuffle_partitions, settings.spark_export_dir)
    return InProcessFactorizer(settings.behavior_device)
