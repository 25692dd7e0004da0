"""The record of each behavior model version in Qdrant: what the refresh learnt besides the item vectors.

Read by the encoder's text role (the content map gives a new item its behavior vector at once), the
interactions role (it writes the record at each refresh) and the recommender (blend weights). One
payload-only point per version (its id is the version, milliseconds) plus the "current" point
(id 0), which names the current version. A version's point is written before the current point
names it, so a reader that finds the current version finds its record; the newest `KEEP_VERSIONS`
are kept, so a reader that read the pointer just before a newer refresh still finds its record.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from qdrant_client import models

from recsys.shared.logs import log_event
from recsys.shared.points import MODELS, ModelField, keys

if TYPE_CHECKING:  # store.py creates this collection with the others
    from recsys.shared.store import VectorStore

_log = logging.getLogger(__name__)

# The "current" point's id; versions are milliseconds, far above it.
CURRENT_POINT = 0
KEEP_VERSIONS = 3


@dataclass(frozen=True)
class BehaviorModelRecord:
    """One behavior model version: its content map (ContentMap.to_dict()) and blend settings tuned with it."""

    version: int
    content_map: dict[str, Any] | None
    blend_weights: dict[str, float] | None = None
    blend_tuning: dict[str, float] | None = None
    event_type_weights: dict[str, float] | None = None

    def payload(self) -> dict[str, Any]:
        return {
            ModelField.MODEL_VERSION.key: self.version,
            ModelField.CONTENT_MAP.key: self.content_map,
            ModelField.BLEND_WEIGHTS.key: self.blend_weights,
            ModelField.BLEND_TUNING.key: self.blend_tuning,
            ModelField.EVENT_TYPE_WEIGHTS.key: self.event_type_weights,
            ModelField.SAVED_AT.key: time.time(),
        }

    @classmethod
    def of(cls, payload: dict[str, Any] | None) -> BehaviorModelRecord | None:
        version = ModelField.MODEL_VERSION.read(payload)
        if version is None:
            return None
        return cls(
            version=version,
            content_map=ModelField.CONTENT_MAP.read(payload),
            blend_weights=ModelField.BLEND_WEIGHTS.read(payload),
            blend_tuning=ModelField.BLEND_TUNING.read(payload),
            event_type_weights=ModelField.EVENT_TYPE_WEIGHTS.read(payload),
        )


async def ensure_models_collection(store: VectorStore) -> None:
    """Creates the payload-only collection when missing (a concurrent creator winning the race is fine)."""
    if await store.client.collection_exists(MODELS):
        return
    try:
        await store.client.create_collection(MODELS, vectors_config={})
    except Exception:
        if not await store.client.collection_exists(MODELS):
            raise
        return
    log_event(_log, "collection_created", collection=MODELS, vectors={}, location=store.location)


async def save_model_record(store: VectorStore, record: BehaviorModelRecord) -> None:
    """Writes the version's record, then makes it current, then drops versions older than the newest few."""
    if record.version <= CURRENT_POINT:
        raise ValueError(f"a model version must be positive, got {record.version}")
    await ensure_models_collection(store)
    await store.client.upsert(MODELS, [models.PointStruct(id=record.version, vector={}, payload=record.payload())])
    # Only a newer version may become current: a slow refresh finishing late never rolls it back.
    await store.client.upsert(
        MODELS,
        [models.PointStruct(id=CURRENT_POINT, vector={}, payload={ModelField.MODEL_VERSION.key: record.version})],
        update_filter=models.Filter(
            must=[models.FieldCondition(key=ModelField.MODEL_VERSION.key, range=models.Range(lt=record.version))]
        ),
    )
    await _drop_old_versions(store)


async def _drop_old_versions(store: VectorStore) -> None:
    current = await current_model_version(store)
    versions: list[int] = []
    offset: Any = None
    while True:
        records, offset = await store.client.scroll(
            MODELS, limit=256, offset=offset, with_payload=keys([ModelField.MODEL_VERSION])
        )
        versions += [int(r.id) for r in records if isinstance(r.id, int) and r.id != CURRENT_POINT]
        if offset is None:
            break
    old = [v for v in sorted(versions, reverse=True)[KEEP_VERSIONS:] if v != current]
    if old:
        await store.client.delete(MODELS, points_selector=models.PointIdsList(points=list(old)))


async def current_model_version(store: VectorStore) -> int | None:
    """The current version (one small read), or None before the first record or the collection."""
    found = await _retrieve(store, CURRENT_POINT, keys([ModelField.MODEL_VERSION]))
    return ModelField.MODEL_VERSION.read(found.payload) if found is not None else None


async def load_model_record(store: VectorStore, version: int) -> BehaviorModelRecord | None:
    """The record of one version, or None when it is unknown (never written, or dropped as old)."""
    found = await _retrieve(store, version, True)
    return BehaviorModelRecord.of(found.payload) if found is not None else None


async def load_current_model(store: VectorStore) -> BehaviorModelRecord | None:
    """The current version's record, or None before the first refresh wrote one."""
    version = await current_model_version(store)
    return None if version is None else await load_model_record(store, version)


async def current_blend_weights(store: VectorStore) -> dict[str, float] | None:
    """The current record's tuned blend weights alone (None: none tuned yet): what recommenders poll, so they
    do not read the content map every time."""
    version = await current_model_version(store)
    if version is None:
        return None
    found = await _retrieve(store, version, keys([ModelField.BLEND_WEIGHTS]))
    return ModelField.BLEND_WEIGHTS.read(found.payload) if found is not None else None


async def _retrieve(store: VectorStore, point: int, with_payload: Any) -> models.Record | None:
    """One point; None when it or the collection is missing (a store older than this collection)."""
    try:
        found = await store.client.retrieve(MODELS, [point], with_payload=with_payload, with_vectors=False)
    except Exception:
        if await store.client.collection_exists(MODELS):
            raise
        return None
    return found[0] if found else None
