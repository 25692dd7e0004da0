"""`recsys health`, the image's HEALTHCHECK, run as Docker runs it against a real gRPC server on a free port."""

from __future__ import annotations

import asyncio
import os
import socket
import sys
from collections.abc import AsyncIterator

import pytest

from recsys.shared.grpc_server import GrpcServer

PORT_VARIABLES = [
    f"RECSYS_{service}_{kind}PORT" for service in ("ENCODER", "RECOMMENDER", "MONITOR") for kind in ("", "HEALTH_")
]


def closed_port() -> int:
    """A port nothing listens on (picked free, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def health(ports: dict[str, int]) -> tuple[int, str]:
    """Runs `recsys health` with these RECSYS_*_PORT settings (every other service port closed, no health port)."""
    settings = {name: str(closed_port() if "HEALTH" not in name else -1) for name in PORT_VARIABLES}
    settings |= {name: str(port) for name, port in ports.items()}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "recsys.cli.main",
        "health",
        env={**os.environ, **settings},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode is not None
    return process.returncode, output.decode()


@pytest.fixture
async def server() -> AsyncIterator[GrpcServer]:
    started = GrpcServer("127.0.0.1:0", ["recsys.v1.RecommenderService"], health_address="127.0.0.1:0")
    await started.start()
    yield started
    await started.stop(0)


async def test_healthy_when_the_one_service_listening_here_serves(server: GrpcServer) -> None:
    await server.set_serving(True)
    code, output = await health({"RECSYS_RECOMMENDER_PORT": server.port})
    assert code == 0, output
    # The two services this machine does not run are skipped, not failed.
    assert output.split() == [f"127.0.0.1:{server.port}", "SERVING"]


async def test_unhealthy_while_a_service_here_is_not_serving(server: GrpcServer) -> None:
    code, output = await health({"RECSYS_RECOMMENDER_PORT": server.port})
    assert code == 1
    assert output.split() == [f"127.0.0.1:{server.port}", "NOT_SERVING"]


async def test_the_plaintext_health_port_is_asked_where_one_is_set(server: GrpcServer) -> None:
    await server.set_serving(True)
    # The gRPC port may speak TLS only; here it is closed, so only the health port can answer.
    code, output = await health({"RECSYS_MONITOR_HEALTH_PORT": server.health_port})
    assert code == 0, output
    assert output.split() == [f"127.0.0.1:{server.health_port}", "SERVING"]


async def test_unhealthy_when_no_service_listens_here() -> None:
    code, output = await health({})
    assert code == 1
    assert "no recsys service listens on this machine" in output
