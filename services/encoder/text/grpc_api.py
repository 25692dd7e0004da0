"""The recsys.v1.EncoderService servicer: protobuf in and out, domain errors to status codes."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import grpc

from recsys.encoder.text.batching import Lane
from recsys.encoder.text.embedding import EmbeddingEngine, EmbedOptions, TextEmbeddings
from recsys.encoder.text.quantization import Precision
from recsys.encoder.text.settings import TextSettings
from recsys.shared.behavior_models import BehaviorModelRecord
from recsys.shared.blend_settings import BlendSettings
from recsys.shared.errors import InvalidRequest, Unavailable
from recsys.shared.grpc_server import maps_errors, status_for
from recsys.shared.logs import log_event
from recsys_client.api import encoder_pb2, encoder_pb2_grpc

_log = logging.getLogger(__name__)

ModelRecordLoader = Callable[[], Awaitable[BehaviorModelRecord | None]]

SERVICE_NAME = encoder_pb2.DESCRIPTOR.services_by_name["EncoderService"].full_name

# Requests of one EmbedStream embedded ahead of the response being written: enough to keep the
# batcher fed from a single stream without letting one client queue unbounded work.
STREAM_WINDOW = 32

_PRECISIONS = {
    encoder_pb2.PRECISION_UNSPECIFIED: Precision.FLOAT32,
    encoder_pb2.PRECISION_FLOAT32: Precision.FLOAT32,
    encoder_pb2.PRECISION_INT8: Precision.INT8,
    encoder_pb2.PRECISION_UINT8: Precision.UINT8,
    encoder_pb2.PRECISION_BINARY: Precision.BINARY,
    encoder_pb2.PRECISION_UBINARY: Precision.UBINARY,
}
_WIRE_PRECISIONS = {precision: wire for wire, precision in _PRECISIONS.items() if wire}


def options_from(request: encoder_pb2.EmbedRequest) -> EmbedOptions:
    """The request's options, with proto3 `optional` flags left unset meaning true."""
    precision = _PRECISIONS.get(request.precision)
    if precision is None:
        known = ", ".join(encoder_pb2.Precision.Name(wire) for wire in _PRECISIONS)
        raise InvalidRequest(f"unknown precision {request.precision}: use one of {known}")
    return EmbedOptions(
        normalize=request.normalize if request.HasField("normalize") else True,
        dimensions=request.dimensions,
        truncate=request.truncate if request.HasField("truncate") else True,
        precision=precision,
    )


def response_from(result: TextEmbeddings, model_name: str) -> encoder_pb2.EmbedResponse:
    if result.quantized is None:
        embeddings = [
            encoder_pb2.Embedding(values=row.tolist(), tokens=tokens, truncated=truncated)
            for row, tokens, truncated in zip(result.vectors, result.tokens, result.truncated, strict=True)
        ]
    else:
        embeddings = [
            encoder_pb2.Embedding(quantized=row.tobytes(), tokens=tokens, truncated=truncated)
            for row, tokens, truncated in zip(result.quantized, result.tokens, result.truncated, strict=True)
        ]
    return encoder_pb2.EmbedResponse(
        embeddings=embeddings,
        dimensions=result.vectors.shape[1],
        model=model_name,
        precision=_WIRE_PRECISIONS[result.precision],
    )


def deadline_of(context: grpc.aio.ServicerContext) -> float | None:
    """The call's deadline on time.monotonic, so the batcher drops its texts unrun once it passed."""
    remaining = context.time_remaining()
    return None if remaining is None else time.monotonic() + remaining


