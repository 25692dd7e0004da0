"""The recommender service: its gRPC server, the encoder client for queries, and readiness on the store."""

from __future__ import annotations

import asyncio
import logging

from recsys.recommender.feeds import Feeds
from recsys.recommender.grpc_api import SERVICE_NAME, RecommenderServicer
from recsys.recommender.query_embedder import EncoderQueryEmbedder
from recsys.recommender.settings import RecommenderSettings
from recsys.recommender.tuned_blend import TunedWeights, tuned_blend_weights
from recsys.shared.grpc_security import client_security
from recsys.shared.grpc_server import GrpcServer
from recsys.shared.health import HealthReporter, store_answers
from recsys.shared.logs import log_event
from recsys.shared.metrics_endpoint import MetricsEndpoint, service_registry
from recsys.shared.store import VectorStore
from recsys_client.aio import EncoderClient
from recsys_client.api import recommender_pb2_grpc

_log = logging.getLogger(__name__)


class RecommenderService:
    """Serves SimilarItems, ForYou and SearchItems; read-only against the store, so replicas scale freely.

    start() serves at once; health reports it ready (and `ready` is set) while the store answers
    and holds the collections the encoder creates. Nothing in it can stop making progress, so its
    liveness only fails when the process itself stops answering.
    """

    name = "recommender"

    def __init__(self, settings: RecommenderSettings, store: VectorStore) -> None:
        self.settings = settings
        self.store = store
        self.ready = asyncio.Event()
        self._server: GrpcServer | None = None
        self._encoder: EncoderClient | None = None
        self._health: HealthReporter | None = None
        self.registry = service_registry()
        self._metrics = MetricsEndpoint(self.registry)

    @property
    def port(self) -> int:
        """The bound gRPC port (0 before start)."""
        return self._server.port if self._server is not None else 0

    @property
    def metrics_port(self) -> int:
        """The bound Prometheus port (0 before start or when metrics are off)."""
        return self._metrics.port

    async def start(self) -> None:
        # Channels and servers belong to the running loop, so both are made here, not in __init__.
        self._encoder = EncoderClient(self.settings.encoder_address, client_security(self.settings))
        tuned = TunedWeights(
            lambda: tuned_blend_weights(self.store), self.settings.for_you_weights(), self.settings.blend_self_tuning
        )
        feeds = Feeds(
            self.store,
            self.settings,
            EncoderQueryEmbedder(self._encoder, self.settings.encoder_timeout_s),
            tuned_weights=tuned,
        )
        self._server = GrpcServer.from_settings(
            self.settings.recommender_host,
            self.settings.recommender_port,
            self.settings.recommender_health_port,
            [SERVICE_NAME],
            self.settings,
            self.registry,
        )
        recommender_pb2_grpc.add_RecommenderServiceServicer_to_server(
            RecommenderServicer(feeds, self.ready), self._server.server
        )
        await self._server.start()
        if self.settings.recommender_metrics_port >= 0:
            self._metrics.serve(self.settings.recommender_host, self.settings.recommender_metrics_port)
        self._health = HealthReporter(
            self._server,
            [SERVICE_NAME],
            liveness={},
            readiness={"qdrant": store_answers(self.store)},
            interval_s=self.settings.health_interval_s,
            ready_event=self.ready,
        )
        await self._health.start()
        log_event(
            _log,
            "recommender_started",
            port=self.port,
            metrics_port=self.metrics_port,
            store=self.store.location,
            ready=self._health.ready,
        )

    def reload_credentials(self) -> None:
        """Re-reads the gRPC certificate and token files at their next use (SIGHUP)."""
        if self._server is not None:
            self._server.reload_credentials()

    async def stop(self) -> None:
        """Stops taking calls, lets in-flight ones finish for grpc_grace_s, then closes the encoder channel."""
        if self._health is not None:
            await self._health.stop()
            self._health = None
        if self._server is not None:
            await self._server.stop(self.settings.grpc_grace_s)
        if self._encoder is not None:
            await self._encoder.close()
            self._encoder = None
        self._metrics.close()
        self.ready.clear()
