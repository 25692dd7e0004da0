"""Embedding requests without gRPC: validation messages, Matryoshka shaping, token accounting, precisions."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence

import numpy as np
import pytest

from recsys.encoder.text.batch_plan import PassEstimate
from recsys.encoder.text.batching import BatchLimits
from recsys.encoder.text.embedding import EmbeddingEngine, EmbedOptions, shape_vectors
from recsys.encoder.text.quantization import Precision
from recsys.encoder.text.tokenization import TokenizedText
from recsys.shared.errors import InvalidRequest


class WordModel:
    """A fake model: one token per word plus two special tokens; the vector is [words, 1, 2, ..., dims-1]."""

    name = "words"
    dimensions = 6
    max_tokens = 5
    device = "cpu"
    dtype = "float32"

    def tokenize(self, texts: Sequence[str]) -> list[TokenizedText]:
        return [TokenizedText(text, len(text.split()) + 2) for text in texts]

    pass_segments = 1
    thread = None  # any thread will do
    pads = True

    def forward(self, batch: list[TokenizedText], between_layers: Callable[[], None] | None = None) -> np.ndarray:
        return np.array([[len(t.text.split()), *range(1, self.dimensions)] for t in batch], dtype=np.float32)

    def warm_up(self, max_size: int, max_tokens: int) -> float:
        return 0.0

    def measure_pass_cost(self, max_size: int, max_tokens: int) -> PassEstimate:
        return PassEstimate(0.001, 1e-6)


class SignedWordModel(WordModel):
    """Words alternate the sign of the components: vectors that int8 and binary outputs can tell apart."""

    def forward(self, batch: list[TokenizedText], between_layers: Callable[[], None] | None = None) -> np.ndarray:
        return np.array(
            [[(-1.0) ** (len(t.text.split()) + d) * (d + len(t.text)) for d in range(6)] for t in batch],
            dtype=np.float32,
        )


CALIBRATION = ["one", "one two", "one two three", "a much longer calibration text"]


@pytest.fixture
async def engine() -> AsyncIterator[EmbeddingEngine]:
    started = EmbeddingEngine(
        WordModel(), BatchLimits(8, 1000, 0.001, 100), max_texts_per_request=3, calibration=CALIBRATION
    )
    await started.start()
    yield started
    await started.stop()


@pytest.fixture
async def signed_engine() -> AsyncIterator[EmbeddingEngine]:
    started = EmbeddingEngine(
        SignedWordModel(), BatchLimits(8, 1000, 0.001, 100), max_texts_per_request=3, calibration=CALIBRATION
    )
    await started.start()
    yield started
    await started.stop()


@pytest.mark.parametrize(
    ("texts", "options", "message"),
    [
        ([], EmbedOptions(), "texts is empty"),
        (["a", "b", "c", "d"], EmbedOptions(), "too many texts: 4 in one request, at most 3"),
        (["fine", ""], EmbedOptions(), "text 1 is empty"),
        (["fine", "  "], EmbedOptions(), "text 1 is empty"),
        (["a"], EmbedOptions(dimensions=7), "dimensions 7 is more than the model's 6"),
        (["a", "one two three four"], EmbedOptions(truncate=False), "text 1 has more than max_tokens 5 tokens"),
    ],
)
async def test_bad_requests_are_refused_naming_the_problem(
    engine: EmbeddingEngine, texts: list[str], options: EmbedOptions, message: str
) -> None:
    with pytest.raises(InvalidRequest, match=message):
        await engine.embed(texts, options)


async def test_long_texts_are_cut_to_max_tokens_and_marked_truncated(engine: EmbeddingEngine) -> None:
    result = await engine.embed(["one", "one two three four"])

    assert result.tokens == [3, 5]
    assert result.truncated == [False, True]


async def test_dimensions_keep_a_prefix_renormalized_only_when_asked(engine: EmbeddingEngine) -> None:
    unit = await engine.embed(["one two"], EmbedOptions(dimensions=3))
    raw = await engine.embed(["one two"], EmbedOptions(dimensions=3, normalize=False))

    np.testing.assert_allclose(raw.vectors[0], [2.0, 1.0, 2.0])
    np.testing.assert_allclose(unit.vectors[0], raw.vectors[0] / np.linalg.norm(raw.vectors[0]), rtol=1e-6)


def test_a_zero_vector_stays_zero_when_normalized() -> None:
    shaped = shape_vectors(np.zeros((1, 4), dtype=np.float32), 4, normalize=True)

    assert np.isfinite(shaped).all() and not shaped.any()


@pytest.mark.parametrize("precision", [Precision.INT8, Precision.UINT8])
async def test_int8_bytes_of_a_text_do_not_depend_on_the_texts_sent_with_it(
    signed_engine: EmbeddingEngine, precision: Precision
) -> None:
    options = EmbedOptions(precision=precision, normalize=False)
    alone = await signed_engine.embed(["one two"], options)
    mixed = await signed_engine.embed(["a b c d e f g", "one two", "x"], options)

    assert alone.quantized is not None and mixed.quantized is not None
    assert alone.quantized.dtype == (np.int8 if precision is Precision.INT8 else np.uint8)
    np.testing.assert_array_equal(alone.quantized[0], mixed.quantized[1])
    # Different texts get different levels: the ranges are not degenerate.
    assert not np.array_equal(mixed.quantized[0], mixed.quantized[1])


async def test_binary_output_packs_the_sign_of_each_dimension(signed_engine: EmbeddingEngine) -> None:
    result = await signed_engine.embed(["one two", "one"], EmbedOptions(precision=Precision.UBINARY))

    assert result.quantized is not None
    np.testing.assert_array_equal(result.quantized, np.packbits(result.vectors > 0, axis=1))
    assert result.quantized.shape == (2, 1)


async def test_calibrated_precisions_without_calibration_texts_are_refused() -> None:
    uncalibrated = EmbeddingEngine(WordModel(), BatchLimits(8, 1000, 0.001, 100), max_texts_per_request=3)
    await uncalibrated.start()
    try:
        with pytest.raises(InvalidRequest, match="int8 needs calibration texts"):
            await uncalibrated.embed(["one"], EmbedOptions(precision=Precision.INT8))
        binary = await uncalibrated.embed(["one"], EmbedOptions(precision=Precision.BINARY))
    finally:
        await uncalibrated.stop()
    assert binary.quantized is not None and binary.quantized.dtype == np.int8
