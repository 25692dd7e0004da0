"""Builds the services for `recsys run`: one of them, or all three in one process sharing one vector store."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Literal

from redis.asyncio import Redis

from recsys.encoder.roles import EncoderRole
from recsys.shared.lifecycle import Service
from recsys.shared.logs import log_event
from recsys.shared.redis_connection import connect_redis, redis_options
from recsys.shared.settings import ConnectionSettings
from recsys.shared.store import CollectionLayout, VectorStore

_log = logging.getLogger(__name__)

ServiceName = Literal["encoder", "recommender", "monitor"]
SERVICE_NAMES: tuple[ServiceName, ...] = ("encoder", "recommender", "monitor")


@dataclass
class RunningSystem:
    """The services of one process and the connections they share."""

    settings: ConnectionSettings
    store: VectorStore
    redis: Redis
    services: dict[str, Service] = field(default_factory=dict)
    # Clients for services whose Redis user or TLS differ from the shared one's (their own ACL user).
    own_redis: list[Redis] = field(default_factory=list)

    def redis_for(self, settings: ConnectionSettings) -> Redis:
        """The shared Redis client, or one of its own when the settings log in differently."""
        if redis_options(settings) == redis_options(self.settings) and settings.redis_url == self.settings.redis_url:
            return self.redis
        client = connect_redis(settings)
        self.own_redis.append(client)
        return client

    def port(self, name: ServiceName) -> int:
        return int(getattr(self.services[name], "port"))  # noqa: B009 - every service exposes its bound port

    def address(self, name: ServiceName) -> str:
        return f"127.0.0.1:{self.port(name)}"

    def reload_credentials(self) -> None:
        log_event(_log, "credentials_reload_requested")
        for service in self.services.values():
            service.reload_credentials()

    async def stop(self) -> None:
        for service in reversed(list(self.services.values())):
            await service.stop()
        await self.store.close()
        for client in [self.redis, *self.own_redis]:
            await client.aclose()


async def start_system(
    names: tuple[ServiceName, ...] = SERVICE_NAMES,
    overrides: dict[str, object] | None = None,
    encoder_role: EncoderRole = EncoderRole.ALL,
    service_overrides: dict[ServiceName, dict[str, object]] | None = None,
) -> RunningSystem:
    """Starts the named services in order (encoder, recommender, monitor) and returns them running.

    `overrides` replaces settings fields (ports, data_dir, stream_prefix...) on top of RECSYS_* variables;
    `service_overrides` adds fields for one service only (its own Redis user, say); `encoder_role` picks
    the encoder's roles.
    """
    # Imported here so that `recsys run recommender` never imports torch.
    overrides = dict(overrides or {})
    own = service_overrides or {}
    connection = ConnectionSettings(**overrides)  # type: ignore[arg-type]
    store = VectorStore.connect(
        connection.qdrant_url,
        connection.data_dir,
        connection.qdrant_api_key_value(),
        connection.qdrant_embedded_sync,
        connection.qdrant_tls_ca_file,
        CollectionLayout.from_settings(connection),
    )
    redis = connect_redis(connection)
    system = RunningSystem(settings=connection, store=store, redis=redis)
    try:
        if "encoder" in names:
            from recsys.encoder.service import EncoderService
            from recsys.encoder.settings import EncoderSettings

            settings = EncoderSettings(**{**overrides, **own.get("encoder", {})})  # type: ignore[arg-type]
            encoder = EncoderService(settings, store, system.redis_for(settings), role=encoder_role)
            await encoder.start()
            system.services["encoder"] = encoder
            # In one process the recommender embeds queries with the encoder next to it.
            overrides.setdefault("encoder_address", system.address("encoder"))
        if "recommender" in names:
            from recsys.recommender.app import RecommenderService
            from recsys.recommender.settings import RecommenderSettings

            recommender_settings = RecommenderSettings(**{**overrides, **own.get("recommender", {})})  # type: ignore[arg-type]
            recommender = RecommenderService(recommender_settings, store)
            await recommender.start()
            system.services["recommender"] = recommender
        if "monitor" in names:
            from recsys.monitor.app import MonitorService
            from recsys.monitor.settings import MonitorSettings

            monitor_settings = MonitorSettings(**{**overrides, **own.get("monitor", {})})  # type: ignore[arg-type]
            monitor = MonitorService(monitor_settings, store, system.redis_for(monitor_settings))
            await monitor.start()
            system.services["monitor"] = monitor
    except BaseException:
        await system.stop()
        raise
    return system


async def wait_ready(system: RunningSystem, timeout_s: float = 120.0) -> None:
    """Waits until every service reports ready (gRPC health SERVING)."""
    events = [getattr(s, "ready") for s in system.services.values()]  # noqa: B009
    await asyncio.wait_for(asyncio.gather(*(e.wait() for e in events)), timeout_s)
