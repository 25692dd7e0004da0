"""Content vectors of the catalog, made by the encoder's own embedding engine and cached on disk by text."""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path

import numpy as np
from tqdm import tqdm

from recsys.encoder.settings import EncoderSettings

_CHUNK = 256


def cache_path(cache_dir: Path, texts: list[str], model_name: str) -> Path:
    digest = hashlib.sha256("\x1f".join([model_name, *texts]).encode()).hexdigest()[:24]
    return cache_dir / f"content-{digest}.npy"


def content_vectors(texts: list[str], settings: EncoderSettings, cache_dir: Path, progress: bool = True) -> np.ndarray:
    """Unit content vectors of `texts` (rows in order); computed once per text set and model, then read back."""
    path = cache_path(cache_dir, texts, settings.model or "shipped")
    if path.is_file():
        return np.load(path)
    vectors = asyncio.run(_embed(texts, settings, progress))
    cache_dir.mkdir(parents=True, exist_ok=True)
    np.save(path, vectors)
    return vectors


async def _embed(texts: list[str], settings: EncoderSettings, progress: bool) -> np.ndarray:
    # Imported here: only this step needs torch and the model.
    from recsys.encoder.text.batching import BatchLimits, Lane
    from recsys.encoder.text.embedder import Embedder
    from recsys.encoder.text.embedding import EmbeddingEngine

    embedder = await Embedder.load_in_thread(settings.model, settings.device, settings.max_tokens)
    limits = BatchLimits(
        max_size=settings.batch_max_size,
        max_tokens=settings.batch_max_tokens,
        max_wait_s=settings.batch_max_wait_ms / 1000.0,
        queue_capacity=max(settings.queue_capacity, _CHUNK),
    )
    engine = EmbeddingEngine(embedder, limits, max(settings.max_texts_per_request, _CHUNK))
    await engine.start()
    try:
        bar = tqdm(total=len(texts), desc="embedding catalog", unit="item", disable=not progress)
        parts = []
        for start in range(0, len(texts), _CHUNK):
            embedded = await engine.embed(texts[start : start + _CHUNK], lane=Lane.BULK)
            parts.append(np.asarray(embedded.vectors, dtype=np.float32))
            bar.update(len(parts[-1]))
        bar.close()
    finally:
        await engine.stop()
    return np.vstack(parts)
