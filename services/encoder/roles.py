"""The encoder's deployable roles, and what the encoder service asks of each."""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:  # the CLI reads the role names without loading gRPC or FastStream
    import grpc

    from recsys.shared.streams import StreamSubscriptions


class EncoderRole(StrEnum):
    """Which roles one encoder process runs (`recsys run encoder --role`)."""

    TEXT = "text"
    INTERACTIONS = "interactions"
    ALL = "all"

    @property
    def runs_text(self) -> bool:
        return self in (EncoderRole.TEXT, EncoderRole.ALL)

    @property
    def runs_interactions(self) -> bool:
        return self in (EncoderRole.INTERACTIONS, EncoderRole.ALL)


class Role(Protocol):
    """One role inside the encoder service: its RPCs go on the server before it starts, its consumers after."""

    grpc_services: tuple[str, ...]
    # The gRPC health name its readiness is reported under (its API's name, when it has one).
    health_name: str

    def liveness(self) -> dict[str, Callable[[], bool]]:
        """Named checks that are False when this role can no longer make progress."""
        ...

    def register(self, server: grpc.aio.Server) -> None: ...

    async def start(self, subscriptions: StreamSubscriptions) -> None: ...

    async def stop(self) -> None: ...
