"""The behavior model's decayed matrix and truncated SVD on Spark, for logs past one machine's memory (`spark` extra).

The log's deduplicated events (user row, item row, signed weight, ts) are exported as Parquet a
row group at a time (pyarrow). Spark decays each event by its age behind its user's latest event,
sums the events of each user-item cell, counts each item's users, gathers each user's cells into
one sparse row and computes the top singular values and right singular vectors of that matrix
(`IndexedRowMatrix.computeSVD`, i.e. `RowMatrix.computeSVD`) — the same matrix (`decayed_matrix`)
and the same decomposition (A = U Σ Vᵀ) as the in-process fit, so the item vectors come out in the
same space and go through the same `item_factors` and the same batched writer. This process holds
the event columns and per-item results, never the matrix. Only this module imports pyspark and
pyarrow, inside its functions (and for type checking): the services run without them unless this
backend is chosen.
"""

from __future__ import annotations

import tempfile
import threading
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from recsys.encoder.interactions.behavior_model import EventColumns, ItemFactors, item_factors
from recsys.encoder.interactions.factorizer import BehaviorFit

if TYPE_CHECKING:
    from pyspark import Broadcast
    from pyspark.sql import DataFrame, SparkSession

# Rows per Parquet row group: the export holds one group's encoded copy at a time, not a second log,
# and each group is a split Spark reads in parallel.
EXPORT_ROWS_PER_GROUP = 1_000_000


class SparkFactorizer:
    """Fits on the Spark master `master` (e.g. local[*], spark://host:7077); the session is made once and kept."""

    def __init__(self, master: str, shuffle_partitions: int = 8, export_dir: str = "") -> None:
        self.master = master
        self.shuffle_partitions = shuffle_partitions
        # Where the events are exported; on a cluster it must be storage every executor reads.
        self.export_dir = export_dir
        self._session: Any = None
        self._lock = threading.Lock()

    def fit(self, events: EventColumns, half_life_s: float, dims: int) -> BehaviorFit:
        evidence = np.zeros(len(events.item_ids), dtype=np.int64)
        if len(events) == 0:
            return BehaviorFit(_no_items(dims), evidence)
        from pyspark import StorageLevel

        with tempfile.TemporaryDirectory(dir=self.export_dir or None) as folder:
            path = Path(folder) / f"behavior-events-{uuid.uuid4().hex}.parquet"
            export_events(path, events)
            cells = decayed_cells(self.session().read.parquet(str(path)), half_life_s)
            # Read twice (the per-item figures, then the SVD's per-user rows): kept, spilling to disk past memory.
            cells = cells.persist(StorageLevel.MEMORY_AND_DISK)
            try:
                items, users, largest = _item_figures(cells)
                evidence[items] = users
                # Items whose column is all zero are left out, as in the in-process fit.
                keep = np.sort(items[largest > 0])
                if len(keep) == 0:
                    return BehaviorFit(_no_items(dims), evidence)
                singular, right = self._svd(cells, keep, len(events.user_ids), len(events.item_ids), dims)
            finally:
                cells.unpersist()
        factors = item_factors([events.item_ids[item] for item in keep], singular, right, dims)
        return BehaviorFit(factors, evidence)

    def session(self) -> SparkSession:
        """The Spark session this factorizer fits on, started on first use."""
        from pyspark.sql import SparkSession

        with self._lock:
            if self._session is None:
                self._session = (
                    SparkSession.builder.master(self.master)
                    .appName("recsys-behavior-refresh")
                    .config("spark.sql.shuffle.partitions", str(self.shuffle_partitions))
                    .config("spark.default.parallelism", str(self.shuffle_partitions))
                    .config("spark.ui.enabled", "false")
                    .getOrCreate()
                )
            session: SparkSession = self._session
            return session

    def close(self) -> None:
        with self._lock:
            session, self._session = self._session, None
        if session is not None:
            session.stop()

    def _svd(
        self, cells: DataFrame, keep: np.ndarray, users: int, items: int, dims: int
    ) -> tuple[np.ndarray, np.ndarray]:
        from pyspark import StorageLevel
        from pyspark.mllib.linalg.distributed import IndexedRowMatrix

        column_of_item = np.full(items, -1, dtype=np.int64)
        column_of_item[keep] = np.arange(len(keep))
        columns = self.session().sparkContext.broadcast(column_of_item)
        # ARPACK reads the matrix once per iteration (hundreds of times): kept, spilling to disk past memory,
        # so that no iteration recomputes the rows from the cells, which are then no longer needed.
        matrix = _user_rows(self.session(), cells, columns, len(keep)).persist(StorageLevel.MEMORY_AND_DISK)
        try:
            matrix.count()
            cells.unpersist()
            # rCond: singular values below 1e-9 × the largest are numerically zero; they are left out
            # (item_factors pads them back as zero dimensions, as the in-process fit does for small matrices).
            # pyspark's annotation names only an RDD; the constructor takes an (index, vector) DataFrame too.
            rows = IndexedRowMatrix(matrix, users, len(keep))  # type: ignore[arg-type]
            svd = rows.computeSVD(min(dims, len(keep)), computeU=False, rCond=1e-9)
        finally:
            matrix.unpersist()
            columns.destroy()
        singular = np.asarray(svd.s.toArray(), dtype=np.float64)
        right = np.asarray(svd.V.toArray(), dtype=np.float64)
        return singular, right


