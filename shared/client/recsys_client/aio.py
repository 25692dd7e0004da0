"""Async clients of the three services (grpc.aio): every RPC of recsys.v1, with typed results.

Make and use a client inside the running event loop; `async with` closes its channel. Each takes a
ChannelSecurity for TLS, mTLS and a token; without one it connects in plaintext with no
credentials, as to a local server. Failed calls raise grpc.aio.AioRpcError with the status code and
the server's message.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Iterable, Sequence
from types import TracebackType
from typing import Protocol, Self

import grpc

from recsys_client.api import (
    encoder_pb2,
    encoder_pb2_grpc,
    monitor_pb2,
    monitor_pb2_grpc,
    recommender_pb2,
    recommender_pb2_grpc,
)
from recsys_client.messages import (
    CHANNEL_OPTIONS,
    Precision,
    Where,
    embed_request,
    for_you_request,
    search_items_request,
    similar_items_request,
)
from recsys_client.security import ChannelOptions, ChannelSecurity, open_channel


class AlertWatch(Protocol):
    """An open WatchAlerts stream: iterate it with `async for`; cancel() ends it."""

    def __aiter__(self) -> AsyncIterator[monitor_pb2.WatchAlertsResponse]: ...

    def cancel(self) -> bool: ...


class _Client:
    def __init__(self, address: str, security: ChannelSecurity | None = None, *, options: ChannelOptions = ()) -> None:
        """`address`: host:port (or any gRPC target); `options`: more gRPC channel options."""
        self.address = address
        self.channel: grpc.aio.Channel = open_channel(address, security, [*CHANNEL_OPTIONS, *options])

    async def close(self) -> None:
        await self.channel.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()


class EncoderClient(_Client):
    """Calls recsys.v1.EncoderService: Embed, EmbedStream, GetModelInfo."""

    def __init__(self, address: str, security: ChannelSecurity | None = None, *, options: ChannelOptions = ()) -> None:
        super().__init__(address, security, options=options)
        self.stub = encoder_pb2_grpc.EncoderServiceStub(self.channel)

    async def embed(
        self,
        texts: Sequence[str],
        *,
        normalize: bool = True,
        dimensions: int = 0,
        truncate: bool = True,
        timeout: float | None = 30.0,
    ) -> list[list[float]]:
        """The float32 embeddings of the texts, in their order."""
        response = await self.embed_raw(
            texts, normalize=normalize, dimensions=dimensions, truncate=truncate, timeout=timeout
        )
        return [list(e.values) for e in response.embeddings]

    async def embed_raw(
        self,
        texts: Sequence[str],
        *,
        normalize: bool = True,
        dimensions: int = 0,
        truncate: bool = True,
        precision: Precision = "float32",
        timeout: float | None = 30.0,
    ) -> encoder_pb2.EmbedResponse:
        """The whole Embed response: per text its vector (or quantized bytes), tokens read and truncation."""
        request = embed_request(
            texts, normalize=normalize, dimensions=dimensions, truncate=truncate, precision=precision
        )
        response: encoder_pb2.EmbedResponse = await self.stub.Embed(request, timeout=timeout)
        return response

    async def embed_stream(
        self,
        requests: Iterable[encoder_pb2.EmbedRequest] | AsyncIterable[encoder_pb2.EmbedRequest],
        *,
        timeout: float | None = None,
    ) -> AsyncIterator[encoder_pb2.EmbedResponse]:
        """EmbedStream: one response per request (see messages.embed_request), in request order."""

        async def outgoing() -> AsyncIterator[encoder_pb2.EmbedStreamRequest]:
            if isinstance(requests, AsyncIterable):
                async for request in requests:
                    yield encoder_pb2.EmbedStreamRequest(request=request)
            else:
                for request in requests:
                    yield encoder_pb2.EmbedStreamRequest(request=request)

        call = self.stub.EmbedStream(outgoing(), timeout=timeout)
        try:
            async for answer in call:
                yield answer.response
        finally:
            call.cancel()  # a caller that stops early ends the call instead of leaving it open

    async def model_info(self, *, timeout: float | None = 30.0) -> encoder_pb2.GetModelInfoResponse:
        """The loaded model (name, dimensions, max tokens, device) and the batching settings."""
        response: encoder_pb2.GetModelInfoResponse = await self.stub.GetModelInfo(
            encoder_pb2.GetModelInfoRequest(), timeout=timeout
        )
        return response


class RecommenderClient(_Client):
    """Calls recsys.v1.RecommenderService: SimilarItems, ForYou, SearchItems.

    `where` filters the items ({"category": "film", "tags": ["a", "b"], "attributes.year": {"gte": 1970}}),
    `exclude` leaves ids out, `controls` (messages.feed_controls) sets weights, diversity and paging.
    """

    def __init__(self, address: str, security: ChannelSecurity | None = None, *, options: ChannelOptions = ()) -> None:
        super().__init__(address, security, options=options)
        self.stub = recommender_pb2_grpc.RecommenderServiceStub(self.channel)

    async def similar_items(
        self,
        item_id: str,
        limit: int = 10,
        *,
        where: Where | None = None,
        exclude: Iterable[str] = (),
        controls: recommender_pb2.FeedControls | None = None,
        timeout: float | None = 30.0,
    ) -> recommender_pb2.SimilarItemsResponse:
        """Items like `item_id`, best first (NOT_FOUND for an unknown item)."""
        request = similar_items_request(item_id, limit, where, exclude, controls)
        response: recommender_pb2.SimilarItemsResponse = await self.stub.SimilarItems(request, timeout=timeout)
        return response

    async def for_you(
        self,
        user_id: str,
        limit: int = 10,
        *,
        where: Where | None = None,
        exclude: Iterable[str] = (),
        controls: recommender_pb2.FeedControls | None = None,
        timeout: float | None = 30.0,
    ) -> recommender_pb2.ForYouResponse:
        """The user's feed, best first; an unknown user gets popular items."""
        request = for_you_request(user_id, limit, where, exclude, controls)
        response: recommender_pb2.ForYouResponse = await self.stub.ForYou(request, timeout=timeout)
        return response

    async def search_items(
        self,
        text: str,
        limit: int = 10,
        *,
        where: Where | None = None,
        exclude: Iterable[str] = (),
        timeout: float | None = 30.0,
    ) -> recommender_pb2.SearchItemsResponse:
        """Items whose content matches a free-text query, best first."""
        request = search_items_request(text, limit, where, exclude)
        response: recommender_pb2.SearchItemsResponse = await self.stub.SearchItems(request, timeout=timeout)
        return response


