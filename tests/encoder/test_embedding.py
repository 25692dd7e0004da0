"""Embedding requests without gRPC: validation messages, Matryoshka shaping, token accounting."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

import numpy as np
import pytest

from recsys.encoder.batching import BatchLimits
from recsys.encoder.embedding import EmbeddingEngine, EmbedOptions, shape_vectors
from recsys.shared.errors import InvalidRequest


class WordModel:
    """A fake model: one token per word plus two special tokens; the vector is [words, 1, 2, ..., dims-1]."""

    name = "words"
    dimensions = 6
    max_tokens = 5
    device = "cpu"
    dtype = "float32"

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        return [len(text.split()) + 2 for text in texts]

    def encode(self, texts: list[str], normalize: bool) -> np.ndarray:
        return np.array([[len(t.split()), *range(1, self.dimensions)] for t in texts], dtype=np.float32)


@pytest.fixture
async def engine() -> AsyncIterator[EmbeddingEngine]:
    started = EmbeddingEngine(WordModel(), BatchLimits(8, 1000, 0.001, 100), max_texts_per_request=3)
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
        (["a", "one two three four"], EmbedOptions(truncate=False), "text 1 has 6 tokens, more than max_tokens 5"),
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
