"""Where the behavior refresh fits its model: in this process (the default) or on Spark, behind one interface."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from recsys.encoder.devices import resolve_device
from recsys.encoder.interactions.behavior_model import InteractionMatrix, ItemFactors, factorize
from recsys.encoder.interactions.settings import InteractionSettings


class Factorizer(Protocol):
    """Item factors of rank `dims` from the weighted user-item matrix; runs in a worker thread, may block."""

    def factorize(self, matrix: InteractionMatrix, dims: int) -> ItemFactors: ...


@dataclass(frozen=True)
class InProcessFactorizer:
    """Today's truncated SVD in this process: scipy on the CPU, torch on a GPU when `device` says so."""

    device: str = "cpu"

    def factorize(self, matrix: InteractionMatrix, dims: int) -> ItemFactors:
        return factorize(matrix, dims, resolve_device(self.device))


def factorizer_from_settings(settings: InteractionSettings) -> Factorizer:
    """The factorizer RECSYS_BEHAVIOR_FACTORIZER names; Spark is imported only when chosen."""
    if settings.behavior_factorizer == "spark":
        from recsys.encoder.interactions.spark_factorizer import SparkFactorizer

        return SparkFactorizer(settings.spark_master, settings.spark_shuffle_partitions, settings.spark_export_dir)
    return InProcessFactorizer(settings.behavior_device)
