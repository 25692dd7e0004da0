"""How a client reaches a recsys server: TLS, a client certificate (mTLS) and a bearer token.

One ChannelSecurity describes it for both kinds of channel: `open_channel` (grpc.aio, for the async
clients) and `open_sync_channel` (blocking, for the sync clients). A token file is re-read when it
changes, so a rotated Secret needs no restart.
"""

from __future__ import annotations

import collections
import ipaddress
import urllib.parse
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc

from recsys_client.credentials import CredentialsError, TokenFile

ChannelOptions = Sequence[tuple[str, Any]]


@dataclass(frozen=True)
class ChannelSecurity:
    """How a client reaches a server: TLS (with a CA, and a client certificate for mTLS) and a token.

    A token is sent only over TLS or to this machine, unless `plaintext_token` says the network in
    between is trusted: a bearer token read off the wire is as good as the caller's own.
    """

    token: str = field(default="", repr=False)
    token_file: Path | None = None  # read at each call when changed, in place of `token` (rotation)
    tls: bool = False  # implied by any of the files below
    ca_file: Path | None = None  # None: the system's trusted CAs
    cert_file: Path | None = None
    key_file: Path | None = None
    server_name: str = ""  # the name the server's certificate must carry, when it is not the address's host
    plaintext_token: bool = False

    @property
    def uses_tls(self) -> bool:
        return bool(self.tls or self.ca_file or self.cert_file or self.key_file)

    @property
    def has_token(self) -> bool:
        return bool(self.token or self.token_file)

    def channel_credentials(self) -> grpc.ChannelCredentials | None:
        """TLS credentials from the files (None: plaintext); raises CredentialsError for unusable ones."""
        if not self.uses_tls:
            return None
        if bool(self.cert_file) != bool(self.key_file):
            raise CredentialsError("a client certificate and its key go together")
        try:
            return grpc.ssl_channel_credentials(
                root_certificates=self.ca_file.read_bytes() if self.ca_file else None,
                private_key=self.key_file.read_bytes() if self.key_file else None,
                certificate_chain=self.cert_file.read_bytes() if self.cert_file else None,
            )
        except OSError as exc:
            raise CredentialsError(f"cannot read a TLS file: {exc}") from None

    def token_source(self, address: str) -> Callable[[], str] | None:
        """Where each call's token comes from (None: no token); refuses a token that would travel in plaintext."""
        if not self.has_token:
            return None
        if not (self.uses_tls or self.plaintext_token or _host_is_local(address)):
            raise CredentialsError(
                f"a token for {address} would travel in plaintext: connect with TLS, or allow it with"
                " plaintext_token (RECSYS_CLIENT_PLAINTEXT_TOKEN for the services and the CLI) where the"
                " network in between is trusted"
            )
        if self.token_file is not None:
            return TokenFile(self.token_file)
        fixed = self.token
        return lambda: fixed

    def options(self, options: ChannelOptions = ()) -> list[tuple[str, Any]]:
        """The channel options with the server name override, when one is set."""
        result = list(options)
        if self.server_name:
            result.append(("grpc.ssl_target_name_override", self.server_name))
        return result


def _host_is_local(address: str) -> bool:
    if address.startswith("unix:"):
        return True
    host = urllib.parse.urlsplit(f"//{address.removeprefix('dns:///')}").hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _authorization(token: Callable[[], str]) -> tuple[str, str]:
    return ("authorization", f"Bearer {token()}")


# --- grpc.aio channels ------------------------------------------------------------------------------


class _AsyncBearerToken:
    """Adds `authorization: Bearer <token>` to a call's metadata."""

    def __init__(self, token: Callable[[], str]) -> None:
        self._token = token

    def _details(self, details: grpc.aio.ClientCallDetails) -> grpc.aio.ClientCallDetails:
        metadata = grpc.aio.Metadata(*(details.metadata or ()), _authorization(self._token))
        return grpc.aio.ClientCallDetails(
            details.method, details.timeout, metadata, details.credentials, details.wait_for_ready
        )


