"""Wires the interaction side of the encoder: the ingestion handler, the behavior log and the periodic refresh."""

from __future__ import annotations

from redis.asyncio import Redis

from recsys.encoder.behavior_log import BehaviorLog, behavior_log_stream
from recsys.encoder.behavior_refresh import BehaviorRefresh, RefreshPolicy
from recsys.encoder.interaction_ingestion import InteractionIngestion
from recsys.encoder.interaction_rules import EventWeights, InteractionRules
from recsys.encoder.keyed_locks import KeyedLocks
from recsys.encoder.notices import NoticePublisher
from recsys.encoder.settings import EncoderSettings
from recsys.shared.store import VectorStore

_DAY_S = 86_400.0


def refresh_policy(settings: EncoderSettings) -> RefreshPolicy:
    return RefreshPolicy(
        every_interactions=settings.behavior_refresh_interactions,
        interval_s=settings.behavior_refresh_interval_s,
        model_half_life_s=settings.behavior_model_half_life_days * _DAY_S,
        dims=settings.behavior_dims,
        batch_size=settings.behavior_refresh_batch,
        device=settings.behavior_device,
        lock_key=f"{settings.stream_prefix}:behavior-refresh:lock",
    )


async def start_interaction_side(
    settings: EncoderSettings, store: VectorStore, redis: Redis, notices: NoticePublisher, item_locks: KeyedLocks
) -> tuple[InteractionIngestion, BehaviorRefresh]:
    """The handler for the interactions stream and the started refresh task (stop it with the service)."""
    rules = InteractionRules.from_settings(settings)
    log = BehaviorLog(redis, behavior_log_stream(settings.stream_prefix), settings.behavior_log_size)
    refresh = BehaviorRefresh(store, redis, log, notices, rules, refresh_policy(settings))
    ingestion = InteractionIngestion(
        store,
        notices,
        EventWeights.from_settings(settings),
        rules,
        item_locks,
        behavior_log=log,
        on_applied=refresh.note_interaction,
    )
    await refresh.start()
    return ingestion, refresh
