"""What one gRPC request may cost a process, checked on its wire bytes before it is decoded.

Every method's requests reach the servicer through this interceptor as raw bytes first:
- a request above the size limit is RESOURCE_EXHAUSTED before a byte of it is parsed;
- the bytes of all requests being handled in the process share one budget: past it a request is
  RESOURCE_EXHAUSTED (retry later) instead of piling up in memory;
- bytes that are not a valid message are INVALID_ARGUMENT naming the message type, not an
  UNKNOWN error carrying a Python class name.
With the server's cap on concurrent calls, the memory requests can take is bounded by settings,
whatever a client sends.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import grpc

from recsys.shared.settings import ConnectionSettings


@dataclass(frozen=True)
class ServerLimits:
    """The bounds of one gRPC server."""

    max_request_bytes: int = 4 * 1024 * 1024
    max_inflight_bytes: int = 64 * 1024 * 1024
    max_concurrent_rpcs: int = 1024

    @classmethod
    def from_settings(cls, settings: ConnectionSettings) -> ServerLimits:
        return cls(
            max_request_bytes=settings.grpc_max_request_bytes,
            max_inflight_bytes=settings.grpc_max_inflight_bytes,
            max_concurrent_rpcs=settings.grpc_max_concurrent_rpcs,
        )


class RequestBudget:
    """Bytes of requests being handled right now, against a cap (one event loop: no lock needed)."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.in_use = 0

    def take(self, size: int) -> bool:
        if self.in_use + size > self.max_bytes and self.in_use > 0:
            return False
        self.in_use += size
        return True

    def give_back(self, size: int) -> None:
        self.in_use -= size


Decoder = Callable[[bytes], Any]


def _message_name(decode: Decoder | None) -> str:
    owner = getattr(decode, "__self__", None)
    descriptor = getattr(owner, "DESCRIPTOR", None)
    return str(getattr(descriptor, "full_name", "message"))


class RequestLimits(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    """Wraps every method so that its requests are sized, budgeted and decoded here."""

    def __init__(self, limits: ServerLimits) -> None:
        self.limits = limits
        self.budget = RequestBudget(limits.max_inflight_bytes)

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        # The project's own APIs; health and reflection take tiny requests, capped by the server's message limit.
        ours = str(handler_call_details.method).startswith("/recsys.")
        if handler is None or handler.request_deserializer is None or not ours:
            return handler
        method = str(handler_call_details.method).rsplit("/", 1)[-1]
        decode: Decoder = handler.request_deserializer
        name = _message_name(decode)
        limit = self.limits.max_request_bytes
        budget = self.budget

        async def read(raw: bytes, context: grpc.aio.ServicerContext) -> Any:
            if len(raw) > limit:
                await context.abort(
                    grpc.StatusCode.RESOURCE_EXHAUSTED,
                    f"{method} request of {len(raw)} bytes is over the limit of {limit} bytes",
                )
            try:
                return decode(raw)
            except Exception:  # protobuf says DecodeError; anything it raises means the same
                await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"the request is not a valid {name} message")

        async def taken(raw: bytes, context: grpc.aio.ServicerContext) -> None:
            if not budget.take(len(raw)):
                await context.abort(
                    grpc.StatusCode.RESOURCE_EXHAUSTED,
                    f"the server is busy: {budget.in_use} bytes of requests in flight (at most {budget.max_bytes});"
                    " retry shortly",
                )

        serializer = handler.response_serializer
        if handler.unary_unary is not None:
            inner_unary = handler.unary_unary

            async def unary_unary(raw: bytes, context: grpc.aio.ServicerContext) -> Any:
                request = await read(raw, context)
                await taken(raw, context)
                try:
                    return await inner_unary(request, context)
                finally:
                    budget.give_back(len(raw))

            return grpc.unary_unary_rpc_method_handler(unary_unary, response_serializer=serializer)
        if handler.unary_stream is not None:
            inner_stream = handler.unary_stream

            async def unary_stream(raw: bytes, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
                request = await read(raw, context)
                async for response in inner_stream(request, context):
                    yield response

            return grpc.unary_stream_rpc_method_handler(unary_stream, response_serializer=serializer)
        if handler.stream_stream is not None:
            inner_both = handler.stream_stream

            async def stream_stream(
                requests: AsyncIterator[bytes], context: grpc.aio.ServicerContext
            ) -> AsyncIterator[Any]:
                async def decoded() -> AsyncIterator[Any]:
                    async for raw in requests:
                        yield await read(raw, context)

                async for response in inner_both(decoded(), context):
                    yield response

            return grpc.stream_stream_rpc_method_handler(stream_stream, response_serializer=serializer)
        return handler
