"""gRPC transport security and access control on the servers: TLS/mTLS, bearer tokens, roles.

The wire side of recsys.shared.access: servers describe each caller (token, verified certificate
names, loopback or not) and refuse what the policy refuses. Certificates and tokens come from files
and are re-read when they change (see recsys.shared.credential_files), so rotating a Kubernetes
Secret needs no restart. The client side (channels that present a token and verify the server) is
the light client's recsys_client.security; `client_security` configures it from RECSYS_CLIENT_*.
"""

from __future__ import annotations

import inspect
import ipaddress
import logging
import urllib.parse
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import grpc

from recsys.shared.access import (
    AccessPolicy,
    Caller,
    CredentialsError,
    Role,
    identity_names,
    parse_identity_roles,
    required_role,
)
from recsys.shared.credential_files import CertificateFiles, KeyPair, TokenSource
from recsys.shared.logs import log_event
from recsys.shared.request_ids import REQUEST_ID_KEY, request_id
from recsys.shared.settings import ConnectionSettings
from recsys_client.security import ChannelSecurity

_log = logging.getLogger(__name__)

_REFUSALS = {
    "unauthenticated": grpc.StatusCode.UNAUTHENTICATED,
    "permission_denied": grpc.StatusCode.PERMISSION_DENIED,
}
_IDENTITY_PROPERTIES = ("x509_common_name", "x509_subject_alternative_name")


def _is_loopback(peer: str) -> bool:
    """Whether gRPC's peer string ("ipv4:127.0.0.1:5000", "ipv6:%5B::1%5D:5000", "unix:...") is this machine."""
    kind, _, rest = urllib.parse.unquote(peer).partition(":")
    if kind == "unix":
        return True
    host = rest.rsplit(":", 1)[0].strip("[]") if kind in ("ipv4", "ipv6") else ""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)
    return bool(address.is_loopback or (mapped is not None and mapped.is_loopback))


def _bearer_token(metadata: Sequence[tuple[str, Any]] | None) -> tuple[str | None, bool]:
    """The token of `authorization: Bearer <token>` metadata, and whether the metadata was well formed."""
    for key, value in metadata or ():
        if key.lower() != "authorization":
            continue
        text = value.decode(errors="replace") if isinstance(value, bytes) else str(value)
        scheme, _, token = text.strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None, False
        return token.strip(), True
    return None, True


@dataclass
class ServerSecurity:
    """What a server accepts: its TLS key material (None: plaintext) and who may call which method."""

    tokens: TokenSource = field(default_factory=TokenSource)
    identity_roles: dict[str, Role] = field(default_factory=dict)
    certificates: CertificateFiles | None = None

    @classmethod
    def from_settings(cls, settings: ConnectionSettings) -> ServerSecurity:
        """Raises CredentialsError (naming the setting, never a secret) when the files cannot be used."""
        tls = (settings.grpc_tls_cert_file, settings.grpc_tls_key_file)
        if any(tls) and not all(tls):
            raise CredentialsError("RECSYS_GRPC_TLS_CERT_FILE and RECSYS_GRPC_TLS_KEY_FILE go together")
        if settings.grpc_tls_client_ca_file and not all(tls):
            raise CredentialsError("RECSYS_GRPC_TLS_CLIENT_CA_FILE (mTLS) needs a server certificate and key")
        certificates = None
        if settings.grpc_tls_cert_file and settings.grpc_tls_key_file:
            certificates = CertificateFiles(
                settings.grpc_tls_cert_file, settings.grpc_tls_key_file, settings.grpc_tls_client_ca_file
            )
        return cls(
            tokens=TokenSource(settings.auth_tokens_file, settings.auth_tokens.get_secret_value()),
            identity_roles=parse_identity_roles(settings.auth_client_roles),
            certificates=certificates,
        )

    def policy(self) -> AccessPolicy:
        return AccessPolicy(self.tokens.current(), self.identity_roles, credentials_required=self.tokens.configured)

    def reload(self) -> None:
        """Re-reads the token and certificate files at their next use (SIGHUP)."""
        self.tokens.reload()
        if self.certificates is not None:
            self.certificates.reload()

    def server_credentials(self) -> grpc.ServerCredentials | None:
        """TLS credentials that re-read the files at each new connection when they changed; None: plaintext."""
        files = self.certificates
        if files is None:
            return None

        def configuration(pair: KeyPair) -> Any:
            return grpc.ssl_server_certificate_configuration([(pair.private_key, pair.certificate)], pair.client_ca)

        def fetch() -> Any:
            # Runs in gRPC's threads at each handshake; None keeps the current configuration.
            pair = files.replacement()
            return configuration(pair) if pair is not None else None

        return grpc.dynamic_ssl_server_credentials(
            configuration(files.current), fetch, require_client_authentication=files.client_ca is not None
        )

    def log_mode(self, port: int) -> None:
        policy = self.policy()
        log_event(
            _log,
            "grpc_security",
            port=port,
            tls=self.certificates is not None,
            mtls=self.certificates is not None and self.certificates.client_ca is not None,
            tokens=len(policy.tokens),
            client_identities=len(self.identity_roles),
            anonymous="refused" if policy.configured else "read; state changes from loopback only",
        )