# grpc.aio files each interceptor under the first call shape it implements, so one class per shape.
class _UnaryUnaryToken(_AsyncBearerToken, grpc.aio.UnaryUnaryClientInterceptor):  # type: ignore[misc]
    async def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        return await continuation(self._details(details), request)


class _UnaryStreamToken(_AsyncBearerToken, grpc.aio.UnaryStreamClientInterceptor):  # type: ignore[misc]
    async def intercept_unary_stream(self, continuation: Any, details: Any, request: Any) -> Any:
        return await continuation(self._details(details), request)


class _StreamUnaryToken(_AsyncBearerToken, grpc.aio.StreamUnaryClientInterceptor):  # type: ignore[misc]
    async def intercept_stream_unary(self, continuation: Any, details: Any, requests: Any) -> Any:
        return await continuation(self._details(details), requests)


class _StreamStreamToken(_AsyncBearerToken, grpc.aio.StreamStreamClientInterceptor):  # type: ignore[misc]
    async def intercept_stream_stream(self, continuation: Any, details: Any, requests: Any) -> Any:
        return await continuation(self._details(details), requests)


_ASYNC_TOKEN_INTERCEPTORS = (_UnaryUnaryToken, _UnaryStreamToken, _StreamUnaryToken, _StreamStreamToken)


def open_channel(
    address: str, security: ChannelSecurity | None = None, options: ChannelOptions = ()
) -> grpc.aio.Channel:
    """A grpc.aio channel to `address` with the given security (create it inside the running event loop)."""
    security = security or ChannelSecurity()
    token = security.token_source(address)
    interceptors = [kind(token) for kind in _ASYNC_TOKEN_INTERCEPTORS] if token is not None else None
    credentials = security.channel_credentials()
    if credentials is None:
        return grpc.aio.insecure_channel(address, options=security.options(options), interceptors=interceptors)
    return grpc.aio.secure_channel(address, credentials, options=security.options(options), interceptors=interceptors)


# --- blocking channels ------------------------------------------------------------------------------


class _CallDetails(
    collections.namedtuple(
        "_CallDetails", ("method", "timeout", "metadata", "credentials", "wait_for_ready", "compression")
    ),
    grpc.ClientCallDetails,  # type: ignore[misc]
):
    """grpc.ClientCallDetails is abstract: the blocking interceptors hand the next step one of these."""


class _SyncBearerToken(
    grpc.UnaryUnaryClientInterceptor,  # type: ignore[misc]
    grpc.UnaryStreamClientInterceptor,  # type: ignore[misc]
    grpc.StreamUnaryClientInterceptor,  # type: ignore[misc]
    grpc.StreamStreamClientInterceptor,  # type: ignore[misc]
):
    """Adds `authorization: Bearer <token>` to every call of a blocking channel."""

    def __init__(self, token: Callable[[], str]) -> None:
        self._token = token

    def _details(self, details: Any) -> _CallDetails:
        return _CallDetails(
            details.method,
            details.timeout,
            [*(details.metadata or ()), _authorization(self._token)],
            details.credentials,
            details.wait_for_ready,
            getattr(details, "compression", None),
        )

    def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        return continuation(self._details(details), request)

    def intercept_unary_stream(self, continuation: Any, details: Any, request: Any) -> Any:
        return continuation(self._details(details), request)

    def intercept_stream_unary(self, continuation: Any, details: Any, requests: Any) -> Any:
        return continuation(self._details(details), requests)

    def intercept_stream_stream(self, continuation: Any, details: Any, requests: Any) -> Any:
        return continuation(self._details(details), requests)


def open_sync_channel(
    address: str, security: ChannelSecurity | None = None, options: ChannelOptions = ()
) -> grpc.Channel:
    """A blocking channel to `address` with the given security."""
    security = security or ChannelSecurity()
    token = security.token_source(address)
    credentials = security.channel_credentials()
    if credentials is None:
        channel = grpc.insecure_channel(address, options=security.options(options))
    else:
        channel = grpc.secure_channel(address, credentials, options=security.options(options))
    return grpc.intercept_channel(channel, _SyncBearerToken(token)) if token is not None else channel
