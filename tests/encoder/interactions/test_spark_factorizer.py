"""The Spark factorizer (local[2]) builds the same decayed matrix from the log's events and fits the same behavior
space as the in-process fit, so the recommender ranks the same items.

Tolerances:
- Cells: Spark decays with Java's pow and sums each cell's events in another order than numpy and
  scipy, so a cell may differ in its last bits: relative 1e-12 (plus 1e-15 absolute for cells whose
  events cancel). Which cells exist, and so each item's evidence (its users), must match exactly.
- Factors: both compute the exact rank-k truncated SVD of that matrix (Spark's RowMatrix.computeSVD
  through the Gramian's eigendecomposition or ARPACK, scipy through ARPACK), so the item vectors may
  differ only by rounding, by sign (fixed by item_factors) and, where two singular values tie, by a
  rotation inside their subspace. So the tests compare what is invariant to those: the subspace the
  scaled item vectors span (largest principal angle under 1e-4 rad: Spark solves a matrix of at most
  100 columns through the Gramian's dense eigendecomposition and larger ones by ARPACK to 1e-10, so
  either stays orders of magnitude below it, while an actual fitting difference, another rank or
  another matrix, moves it by whole degrees), the singular spectrum via the strengths (1e-5).
- Recommendations: each item's top-5 neighbours by dot product (mean overlap ≥ 0.9), and each
  user's top 10 of a ForYou-like ranking (user folded in as the refresh folds them, items scored by
  user · direction × strength): mean overlap ≥ 0.95 and no list below 0.8. Scores agree to about 1e-6,
  so a list can only change where two items tie that closely at its 10th place.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

# pyspark and pyarrow are in the dev extra: a missing one fails here instead of skipping.
import pyarrow  # noqa: F401
import pyspark  # noqa: F401
import pytest
from scipy import sparse
from scipy.linalg import subspace_angles

from recsys.encoder.interactions.behavior_fold import ItemDirections, decayed_history_matrix, fold_in
from recsys.encoder.interactions.behavior_model import EventColumns, ItemFactors, decayed_matrix
from recsys.encoder.interactions.factorizer import InProcessFactorizer, factorizer_from_settings
from recsys.encoder.interactions.settings import InteractionSettings
from recsys.encoder.interactions.spark_factorizer import SparkFactorizer, decayed_cells, export_events

DIMS = 6
DAY_S = 86_400.0


def taste_groups_log(
    users: int = 90, events: int = 900, seed: int = 5, spread_s: float = 1.0, per_group: int = 20
) -> EventColumns:
    """Three audiences, each mostly on its own `per_group` items, with noise and power-law popularity within a group.

    Events `spread_s` apart; the same (user, item) pair recurs, with weights of both signs.
    """
    rng = np.random.default_rng(seed)
    user = rng.integers(users, size=events)
    group = np.where(rng.random(events) < 0.85, user % 3, rng.integers(3, size=events))
    item = group * per_group + np.minimum(rng.zipf(1.5, size=events) - 1, per_group - 1)
    weight = rng.choice([0.5, 1.0, 2.0, 4.0, -3.0], p=[0.5, 0.25, 0.1, 0.1, 0.05], size=events)
    ts = 1_700_000_000.0 + np.arange(events) * spread_s
    return EventColumns(
        user.astype(np.int64),
        item.astype(np.int64),
        weight.astype(np.float64),
        ts,
        [f"u{n}" for n in range(users)],
        [f"i{n}" for n in range(3 * per_group)],
    )


def with_cancelling_pair(events: EventColumns) -> EventColumns:
    """Adds a new item one user likes and unlikes at the same instant: its one cell sums to exactly zero."""
    ts = float(events.ts.max()) + 1.0
    return EventColumns(
        np.append(events.user, [0, 0]),
        np.append(events.item, [len(events.item_ids)] * 2),
        np.append(events.weight, [2.0, -2.0]),
        np.append(events.ts, [ts, ts]),
        events.user_ids,
        [*events.item_ids, "cancelled"],
    )


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


def for_you_top(events: EventColumns, factors: ItemFactors, half_life_s: float, k: int = 10) -> list[set[int]]:
    """Each user's top k model items: folded in as the refresh folds users, scored user · direction × strength."""
    directions = ItemDirections.of(factors.item_ids, factors.vectors)
    column_of_item = np.full(len(events.item_ids), -1, dtype=np.int64)
    for item_id, column in directions.rows.items():
        column_of_item[events.item_ids.index(item_id)] = column
    columns = column_of_item[events.item]
    known = columns >= 0
    latest = np.full(len(events.user_ids), -np.inf)
    np.maximum.at(latest, events.user, events.ts)
    history = decayed_history_matrix(
        events.user[known],
        columns[known],
        events.weight[known],
        events.ts[known],
        latest,
        len(factors.item_ids),
        half_life_s,
    )
    users = fold_in(history, directions.units)
    scores = users.totals[users.has_vector] @ (directions.units * factors.strengths[:, None]).T
    return [set(np.argsort(-row, kind="stable")[:k].tolist()) for row in scores]


