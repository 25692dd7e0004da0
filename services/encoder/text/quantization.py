"""Output precisions: float32, or int8/uint8 and packed bits as sentence-transformers' quantize_embeddings makes."""

from __future__ import annotations

from enum import StrEnum

import numpy as np


class Precision(StrEnum):
    """The number format a caller wants its embeddings in."""

    FLOAT32 = "float32"
    INT8 = "int8"  # one byte per dimension, scaled between calibration ranges
    UINT8 = "uint8"
    BINARY = "binary"  # one bit per dimension (1 when positive), 8 per byte, stored minus 128 as int8
    UBINARY = "ubinary"  # the same bits as uint8

    @property
    def calibrated(self) -> bool:
        return self in (Precision.INT8, Precision.UINT8)


def calibration_ranges(vectors: np.ndarray) -> np.ndarray:
    """Per-dimension [min, max] over calibration vectors (2 x dims): what int8/uint8 scale between.

    Fixed once from calibration texts, never from the request's own vectors: a range taken from the
    request (sentence-transformers' default without calibration) would make a text's int8 vector
    depend on which other texts came with it.
    """
    if vectors.ndim != 2 or vectors.shape[0] < 2:
        raise ValueError("calibration needs at least two vectors")
    return np.vstack((vectors.min(axis=0), vectors.max(axis=0))).astype(np.float32)


def quantize(vectors: np.ndarray, precision: Precision, ranges: np.ndarray | None = None) -> np.ndarray:
    """Rows of `precision` (int8 or uint8 dtype); float32 rows come back unchanged.

    int8/uint8 follow sentence-transformers' formula: 256 levels of (max - min) / 255 from each
    dimension's calibration minimum, values outside the range clipped to the end levels. Binary packs
    one bit per dimension per row, the last byte padded with zeros when dimensions are not a
    multiple of 8.
    """
    if precision is Precision.FLOAT32:
        return vectors
    if precision.calibrated:
        if ranges is None or ranges.shape != (2, vectors.shape[1]):
            raise ValueError(f"{precision} needs calibration ranges of shape (2, {vectors.shape[1]})")
        starts = ranges[0].astype(np.float32)
        steps = (ranges[1].astype(np.float32) - starts) / 255
        steps = np.where(steps == 0, 1, steps)
        levels = np.clip(np.floor((vectors - starts) / steps), 0, 255)
        if precision is Precision.INT8:
            return (levels - 128.0).astype(np.int8)
        return levels.astype(np.uint8)
    packed = np.packbits(vectors > 0, axis=1)
    if precision is Precision.BINARY:
        return (packed.astype(np.int16) - 128).astype(np.int8)
    return packed
