"""The Spark factorizer (local[2]) fits the same behavior space as the in-process SVD on the same log.

Tolerance: both compute the exact rank-k truncated SVD of the same matrix (Spark's
RowMatrix.computeSVD through the Gramian's eigendecomposition or ARPACK, scipy through ARPACK),
so the item vectors may differ only by rounding, by sign (fixed by item_factors) and, where two
singular values tie, by a rotation inside their subspace. So the test compares what is invariant
to those: the subspace the scaled item vectors span (largest principal angle under 1e-4 rad: Spark
solves a matrix of at most 100 columns through the Gramian's dense eigendecomposition and larger
ones by ARPACK to 1e-10, so either stays orders of magnitude below it, while an
actual fitting difference, another rank or another matrix, moves it by whole degrees), the
singular spectrum via the strengths (1e-5), and what the recommender serves from them, each
item's top-5 neighbours by dot product (mean overlap ≥ 0.9; a tie at the 5th place may swap).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

# pyspark and pyarrow are in the dev extra: a missing one fails here instead of skipping.
import pyarrow  # noqa: F401
import pyspark  # noqa: F401
import pytest
from scipy.linalg import subspace_angles

from recsys.encoder.interactions.behavior_model import ItemFactors, LoggedInteraction, factorize, interaction_matrix
from recsys.encoder.interactions.factorizer import factorizer_from_settings
from recsys.encoder.interactions.settings import InteractionSettings
from recsys.encoder.interactions.spark_factorizer import SparkFactorizer

DIMS = 6


def taste_groups_log(seed: int = 5) -> list[LoggedInteraction]:
    """Three audiences, each mostly on its own items, with noise and power-law popularity within a group."""
    rng = np.random.default_rng(seed)
    log = []
    for n in range(900):
        user = int(rng.integers(90))
        group = user % 3 if rng.random() < 0.85 else int(rng.integers(3))
        item = group * 20 + min(int(rng.zipf(1.5)) - 1, 19)
        weight = float(rng.choice([0.5, 1.0, 2.0, 4.0, -3.0], p=[0.5, 0.25, 0.1, 0.1, 0.05]))
        log.append(LoggedInteraction(f"e{n}", f"u{user}", f"i{item}", weight, 1_700_000_000.0 + n))
    return log


@pytest.fixture(scope="module")
def spark() -> Iterator[SparkFactorizer]:
    factorizer = SparkFactorizer("local[2]", shuffle_partitions=2)
    yield factorizer
    factorizer.close()


def scaled(factors: ItemFactors) -> np.ndarray:
    return factors.vectors.astype(np.float64) * factors.strengths[:, None]


def top_neighbours(vectors: np.ndarray, k: int = 5) -> list[set[int]]:
    scores = vectors @ vectors.T
    np.fill_diagonal(scores, -np.inf)
    return [set(np.argsort(-row)[:k].tolist()) for row in scores]


def test_the_spark_fit_spans_the_same_space_and_gives_the_same_neighbours(spark: SparkFactorizer) -> None:
    matrix = interaction_matrix(taste_groups_log())
    in_process = factorize(matrix, DIMS)

    on_spark = spark.factorize(matrix, DIMS)

    assert on_spark.item_ids == in_process.item_ids
    assert subspace_angles(scaled(in_process), scaled(on_spark)).max() < 1e-4  # radians
    np.testing.assert_allclose(on_spark.strengths, in_process.strengths, atol=1e-5)
    overlaps = [
        len(a & b) / 5
        for a, b in zip(top_neighbours(scaled(in_process)), top_neighbours(scaled(on_spark)), strict=True)
    ]
    assert np.mean(overlaps) >= 0.9


def test_the_setting_chooses_spark_and_in_process_stays_the_default() -> None:
    assert type(factorizer_from_settings(InteractionSettings())).__name__ == "InProcessFactorizer"
    chosen = factorizer_from_settings(InteractionSettings(behavior_factorizer="spark", spark_master="local[2]"))
    assert isinstance(chosen, SparkFactorizer)
    assert chosen.master == "local[2]"
