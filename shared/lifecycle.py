"""The shape of a service as the process that runs it sees it (see recsys.cli.serve)."""

from __future__ import annotations

from typing import Protocol


class Service(Protocol):
    """What a service exposes to the process that runs it."""

    name: str

    async def start(self) -> None:
        """Starts serving; readiness (gRPC health) turns SERVING once dependencies are ready."""

    async def stop(self) -> None:
        """Drains in-flight work and acks nothing unfinished."""
