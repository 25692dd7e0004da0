"""gRPC server plumbing every service uses: health, reflection, error mapping, security, graceful shutdown."""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, TypeVar

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection, reflection_pb2, reflection_pb2_grpc
from prometheus_client import CollectorRegistry

from recsys.shared.errors import InvalidRequest, NotFound, Overloaded, Unavailable
from recsys.shared.grpc_limits import RequestLimits, ServerLimits
from recsys.shared.grpc_security import AccessControl, ServerSecurity
from recsys.shared.logs import log_event
from recsys.shared.request_ids import REQUEST_ID_KEY, request_id
from recsys.shared.rpc_metrics import RpcMetrics
from recsys.shared.settings import ConnectionSettings
from recsys_client.messages import MAX_MESSAGE_BYTES  # one limit for servers and clients

_log = logging.getLogger(__name__)


_STATUS = {
    InvalidRequest: grpc.StatusCode.INVALID_ARGUMENT,
    NotFound: grpc.StatusCode.NOT_FOUND,
    Overloaded: grpc.StatusCode.RESOURCE_EXHAUSTED,
    Unavailable: grpc.StatusCode.UNAVAILABLE,
}

Handler = TypeVar("Handler", bound=Callable[..., Awaitable[Any]])


def status_for(exc: BaseException) -> grpc.StatusCode | None:
    """The status code a domain error maps to, or None for an unexpected error."""
    for kind, code in _STATUS.items():
        if isinstance(exc, kind):
            return code
    return None


def maps_errors(method: Handler) -> Handler:
    """Decorates a unary servicer method: domain errors become their status code with the error's message."""

    @functools.wraps(method)
    async def wrapper(self: Any, request: Any, context: grpc.aio.ServicerContext) -> Any:
        try:
            return await method(self, request, context)
        except Exception as exc:
            code = status_for(exc)
            if code is None:
                rid = request_id(context.invocation_metadata())
                context.set_trailing_metadata(((REQUEST_ID_KEY, rid),))
                log_event(_log, "rpc_failed", logging.ERROR, method=method.__name__, request_id=rid, error=repr(exc))
                await context.abort(
                    grpc.StatusCode.INTERNAL,
                    f"internal error in {method.__name__} (request id {rid}); see the server log",
                )
            await context.abort(code, str(exc))  # type: ignore[arg-type]

    return wrapper  # type: ignore[return-value]


REFLECTION_V1 = "grpc.reflection.v1.ServerReflection"


def _serve_reflection(server: grpc.aio.Server, service_names: list[str]) -> None:
    """Server reflection in both protocols: v1alpha (grpcio-reflection) and v1, which current grpcurl and
    buf curl try first. grpcio-reflection ships only v1alpha; v1's messages are the same fields under
    another package, so the same servicer answers both with the same bytes."""
    # v1 is answered but not listed: no descriptor of it is in the pool, and a listed service that cannot be
    # described fails a client's --list-methods.
    servicer = reflection.aio.ReflectionServicer([*service_names, reflection.SERVICE_NAME])
    reflection_pb2_grpc.add_ServerReflectionServicer_to_server(servicer, server)
    v1 = grpc.stream_stream_rpc_method_handler(
        servicer.ServerReflectionInfo,
        request_deserializer=reflection_pb2.ServerReflectionRequest.FromString,
        response_serializer=reflection_pb2.ServerReflectionResponse.SerializeToString,
    )
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler(REFLECTION_V1, {"ServerReflectionInfo": v1}),)
    )


class GrpcServer:
    """An aio server with standard health and reflection; create it inside the running event loop.

    `security`: TLS and who may call what (default: plaintext, reads open, state changes from loopback
    only). `health_address`: a second, plaintext server with only the health service, for Kubernetes
    probes (they cannot speak TLS); it reports the same statuses. `registry`: where the per-call metrics go
    (grpc_server_*); a private one when not given.
    """

    def __init__(
        self,
        address: str,
        service_names: Iterable[str],
        limits: ServerLimits | None = None,
        security: ServerSecurity | None = None,
        health_address: str = "",
        registry: CollectorRegistry | None = None,
    ) -> None:
        self.address = address
        self.service_names = list(service_names)
        self.limits = limits or ServerLimits()
        self.security = security or ServerSecurity()
        self.health_address = health_address
        self.server = grpc.aio.server(
            # Metrics outermost, so refused calls are counted with their codes; then credentials: a caller who
            # may not call is refused before its request is even decoded.
            interceptors=[
                RpcMetrics(registry or CollectorRegistry()),
                AccessControl(self.security),
                RequestLimits(self.limits),
            ],
            # Past it a call is RESOURCE_EXHAUSTED before it starts: what calls in flight hold is bounded.
            maximum_concurrent_rpcs=self.limits.max_concurrent_rpcs,
            options=[
                # gRPC refuses far larger messages before buffering them; RequestLimits names the limit
                # for the ones in between.
                ("grpc.max_receive_message_length", 2 * self.limits.max_request_bytes),
                ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
            ],
        )
        self.health = health.aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        _serve_reflection(self.server, [*self.service_names, health.SERVICE_NAME])
        self.port = 0
        self.health_port = 0
        self._health_server: grpc.aio.Server | None = None

    @classmethod
    def from_settings(
        cls,
        host: str,
        port: int,
        health_port: int,
        service_names: Iterable[str],
        settings: ConnectionSettings,
        registry: CollectorRegistry | None = None,
    ) -> GrpcServer:
        """A service's server as its settings describe it (raises CredentialsError for unusable files)."""
        return cls(
            f"{host}:{port}",
            service_names,
            ServerLimits.from_settings(settings),
            ServerSecurity.from_settings(settings),
            health_address=f"{host}:{health_port}" if health_port >= 0 else "",
            registry=registry,
        )

    async def start(self) -> int:
        """Binds and starts serving (health NOT_SERVING until set_serving); returns the bound port."""
        credentials = self.security.server_credentials()
        if credentials is None:
            self.port = self.server.add_insecure_port(self.address)
        else:
            self.port = self.server.add_secure_port(self.address, credentials)
        await self.set_serving(False)
        await self.server.start()
        if self.health_address:
            self._health_server = grpc.aio.server()
            health_pb2_grpc.add_HealthServicer_to_server(self.health, self._health_server)
            self.health_port = self._health_server.add_insecure_port(self.health_address)
            await self._health_server.start()
        log_event(
            _log,
            "grpc_started",
            address=self.address,
            port=self.port,
            health_port=self.health_port or None,
            services=self.service_names,
        )
        self.security.log_mode(self.port)
        return self.port

    def reload_credentials(self) -> None:
        """Re-reads certificate and token files at their next use (SIGHUP)."""
        self.security.reload()

    async def set_serving(self, serving: bool) -> None:
        """Sets the overall status and every service's (see recsys.shared.health for finer reports)."""
        for name in ["", *self.service_names]:
            await self.set_status(name, serving)

    async def set_status(self, name: str, serving: bool) -> None:
        status = health_pb2.HealthCheckResponse.SERVING if serving else health_pb2.HealthCheckResponse.NOT_SERVING
        await self.health.set(name, status)

    async def stop(self, grace_s: float) -> None:
        """Refuses new calls, lets in-flight calls finish for up to grace_s."""
        await self.health.enter_graceful_shutdown()
        await self.server.stop(grace_s)
        if self._health_server is not None:
            await self._health_server.stop(0)
        log_event(_log, "grpc_stopped", port=self.port)
