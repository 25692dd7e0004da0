"""Embeds search queries through the encoder's gRPC API, turning its failures into domain errors."""

from __future__ import annotations

import grpc

from recsys.shared.errors import InvalidRequest, Overloaded, Unavailable
from recsys_client.aio import EncoderClient


class EncoderQueryEmbedder:
    """One query text in, its content-space vector out."""

    def __init__(self, client: EncoderClient, timeout_s: float) -> None:
        self._client = client
        self._timeout_s = timeout_s

    async def embed_query(self, text: str) -> list[float]:
        try:
            vectors = await self._client.embed([text], timeout=self._timeout_s)
        except grpc.aio.AioRpcError as exc:
            code, details = exc.code(), exc.details() or ""
            if code == grpc.StatusCode.RESOURCE_EXHAUSTED:
                raise Overloaded(f"encoder is overloaded: {details}") from exc
            if code == grpc.StatusCode.INVALID_ARGUMENT:
                raise InvalidRequest(f"encoder refused the query text: {details}") from exc
            raise Unavailable(
                f"encoder at {self._client.address} is unavailable: {code.name} {details}".rstrip()
            ) from exc
        if len(vectors) != 1 or not vectors[0]:
            raise Unavailable(f"encoder at {self._client.address} returned {len(vectors)} embeddings for one text")
        return vectors[0]
