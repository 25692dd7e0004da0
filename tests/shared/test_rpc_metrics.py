"""Every call a GrpcServer takes is counted by method and status code and timed, refusals included."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from recsys.shared.grpc_server import GrpcServer
from recsys.shared.rpc_metrics import split_method
from recsys.shared.settings import ConnectionSettings

SERVICE = "recsys.v1.ProbeService"
ADMIN_TOKEN = "admin-token-aaaaaaaaaaaaaaaa"


async def _ok(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
    return request


async def _missing(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
    await context.abort(grpc.StatusCode.NOT_FOUND, "no such thing")
    return b""


async def _crash(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
    raise RuntimeError("a bug")


async def _three(request: bytes, context: grpc.aio.ServicerContext) -> AsyncIterator[bytes]:
    for _ in range(3):
        yield request


def _handlers() -> grpc.GenericRpcHandler:
    return grpc.method_handlers_generic_handler(
        SERVICE,
        {
            "Ok": grpc.unary_unary_rpc_method_handler(_ok),
            "Missing": grpc.unary_unary_rpc_method_handler(_missing),
            "Crash": grpc.unary_unary_rpc_method_handler(_crash),
            "Three": grpc.unary_stream_rpc_method_handler(_three),
        },
    )


def samples(registry: CollectorRegistry) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    found = {}
    for family in text_string_to_metric_families(generate_latest(registry).decode()):
        for sample in family.samples:
            found[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return found


def handled(found: dict[Any, float], method: str, code: str, kind: str = "unary") -> float:
    labels = {"grpc_service": SERVICE, "grpc_method": method, "grpc_type": kind, "grpc_code": code}
    return found.get(("grpc_server_handled_total", frozenset(labels.items())), 0.0)


@pytest.fixture
async def server() -> AsyncIterator[tuple[GrpcServer, CollectorRegistry]]:
    registry = CollectorRegistry()
    settings = ConnectionSettings(auth_tokens=f"admin:{ADMIN_TOKEN}")  # type: ignore[call-arg]
    served = GrpcServer.from_settings("127.0.0.1", 0, -1, [SERVICE], settings, registry)
    served.server.add_generic_rpc_handlers((_handlers(),))
    await served.start()
    yield served, registry
    await served.stop(0)


async def test_calls_are_counted_by_method_and_status_code_and_timed(
    server: tuple[GrpcServer, CollectorRegistry],
) -> None:
    served, registry = server
    authorized = (("authorization", f"Bearer {ADMIN_TOKEN}"),)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{served.port}") as channel:

        def unary(method: str) -> Any:
            return channel.unary_unary(f"/{SERVICE}/{method}")

        for _ in range(2):
            assert await unary("Ok")(b"x", metadata=authorized) == b"x"
        for method, code in (("Missing", grpc.StatusCode.NOT_FOUND), ("Crash", grpc.StatusCode.UNKNOWN)):
            with pytest.raises(grpc.aio.AioRpcError) as raised:
                await unary(method)(b"x", metadata=authorized)
            assert raised.value.code() is code
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await unary("Ok")(b"x")  # no token
        assert refused.value.code() is grpc.StatusCode.UNAUTHENTICATED
        stream = channel.unary_stream(f"/{SERVICE}/Three")(b"y", metadata=authorized)
        assert [response async for response in stream] == [b"y"] * 3

    found = samples(registry)
    assert handled(found, "Ok", "OK") == 2
    assert handled(found, "Ok", "UNAUTHENTICATED") == 1
    assert handled(found, "Missing", "NOT_FOUND") == 1
    assert handled(found, "Crash", "UNKNOWN") == 1
    assert handled(found, "Three", "OK", kind="server_stream") == 1
    ok = frozenset({"grpc_service": SERVICE, "grpc_method": "Ok", "grpc_type": "unary"}.items())
    assert found[("grpc_server_started_total", ok)] == 3
    assert found[("grpc_server_handling_seconds_count", ok)] == 3
    assert found[("grpc_server_handling_seconds_sum", ok)] > 0


async def test_an_unknown_method_adds_no_label_values(server: tuple[GrpcServer, CollectorRegistry]) -> None:
    served, registry = server
    async with grpc.aio.insecure_channel(f"127.0.0.1:{served.port}") as channel:
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await channel.unary_unary(f"/{SERVICE}/Nothing")(b"x")
    assert raised.value.code() is grpc.StatusCode.UNIMPLEMENTED
    assert not any('grpc_method="Nothing"' in line for line in generate_latest(registry).decode().splitlines())


def test_method_names_split_into_service_and_method() -> None:
    assert split_method("/recsys.v1.RecommenderService/ForYou") == ("recsys.v1.RecommenderService", "ForYou")
