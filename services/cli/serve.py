"""`recsys run`: start services in one asyncio loop, stop them together on SIGTERM/SIGINT."""

from __future__ import annotations

import asyncio
import logging
import signal

from recsys.cli.runner import ServiceName, start_system
from recsys.shared.logs import log_event

_log = logging.getLogger(__name__)


async def serve(names: tuple[ServiceName, ...], overrides: dict[str, object]) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    system = await start_system(names, overrides)
    ports = {name: system.port(name) for name in system.services}  # type: ignore[arg-type]
    log_event(_log, "system_started", services=list(system.services), ports=ports, store=system.store.location)
    try:
        await stop.wait()
        log_event(_log, "shutdown_requested")
    finally:
        await system.stop()
        log_event(_log, "system_stopped")
