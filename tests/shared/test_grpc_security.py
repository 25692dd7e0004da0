"""TLS, mTLS, tokens and roles on a real gRPC server with certificates made for the test."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shutil
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from recsys.shared.access import CredentialsError
from recsys.shared.grpc_security import _is_loopback
from recsys.shared.grpc_server import GrpcServer
from recsys.shared.settings import ConnectionSettings
from recsys_client.aio import MonitorClient
from recsys_client.api import monitor_pb2, monitor_pb2_grpc
from recsys_client.security import ChannelSecurity, open_channel
from tests.pki import Pki, write_server_cert

READ_TOKEN = "read-token-aaaaaaaaaaaa"
ADMIN_TOKEN = "admin-token-bbbbbbbbbbb"
SERVICE = "recsys.v1.MonitorService"


class Monitor(monitor_pb2_grpc.MonitorServiceServicer):
    """Answers reads, counts resets: enough to see which calls got through."""

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


@dataclass
class Served:
    server: GrpcServer
    monitor: Monitor

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.server.port}"


@pytest.fixture
async def serve() -> AsyncIterator[Any]:
    servers: list[GrpcServer] = []

    async def start(health_port: int = -1, host: str = "127.0.0.1", **settings: Any) -> Served:
        server = GrpcServer.from_settings(host, 0, health_port, [SERVICE], ConnectionSettings(**settings))
        monitor = Monitor()
        monitor_pb2_grpc.add_MonitorServiceServicer_to_server(monitor, server.server)
        await server.start()
        await server.set_serving(True)
        servers.append(server)
        return Served(server, monitor)

    yield start
    for server in servers:
        await server.stop(0)


async def _refusal(call: Any) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await call
    return raised.value.code(), raised.value.details() or ""


async def test_tls_serves_clients_that_trust_its_ca_and_refuses_plaintext_clients(serve: Any, pki: Pki) -> None:
    served = await serve(grpc_tls_cert_file=pki.server_cert, grpc_tls_key_file=pki.server_key)
    async with MonitorClient(served.address, ChannelSecurity(ca_file=pki.ca_file)) as client:
        assert (await client.drift_report("items.content")).space == "items.content"
    async with MonitorClient(served.address) as plaintext:
        code, _ = await _refusal(plaintext.drift_report())
    assert code is grpc.StatusCode.UNAVAILABLE


async def test_mtls_refuses_a_client_without_a_certificate_and_serves_one_signed_by_the_client_ca(
    serve: Any, pki: Pki
) -> None:
    served = await serve(
        grpc_tls_cert_file=pki.server_cert, grpc_tls_key_file=pki.server_key, grpc_tls_client_ca_file=pki.ca_file
    )
    async with MonitorClient(served.address, ChannelSecurity(ca_file=pki.ca_file)) as anonymous:
        code, _ = await _refusal(anonymous.drift_report())
    assert code is grpc.StatusCode.UNAVAILABLE
    stranger_pki = Pki.create(pki.folder / "stranger")
    cert, key = stranger_pki.client("reader")
    async with MonitorClient(served.address, ChannelSecurity(ca_file=pki.ca_file, cert_file=cert, key_file=key)) as c:
        code, _ = await _refusal(c.drift_report())
    assert code is grpc.StatusCode.UNAVAILABLE
    cert, key = pki.client("reader")
    async with MonitorClient(served.address, ChannelSecurity(ca_file=pki.ca_file, cert_file=cert, key_file=key)) as c:
        assert (await c.drift_report("items.content")).space == "items.content"


async def test_mtls_identities_map_to_roles(serve: Any, pki: Pki) -> None:
    served = await serve(
        grpc_tls_cert_file=pki.server_cert,
        grpc_tls_key_file=pki.server_key,
        grpc_tls_client_ca_file=pki.ca_file,
        auth_client_roles="ops=admin,shop=read",
    )
    ops_cert, ops_key = pki.client("ops")
    shop_cert, shop_key = pki.client("shop")
    shop = ChannelSecurity(ca_file=pki.ca_file, cert_file=shop_cert, key_file=shop_key)
    async with MonitorClient(served.address, shop) as client:
        await client.drift_report()
        code, message = await _refusal(client.reset_reference("items.content"))
    assert (code, message) == (
        grpc.StatusCode.PERMISSION_DENIED,
        "ResetReference needs the admin role; this caller has read",
    )
    ops = ChannelSecurity(ca_file=pki.ca_file, cert_file=ops_cert, key_file=ops_key)
    async with MonitorClient(served.address, ops) as client:
        await client.reset_reference("items.content")
    assert served.monitor.resets == 1


async def test_tokens_decide_who_gets_in_and_what_they_may_do(
    serve: Any, pki: Pki, caplog: pytest.LogCaptureFixture
) -> None:
    served = await serve(
        grpc_tls_cert_file=pki.server_cert,
        grpc_tls_key_file=pki.server_key,
        auth_tokens=f"read:{READ_TOKEN},admin:{ADMIN_TOKEN}",
    )

    def client(token: str = "") -> MonitorClient:
        return MonitorClient(served.address, ChannelSecurity(token=token, ca_file=pki.ca_file))

    caplog.set_level(logging.INFO)
    async with client() as anonymous:
        code, message = await _refusal(anonymous.drift_report())
    assert code is grpc.StatusCode.UNAUTHENTICATED and "Bearer" in message
    async with client("wrong-token-ccccccccccc") as wrong:
        code, message = await _refusal(wrong.reset_reference("items.content"))
    assert code is grpc.StatusCode.UNAUTHENTICATED and "not valid" in message
    async with client(READ_TOKEN) as reader:
        assert (await reader.drift_report("items.content")).space == "items.content"
        code, _ = await _refusal(reader.reset_reference("items.content"))
    assert code is grpc.StatusCode.PERMISSION_DENIED
    assert served.monitor.resets == 0
    async with client(ADMIN_TOKEN) as admin:
        await admin.reset_reference("items.content")
        assert (await admin.drift_report("x")).space == "x"
    assert served.monitor.resets == 1
    channel = open_channel(served.address, ChannelSecurity(ca_file=pki.ca_file))
    malformed = channel.unary_unary(
        f"/{SERVICE}/GetDriftReport",
        request_serializer=monitor_pb2.GetDriftReportRequest.SerializeToString,
        response_deserializer=monitor_pb2.GetDriftReportResponse.FromString,
    )
    code, message = await _refusal(
        malformed(monitor_pb2.GetDriftReportRequest(), metadata=(("authorization", f"Basic {ADMIN_TOKEN}"),))
    )
    await channel.close()
    assert code is grpc.StatusCode.UNAUTHENTICATED and "Bearer <token>" in message
    logged = "\n".join(record.getMessage() + str(record.__dict__) for record in caplog.records)
    assert "rpc_refused" in logged
    for secret in (READ_TOKEN, ADMIN_TOKEN, "wrong-token-ccccccccccc"):
        assert secret not in logged


async def test_a_rotated_tokens_file_takes_effect_without_a_restart(serve: Any, tmp_path: Path) -> None:
    tokens = tmp_path / "tokens"
    old, new = "old-admin-token-1111111", "new-admin-token-2222222"
    tokens.write_text(f"admin:{old}\n")
    served = await serve(auth_tokens_file=tokens)
    # Rotation: the new token is added next to the old, clients move over, then the old is removed.
    tokens.write_text(f"admin:{old}\nadmin:{new}\n")
    for token in (old, new):
        async with MonitorClient(served.address, ChannelSecurity(token=token)) as client:
            await client.reset_reference("items.content")
    tokens.write_text(f"admin:{new}\n")
    async with MonitorClient(served.address, ChannelSecurity(token=old)) as client:
        code, _ = await _refusal(client.drift_report())
    assert code is grpc.StatusCode.UNAUTHENTICATED
    async with MonitorClient(served.address, ChannelSecurity(token=new)) as client:
        await client.drift_report()
    assert served.monitor.resets == 2


async def test_a_server_stream_carries_the_token(serve: Any) -> None:
    served = await serve(auth_tokens=f"read:{READ_TOKEN}")
    async with MonitorClient(served.address, ChannelSecurity(token=READ_TOKEN)) as client:
        alerts = [response.alert.id async for response in client.watch_alerts()]
    assert alerts == ["1-0"]
    async with MonitorClient(served.address) as anonymous:
        stream = anonymous.watch_alerts()
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            async for _ in stream:
                pass
    assert raised.value.code() is grpc.StatusCode.UNAUTHENTICATED


async def test_health_answers_without_credentials_on_the_tls_port_and_on_the_plaintext_probe_port(
    serve: Any, pki: Pki
) -> None:
    served = await serve(
        health_port=0,
        grpc_tls_cert_file=pki.server_cert,
        grpc_tls_key_file=pki.server_key,
        auth_tokens=f"admin:{ADMIN_TOKEN}",
    )
    request = health_pb2.HealthCheckRequest(service=SERVICE)
    for channel in (
        open_channel(served.address, ChannelSecurity(ca_file=pki.ca_file)),
        grpc.aio.insecure_channel(f"127.0.0.1:{served.server.health_port}"),
    ):
        response = await health_pb2_grpc.HealthStub(channel).Check(request, timeout=10)
        await channel.close()
        assert response.status == health_pb2.HealthCheckResponse.SERVING
    probe = grpc.aio.insecure_channel(f"127.0.0.1:{served.server.health_port}")
    # The probe port serves health only: nothing else is reachable in plaintext.
    code, _ = await _refusal(
        probe.unary_unary(f"/{SERVICE}/GetDriftReport")(monitor_pb2.GetDriftReportRequest().SerializeToString())
    )
    await probe.close()
    assert code is grpc.StatusCode.UNIMPLEMENTED


async def test_certificates_replaced_on_disk_serve_the_next_connections(serve: Any, pki: Pki) -> None:
    served = await serve(grpc_tls_cert_file=pki.server_cert, grpc_tls_key_file=pki.server_key)
    async with MonitorClient(served.address, ChannelSecurity(ca_file=pki.ca_file)) as client:
        await client.drift_report()
    successor = Pki.create(pki.folder / "successor")
    write_server_cert(successor.ca, pki.server_cert, pki.server_key)
    async with MonitorClient(served.address, ChannelSecurity(ca_file=successor.ca_file)) as client:
        await client.drift_report()
    async with MonitorClient(served.address, ChannelSecurity(ca_file=pki.ca_file)) as client:
        code, _ = await _refusal(client.drift_report())
    assert code is grpc.StatusCode.UNAVAILABLE
    # A half-written replacement (a key that is not the certificate's) is refused; the last good pair serves on.
    pki.server_key.write_bytes(pki.ca.issue_cert("127.0.0.1").private_key_pem.bytes())
    async with MonitorClient(served.address, ChannelSecurity(ca_file=successor.ca_file)) as client:
        await client.drift_report()


def _network_address() -> str:
    """This machine's address on its network (not loopback): where a neighbour's calls come from."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.connect(("10.255.255.255", 9))  # nothing is sent: this only picks the outgoing interface
        address = str(probe.getsockname()[0])
    assert not address.startswith("127."), "this machine has no network interface besides loopback"
    return address


