"""The encoder service: one role or both behind one gRPC server (health, reflection) and one /metrics endpoint.

Roles (`recsys run encoder --role`):
- text: the model, `Embed`/`EmbedStream`/`GetModelInfo`, item ingestion into content vectors;
- interactions: interaction ingestion, taste/session/behavior vectors, the behavior log and refresh;
- all: both in one process (the default, and what `recsys run all` and the demo run).
Deployed apart, they scale on their own streams' lag, and only the text role needs a GPU.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from redis.asyncio import Redis

from recsys.encoder.keyed_locks import KeyedLocks
from recsys.encoder.notices import NoticePublisher
from recsys.encoder.roles import EncoderRole, Role
from recsys.encoder.settings import EncoderSettings
from recsys.encoder.store_calls import count_store_calls
from recsys.shared.errors import Unavailable
from recsys.shared.grpc_server import GrpcServer
from recsys.shared.health import HealthReporter, redis_answers, store_answers
from recsys.shared.logs import log_event
from recsys.shared.metrics_endpoint import MetricsEndpoint, service_registry
from recsys.shared.store import VectorStore
from recsys.shared.streams import StreamSubscriptions

if TYPE_CHECKING:
    from recsys.encoder.interactions.behavior_refresh import BehaviorRefresh
    from recsys.encoder.interactions.role import InteractionsRole
    from recsys.encoder.text.embedder import Embedder
    from recsys.encoder.text.role import TextRole

_log = logging.getLogger(__name__)


class EncoderService:
    """Implements recsys.shared.lifecycle.Service for the roles it runs.

    `start()` serves gRPC at once (health NOT_SERVING), starts each role (the text role loads and
    warms its model and creates the collections; the interactions role waits for them), starts the
    stream consumers, then turns health SERVING and sets `ready`.
    """

    name = "encoder"

    def __init__(
        self,
        settings: EncoderSettings,
        store: VectorStore,
        redis: Redis,
        *,
        role: EncoderRole = EncoderRole.ALL,
        embedder: Embedder | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.redis = redis
        self.role = role
        self.ready = asyncio.Event()
        self._embedder = embedder
        self.registry = service_registry()
        self._metrics = MetricsEndpoint(self.registry)
        self.store_calls = count_store_calls(store, self.registry)
        self.text_role: TextRole | None = None
        self.interactions_role: InteractionsRole | None = None
        self._grpc: GrpcServer | None = None
        self._subscriptions: StreamSubscriptions | None = None
        self._health: HealthReporter | None = None
        self._port = 0

    @property
    def port(self) -> int:
        """The bound gRPC port (0 before start)."""
        return self._port

    @property
    def metrics_port(self) -> int:
        """The bound Prometheus port (0 before start or when metrics are off)."""
        return self._metrics.port

    @property
    def embedder(self) -> Embedder | None:
        """The loaded model (text role), to share with another service in the same process."""
        return self.text_role.embedder if self.text_role is not None else self._embedder

    @property
    def behavior_refresh(self) -> BehaviorRefresh | None:
        """The interactions role's refresh, once started."""
        return self.interactions_role.behavior_refresh if self.interactions_role is not None else None

    @property
    def roles(self) -> list[Role]:
        return [role for role in (self.text_role, self.interactions_role) if role is not None]

    def _make_roles(self, notices: NoticePublisher) -> None:
        settings = self.settings
        # Item and interaction ingestion in one process take turns per item instead of conflicting.
        item_locks = KeyedLocks()
        # Imported only for the roles this process runs: the interactions role alone never loads torch.
        if self.role.runs_text:
            from recsys.encoder.text.role import TextRole

            self.text_role = TextRole(settings, self.store, notices, item_locks, self.registry, embedder=self._embedder)
        if self.role.runs_interactions:
            from recsys.encoder.interactions.role import InteractionsRole

            self.interactions_role = InteractionsRole(
                settings, self.store, self.redis, notices, item_locks, self.registry
            )

    async def start(self) -> None:
        settings = self.settings
        try:
            notices = NoticePublisher(self.redis, settings.streams.embeddings, settings.embeddings_stream_maxlen)
            self._make_roles(notices)
            self._grpc = GrpcServer.from_settings(
                settings.encoder_host,
                settings.encoder_port,
                settings.encoder_health_port,
                [name for role in self.roles for name in role.grpc_services],
                settings,
                self.registry,
            )
            for role in self.roles:
                role.register(self._grpc.server)
            self._port = await self._grpc.start()
            if settings.encoder_metrics_port >= 0:
                self._metrics.serve(settings.encoder_host, settings.encoder_metrics_port)

            # On stop, handlers in flight get the same grace as gRPC calls; unfinished entries stay pending.
            self._subscriptions = StreamSubscriptions.from_settings(settings, self.redis, self.registry)
            for role in self.roles:
                await role.start(self._subscriptions)
            await self._subscriptions.start()

            if not await self.store.is_reachable():
                raise Unavailable(f"vector store {self.store.location} is not reachable")
            subscriptions = self._subscriptions
            liveness: dict[str, Callable[[], bool]] = {"stream consumers": lambda: subscriptions.healthy}
            for role in self.roles:
                liveness.update(role.liveness())
            self._health = HealthReporter(
                self._grpc,
                [role.health_name for role in self.roles],
                liveness=liveness,
                readiness={"redis": redis_answers(self.redis), "qdrant": store_answers(self.store)},
                interval_s=settings.health_interval_s,
                ready_event=self.ready,
            )
            await self._health.start()
            log_event(_log, "encoder_started", role=self.role.value, port=self.port, metrics_port=self.metrics_port)
        except BaseException:
            await self.stop()
            raise

    def reload_credentials(self) -> None:
        """Re-reads the gRPC certificate and token files at their next use (SIGHUP)."""
        if self._grpc is not None:
            self._grpc.reload_credentials()

    async def stop(self) -> None:
        """Stops taking entries (in-flight ones finish), then gRPC (with grace), then the roles."""
        self.ready.clear()
        health, self._health = self._health, None
        if health is not None:
            await health.stop()
        subscriptions, self._subscriptions = self._subscriptions, None
        if subscriptions is not None:
            await subscriptions.stop()
        grpc_server, self._grpc = self._grpc, None
        if grpc_server is not None:
            await grpc_server.stop(self.settings.grpc_grace_s)
        for role in reversed(self.roles):
            await role.stop()
        self._metrics.close()
