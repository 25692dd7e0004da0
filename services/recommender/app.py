"""The recommender service: its gRPC server, the encoder client for queries, and readiness on the store."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from recsys.recommender.feeds import Feeds
from recsys.recommender.grpc_api import SERVICE_NAME, RecommenderServicer
from recsys.recommender.query_embedder import EncoderQueryEmbedder
from recsys.recommender.settings import RecommenderSettings
from recsys.shared.api import recommender_pb2_grpc
from recsys.shared.client import EncoderClient
from recsys.shared.grpc_server import GrpcServer
from recsys.shared.logs import log_event
from recsys.shared.points import ITEMS, USERS
from recsys.shared.store import VectorStore

_log = logging.getLogger(__name__)


class RecommenderService:
    """Serves SimilarItems, ForYou and SearchItems; read-only against the store, so replicas scale freely.

    start() serves at once with health NOT_SERVING; a background task turns it SERVING (and sets
    `ready`) when the store answers and the encoder has created the collections.
    """

    name = "recommender"

    def __init__(self, settings: RecommenderSettings, store: VectorStore) -> None:
        self.settings = settings
        self.store = store
        self.ready = asyncio.Event()
        self._server: GrpcServer | None = None
        self._encoder: EncoderClient | None = None
        self._readiness: asyncio.Task[None] | None = None

    @property
    def port(self) -> int:
        """The bound gRPC port (0 before start)."""
        return self._server.port if self._server is not None else 0

    async def start(self) -> None:
        # Channels and servers belong to the running loop, so both are made here, not in __init__.
        self._encoder = EncoderClient(self.settings.encoder_address)
        feeds = Feeds(self.store, self.settings, EncoderQueryEmbedder(self._encoder, self.settings.encoder_timeout_s))
        self._server = GrpcServer(f"{self.settings.recommender_host}:{self.settings.recommender_port}", [SERVICE_NAME])
        recommender_pb2_grpc.add_RecommenderServiceServicer_to_server(
            RecommenderServicer(feeds, self.ready), self._server.server
        )
        await self._server.start()
        self._readiness = asyncio.create_task(self._become_ready(self._server), name="recommender-readiness")

    async def _become_ready(self, server: GrpcServer) -> None:
        waited_logged = False
        while not await self._store_ready():
            if not waited_logged:
                log_event(_log, "recommender_waiting_for_store", store=self.store.location)
                waited_logged = True
            await asyncio.sleep(self.settings.readiness_poll_s)
        self.ready.set()
        await server.set_serving(True)
        log_event(_log, "recommender_ready", port=self.port, store=self.store.location)

    async def _store_ready(self) -> bool:
        if not await self.store.is_reachable():
            return False
        try:
            return await self.store.client.collection_exists(ITEMS) and await self.store.client.collection_exists(USERS)
        except Exception:  # a store failing mid-check is just not ready yet
            return False

    async def stop(self) -> None:
        """Stops taking calls, lets in-flight ones finish for grpc_grace_s, then closes the encoder channel."""
        if self._readiness is not None:
            self._readiness.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._readiness
            self._readiness = None
        if self._server is not None:
            await self._server.stop(self.settings.grpc_grace_s)
        if self._encoder is not None:
            await self._encoder.close()
            self._encoder = None
        self.ready.clear()
