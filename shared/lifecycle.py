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


async def cancel_and_wait(*tasks: asyncio.Task[Any] | None, recancel_s: float = 1.0) -> None:
    """Cancels background tasks and waits until each has unwound, so nothing they hold outlives a stop.

    A task still running `recancel_s` after its cancel is cancelled again, until it ends: a cancellation
    can be swallowed on the way (Python 3.11's asyncio.timeout racing it, then a client library
    retrying the resulting TimeoutError), and a loop that swallowed it would otherwise hold the stop
    for ever. A task that had already failed is logged rather than raised: stopping must finish
    whatever the task did. A stop that is itself cancelled still ends with CancelledError.
    """
    running = [task for task in tasks if task is not None]
    pending = set(running)
    for task in pending:
        task.cancel()
    while pending:
        _, pending = await asyncio.wait(pending, timeout=recancel_s)
        for task in pending:
            _log.warning("background task %s still runs after its cancel; cancelling it again", task.get_name())
            task.cancel()
    for task in running:
        failure = None if task.cancelled() else task.exception()
        if isinstance(failure, Exception):
            _log.warning("background task %s had failed: %r", task.get_name(), failure)