class AccessControl(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    """Refuses every call the policy refuses, before the request is decoded or the servicer runs."""

    def __init__(self, security: ServerSecurity) -> None:
        self.security = security

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        method = str(handler_call_details.method)
        # Open methods (health) are served untouched: no credentials file, good or bad, can fail a probe.
        if handler is None or required_role(method) is None:
            return handler
        token, well_formed = _bearer_token(handler_call_details.invocation_metadata)
        security = self.security

        async def admit(context: grpc.aio.ServicerContext) -> None:
            if not well_formed:
                decision_refusal, message = "unauthenticated", "authorization metadata must be 'Bearer <token>'"
            else:
                auth = context.auth_context() or {}
                caller = Caller(
                    token=token,
                    identities=identity_names(v for key in _IDENTITY_PROPERTIES for v in auth.get(key, ())),
                    loopback=_is_loopback(context.peer() or ""),
                )
                decision = security.policy().decide(method, caller)
                if decision.allowed:
                    return
                decision_refusal, message = decision.refusal, decision.message
            # The peer and method, never the token: logs are read by more people than hold credentials.
            rid = request_id(handler_call_details.invocation_metadata)
            context.set_trailing_metadata(((REQUEST_ID_KEY, rid),))
            log_event(
                _log,
                "rpc_refused",
                logging.WARNING,
                method=method,
                peer=context.peer(),
                refusal=decision_refusal,
                request_id=rid,
            )
            await context.abort(_REFUSALS[decision_refusal], message)

        return _guarded(handler, admit)


Admit = Callable[[grpc.aio.ServicerContext], Awaitable[None]]


def _guarded(handler: grpc.RpcMethodHandler, admit: Admit) -> grpc.RpcMethodHandler:
    """The same handler with `admit` run before its behavior."""
    decode, encode = handler.request_deserializer, handler.response_serializer
    if handler.unary_unary is not None:
        return grpc.unary_unary_rpc_method_handler(_guarded_call(handler.unary_unary, admit), decode, encode)
    if handler.unary_stream is not None:
        return grpc.unary_stream_rpc_method_handler(_guarded_stream(handler.unary_stream, admit), decode, encode)
    if handler.stream_unary is not None:
        return grpc.stream_unary_rpc_method_handler(_guarded_call(handler.stream_unary, admit), decode, encode)
    return grpc.stream_stream_rpc_method_handler(_guarded_stream(handler.stream_stream, admit), decode, encode)


def _guarded_call(behavior: Any, admit: Admit) -> Any:
    """A behavior that returns (one response, or None after writing with context.write), admitted first."""

    async def call(request: Any, context: grpc.aio.ServicerContext) -> Any:
        await admit(context)
        return await behavior(request, context)

    return call


def _guarded_stream(behavior: Any, admit: Admit) -> Any:
    """A streaming behavior with `admit` first, in the same shape: an async generator of responses, or a
    coroutine that writes them with context.write (grpc.aio accepts both)."""
    if not inspect.isasyncgenfunction(behavior):
        return _guarded_call(behavior, admit)

    async def responses(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
        await admit(context)
        async for response in behavior(request, context):
            yield response

    return responses


# --- clients ---------------------------------------------------------------------------------------


def client_security(settings: ConnectionSettings) -> ChannelSecurity:
    """How this process (a service calling another, or the CLI) reaches recsys servers: RECSYS_CLIENT_*."""
    return ChannelSecurity(
        token=settings.client_token.get_secret_value(),
        token_file=settings.client_token_file,
        tls=settings.client_tls,
        ca_file=settings.client_tls_ca_file,
        cert_file=settings.client_tls_cert_file,
        key_file=settings.client_tls_key_file,
        server_name=settings.client_tls_server_name,
        plaintext_token=settings.client_plaintext_token,
    )
