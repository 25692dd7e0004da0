"""Running services in one asyncio loop: start together, stop together on SIGTERM/SIGINT."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Sequence
from typing import Protocol

from recsys.shared.logs import log_event

_log = logging.getLogger(__name__)


class Service(Protocol):
    """What a service exposes to the process that runs it."""

    name: str

    async def start(self) -> None:
        """Starts serving; readiness (gRPC health) turns SERVING once dependencies are ready."""

    async def stop(self) -> None:
        """Drains in-flight work and acks nothing unfinished."""


async def run_until_signalled(services: Sequence[Service], stop_event: asyncio.Event | None = None) -> None:
    """Starts the services in order, waits for SIGTERM/SIGINT (or stop_event), stops them in reverse order."""
    stop = stop_event or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    started: list[Service] = []
    try:
        for service in services:
            await service.start()
            started.append(service)
            log_event(_log, "service_started", service=service.name)
        await stop.wait()
        log_event(_log, "shutdown_requested")
    finally:
        for service in reversed(started):
            await service.stop()
            log_event(_log, "service_stopped", service=service.name)
