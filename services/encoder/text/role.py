"""The text role: the model behind Embed, EmbedStream and GetModelInfo, and item ingestion into content vectors."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable

import grpc
from prometheus_client import CollectorRegistry

from recsys.encoder.keyed_locks import KeyedLocks
from recsys.encoder.notices import NoticePublisher
from recsys.encoder.text.batching import BatchLimits
from recsys.encoder.text.embedder import Embedder
from recsys.encoder.text.embedding import EmbeddingEngine
from recsys.encoder.text.grpc_api import SERVICE_NAME, EncoderServicer
from recsys.encoder.text.int8_ranges import calibration_texts
from recsys.encoder.text.item_ingestion import ItemIngestion
from recsys.encoder.text.metrics import TextMetrics
from recsys.encoder.text.settings import TextSettings
from recsys.shared.behavior_models import load_current_model
from recsys.shared.logs import log_event
from recsys.shared.store import VectorStore
from recsys.shared.streams import ConsumerPolicy, StreamSubscriptions
from recsys_client.api import encoder_pb2_grpc

_log = logging.getLogger(__name__)


def batch_limits(settings: TextSettings) -> BatchLimits:
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


class TextRole:
    """Owns the model: loads it, warms it up, serves embeddings over gRPC and embeds the items stream.

    Pass `embedder` to reuse a model already loaded (tests, one process running several services);
    the `model`, `device` and `max_tokens` settings then do not apply.
    """

    grpc_services = (SERVICE_NAME,)
    health_name = SERVICE_NAME

    def __init__(
        self,
        settings: TextSettings,
        store: VectorStore,
        notices: NoticePublisher,
        item_locks: KeyedLocks,
        registry: CollectorRegistry,
        *,
        embedder: Embedder | None = None,
    ) -> None:
        self.settings = settings
        self._store = store
        self._notices = notices
        self._item_locks = item_locks
        self.metrics = TextMetrics(registry)
        self.embedder = embedder
        self._servicer = EncoderServicer(settings, lambda: load_current_model(store))
        self._engine: EmbeddingEngine | None = None

    def register(self, server: grpc.aio.Server) -> None:
        """Adds the EncoderService (UNAVAILABLE until the model is ready) to a server not started yet."""
        encoder_pb2_grpc.add_EncoderServiceServicer_to_server(self._servicer, server)

    async def start(self, subscriptions: StreamSubscriptions) -> None:
        """Loads and warms the model, creates the collections, and subscribes to the items stream."""
        settings = self.settings
        if self.embedder is None:
            self.embedder = await Embedder.load_in_thread(
                settings.model,
                settings.device,
                settings.max_tokens,
                cuda_dtype=settings.cuda_dtype,
                torch_threads=settings.torch_threads,
            )
        embedder = self.embedder
        # This role knows the content dimensions, so it creates the collections; the interactions role waits for them.
        await self._store.ensure_collections(embedder.dimensions, settings.behavior_dims)
        self._engine = engine = EmbeddingEngine(
            embedder,
            batch_limits(settings),
            settings.max_texts_per_request,
            observer=self.metrics,
            calibration=calibration_texts(settings.int8_calibration_file),
            max_text_chars=settings.max_text_chars,
        )
        self.metrics.watch_batcher(engine.batcher)
        # Warms the model up first: health turns SERVING only once the first callers would not pay for it.
        await engine.start()
        self.metrics.warm_up_seconds.set(engine.warm_up_s or 0.0)
        self._servicer.attach(engine)

        items = ItemIngestion(
            self._store, engine, self._notices, self._item_locks, self.metrics, max_future_s=settings.event_max_future_s
        )
        # Every item entry in flight can add its text to the model batch being formed: this many merge.
        policy = dataclasses.replace(
            ConsumerPolicy.from_settings(settings), concurrency=settings.item_ingest_concurrency
        )
        # One consumer per partition (RECSYS_STREAM_PARTITIONS); just the stream when it is not partitioned.
        subscriptions.consume_all(
            streams=settings.streams.item_streams,
            group=settings.item_ingest_group,
            consumer=settings.consumer_name,
            handler=items.handle,
            policy=policy,
        )
        log_event(_log, "text_role_ready", model=embedder.name, device=embedder.device)

    def liveness(self) -> dict[str, Callable[[], bool]]:
        return {"model batcher": lambda: self._engine is not None and self._engine.batcher.running}

    async def stop(self) -> None:
        """Stops the batcher; call after the stream consumers and the gRPC server stopped."""
        engine, self._engine = self._engine, None
        if engine is not None:
            await engine.stop()
