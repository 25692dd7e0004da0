"""The light client's security options on a real TLS server: CA, client certificate, token, token file.

The asyncio channels are pinned down by tests/shared/test_grpc_security.py; here the blocking
clients, and every call shape (unary, server stream, bidirectional stream) carrying the token.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, TypeVar

import grpc
import pytest

from recsys.shared.grpc_server import GrpcServer
from recsys.shared.settings import ConnectionSettings
from recsys_client import AsyncEncoderClient, ChannelSecurity, CredentialsError, EncoderClient, MonitorClient
from recsys_client.api import encoder_pb2, encoder_pb2_grpc, monitor_pb2, monitor_pb2_grpc
from recsys_client.messages import embed_request
from recsys_client.security import open_sync_channel
from tests.pki import Pki

READ_TOKEN = "read-token-aaaaaaaaaaaa"
ADMIN_TOKEN = "admin-token-bbbbbbbbbbb"
SERVICES = ["recsys.v1.EncoderService", "recsys.v1.MonitorService"]
T = TypeVar("T")


class Encoder(encoder_pb2_grpc.EncoderServiceServicer):
    """Embeds each text as [its length]: enough to see which answer belongs to which request."""

    async def Embed(self, request: Any, context: Any) -> encoder_pb2.EmbedResponse:
        return _embedded(request)

    async def EmbedStream(self, requests: Any, context: Any) -> AsyncIterator[encoder_pb2.EmbedStreamResponse]:
        async for request in requests:
            yield encoder_pb2.EmbedStreamResponse(response=_embedded(request.request))


def _embedded(request: encoder_pb2.EmbedRequest) -> encoder_pb2.EmbedResponse:
    vectors = [encoder_pb2.Embedding(values=[float(len(text))]) for text in request.texts]
    return encoder_pb2.EmbedResponse(embeddings=vectors, dimensions=1, precision=request.precision)


class Monitor(monitor_pb2_grpc.MonitorServiceServicer):
    def __init__(self) -> None:
        self.resets = 0

    async def GetDriftReport(self, request: Any, context: Any) -> monitor_pb2.GetDriftReportResponse:
        return monitor_pb2.GetDriftReportResponse(report=monitor_pb2.DriftReport(space=request.space))

    async def ResetReference(self, request: Any, context: Any) -> monitor_pb2.ResetReferenceResponse:
        self.resets += 1
        return monitor_pb2.ResetReferenceResponse(report=monitor_pb2.DriftReport(space=request.space))

    async def WatchAlerts(self, request: Any, context: Any) -> AsyncIterator[monitor_pb2.WatchAlertsResponse]:
        yield monitor_pb2.WatchAlertsResponse(alert=monitor_pb2.Alert(id="1-0"))


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    return Pki.create(tmp_path / "pki")


@pytest.fixture
async def serve() -> AsyncIterator[Callable[..., Any]]:
    servers: list[GrpcServer] = []

    async def start(**settings: Any) -> tuple[str, Monitor]:
        server = GrpcServer.from_settings("127.0.0.1", 0, -1, SERVICES, ConnectionSettings(**settings))
        monitor = Monitor()
        encoder_pb2_grpc.add_EncoderServiceServicer_to_server(Encoder(), server.server)
        monitor_pb2_grpc.add_MonitorServiceServicer_to_server(monitor, server.server)
        await server.start()
        servers.append(server)
        return f"127.0.0.1:{server.port}", monitor

    yield start
    for server in servers:
        await server.stop(0)


async def blocking(call: Callable[[], T]) -> T:
    """A blocking client's call, in a thread: the server runs on this test's event loop."""
    return await asyncio.to_thread(call)


def status_of(call: Callable[[], object]) -> grpc.StatusCode:
    with pytest.raises(grpc.RpcError) as raised:
        call()
    return raised.value.code()  # type: ignore[no-any-return]


async def test_a_blocking_client_calls_a_tls_server_with_its_token_in_every_call_shape(serve: Any, pki: Pki) -> None:
    address, monitor = await serve(
        grpc_tls_cert_file=pki.server_cert,
        grpc_tls_key_file=pki.server_key,
        auth_tokens=f"read:{READ_TOKEN},admin:{ADMIN_TOKEN}",
    )

    def calls() -> dict[str, Any]:
        reader = ChannelSecurity(ca_file=pki.ca_file, token=READ_TOKEN)
        with EncoderClient(address, reader) as encoder, MonitorClient(address, reader) as watcher:
            streamed = encoder.embed_stream([embed_request(["ab"]), embed_request(["abcd", "a"])])
            watch = watcher.watch_alerts()
            seen = {
                "embed": encoder.embed(["abc"]),
                "stream": [[list(e.values) for e in response.embeddings] for response in streamed],
                "alerts": [response.alert.id for response in watch],
                "reset by a reader": status_of(lambda: watcher.reset_reference("items.content")),
            }
        with MonitorClient(address, ChannelSecurity(ca_file=pki.ca_file)) as anonymous:
            seen["anonymous"] = status_of(anonymous.drift_report)
        with MonitorClient(address, ChannelSecurity(ca_file=pki.ca_file, token=ADMIN_TOKEN)) as admin:
            seen["reset by an admin"] = admin.reset_reference("items.content").space
        with MonitorClient(address, ChannelSecurity(token=READ_TOKEN)) as plaintext:
            seen["plaintext to a TLS port"] = status_of(plaintext.drift_report)
        return seen

    assert await blocking(calls) == {
        "embed": [[3.0]],
        "stream": [[[2.0]], [[4.0], [1.0]]],
        "alerts": ["1-0"],
        "reset by a reader": grpc.StatusCode.PERMISSION_DENIED,
        "anonymous": grpc.StatusCode.UNAUTHENTICATED,
        "reset by an admin": "items.content",
        "plaintext to a TLS port": grpc.StatusCode.UNAVAILABLE,
    }
    assert monitor.resets == 1


async def test_an_async_stream_in_both_directions_carries_the_token(serve: Any, pki: Pki) -> None:
    address, _ = await serve(
        grpc_tls_cert_file=pki.server_cert, grpc_tls_key_file=pki.server_key, auth_tokens=f"read:{READ_TOKEN}"
    )

    async def requests() -> AsyncIterator[encoder_pb2.EmbedRequest]:
        for texts in (["ab"], ["abcd", "a"]):
            yield embed_request(texts, precision="int8")

    async with AsyncEncoderClient(address, ChannelSecurity(ca_file=pki.ca_file, token=READ_TOKEN)) as encoder:
        answers = [response async for response in encoder.embed_stream(requests())]
    assert [[e.values[0] for e in answer.embeddings] for answer in answers] == [[2.0], [4.0, 1.0]]
    assert {answer.precision for answer in answers} == {encoder_pb2.PRECISION_INT8}


async def test_a_blocking_client_presents_its_certificate_to_an_mtls_server(serve: Any, pki: Pki) -> None:
    address, _ = await serve(
        grpc_tls_cert_file=pki.server_cert, grpc_tls_key_file=pki.server_key, grpc_tls_client_ca_file=pki.ca_file
    )
    cert, key = pki.client("shop")

    def calls() -> tuple[str, grpc.StatusCode]:
        with MonitorClient(address, ChannelSecurity(ca_file=pki.ca_file, cert_file=cert, key_file=key)) as shop:
            space = shop.drift_report("users.taste").space
        with MonitorClient(address, ChannelSecurity(ca_file=pki.ca_file)) as stranger:
            return space, status_of(stranger.drift_report)

    assert await blocking(calls) == ("users.taste", grpc.StatusCode.UNAVAILABLE)


async def test_a_blocking_client_reads_its_token_file_again_when_it_changes(serve: Any, tmp_path: Path) -> None:
    address, monitor = await serve(auth_tokens=f"read:{READ_TOKEN},admin:{ADMIN_TOKEN}")
    token_file = tmp_path / "token"
    token_file.write_text(READ_TOKEN + "\n")

    def calls() -> grpc.StatusCode:
        with MonitorClient(address, ChannelSecurity(token_file=token_file)) as client:
            refused = status_of(lambda: client.reset_reference("items.content"))
            token_file.write_text(ADMIN_TOKEN + "\n")  # a rotated Secret
            client.reset_reference("items.content")
        return refused

    assert await blocking(calls) is grpc.StatusCode.PERMISSION_DENIED
    assert monitor.resets == 1


def test_a_token_never_travels_in_plaintext_to_another_machine_on_a_blocking_channel_unless_allowed() -> None:
    with pytest.raises(CredentialsError, match="plaintext"):
        MonitorClient("encoder.shop.internal:50051", ChannelSecurity(token=READ_TOKEN))
    for address, security in (
        ("127.0.0.1:50051", ChannelSecurity(token=READ_TOKEN)),
        ("localhost:50051", ChannelSecurity(token=READ_TOKEN)),
        ("[::1]:50051", ChannelSecurity(token=READ_TOKEN)),
        ("encoder:50051", ChannelSecurity(token=READ_TOKEN, plaintext_token=True)),
        ("encoder:50051", ChannelSecurity(token=READ_TOKEN, tls=True)),
    ):
        open_sync_channel(address, security).close()
    with pytest.raises(CredentialsError, match="go together"):
        open_sync_channel("encoder:50051", ChannelSecurity(cert_file=Path("client.pem")))
    with pytest.raises(CredentialsError, match="cannot read the client token file"):
        open_sync_channel("127.0.0.1:50051", ChannelSecurity(token_file=Path("/nonexistent/token")))