class MonitorClient(_Client):
    """Calls recsys.v1.MonitorService: GetDriftReport, ListAnomalies, WatchAlerts, ResetReference."""

    def __init__(self, address: str, security: ChannelSecurity | None = None, *, options: ChannelOptions = ()) -> None:
        super().__init__(address, security, options=options)
        self.stub = monitor_pb2_grpc.MonitorServiceStub(self.channel)

    async def drift_report(
        self, space: str = "items.content", *, timeout: float | None = 60.0
    ) -> monitor_pb2.DriftReport:
        """The drift report of "items.content", "items.behavior" or "users.taste"."""
        request = monitor_pb2.GetDriftReportRequest(space=space)
        response: monitor_pb2.GetDriftReportResponse = await self.stub.GetDriftReport(request, timeout=timeout)
        return response.report

    async def anomalies(
        self, kind: str = "", limit: int = 100, space: str = "", *, timeout: float | None = 30.0
    ) -> list[monitor_pb2.Anomaly]:
        """The latest anomalies, newest first; `kind` and `space` narrow them (empty: all)."""
        request = monitor_pb2.ListAnomaliesRequest(kind=kind, limit=limit, space=space)
        response: monitor_pb2.ListAnomaliesResponse = await self.stub.ListAnomalies(request, timeout=timeout)
        return list(response.anomalies)

    def watch_alerts(
        self, after_id: str = "", event: str = "", space: str = "", *, timeout: float | None = None
    ) -> AlertWatch:
        """The alerts as they are published: after `after_id` ("0": every kept alert first; "": only new ones)."""
        request = monitor_pb2.WatchAlertsRequest(after_id=after_id, event=event, space=space)
        watch: AlertWatch = self.stub.WatchAlerts(request, timeout=timeout)
        return watch

    async def reset_reference(self, space: str, *, timeout: float | None = 60.0) -> monitor_pb2.DriftReport:
        """Accepts a change: the space's current window becomes its reference; returns the new report."""
        request = monitor_pb2.ResetReferenceRequest(space=space)
        response: monitor_pb2.ResetReferenceResponse = await self.stub.ResetReference(request, timeout=timeout)
        return response.report
