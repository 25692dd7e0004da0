"""The engine gives SentenceTransformer.encode's vectors whatever the batching: lengths, company, lane, concurrency."""

from __future__ import annotations

import asyncio
import random

import numpy as np
import pytest

from recsys.encoder.text.batch_plan import PassCostModel
from recsys.encoder.text.batching import BatchLimits, Lane
from recsys.encoder.text.embedder import Embedder
from recsys.encoder.text.embedding import EmbeddingEngine
from tests.encoder.reference import st_encode

VOCABULARY = "the crew of a space tug meets deadly alien soup recipe with basil jazz trio live in tokyo tax"
WORDS = VOCABULARY.split()


def mixed_texts(count: int, seed: int) -> list[str]:
    """Short and long texts, some past the model's 256 tokens, with accents and punctuation."""
    rng = random.Random(seed)
    texts = []
    for n in range(count):
        length = rng.choice([1, 2, 5, 12, 30, 80, 300])
        words = [rng.choice(WORDS) for _ in range(length)]
        texts.append(f"{n}: " + " ".join(words) + rng.choice(["", ".", "!", " — café naïve"]))
    return texts


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.sum(a * b, axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


@pytest.mark.parametrize(
    ("limits", "cost"),
    [
        # One big batch per lane, split into passes by length.
        (BatchLimits(64, 8192, 0.005, 1000), PassCostModel(0.002, 20e-6)),
        # Tiny batches: every text meets different company.
        (BatchLimits(3, 400, 0.0, 1000), PassCostModel(0.002, 20e-6)),
        # Bulk passes cut short for live traffic, live first with a bulk share.
        (BatchLimits(32, 4096, 0.002, 1000, bulk_share=0.5, live_pass_s=0.001), PassCostModel(0.0, 1e-3)),
    ],
    ids=["large-batches", "tiny-batches", "cut-bulk-passes"],
)
async def test_every_text_gets_the_vector_sentence_transformers_gives_it(
    embedder: Embedder, limits: BatchLimits, cost: PassCostModel
) -> None:
    texts = mixed_texts(48, seed=limits.max_size)
    reference = dict(zip(texts, st_encode(embedder, texts), strict=True))
    engine = EmbeddingEngine(embedder, limits, max_texts_per_request=64, cost=cost)
    await engine.start()
    rng = random.Random(1)
    try:
        # Callers of every size on both lanes at once, each sending texts in a shuffled order.
        requests = []
        start = 0
        while start < len(texts):
            size = rng.choice([1, 1, 2, 5, 9])
            chunk = texts[start : start + size]
            rng.shuffle(chunk)
            requests.append((chunk, rng.choice(list(Lane))))
            start += size
        results = await asyncio.gather(*(engine.embed(chunk, lane=lane) for chunk, lane in requests))
    finally:
        await engine.stop()

    for (chunk, _), result in zip(requests, results, strict=True):
        expected = np.array([reference[text] for text in chunk])
        assert cosines(result.vectors, expected).min() >= 0.9999


class NestedCount:
    def __init__(self) -> None:
        self.nested = 0

    def pass_done(self, lane: Lane, texts: int, tokens: int, padded_tokens: int, seconds: float) -> None:
        pass

    def texts_dropped(self, lane: Lane, reason: str, texts: int) -> None:
        pass

    def live_pass_nested(self) -> None:
        self.nested += 1

    def request_done(self, lane: Lane, seconds: float) -> None:
        pass

    def request_refused(self, lane: Lane, reason: str) -> None:
        pass


async def test_live_texts_run_between_the_layers_of_bulk_passes_get_the_same_vectors(embedder: Embedder) -> None:
    bulk_texts, live_texts = mixed_texts(40, seed=7), mixed_texts(12, seed=8)
    reference = dict(zip(bulk_texts + live_texts, st_encode(embedder, bulk_texts + live_texts), strict=True))
    count = NestedCount()
    engine = EmbeddingEngine(embedder, BatchLimits(16, 8192, 0.0, 1000), max_texts_per_request=64, observer=count)
    await engine.start()
    try:
        bulk = asyncio.create_task(engine.embed(bulk_texts, lane=Lane.BULK))

        async def live_caller(text: str, delay_s: float) -> np.ndarray:
            await asyncio.sleep(delay_s)
            return (await engine.embed([text], lane=Lane.LIVE)).vectors[0]

        # Sparse enough that bulk is not owed its share: live passes may interrupt bulk ones.
        live = await asyncio.gather(*(live_caller(text, 0.06 * n) for n, text in enumerate(live_texts)))
        bulk_vectors = (await bulk).vectors
    finally:
        await engine.stop()

    assert embedder.pass_segments > 1 and count.nested > 0
    assert cosines(np.array(live), np.array([reference[t] for t in live_texts])).min() >= 0.9999
    assert cosines(bulk_vectors, np.array([reference[t] for t in bulk_texts])).min() >= 0.9999
