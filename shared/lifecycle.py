"""The shape of a service as the process that runs it sees it (recsys.cli.serve), and how its tasks end."""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Protocol

_log = logging.getLogger(__name__)


class Service(Protocol):
    """What a service exposes to the process that runs it."""

    name: str

    async def start(self) -> None:
        """Starts serving; readiness (gRPC health) turns SERVING once dependencies are ready."""

    async def stop(self) -> None:
        """Drains in-flight work and acks nothing unfinished."""

    def reload_credentials(self) -> None:
        """Re-reads certificate and token files at their next use (SIGHUP: rotation without a restart)."""


async def cancel_and_wait(*tasks: asyncio.Task[Any] | None) -> None:
    """Cancels background tasks and waits until each has unwound, so nothing they hold outlives a stop.

    A task that had already failed is logged rather than raised: stopping must finish whatever the task did.
    A stop that is itself cancelled still ends with CancelledError (gather passes it on).
    """
    running = [task for task in tasks if task is not None]
    for task in running:
        task.cancel()
    for task, outcome in zip(running, await asyncio.gather(*running, return_exceptions=True), strict=True):
        if isinstance(outcome, Exception):
            _log.warning("background task %s had failed: %r", task.get_name(), outcome)
