"""The behavior model's truncated SVD on Spark, for logs past one machine's memory (the `spark` extra).

The weighted user-item matrix is exported as Parquet (pyarrow: one row per non-zero cell),
Spark reads it into a distributed row matrix and `RowMatrix.computeSVD` computes its top
singular values and right singular vectors — the same decomposition the in-process fit computes
(A = U Σ Vᵀ), so the item vectors come out in the same space and go through the same
`item_factors` and the same batched writer. Only this module imports pyspark and pyarrow, and
only inside its methods: the services run without them unless this backend is chosen.
"""

from __future__ import annotations

import tempfile
import threading
import uuid
from pathlib import Path
from typing import Any

import numpy as np

from recsys.encoder.interactions.behavior_model import InteractionMatrix, ItemFactors, item_factors


class SparkFactorizer:
    """Fits on the Spark master `master` (e.g. local[*], spark://host:7077); the session is made once and kept."""

    def __init__(self, master: str, shuffle_partitions: int = 8, export_dir: str = "") -> None:
        self.master = master
        self.shuffle_partitions = shuffle_partitions
        # Where the matrix is exported; on a cluster it must be storage every executor reads.
        self.export_dir = export_dir
        self._session: Any = None
        self._lock = threading.Lock()

    def factorize(self, matrix: InteractionMatrix, dims: int) -> ItemFactors:
        values = matrix.values.tocsc()
        keep = np.flatnonzero(np.abs(values).sum(axis=0).A1 > 0)
        if len(keep) == 0:
            return item_factors([], np.zeros(0), np.zeros((0, 0)), dims)
        values = values[:, keep].tocoo()
        item_ids = [matrix.item_ids[column] for column in keep]
        with tempfile.TemporaryDirectory(dir=self.export_dir or None) as folder:
            path = Path(folder) / f"behavior-matrix-{uuid.uuid4().hex}.parquet"
            _export(path, values.row, values.col, values.data)
            singular, right = self._svd(str(path), values.shape, dims)
        return item_factors(item_ids, singular, right, dims)

    def close(self) -> None:
        with self._lock:
            session, self._session = self._session, None
        if session is not None:
            session.stop()

    def _svd(self, path: str, shape: tuple[int, int], dims: int) -> tuple[np.ndarray, np.ndarray]:
        from pyspark.mllib.linalg.distributed import CoordinateMatrix, MatrixEntry

        cells = self._spark().read.parquet(path)
        entries = cells.rdd.map(lambda cell: MatrixEntry(cell.user, cell.item, cell.value))
        rows = CoordinateMatrix(entries, shape[0], shape[1]).toRowMatrix()
        # rCond: singular values below 1e-9 × the largest are numerically zero; they are left out
        # (item_factors pads them back as zero dimensions, as the in-process fit does for small matrices).
        svd = rows.computeSVD(min(dims, shape[1]), computeU=False, rCond=1e-9)
        singular = np.asarray(svd.s.toArray(), dtype=np.float64)
        right = np.asarray(svd.V.toArray(), dtype=np.float64)
        return singular, right

    def _spark(self) -> Any:
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
            return self._session


def _export(path: Path, rows: np.ndarray, cols: np.ndarray, values: np.ndarray) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table(
        {
            "user": pa.array(rows.astype(np.int64)),
            "item": pa.array(cols.astype(np.int64)),
            "value": pa.array(values.astype(np.float64)),
        }
    )
    pq.write_table(table, path)
