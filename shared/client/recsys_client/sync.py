"""Blocking clients of the three services: every RPC of recsys.v1, with typed results.

The same methods as recsys_client.aio, without `await`; `with` closes the channel. Safe to share
between threads (one channel multiplexes their calls). Failed calls raise grpc.RpcError with the
status code (`code()`) and the server's message (`details()`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
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
from recsys_client.security import ChannelOptions, ChannelSecurity, open_sync_channel


class AlertWatch(Protocol):
    """An open WatchAlerts stream: iterate it (each next() blocks until an alert arrives); cancel() ends it."""

    def __iter__(self) -> Iterator[monitor_pb2.WatchAlertsResponse]: ...

    def __next__(self) -> monitor_pb2.WatchAlertsResponse: ...

    def cancel(self) -> bool: ...


class _Client:
    def __init__(self, address: str, security: ChannelSecurity | None = None, *, options: ChannelOptions = ()) -> None:
        """`address`: host:port (or any gRPC target); `options`: more gRPC channel options."""
        self.address = address
        self.channel: grpc.Channel = open_sync_channel(address, security, [*CHANNEL_OPTIONS, *options])

    def close(self) -> None:
        self.channel.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class EncoderClient(_Client):
    """Calls recsys.v1.EncoderService: Embed, EmbedStream, GetModelInfo."""

    def __init__(self, address: str, security: ChannelSecurity | None = None, *, options: ChannelOptions = ()) -> None:
        super().__init__(address, security, options=options)
        self.stub = encoder_pb2_grpc.EncoderServiceStub(self.channel)

    def embed(
        self,
        texts: Sequence[str],
        *,
        normalize: bool = True,
        dimensions: int = 0,
        truncate: bool = True,
        timeout: float | None = 30.0,
    ) -> list[list[float]]:
        """The float32 embeddings of the texts, in their order."""
        response = self.embed_raw(texts, normalize=normalize, dimensions=dimensions, truncate=truncate, timeout=timeout)
        return [list(e.values) for e in response.embeddings]

    def embed_raw(
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
        response: encoder_pb2.EmbedResponse = self.stub.Embed(request, timeout=timeout)
        return response

    def embed_stream(
        self, requests: Iterable[encoder_pb2.EmbedRequest], *, timeout: float | None = None
    ) -> Iterator[encoder_pb2.EmbedResponse]:
        """EmbedStream: one response per request (see messages.embed_request), in request order."""
        call = self.stub.EmbedStream(
            (encoder_pb2.EmbedStreamRequest(request=request) for request in requests), timeout=timeout
        )
        try:
            for answer in call:
                yield answer.response
        finally:
            call.cancel()  # a caller that stops early ends the call instead of leaving it open

    def model_info(self, *, timeout: float | None = 30.0) -> encoder_pb2.GetModelInfoResponse:
        """The loaded model (name, dimensions, max tokens, device) and the batching settings."""
        response: encoder_pb2.GetModelInfoResponse = self.stub.GetModelInfo(
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

    def similar_items(
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
        response: recommender_pb2.SimilarItemsResponse = self.stub.SimilarItems(request, timeout=timeout)
        return response

    def for_you(
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
        response: recommender_pb2.ForYouResponse = self.stub.ForYou(request, timeout=timeout)
        return response

    def search_items(
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
        response: recommender_pb2.SearchItemsResponse = self.stub.SearchItems(request, timeout=timeout)
        return response


class MonitorClient(_Client):
    """Calls recsys.v1.MonitorService: GetDriftReport, ListAnomalies, WatchAlerts, ResetReference."""

    def __init__(self, address: str, security: ChannelSecurity | None = None, *, options: ChannelOptions = ()) -> None:
        super().__init__(address, security, options=options)
        self.stub = monitor_pb2_grpc.MonitorServiceStub(self.channel)

    def drift_report(self, space: str = "items.content", *, timeout: float | None = 60.0) -> monitor_pb2.DriftReport:
        """The drift report of "items.content", "items.behavior" or "users.taste"."""
        request = monitor_pb2.GetDriftReportRequest(space=space)
        response: monitor_pb2.GetDriftReportResponse = self.stub.GetDriftReport(request, timeout=timeout)
        return response.report

    def anomalies(
        self, kind: str = "", limit: int = 100, space: str = "", *, timeout: float | None = 30.0
    ) -> list[monitor_pb2.Anomaly]:
        """The latest anomalies, newest first; `kind` and `space` narrow them (empty: all)."""
        request = monitor_pb2.ListAnomaliesRequest(kind=kind, limit=limit, space=space)
        response: monitor_pb2.ListAnomaliesResponse = self.stub.ListAnomalies(request, timeout=timeout)
        return list(response.anomalies)

    def watch_alerts(
        self, after_id: str = "", event: str = "", space: str = "", *, timeout: float | None = None
    ) -> AlertWatch:
        """The alerts as they are published: after `after_id` ("0": every kept alert first; "": only new ones)."""
        request = monitor_pb2.WatchAlertsRequest(after_id=after_id, event=event, space=space)
        watch: AlertWatch = self.stub.WatchAlerts(request, timeout=timeout)
        return watch

    def reset_reference(self, space: str, *, timeout: float | None = 60.0) -> monitor_pb2.DriftReport:
        """Accepts a change: the space's current window becomes its reference; returns the new report."""
        request = monitor_pb2.ResetReferenceRequest(space=space)
        response: monitor_pb2.ResetReferenceResponse = self.stub.ResetReference(request, timeout=timeout)
        return response.report
