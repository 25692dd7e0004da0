"""`recsys health`: do the services on this machine serve? gRPC health, for the image's HEALTHCHECK.

Kubernetes asks each port itself (native gRPC probes); plain Docker can only run a command. The image
runs one service or all three, so by default every service's port on this machine is asked, and a port
that refuses the connection is a service this container does not run.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import sys

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

HELP = "exit 0 when the recsys services on this machine answer gRPC health SERVING (the image's HEALTHCHECK)"
QUIET = True


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "address",
        nargs="*",
        help="host:port to ask, each of which must answer SERVING (default: each service's port here, from the"
        " RECSYS_* settings, its health port where one is set; ports that refuse the connection are skipped)",
    )
    parser.add_argument("--timeout", type=float, default=5.0, help="seconds each service has to answer")


def local_ports() -> list[int]:
    """Each service's port as `recsys run` binds it: the plaintext health port where one is set (the gRPC
    port may speak TLS only), else the gRPC port; 0 (a free port picked at start) cannot be known here."""
    from recsys.encoder.settings import EncoderSettings
    from recsys.monitor.settings import MonitorSettings
    from recsys.recommender.settings import RecommenderSettings

    encoder, recommender, monitor = EncoderSettings(), RecommenderSettings(), MonitorSettings()
    pairs = [
        (encoder.encoder_health_port, encoder.encoder_port),
        (recommender.recommender_health_port, recommender.recommender_port),
        (monitor.monitor_health_port, monitor.monitor_port),
    ]
    return [port for port in (health if health > 0 else grpc_port for health, grpc_port in pairs) if port > 0]


def listening(port: int, timeout: float) -> bool:
    """False only when the port refuses: nothing runs there. Any other failure is left for the health call."""
    try:
        socket.create_connection(("127.0.0.1", port), timeout=timeout).close()
    except ConnectionRefusedError:
        return False
    except OSError:
        pass
    return True


async def status(address: str, timeout: float) -> str:
    """The overall status the server reports (SERVING, NOT_SERVING...), or the failed call's status code."""
    async with grpc.aio.insecure_channel(address) as channel:
        try:
            reply = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=timeout)
        except grpc.aio.AioRpcError as exc:
            return str(exc.code().name)
    return health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)


async def statuses(addresses: list[str], timeout: float) -> list[str]:
    return list(await asyncio.gather(*(status(address, timeout) for address in addresses)))


def run(args: argparse.Namespace) -> int:
    addresses = args.address or [f"127.0.0.1:{port}" for port in local_ports() if listening(port, args.timeout)]
    if not addresses:
        print("no recsys service listens on this machine", file=sys.stderr)
        return 1
    found = asyncio.run(statuses(addresses, args.timeout))
    for address, answer in zip(addresses, found, strict=True):
        print(f"{address} {answer}")
    return 0 if all(answer == "SERVING" for answer in found) else 1
