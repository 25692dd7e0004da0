"""The encoder service: gRPC embedding API and the item and interaction consumers, run together."""

from __future__ import annotations

import asyncio
import dataclasses
import logging

from redis.asyncio import Redis

from recsys.encoder.batching import BatchLimits
from recsys.encoder.behavior_refresh import BehaviorRefresh
from recsys.encoder.calibration import calibration_texts
from recsys.encoder.embedder import Embedder
from recsys.encoder.embedding import EmbeddingEngine
from recsys.encoder.grpc_api import SERVICE_NAME, EncoderServicer
from recsys.encoder.interaction_side import start_interaction_side
from recsys.encoder.item_ingestion import ItemIngestion
from recsys.encoder.keyed_locks import KeyedLocks
from recsys.encoder.metrics import EncoderMetrics
from recsys.encoder.notices import NoticePublisher
from recsys.encoder.settings import EncoderSettings
from recsys.shared.api import encoder_pb2_grpc
from recsys.shared.errors import Unavailable
from recsys.shared.grpc_server import GrpcServer
from recsys.shared.logs import log_event
from recsys.shared.store import VectorStore
from recsys.shared.streams import ConsumerPolicy, StreamSubscriptions

_log = logging.getLogger(__name__)


def batch_limits(settings: EncoderSettings) -> BatchLimits:
    """The dynamic batcher's limits from the settings."""
    return BatchLimits(
        max_size=settings.batch_max_size,
        max_tokens=settings.batch_max_tokens,
        max_wait_s=settings.batch_max_wait_ms / 1000.0,
        queue_capacity=settings.queue_capacity,
        bulk_share=settings.batch_bulk_share,
        live_pass_s=settings.batch_live_pass_ms / 1000.0,
        live_grace_s=settings.batch_live_grace_ms / 1000.0,
    )


class EncoderService:
    """Owns the model and every vector write; implements recsys.shared.lifecycle.Service.

    `start()` serves gRPC at once (health NOT_SERVING), loads the model in a thread, prepares the
    collections, starts the batcher and the stream consumers, then turns health SERVING and sets
    `ready`. Pass `embedder` to reuse a model already loaded (tests, `recsys run all`); the
    `model`, `device` and `max_tokens` settings then do not apply.
    """

    name = "encoder"

    def __init__(
        self, settings: EncoderSettings, store: VectorStore, redis: Redis, *, embedder: Embedder | None = None
    ) -> None:
        self.settings = settings
        self.store = store
        self.redis = redis
        self.ready = asyncio.Event()
        self._embedder = embedder
        self._grpc: GrpcServer | None = None
        self._engine: EmbeddingEngine | None = None
        self._subscriptions: StreamSubscriptions | None = None
        self.behavior_refresh: BehaviorRefresh | None = None
        self._port = 0
        self.metrics = EncoderMetrics()
        self._metrics_port = 0

    @property
    def port(self) -> int:
        """The bound gRPC port (0 before start)."""
        return self._port

    @property
    def metrics_port(self) -> int:
        """The bound Prometheus port (0 before start or when metrics are off)."""
        return self._metrics_port

    @property
    def embedder(self) -> Embedder | None:
        """The loaded model, to share with another service in the same process."""
        return self._embedder

    async def start(self) -> None:
        settings = self.settings
        try:
            self._grpc = GrpcServer(f"{settings.encoder_host}:{settings.encoder_port}", [SERVICE_NAME])
            servicer = EncoderServicer(settings)
            encoder_pb2_grpc.add_EncoderServiceServicer_to_server(servicer, self._grpc.server)
            self._port = await self._grpc.start()

            if settings.encoder_metrics_port >= 0:
                self._metrics_port = self.metrics.serve(settings.encoder_host, settings.encoder_metrics_port)

            if self._embedder is None:
                self._embedder = await Embedder.load_in_thread(
                    settings.model,
                    settings.device,
                    settings.max_tokens,
                    cuda_dtype=settings.cuda_dtype,
                    torch_threads=settings.torch_threads,
                )
            embedder = self._embedder
            await self.store.ensure_collections(embedder.dimensions, settings.behavior_dims)

            self._engine = EmbeddingEngine(
                embedder,
                batch_limits(settings),
                settings.max_texts_per_request,
                observer=self.metrics,
                calibration=calibration_texts(settings.int8_calibration_file),
            )
            self.metrics.watch_batcher(self._engine.batcher)
            # Warms the model up first: health turns SERVING only once the first callers would not pay for it.
            await self._engine.start()
            self.metrics.warm_up_seconds.set(self._engine.warm_up_s or 0.0)
            servicer.attach(self._engine)

            await self._start_consumers(self._engine)

            if not await self.store.is_reachable():
                raise Unavailable(f"vector store {self.store.location} is not reachable")
            await self._grpc.set_serving(True)
            self.ready.set()
            log_event(_log, "encoder_ready", port=self.port, model=embedder.name, device=embedder.device)
        except BaseException:
            await self.stop()
            raise

    async def _start_consumers(self, engine: EmbeddingEngine) -> None:
        settings = self.settings
        streams = settings.streams
        notices = NoticePublisher(self.redis, streams.embeddings, settings.embeddings_stream_maxlen)
        item_locks = KeyedLocks()
        items = ItemIngestion(self.store, engine, notices, item_locks, self.metrics)
        interactions, self.behavior_refresh = await start_interaction_side(
            settings, self.store, self.redis, notices, item_locks
        )
        # On stop, handlers in flight get the same grace as gRPC calls; unfinished entries stay pending.
        self._subscriptions = StreamSubscriptions(
            settings.redis_url,
            self.redis,
            grace_s=settings.grpc_grace_s,
            max_connections=settings.redis_max_connections,
        )
        policy = ConsumerPolicy.from_settings(settings)
        # Every item entry in flight can add its text to the model batch being formed: this many merge.
        item_policy = dataclasses.replace(policy, concurrency=settings.item_ingest_concurrency)
        for stream, group, handler, stream_policy in (
            (streams.items, settings.item_ingest_group, items.handle, item_policy),
            (streams.interactions, settings.interaction_ingest_group, interactions.handle, policy),
        ):
            self._subscriptions.consume(
                stream=stream, group=group, consumer=settings.consumer_name, handler=handler, policy=stream_policy
            )
        await self._subscriptions.start()

    async def stop(self) -> None:
        """Stops taking entries (in-flight ones finish), then gRPC (with grace), then the batcher."""
        self.ready.clear()
        subscriptions, self._subscriptions = self._subscriptions, None
        if subscriptions is not None:
            await subscriptions.stop()
        refresh, self.behavior_refresh = self.behavior_refresh, None
        if refresh is not None:
            await refresh.stop()
        grpc_server, self._grpc = self._grpc, None
        if grpc_server is not None:
            await grpc_server.stop(self.settings.grpc_grace_s)
        engine, self._engine = self._engine, None
        if engine is not None:
            await engine.stop()
        self.metrics.close()