def _user_rows(session: SparkSession, cells: DataFrame, columns: Broadcast[np.ndarray], width: int) -> DataFrame:
    """The matrix as one sparse row per user (index, vector) over `width` columns: `columns` maps item to column."""
    from pyspark.mllib.linalg import SparseVector, VectorUDT
    from pyspark.sql import functions as F
    from pyspark.sql.types import LongType, StructField, StructType

    def user_row(row: Any) -> tuple[int, SparseVector]:
        # Sorted by item, so by column too (columns number the kept items in order), as SparseVector requires.
        item = np.fromiter((cell.item for cell in row.cells), dtype=np.int64, count=len(row.cells))
        value = np.fromiter((cell.value for cell in row.cells), dtype=np.float64, count=len(row.cells))
        return row.user, SparseVector(width, columns.value[item], value)

    # Zero cells add nothing to the product the SVD works on, and only they lie in the left-out columns.
    per_user = cells.where("value != 0").groupBy("user")
    grouped = per_user.agg(F.sort_array(F.collect_list(F.struct("item", "value"))).alias("cells"))
    schema = StructType([StructField("index", LongType(), False), StructField("vector", VectorUDT(), False)])
    return session.createDataFrame(grouped.rdd.map(user_row), schema)


def decayed_cells(events: DataFrame, half_life_s: float) -> DataFrame:
    """The decayed user-item matrix's cells (user, item, value) from exported events: `decayed_matrix` in Spark.

    With a positive half-life each event's weight is halved per `half_life_s` it lies behind its user's
    latest event; then the events of each (user, item) pair are summed. Cells that sum to zero are kept.
    """
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    value = F.col("weight")
    if half_life_s > 0:
        # A window by user, not a join with a per-user maximum: the rows arrive partitioned by user,
        # which the per-cell sum below reuses, so the whole matrix costs one shuffle.
        latest = F.max("ts").over(Window.partitionBy("user"))
        value = value * F.pow(F.lit(0.5), F.greatest(F.lit(0.0), latest - F.col("ts")) / F.lit(float(half_life_s)))
    decayed = events.select("user", "item", value.alias("value"))
    return decayed.groupBy("user", "item").agg(F.sum("value").alias("value"))


def export_events(path: Path, events: EventColumns) -> None:
    """The events as one Parquet file (user, item, weight, ts), written a row group at a time."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pa.schema([("user", pa.int64()), ("item", pa.int64()), ("weight", pa.float64()), ("ts", pa.float64())])
    with pq.ParquetWriter(path, schema) as writer:
        for start in range(0, len(events), EXPORT_ROWS_PER_GROUP):
            part = slice(start, start + EXPORT_ROWS_PER_GROUP)
            # pa.array over a numpy slice of the right dtype is a view, not a copy.
            writer.write_batch(
                pa.record_batch(
                    [
                        pa.array(np.ascontiguousarray(events.user[part], dtype=np.int64)),
                        pa.array(np.ascontiguousarray(events.item[part], dtype=np.int64)),
                        pa.array(np.ascontiguousarray(events.weight[part], dtype=np.float64)),
                        pa.array(np.ascontiguousarray(events.ts[part], dtype=np.float64)),
                    ],
                    schema=schema,
                ),
                row_group_size=EXPORT_ROWS_PER_GROUP,
            )


def _item_figures(cells: DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per item with any cell: its row, its users (one cell each) and its largest |cell|, brought to this process."""
    from pyspark.sql import functions as F

    figures = cells.groupBy("item").agg(F.count("*").alias("users"), F.max(F.abs("value")).alias("largest"))
    rows = figures.collect()
    items = np.fromiter((row["item"] for row in rows), dtype=np.int64, count=len(rows))
    users = np.fromiter((row["users"] for row in rows), dtype=np.int64, count=len(rows))
    largest = np.fromiter((row["largest"] for row in rows), dtype=np.float64, count=len(rows))
    return items, users, largest


def _no_items(dims: int) -> ItemFactors:
    return ItemFactors([], np.zeros((0, dims), dtype=np.float32), np.zeros(0, dtype=np.float32))
