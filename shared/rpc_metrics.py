"""Prometheus metrics of every gRPC call a server takes: calls started, handled by status code, and latency.

The names and labels are those of go-grpc-prometheus and py-grpc-prometheus (`grpc_server_handled_total`
with `grpc_service`, `grpc_method`, `grpc_type`, `grpc_code`), so dashboards and alerts written for
them read recsys too. Those libraries instrument only synchronous servers; the services are grpc.aio,
hence this interceptor.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
from prometheus_client import CollectorRegistry, Counter, Histogram

# From a cached lookup (~1 ms) to a SearchItems that waits on the encoder under load (seconds).
LATENCY_BUCKETS_S = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

_LABELS = ["grpc_type", "grpc_service", "grpc_method"]


def split_method(full_method: str) -> tuple[str, str]:
    """("/recsys.v1.RecommenderService/ForYou") -> ("recsys.v1.RecommenderService", "ForYou")."""
    service, _, method = full_method.lstrip("/").rpartition("/")
    return service, method


def rpc_type(handler: grpc.RpcMethodHandler) -> str:
    if handler.unary_unary is not None:
        return "unary"
    if handler.unary_stream is not None:
        return "server_stream"
    if handler.stream_unary is not None:
        return "client_stream"
    return "bidi_stream"


class RpcMetrics(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    """Counts and times every call, refused ones included when it runs first among the interceptors."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.started = Counter("grpc_server_started", "gRPC calls started on the server", _LABELS, registry=registry)
        self.handled = Counter(
            "grpc_server_handled",
            "gRPC calls completed on the server, by status code",
            [*_LABELS, "grpc_code"],
            registry=registry,
        )
        self.handling_seconds = Histogram(
            "grpc_server_handling_seconds",
            "Time from a call's start to its status, on the server (streams: the whole stream)",
            _LABELS,
            buckets=LATENCY_BUCKETS_S,
            registry=registry,
        )

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        if handler is None:
            return None  # an unknown method: grpc answers UNIMPLEMENTED; an unbounded label set is not wanted
        labels = (rpc_type(handler), *split_method(str(handler_call_details.method)))
        call = _Observed(self, labels)
        decode, encode = handler.request_deserializer, handler.response_serializer
        if handler.unary_unary is not None:
            return grpc.unary_unary_rpc_method_handler(call.returning(handler.unary_unary), decode, encode)
        if handler.unary_stream is not None:
            return grpc.unary_stream_rpc_method_handler(call.streaming(handler.unary_stream), decode, encode)
        if handler.stream_unary is not None:
            return grpc.stream_unary_rpc_method_handler(call.returning(handler.stream_unary), decode, encode)
        return grpc.stream_stream_rpc_method_handler(call.streaming(handler.stream_stream), decode, encode)


class _Observed:
    """Wraps one method's behavior so that each call is counted when it starts and when it ends."""

    def __init__(self, metrics: RpcMetrics, labels: tuple[str, str, str]) -> None:
        self._metrics = metrics
        self._labels = labels

    def _begin(self) -> float:
        self._metrics.started.labels(*self._labels).inc()
        return time.perf_counter()

    def _end(self, began: float, context: grpc.aio.ServicerContext, error: BaseException | None) -> None:
        self._metrics.handling_seconds.labels(*self._labels).observe(time.perf_counter() - began)
        self._metrics.handled.labels(*self._labels, status_name(context, error)).inc()

    def returning(self, behavior: Any) -> Any:
        """A behavior that returns (one response, or None after writing with context.write)."""

        async def call(request: Any, context: grpc.aio.ServicerContext) -> Any:
            began = self._begin()
            try:
                response = await behavior(request, context)
            except BaseException as exc:
                self._end(began, context, exc)
                raise
            self._end(began, context, None)
            return response

        return call

    def streaming(self, behavior: Any) -> Any:
        """An async generator of responses, or a coroutine that writes them (grpc.aio accepts both)."""
        if not inspect.isasyncgenfunction(behavior):
            return self.returning(behavior)

        async def responses(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
            began = self._begin()
            try:
                async for response in behavior(request, context):
                    yield response
            except BaseException as exc:
                self._end(began, context, exc)
                raise
            self._end(began, context, None)

        return responses


def status_name(context: grpc.aio.ServicerContext, error: BaseException | None) -> str:
    """The call's status code name: what the servicer set or aborted with; UNKNOWN for an escaped error."""
    code = context.code()
    if isinstance(code, grpc.StatusCode):
        return code.name
    if isinstance(error, asyncio.CancelledError | GeneratorExit):
        return grpc.StatusCode.CANCELLED.name  # the caller went away or the deadline passed
    if error is not None:
        return grpc.StatusCode.UNKNOWN.name  # grpc answers an uncaught exception with UNKNOWN
    return grpc.StatusCode.OK.name
