"""Test doubles for the recommender's neighbors: an encoder with a fake embedder behind a real gRPC server."""

from __future__ import annotations

import zlib
from collections.abc import Awaitable, Callable

import grpc
import numpy as np

from recsys_client.aio import RecommenderClient
from recsys_client.api import encoder_pb2, encoder_pb2_grpc
from tests.recommender.recommender_catalog import CONTENT_DIMS

# Starts a recommender on the test store and returns a client to it (fixture start_recommender).
StartRecommender = Callable[..., Awaitable[RecommenderClient]]

# The fake encoder puts a text containing one of these words on that basis vector, so a search
# for "rocket" lands exactly where the tests put space items.
KEYWORD_AXES = {"rocket": 0, "recipe": 1, "garden": 2}


def fake_embedding(text: str) -> list[float]:
    """Deterministic: the sum of the keyword axes in the text, else a vector seeded by the text."""
    vector = np.zeros(CONTENT_DIMS)
    for word, axis in KEYWORD_AXES.items():
        if word in text.lower():
            vector[axis] += 1.0
    if not vector.any():
        vector = np.random.default_rng(zlib.crc32(text.encode())).normal(size=CONTENT_DIMS)
    return [float(x) for x in vector / np.linalg.norm(vector)]


class FakeEncoderServicer(encoder_pb2_grpc.EncoderServiceServicer):
    """A real gRPC EncoderService with a fake embedder; it records the texts it was asked for."""

    def __init__(self) -> None:
        self.texts: list[str] = []

    async def Embed(
        self, request: encoder_pb2.EmbedRequest, context: grpc.aio.ServicerContext
    ) -> encoder_pb2.EmbedResponse:
        self.texts.extend(request.texts)
        return encoder_pb2.EmbedResponse(
            embeddings=[encoder_pb2.Embedding(values=fake_embedding(t), tokens=len(t.split())) for t in request.texts],
            dimensions=CONTENT_DIMS,
            model="fake",
        )


class FakeEncoder:
    def __init__(self, server: grpc.aio.Server, port: int, servicer: FakeEncoderServicer) -> None:
        self.server = server
        self.address = f"127.0.0.1:{port}"
        self.servicer = servicer