class EncoderServicer(encoder_pb2_grpc.EncoderServiceServicer):
    """Serves Embed, EmbedStream and GetModelInfo; answers UNAVAILABLE until an engine is attached."""

    def __init__(self, settings: TextSettings, behavior_models: ModelRecordLoader | None = None) -> None:
        self._settings = settings
        self._engine: EmbeddingEngine | None = None
        self._behavior_models = behavior_models

    def attach(self, engine: EmbeddingEngine) -> None:
        """Starts answering with this engine (the model is loaded and the batcher runs)."""
        self._engine = engine

    def _ready_engine(self) -> EmbeddingEngine:
        if self._engine is None:
            raise Unavailable("the encoder is still loading its model; retry shortly")
        return self._engine

    async def _embed(
        self, request: encoder_pb2.EmbedRequest, deadline: float | None = None
    ) -> encoder_pb2.EmbedResponse:
        engine = self._ready_engine()
        try:
            options = options_from(request)
        except InvalidRequest:
            engine.count_refusal(Lane.LIVE, "invalid")
            raise
        result = await engine.embed(list(request.texts), options, Lane.LIVE, deadline)
        return response_from(result, engine.model.name)

    @maps_errors
    async def Embed(
        self, request: encoder_pb2.EmbedRequest, context: grpc.aio.ServicerContext
    ) -> encoder_pb2.EmbedResponse:
        return await self._embed(request, deadline_of(context))

    async def EmbedStream(
        self,
        request_iterator: AsyncIterator[encoder_pb2.EmbedStreamRequest],
        context: grpc.aio.ServicerContext,
    ) -> AsyncIterator[encoder_pb2.EmbedStreamResponse]:
        """Embeds requests as they arrive (up to STREAM_WINDOW ahead) and answers in request order.

        The first bad request ends the stream with its status code, after the answers to the
        requests before it.
        """
        window = asyncio.Semaphore(STREAM_WINDOW)
        deadline = deadline_of(context)
        started: asyncio.Queue[asyncio.Task[encoder_pb2.EmbedResponse] | None] = asyncio.Queue()

        async def read_requests() -> None:
            try:
                async for item in request_iterator:
                    await window.acquire()
                    started.put_nowait(asyncio.create_task(self._embed(item.request, deadline)))
            finally:
                started.put_nowait(None)

        reader = asyncio.create_task(read_requests())
        position = 0
        try:
            while (task := await started.get()) is not None:
                try:
                    response = await task
                except Exception as exc:
                    code = status_for(exc) or grpc.StatusCode.INTERNAL
                    await context.abort(code, f"request {position}: {exc}")
                window.release()
                yield encoder_pb2.EmbedStreamResponse(response=response)
                position += 1
            await reader  # surfaces a failure to read the client's stream
        finally:
            reader.cancel()
            while not started.empty():
                leftover = started.get_nowait()
                if leftover is not None:
                    leftover.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await reader

    @maps_errors
    async def GetModelInfo(
        self, request: encoder_pb2.GetModelInfoRequest, context: grpc.aio.ServicerContext
    ) -> encoder_pb2.GetModelInfoResponse:
        model = self._ready_engine().model
        settings = self._settings
        return encoder_pb2.GetModelInfoResponse(
            model=model.name,
            dimensions=model.dimensions,
            max_tokens=model.max_tokens,
            device=model.device,
            dtype=model.dtype,
            batching=encoder_pb2.BatchingSettings(
                max_batch_size=settings.batch_max_size,
                max_batch_tokens=settings.batch_max_tokens,
                max_wait_ms=settings.batch_max_wait_ms,
                queue_capacity=settings.queue_capacity,
                max_texts_per_request=settings.max_texts_per_request,
                bulk_share=settings.batch_bulk_share,
                live_pass_ms=settings.batch_live_pass_ms,
                live_grace_ms=settings.batch_live_grace_ms,
            ),
            behavior_model=await self._behavior_model_info(),
        )

    async def _behavior_model_info(self) -> encoder_pb2.BehaviorModelInfo | None:
        """The current behavior model's record: absent before the first refresh (or without a store)."""
        if self._behavior_models is None:
            return None
        try:
            record = await self._behavior_models()
        except Exception as exc:  # the text model's description stays true while the store is away
            log_event(_log, "behavior_model_unreadable", logging.WARNING, error=repr(exc))
            return None
        if record is None:
            return None
        tuning = record.blend_tuning or {}
        weights = record.blend_weights
        if weights is None and isinstance(self._settings, BlendSettings):
            weights = self._settings.for_you_weights().as_record()
        weights = dict(weights or {})
        evidence_k = weights.pop("evidence_k", 0.0)
        return encoder_pb2.BehaviorModelInfo(
            version=record.version,
            blend_weights=weights,
            user_evidence_k=evidence_k,
            self_tuned=bool(tuning.get("self_tuned", 0.0)) and record.blend_weights is not None,
            validation_users=int(tuning.get("validation_users", 0)),
            validation_ndcg=tuning.get("ndcg", 0.0),
            defaults_ndcg=tuning.get("defaults_ndcg", 0.0),
            popularity_ndcg=tuning.get("popularity_ndcg", 0.0),
            event_type_weights=record.event_type_weights or {},
            content_map=record.content_map is not None,
            # The map's own record of the k it was fit with: older records hold no tuning figure for it.
            item_evidence_k=float((record.content_map or {}).get("item_evidence_k", 0.0)),
        )
