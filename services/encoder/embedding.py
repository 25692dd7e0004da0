"""Embedding requests: validation, token accounting, batching through the shared batcher, Matryoshka output."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from recsys.encoder.batching import BatchLimits, DynamicBatcher, Lane
from recsys.shared.errors import InvalidRequest

# Below this a vector has no direction worth keeping; normalizing it would amplify noise.
_MIN_NORM = 1e-12


class TextModel(Protocol):
    """What the encoder needs from a text embedding model."""

    @property
    def name(self) -> str: ...

    @property
    def dimensions(self) -> int: ...

    @property
    def max_tokens(self) -> int: ...

    @property
    def device(self) -> str: ...

    @property
    def dtype(self) -> str: ...

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """Tokens of each text without truncation, special tokens included."""
        ...

    def encode(self, texts: list[str], normalize: bool) -> np.ndarray:
        """One float32 row per text, in one forward pass."""
        ...


@dataclass(frozen=True)
class EmbedOptions:
    """How a caller wants its embeddings."""

    normalize: bool = True
    dimensions: int = 0  # 0: the model's full dimensions
    truncate: bool = True


@dataclass(frozen=True)
class TextEmbeddings:
    """Embeddings of texts in the caller's order, with what the model read of each."""

    vectors: np.ndarray
    tokens: list[int]
    truncated: list[bool]


def check_texts(texts: Sequence[str], max_texts: int) -> None:
    """Refuses an empty request, too many texts, or a blank text (naming its index)."""
    if not texts:
        raise InvalidRequest("texts is empty: send at least one text")
    if len(texts) > max_texts:
        raise InvalidRequest(f"too many texts: {len(texts)} in one request, at most {max_texts}")
    for index, text in enumerate(texts):
        if not text.strip():
            raise InvalidRequest(f"text {index} is empty")


def output_dimensions(requested: int, model_dimensions: int) -> int:
    """The dimensions to return: the model's when 0, else a Matryoshka prefix no longer than the model's."""
    if requested < 0:
        raise InvalidRequest(f"dimensions must not be negative, got {requested}")
    if requested > model_dimensions:
        raise InvalidRequest(f"dimensions {requested} is more than the model's {model_dimensions}")
    return requested or model_dimensions


def read_lengths(token_counts: Sequence[int], max_tokens: int, truncate: bool) -> tuple[list[int], list[bool]]:
    """Tokens the model will read per text and whether it was cut; refuses over-length texts when not truncating."""
    if not truncate:
        for index, count in enumerate(token_counts):
            if count > max_tokens:
                raise InvalidRequest(
                    f"text {index} has {count} tokens, more than max_tokens {max_tokens} (send truncate=true to cut it)"
                )
    return [min(count, max_tokens) for count in token_counts], [count > max_tokens for count in token_counts]


def shape_vectors(vectors: np.ndarray, dimensions: int, normalize: bool) -> np.ndarray:
    """Keeps the first `dimensions` components (Matryoshka) and rescales rows to unit length when asked."""
    shaped = np.ascontiguousarray(vectors[:, :dimensions], dtype=np.float32)
    if normalize:
        norms = np.linalg.norm(shaped, axis=1, keepdims=True)
        shaped = shaped / np.maximum(norms, _MIN_NORM)
    return shaped


class EmbeddingEngine:
    """Turns texts into embeddings through the shared batcher; the one entry point for gRPC and ingestion."""

    def __init__(self, model: TextModel, limits: BatchLimits, max_texts_per_request: int) -> None:
        self.model = model
        # Raw model output: each caller's normalize and dimensions are applied to its own rows.
        self.batcher = DynamicBatcher(functools.partial(model.encode, normalize=False), limits)
        self.max_texts_per_request = max_texts_per_request

    async def start(self) -> None:
        await self.batcher.start()

    async def stop(self) -> None:
        await self.batcher.stop()

    async def embed(
        self, texts: Sequence[str], options: EmbedOptions | None = None, lane: Lane = Lane.LIVE
    ) -> TextEmbeddings:
        """Validates, queues on `lane` and shapes the result; raises InvalidRequest or Overloaded."""
        options = options or EmbedOptions()
        check_texts(texts, self.max_texts_per_request)
        dimensions = output_dimensions(options.dimensions, self.model.dimensions)
        # Tokenizing a thousand long texts takes milliseconds the event loop should not lose.
        counts = await asyncio.to_thread(self.model.count_tokens, list(texts))
        tokens, truncated = read_lengths(counts, self.model.max_tokens, options.truncate)
        raw = await self.batcher.embed(texts, tokens, lane)
        return TextEmbeddings(shape_vectors(raw, dimensions, options.normalize), tokens, truncated)
