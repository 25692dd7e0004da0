"""Request limits on a real gRPC server: sized and budgeted on the wire, corrupt bytes refused with a plain message."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import grpc
import pytest

from recsys.shared.grpc_limits import RequestBudget, ServerLimits
from recsys.shared.grpc_server import GrpcServer
from recsys_client.api import monitor_pb2, monitor_pb2_grpc

METHOD = "/recsys.v1.MonitorService/GetDriftReport"


class SlowMonitor(monitor_pb2_grpc.MonitorServiceServicer):
    """Answers GetDriftReport once released, so a test can hold requests in flight."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.started = 0

    async def GetDriftReport(
        self, request: monitor_pb2.GetDriftReportRequest, context: grpc.aio.ServicerContext
    ) -> monitor_pb2.GetDriftReportResponse:
        self.started += 1
        await self.release.wait()
        return monitor_pb2.GetDriftReportResponse(report=monitor_pb2.DriftReport(space=request.space))


@pytest.fixture
async def served() -> AsyncIterator[tuple[SlowMonitor, grpc.aio.Channel]]:
    servicer = SlowMonitor()
    server = GrpcServer(
        "127.0.0.1:0",
        ["recsys.v1.MonitorService"],
        ServerLimits(max_request_bytes=4096, max_inflight_bytes=6000, max_concurrent_rpcs=64),
    )
    monitor_pb2_grpc.add_MonitorServiceServicer_to_server(servicer, server.server)
    port = await server.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    yield servicer, channel
    servicer.release.set()
    await channel.close()
    await server.stop(0.5)


def _raw(channel: grpc.aio.Channel) -> grpc.aio.UnaryUnaryMultiCallable:
    return channel.unary_unary(METHOD, request_serializer=None, response_deserializer=None)


async def _code_and_details(call: object) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await call  # type: ignore[misc]
    return raised.value.code(), raised.value.details() or ""


async def test_bytes_that_are_not_a_message_are_invalid_argument_with_a_plain_message(
    served: tuple[SlowMonitor, grpc.aio.Channel],
) -> None:
    servicer, channel = served
    code, details = await _code_and_details(_raw(channel)(b"\xff\xff\xff\xff garbage", timeout=5))
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert details == "the request is not a valid recsys.v1.GetDriftReportRequest message"
    assert servicer.started == 0


async def test_a_request_over_the_size_limit_is_refused_before_it_is_decoded(
    served: tuple[SlowMonitor, grpc.aio.Channel],
) -> None:
    servicer, channel = served
    big = monitor_pb2.GetDriftReportRequest(space="x" * 5000).SerializeToString()
    code, details = await _code_and_details(_raw(channel)(big, timeout=5))
    assert code == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "over the limit of 4096 bytes" in details
    assert servicer.started == 0


async def test_requests_beyond_the_in_flight_budget_are_refused_until_room_is_made(
    served: tuple[SlowMonitor, grpc.aio.Channel],
) -> None:
    servicer, channel = served
    stub = monitor_pb2_grpc.MonitorServiceStub(channel)
    request = monitor_pb2.GetDriftReportRequest(space="s" * 2900)  # two fit in the budget of 6,000 bytes, not three
    held = [asyncio.ensure_future(stub.GetDriftReport(request, timeout=30)) for _ in range(2)]
    while servicer.started < 2:
        await asyncio.sleep(0.01)
    code, details = await _code_and_details(stub.GetDriftReport(request, timeout=5))
    assert code == grpc.StatusCode.RESOURCE_EXHAUSTED and "bytes of requests in flight" in details
    servicer.release.set()
    assert [r.report.space for r in await asyncio.gather(*held)] == ["s" * 2900] * 2
    assert (await stub.GetDriftReport(request, timeout=5)).report.space == "s" * 2900


def test_a_request_larger_than_the_whole_budget_still_runs_alone() -> None:
    budget = RequestBudget(100)
    assert budget.take(500)  # nothing else in flight: refusing it forever would help nobody
    assert not budget.take(1)
    budget.give_back(500)
    assert budget.take(60) and budget.take(40) and not budget.take(1)


async def test_calls_beyond_the_concurrency_cap_are_refused_while_the_others_run() -> None:
    servicer = SlowMonitor()
    server = GrpcServer("127.0.0.1:0", ["recsys.v1.MonitorService"], ServerLimits(max_concurrent_rpcs=3))
    monitor_pb2_grpc.add_MonitorServiceServicer_to_server(servicer, server.server)
    port = await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = monitor_pb2_grpc.MonitorServiceStub(channel)
            request = monitor_pb2.GetDriftReportRequest(space="s")
            held = [asyncio.ensure_future(stub.GetDriftReport(request, timeout=30)) for _ in range(3)]
            while servicer.started < 3:
                await asyncio.sleep(0.01)
            code, _ = await _code_and_details(stub.GetDriftReport(request, timeout=5))
            assert code == grpc.StatusCode.RESOURCE_EXHAUSTED
            servicer.release.set()
            assert len(await asyncio.gather(*held)) == 3
    finally:
        servicer.release.set()
        await server.stop(0.5)
