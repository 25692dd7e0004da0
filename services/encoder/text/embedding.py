"""Embedding requests: validation, tokenization, the shared batcher, Matryoshka and quantized output."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from recsys.encoder.text.batch_plan import PassCostModel, PassEstimate
from recsys.encoder.text.batching import BatchLimits, BatchObserver, DynamicBatcher, Lane
from recsys.encoder.text.model_thread import ModelThread
from recsys.encoder.text.quantization import Precision, calibration_ranges, quantize
from recsys.encoder.text.tokenization import TokenizedText
from recsys.shared.errors import InvalidRequest, Overloaded

# Below this a vector has no direction worth keeping; normalizing it would amplify noise.
_MIN_NORM = 1e-12
# Requests shorter than this (in characters) are tokenized on the event loop: a thread hop costs
# more than the tokenizer does on a few sentences.
_INLINE_TOKENIZE_CHARS = 4096


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

    @property
    def pass_segments(self) -> int:
        """Segments of a forward pass, between which `between_layers` is called (1: never called)."""
        ...

    @property
    def pads(self) -> bool:
        """Whether a pass pads every text to its longest (else it computes only real tokens)."""
        ...

    @property
    def thread(self) -> ModelThread | None:
        """The one thread the model computes in (see model_thread.py), or None when any thread will do."""
        ...

    def tokenize(self, texts: Sequence[str]) -> list[TokenizedText]:
        """Each text with its whole token count (special tokens included) and what the model reads."""
        ...

    def forward(self, batch: list[TokenizedText], between_layers: Callable[[], None] | None = None) -> np.ndarray:
        """One float32 row per text, in one forward pass; `between_layers` is called between its layers."""
        ...

    def warm_up(self, max_size: int, max_tokens: int) -> float:
        """Runs a few passes before serving; returns the seconds it took."""
        ...

    def measure_pass_cost(self, max_size: int, max_tokens: int) -> PassEstimate:
        """What one forward pass costs: the shape the batcher plans passes with."""
        ...


class EngineObserver(BatchObserver, Protocol):
    """What the engine reports on top of the batcher's figures."""

    def request_done(self, lane: Lane, seconds: float) -> None: ...

    def request_refused(self, lane: Lane, reason: str) -> None: ...


@dataclass(frozen=True)
class EmbedOptions:
    """How a caller wants its embeddings."""

    normalize: bool = True
    dimensions: int = 0  # 0: the model's full dimensions
    truncate: bool = True
    precision: Precision = Precision.FLOAT32


@dataclass(frozen=True)
class TextEmbeddings:
    """Embeddings of texts in the caller's order, with what the model read of each.

    `vectors` are float32 rows (after dimensions and normalization); `quantized` holds the rows in
    the requested precision when it is not float32.
    """

    vectors: np.ndarray
    tokens: list[int]
    truncated: list[bool]
    precision: Precision = Precision.FLOAT32
    quantized: np.ndarray | None = None


# Far beyond any model's window (a few hundred tokens), and more than an item's whole content text.
DEFAULT_MAX_TEXT_CHARS = 65_536