async def test_with_no_credentials_configured_the_network_may_read_but_only_loopback_may_reset(serve: Any) -> None:
    served = await serve(host="0.0.0.0")
    from_network = f"{_network_address()}:{served.server.port}"
    async with MonitorClient(from_network) as neighbour:
        assert (await neighbour.drift_report("items.content")).space == "items.content"
        code, message = await _refusal(neighbour.reset_reference("items.content"))
    assert code is grpc.StatusCode.PERMISSION_DENIED and "own machine" in message
    assert served.monitor.resets == 0
    async with MonitorClient(served.address) as local:
        await local.reset_reference("items.content")
    assert served.monitor.resets == 1


def recsys_call(*args: str) -> subprocess.CompletedProcess[str]:
    """`recsys call ...` in a process of its own, as an operator runs it."""
    command = [sys.executable, "-m", "recsys.cli.main", "call", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


async def test_the_cli_calls_over_tls_with_a_token_and_prints_plain_refusals(serve: Any, pki: Pki) -> None:
    served = await serve(
        grpc_tls_cert_file=pki.server_cert,
        grpc_tls_key_file=pki.server_key,
        auth_tokens=f"read:{READ_TOKEN}",
    )
    request = json.dumps({"space": "items.content"})
    tls = ["--ca", str(pki.ca_file)]
    ok = await asyncio.to_thread(recsys_call, served.address, "GetDriftReport", request, *tls, "--token", READ_TOKEN)
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["report"]["space"] == "items.content"
    denied = await asyncio.to_thread(
        recsys_call, served.address, "ResetReference", request, *tls, "--token", READ_TOKEN
    )
    assert denied.returncode == 1
    assert denied.stderr.strip() == "PERMISSION_DENIED: ResetReference needs the admin role; this caller has read"


async def test_buf_curl_calls_through_tls_with_a_token_using_reflection(serve: Any, pki: Pki) -> None:
    """The README's grpcurl-style call: reflection and the method both need the token."""
    buf = shutil.which("buf")
    assert buf, "buf is needed (make setup installs it under .venv/buf)"
    served = await serve(
        grpc_tls_cert_file=pki.server_cert, grpc_tls_key_file=pki.server_key, auth_tokens=f"read:{READ_TOKEN}"
    )
    url = f"https://{served.address}/{SERVICE}/GetDriftReport"

    def curl(*headers: str) -> subprocess.CompletedProcess[str]:
        command = [buf, "curl", "--protocol", "grpc", "--cacert", str(pki.ca_file), *headers]
        return subprocess.run(
            [*command, "-d", '{"space": "items.content"}', url], capture_output=True, text=True, timeout=60, check=False
        )

    bearer = f"authorization: Bearer {READ_TOKEN}"
    answered = await asyncio.to_thread(curl, "--header", bearer, "--reflect-header", "*")
    assert answered.returncode == 0, answered.stderr
    assert json.loads(answered.stdout)["report"]["space"] == "items.content"
    # Reflection may describe the API to a token holder; the call itself still needs the token.
    refused = await asyncio.to_thread(curl, "--reflect-header", bearer)
    assert refused.returncode != 0 and "unauthenticated" in refused.stderr.lower(), refused.stderr
    anonymous = await asyncio.to_thread(curl)
    assert anonymous.returncode != 0


NODE_CLIENT = Path(__file__).resolve().parents[1] / "node" / "secure_call.js"
NODE_MODULES = Path(__file__).resolve().parents[2] / ".venv" / "node" / "node_modules"


async def test_the_readme_node_client_calls_with_mtls_and_a_token(serve: Any, pki: Pki) -> None:
    node = shutil.which("node")
    assert node and NODE_MODULES.is_dir(), "node and @grpc/grpc-js are needed (make setup installs them)"
    served = await serve(
        grpc_tls_cert_file=pki.server_cert,
        grpc_tls_key_file=pki.server_key,
        grpc_tls_client_ca_file=pki.ca_file,
        auth_tokens=f"read:{READ_TOKEN}",
    )
    cert, key = pki.client("shop")

    def call(token: str) -> subprocess.CompletedProcess[str]:
        arguments = [node, str(NODE_CLIENT), served.address, str(pki.ca_file), token, str(cert), str(key)]
        environment = {**os.environ, "NODE_PATH": str(NODE_MODULES)}
        return subprocess.run(arguments, capture_output=True, text=True, timeout=60, check=False, env=environment)

    answered = await asyncio.to_thread(call, READ_TOKEN)
    assert answered.returncode == 0, answered.stderr
    assert json.loads(answered.stdout)["report"]["space"] == "items.content"
    refused = await asyncio.to_thread(call, "wrong-token-ccccccccccc")
    # (node warns on stderr first that an IP address is not a TLS server name)
    assert refused.returncode == 1 and refused.stderr.splitlines()[-1].startswith("UNAUTHENTICATED: "), refused.stderr


@pytest.mark.parametrize(
    ("peer", "local"),
    [
        ("ipv4:127.0.0.1:5000", True),
        ("ipv4:127.8.9.1:5000", True),
        ("ipv6:%5B::1%5D:40002", True),  # how grpc 1.85 reports ::1
        ("ipv6:[::1]:40002", True),
        ("unix:/run/recsys.sock", True),
        ("ipv4:192.0.2.2:5000", False),
        ("ipv6:%5Bfd00::2%5D:5000", False),
        ("ipv6:%5B::ffff:10.0.0.1%5D:5000", False),
        ("unix-abstract:x", False),
        ("", False),
    ],
)
def test_loopback_is_recognised_in_every_form_grpc_reports_and_nothing_else(peer: str, local: bool) -> None:
    assert _is_loopback(peer) is local


async def test_a_token_never_travels_in_plaintext_to_another_machine_unless_allowed() -> None:
    with pytest.raises(CredentialsError, match="plaintext"):
        open_channel("encoder.shop.internal:50051", ChannelSecurity(token=READ_TOKEN))
    for allowed in (
        ("127.0.0.1:50051", ChannelSecurity(token=READ_TOKEN)),
        ("localhost:50051", ChannelSecurity(token=READ_TOKEN)),
        ("encoder:50051", ChannelSecurity(token=READ_TOKEN, plaintext_token=True)),
        ("encoder:50051", ChannelSecurity(token=READ_TOKEN, tls=True)),
    ):
        await open_channel(*allowed).close()
    with pytest.raises(CredentialsError, match="go together"):
        open_channel("encoder:50051", ChannelSecurity(key_file=Path("client.key")))


async def test_a_client_reads_its_token_file_again_when_it_changes(serve: Any, tmp_path: Path) -> None:
    served = await serve(auth_tokens=f"read:{READ_TOKEN},admin:{ADMIN_TOKEN}")
    token_file = tmp_path / "token"
    token_file.write_text(READ_TOKEN + "\n")
    async with MonitorClient(served.address, ChannelSecurity(token_file=token_file)) as client:
        code, _ = await _refusal(client.reset_reference("items.content"))
        assert code is grpc.StatusCode.PERMISSION_DENIED
        token_file.write_text(ADMIN_TOKEN + "\n")
        await client.reset_reference("items.content")
    assert served.monitor.resets == 1


async def test_health_watch_streams_on_the_guarded_port_without_credentials(serve: Any) -> None:
    served = await serve(auth_tokens=f"admin:{ADMIN_TOKEN}")
    async with grpc.aio.insecure_channel(served.address) as channel:
        watch = health_pb2_grpc.HealthStub(channel).Watch(health_pb2.HealthCheckRequest(service=SERVICE))
        first = await watch.read()
        watch.cancel()
    assert first.status == health_pb2.HealthCheckResponse.SERVING


@pytest.mark.parametrize("protocol", ["grpc-v1", "grpc-v1alpha"])
async def test_buf_curl_lists_the_services_through_either_reflection_protocol(serve: Any, protocol: str) -> None:
    buf = shutil.which("buf")
    assert buf, "buf is needed (make setup installs it under .venv/buf)"
    served = await serve()
    command = [buf, "curl", "--protocol", "grpc", "--http2-prior-knowledge", "--reflect-protocol", protocol]
    listed = await asyncio.to_thread(
        subprocess.run,
        [*command, "--list-methods", f"http://{served.address}"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert listed.returncode == 0, listed.stderr
    assert f"{SERVICE}/GetDriftReport" in listed.stdout.split()