def spark_cells(spark: SparkFactorizer, events: EventColumns, half_life_s: float, folder: Path) -> sparse.csr_matrix:
    path = folder / "events.parquet"
    export_events(path, events)
    rows = decayed_cells(spark.session().read.parquet(str(path)), half_life_s).collect()
    shape = (len(events.user_ids), len(events.item_ids))
    user = [row["user"] for row in rows]
    item = [row["item"] for row in rows]
    assert len(set(zip(user, item, strict=True))) == len(rows)  # one row per cell
    return sparse.csr_matrix(([row["value"] for row in rows], (user, item)), shape=shape)


def test_the_spark_fit_spans_the_same_space_and_gives_the_same_neighbours(spark: SparkFactorizer) -> None:
    events = taste_groups_log()
    in_process = InProcessFactorizer().fit(events, 0.0, DIMS).factors

    on_spark = spark.fit(events, 0.0, DIMS).factors

    assert on_spark.item_ids == in_process.item_ids
    assert subspace_angles(scaled(in_process), scaled(on_spark)).max() < 1e-4  # radians
    np.testing.assert_allclose(on_spark.strengths, in_process.strengths, atol=1e-5)
    overlaps = [
        len(a & b) / 5
        for a, b in zip(top_neighbours(scaled(in_process)), top_neighbours(scaled(on_spark)), strict=True)
    ]
    assert np.mean(overlaps) >= 0.9


def test_spark_decays_and_sums_the_events_into_the_in_process_cells(spark: SparkFactorizer, tmp_path: Path) -> None:
    # Events an hour apart and a two-day half-life: a user's weights decay by factors from 1 down to ~1e-4.
    events = with_cancelling_pair(taste_groups_log(spread_s=3_600.0))
    half_life_s = 2 * DAY_S
    shape = (len(events.user_ids), len(events.item_ids))
    expected = decayed_matrix(events.user, events.item, events.weight, events.ts, shape, half_life_s)
    undecayed = decayed_matrix(events.user, events.item, events.weight, events.ts, shape, 0.0)
    assert len(events) > expected.nnz  # the log repeats pairs, so the sums are exercised
    assert abs(expected - undecayed).max() > 0.1  # and the decay moves cells

    cells = spark_cells(spark, events, half_life_s, tmp_path)

    assert cells.nnz == expected.nnz
    np.testing.assert_array_equal(cells.indptr, expected.indptr)
    np.testing.assert_array_equal(cells.indices, expected.indices)
    np.testing.assert_allclose(cells.data, expected.data, rtol=1e-12, atol=1e-15)


def test_spark_fits_the_decayed_log_as_the_in_process_fit_with_the_same_evidence(spark: SparkFactorizer) -> None:
    events = with_cancelling_pair(taste_groups_log(spread_s=3_600.0))
    half_life_s = 2 * DAY_S
    in_process = InProcessFactorizer().fit(events, half_life_s, DIMS)
    undecayed = InProcessFactorizer().fit(events, 0.0, DIMS)

    on_spark = spark.fit(events, half_life_s, DIMS)

    np.testing.assert_array_equal(on_spark.evidence, in_process.evidence)
    # The cancelled cell counts its user as evidence on both, and its all-zero column gets no vector on either.
    assert on_spark.evidence[events.item_ids.index("cancelled")] == 1
    assert on_spark.factors.item_ids == in_process.factors.item_ids
    assert "cancelled" not in on_spark.factors.item_ids
    assert subspace_angles(scaled(in_process.factors), scaled(on_spark.factors)).max() < 1e-4  # radians
    np.testing.assert_allclose(on_spark.factors.strengths, in_process.factors.strengths, atol=1e-5)
    # The decay is not a no-op here: without it the space moves well beyond the tolerance.
    assert subspace_angles(scaled(undecayed.factors), scaled(on_spark.factors)).max() > 1e-2


def test_spark_and_in_process_fits_recommend_the_same_items(spark: SparkFactorizer) -> None:
    # 300 items: past Spark's 100 columns, so computeSVD runs ARPACK over the distributed rows.
    events = taste_groups_log(users=300, events=6_000, seed=11, spread_s=600.0, per_group=100)
    half_life_s = 7 * DAY_S
    in_process = InProcessFactorizer().fit(events, half_life_s, DIMS).factors

    on_spark = spark.fit(events, half_life_s, DIMS).factors

    assert on_spark.item_ids == in_process.item_ids
    expected = for_you_top(events, in_process, half_life_s)
    served = for_you_top(events, on_spark, half_life_s)
    assert len(served) == len(expected) > 250
    overlaps = np.array([len(a & b) / 10 for a, b in zip(expected, served, strict=True)])
    assert overlaps.mean() >= 0.95
    assert overlaps.min() >= 0.8


def test_an_empty_log_fits_no_items_without_starting_spark() -> None:
    factorizer = SparkFactorizer("local[1]")
    events = EventColumns(
        np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64), np.zeros(0), np.zeros(0), [], ["i0"]
    )

    fitted = factorizer.fit(events, DAY_S, DIMS)

    assert fitted.factors.item_ids == []
    np.testing.assert_array_equal(fitted.evidence, [0])
    assert factorizer._session is None


def test_the_setting_chooses_spark_and_in_process_stays_the_default() -> None:
    assert type(factorizer_from_settings(InteractionSettings())).__name__ == "InProcessFactorizer"
    chosen = factorizer_from_settings(InteractionSettings(behavior_factorizer="spark", spark_master="local[2]"))
    assert isinstance(chosen, SparkFactorizer)
    assert chosen.master == "local[2]"