def check_texts(texts: Sequence[str], max_texts: int, max_chars: int = DEFAULT_MAX_TEXT_CHARS) -> None:
    """Refuses an empty request, too many texts, a blank or overlong text (naming its index), before any tokenizing."""
    if not texts:
        raise InvalidRequest("texts is empty: send at least one text")
    if len(texts) > max_texts:
        raise InvalidRequest(f"too many texts: {len(texts)} in one request, at most {max_texts}")
    for index, text in enumerate(texts):
        if len(text) > max_chars:
            raise InvalidRequest(f"text {index} has {len(text)} characters; at most {max_chars}")
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
                    f"text {index} has more than max_tokens {max_tokens} tokens (send truncate=true to cut it)"
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
    """Turns texts into embeddings through the shared batcher; the one entry point for gRPC and ingestion.

    Texts are tokenized as they arrive, while the model works on earlier batches; the batcher then
    only pads ids into tensors. int8/uint8 ranges come from calibration texts embedded on first use.
    """

    def __init__(
        self,
        model: TextModel,
        limits: BatchLimits,
        max_texts_per_request: int,
        *,
        observer: EngineObserver | None = None,
        calibration: Sequence[str] = (),
        cost: PassCostModel | None = None,
        max_text_chars: int = DEFAULT_MAX_TEXT_CHARS,
    ) -> None:
        self.model = model
        self.max_text_chars = max_text_chars
        # Raw model output: each caller's normalize, dimensions and precision are applied to its own rows.
        self.batcher: DynamicBatcher[TokenizedText] = DynamicBatcher(
            model.forward,
            limits,
            cost=cost,
            observer=observer,
            pass_segments=model.pass_segments,
            padding_free=not model.pads,
            model_thread=model.thread.executor if model.thread is not None else None,
        )
        self._measure_cost = cost is None
        self.max_texts_per_request = max_texts_per_request
        self.warm_up_s: float | None = None
        self._observer = observer
        self._calibration_texts = list(calibration)
        self._calibration: np.ndarray | None = None
        self._calibrating = asyncio.Lock()
        self._ranges: dict[tuple[int, bool], np.ndarray] = {}

    async def start(self) -> None:
        """Warms the model up and measures its passes (before any caller reaches it), then starts the batcher."""
        limits = self.batcher.limits
        run = self.model.thread.run if self.model.thread is not None else asyncio.to_thread
        if self.warm_up_s is None:
            self.warm_up_s = await run(self.model.warm_up, limits.max_size, limits.max_tokens)
        if self._measure_cost:
            shape = await run(self.model.measure_pass_cost, limits.max_size, limits.max_tokens)
            self.batcher.cost = PassCostModel(shape.fixed_s, shape.per_token_s)
            self._measure_cost = False
        await self.batcher.start()

    async def stop(self) -> None:
        await self.batcher.stop()

    async def embed(
        self,
        texts: Sequence[str],
        options: EmbedOptions | None = None,
        lane: Lane = Lane.LIVE,
        deadline: float | None = None,
    ) -> TextEmbeddings:
        """Validates, queues on `lane` and shapes the result; raises InvalidRequest or Overloaded.

        `deadline` (time.monotonic) drops the texts unrun once passed.
        """
        started = time.perf_counter()
        options = options or EmbedOptions()
        try:
            check_texts(texts, self.max_texts_per_request, self.max_text_chars)
            dimensions = output_dimensions(options.dimensions, self.model.dimensions)
            if options.precision.calibrated and not self._calibration_texts:
                raise InvalidRequest(f"precision {options.precision} needs calibration texts, and none are set")
            tokenized = await self._tokenize(texts)
            tokens, truncated = read_lengths([t.tokens for t in tokenized], self.model.max_tokens, options.truncate)
            raw = await self.batcher.embed(tokenized, tokens, lane, deadline)
        except (InvalidRequest, Overloaded) as exc:
            self.count_refusal(lane, "invalid" if isinstance(exc, InvalidRequest) else "overloaded")
            raise
        vectors = shape_vectors(raw, dimensions, options.normalize)
        quantized = None
        if options.precision is not Precision.FLOAT32:
            ranges = await self._int8_ranges(dimensions, options.normalize) if options.precision.calibrated else None
            quantized = quantize(vectors, options.precision, ranges)
        if self._observer is not None:
            self._observer.request_done(lane, time.perf_counter() - started)
        return TextEmbeddings(vectors, tokens, truncated, options.precision, quantized)

    def count_refusal(self, lane: Lane, reason: str) -> None:
        """Counts a request refused before or inside `embed` (invalid input, or overloaded)."""
        if self._observer is not None:
            self._observer.request_refused(lane, reason)

    async def _tokenize(self, texts: Sequence[str]) -> list[TokenizedText]:
        if sum(len(text) for text in texts) <= _INLINE_TOKENIZE_CHARS:
            return self.model.tokenize(texts)
        # Tokenizing a thousand long texts takes milliseconds the event loop should not lose.
        return await asyncio.to_thread(self.model.tokenize, list(texts))

    async def _int8_ranges(self, dimensions: int, normalize: bool) -> np.ndarray:
        """Per-dimension ranges of the calibration texts, shaped like this request's vectors."""
        key = (dimensions, normalize)
        if key not in self._ranges:
            async with self._calibrating:
                if self._calibration is None:
                    tokenized = await asyncio.to_thread(self.model.tokenize, self._calibration_texts)
                    counts = [min(t.tokens, self.model.max_tokens) for t in tokenized]
                    self._calibration = await self.batcher.embed(tokenized, counts, Lane.LIVE)
            self._ranges[key] = calibration_ranges(shape_vectors(self._calibration, dimensions, normalize))
        return self._ranges[key]
