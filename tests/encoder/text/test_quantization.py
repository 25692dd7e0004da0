"""Quantized outputs match sentence-transformers' quantize_embeddings byte for byte."""

from __future__ import annotations

import numpy as np
import pytest
from sentence_transformers.util import quantize_embeddings

from recsys.encoder.text.quantization import Precision, calibration_ranges, quantize

RNG = np.random.default_rng(7)
CALIBRATION = RNG.normal(size=(200, 64)).astype(np.float32)
# Some values beyond the calibration ranges, which must clip rather than wrap around.
VECTORS = (RNG.normal(size=(9, 64)) * 1.5).astype(np.float32)


@pytest.mark.parametrize("precision", [Precision.INT8, Precision.UINT8])
def test_int8_and_uint8_match_sentence_transformers_with_the_same_calibration(precision: Precision) -> None:
    ranges = calibration_ranges(CALIBRATION)

    ours = quantize(VECTORS, precision, ranges)
    theirs = np.asarray(quantize_embeddings(VECTORS, precision.value, calibration_embeddings=CALIBRATION))

    assert ours.dtype == theirs.dtype
    np.testing.assert_array_equal(ours, theirs)


@pytest.mark.parametrize("precision", [Precision.BINARY, Precision.UBINARY])
def test_binary_and_ubinary_match_sentence_transformers(precision: Precision) -> None:
    ours = quantize(VECTORS, precision)
    theirs = np.asarray(quantize_embeddings(VECTORS, precision.value))

    assert ours.dtype == theirs.dtype and ours.shape == (9, 8)
    np.testing.assert_array_equal(ours, theirs)


def test_binary_rows_stay_apart_when_dimensions_are_not_a_multiple_of_8() -> None:
    vectors = np.array([[1, -1, 1, 1, -1, 1, 1, 1, -1, 1], [-1] * 10], dtype=np.float32)

    packed = quantize(vectors, Precision.UBINARY)

    np.testing.assert_array_equal(packed, [[0b10110111, 0b01000000], [0, 0]])


def test_float32_rows_come_back_unchanged() -> None:
    assert quantize(VECTORS, Precision.FLOAT32) is VECTORS


def test_int8_without_ranges_of_the_right_shape_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="calibration ranges"):
        quantize(VECTORS, Precision.INT8, calibration_ranges(CALIBRATION[:, :10]))
