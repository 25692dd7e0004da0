"""The interactions role: interaction ingestion into user and item state, the behavior log and its refresh.

It never loads the text model: updating taste, session and behavior vectors only reads stored
content vectors. So it imports neither torch nor sentence-transformers (a test holds it to that),
and runs in a small pod without a GPU.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import replace

import grpc
from prometheus_client import CollectorRegistry
from redis.asyncio import Redis

from recsys.encoder.content_map_settings import ContentMapSettings
from recsys.encoder.interactions.behavior_log import BehaviorLog, behavior_log_stream
from recsys.encoder.interactions.behavior_refresh import BehaviorRefresh, RefreshPolicy
from recsys.encoder.interactions.factorizer import factorizer_from_settings
from recsys.encoder.interactions.ingestion import InteractionIngestion
from recsys.encoder.interactions.metrics import InteractionMetrics
from recsys.encoder.interactions.refresh_tuning import BlendTuning
from recsys.encoder.interactions.rules import EventWeights, InteractionRules
from recsys.encoder.interactions.sequence_settings import SequenceSettings
from recsys.encoder.interactions.settings import InteractionSettings
from recsys.encoder.interactions.type_weights import TypeWeighting
from recsys.encoder.keyed_locks import KeyedLocks
from recsys.encoder.notices import NoticePublisher
from recsys.shared.blend_settings import BlendSettings
from recsys.shared.logs import log_event
from recsys.shared.store import VectorStore
from recsys.shared.streams import ConsumerPolicy, StreamSubscriptions

_DAY_S = 86_400.0
# How often a role started before the text role checks whether the collections exist yet.
_COLLECTIONS_POLL_S = 0.5

_log = logging.getLogger(__name__)


def refresh_policy(settings: InteractionSettings) -> RefreshPolicy:
    """The refresh's policy; the content map's and successors' knobs come with the encoder's settings (or defaults)."""
    policy = RefreshPolicy(
        every_interactions=settings.behavior_refresh_interactions,
        interval_s=settings.behavior_refresh_interval_s,
        model_half_life_s=settings.behavior_model_half_life_days * _DAY_S,
        dims=settings.behavior_dims,
        batch_size=settings.behavior_refresh_batch,
        device=settings.behavior_device,
        lock_key=f"{settings.stream_prefix}:behavior-refresh:lock",
        type_weighting=TypeWeighting(
            settings.behavior_type_contrast, {kind.value: weight for kind, weight in settings.event_weights().items()}
        ),
    )
    if isinstance(settings, ContentMapSettings):
        policy = replace(
            policy,
            content_map=settings.behavior_content_map,
            item_evidence_k=settings.behavior_item_evidence_k,
            content_min_evidence=settings.behavior_content_min_evidence,
        )
    if isinstance(settings, SequenceSettings):
        policy = replace(policy, successors=settings.behavior_successors)
    return policy


def ingestion_policy(settings: InteractionSettings) -> ConsumerPolicy:
    """The consumer's policy, with room for a full batch gathering while the one before is written.

    Entries handled at once are what a batch can hold: at the default concurrency of 16 a batch
    never held more than 16 interactions, whatever RECSYS_INTERACTION_BATCH_SIZE said.
    """
    policy = ConsumerPolicy.from_settings(settings)
    room = 2 * settings.interaction_batch_size
    return replace(policy, concurrency=max(policy.concurrency, room), max_records=max(policy.max_records, room // 2))


class InteractionsRole:
    """Consumes the interactions stream and runs the periodic behavior refresh."""

    grpc_services: tuple[str, ...] = ()
    # No API of its own: readiness under the name of its Deployment.
    health_name = "encoder-interactions"

    def __init__(
        self,
        settings: InteractionSettings,
        store: VectorStore,
        redis: Redis,
        notices: NoticePublisher,
        item_locks: KeyedLocks,
        registry: CollectorRegistry,
    ) -> None:
        self.metrics = InteractionMetrics(registry, settings.behavior_refresh_interval_s)
        self.settings = settings
        self._store = store
        self._redis = redis
        self._notices = notices
        self._item_locks = item_locks
        self.behavior_refresh: BehaviorRefresh | None = None

    def register(self, server: grpc.aio.Server) -> None:
        """No RPCs of its own: the service's gRPC server answers health for it."""
        del server

    async def start(self, subscriptions: StreamSubscriptions) -> None:
        settings = self.settings
        await self._wait_for_collections()
        self._store.apply_embedded_sync()
        rules = InteractionRules.from_settings(settings)
        log = BehaviorLog(self._redis, behavior_log_stream(settings.stream_prefix), settings.behavior_log_size)
        self.behavior_refresh = refresh = BehaviorRefresh(
            self._store,
            self._redis,
            log,
            self._notices,
            rules,
            refresh_policy(settings),
            observer=self.metrics,
            factorizer=factorizer_from_settings(settings),
            blend_tuning=BlendTuning.from_settings(settings) if isinstance(settings, BlendSettings) else None,
        )
        ingestion = InteractionIngestion(
            self._store,
            self._notices,
            EventWeights.from_settings(settings),
            rules,
            self._item_locks,
            behavior_log=log,
            on_applied=refresh.note_interaction,
            max_future_s=settings.event_max_future_s,
            observer=self.metrics,
            batch_size=settings.interaction_batch_size,
        )
        # One consumer per partition (RECSYS_STREAM_PARTITIONS); just the stream when it is not partitioned.
        subscriptions.consume_all(
            streams=settings.streams.interaction_streams,
            group=settings.interaction_ingest_group,
            consumer=settings.consumer_name,
            handler=ingestion.handle,
            policy=ingestion_policy(settings),
        )
        await refresh.start()

    async def _wait_for_collections(self) -> None:
        """Waits for the collections: the text role creates them (it knows the content dimensions)."""
        logged = False
        while not await self._store.collections_exist():
            if not logged:
                log_event(_log, "interactions_role_waiting_for_collections", store=self._store.location)
                logged = True
            await asyncio.sleep(_COLLECTIONS_POLL_S)

    def liveness(self) -> dict[str, Callable[[], bool]]:
        return {"behavior refresh": lambda: self.behavior_refresh is not None and self.behavior_refresh.running}

    async def stop(self) -> None:
        """Stops the refresh task; call after the stream consumers stopped."""
        refresh, self.behavior_refresh = self.behavior_refresh, None
        if refresh is not None:
            await refresh.stop()
