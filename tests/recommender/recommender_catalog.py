"""Hand-made catalogs for recommender tests: points written straight into Qdrant with the encoder's payload schema."""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
from qdrant_client import models

from recsys.shared.ids import point_id
from recsys.shared.packed import pack_history, pack_ids
from recsys.shared.points import BEHAVIOR, CONTENT, ITEMS, SESSION, TASTE, USERS, ItemField, UserField
from recsys.shared.store import VectorStore

CONTENT_DIMS = 384
BEHAVIOR_DIMS = 64


def direction(axis: int, angle: float = 0.0, toward: int | None = None, dims: int = CONTENT_DIMS) -> list[float]:
    """A unit vector `angle` radians from basis vector `axis`, turned toward basis vector `toward`.

    Its cosine with the basis vector is cos(angle), so tests know every similarity by construction.
    """
    vector = np.zeros(dims)
    vector[axis] = math.cos(angle)
    vector[toward if toward is not None else (axis + 1) % dims] = math.sin(angle)
    return [float(x) for x in vector]


def behavior_direction(axis: int, angle: float = 0.0, toward: int | None = None) -> list[float]:
    return direction(axis, angle, toward, dims=BEHAVIOR_DIMS)


class Catalog:
    """Writes items and users the way the encoder would (the payload schema of recsys.shared.points)."""

    def __init__(self, store: VectorStore) -> None:
        self.store = store
        self.now = time.time()

    async def item(
        self,
        item_id: str,
        content: Sequence[float] | None,
        behavior: Sequence[float] | None = None,
        *,
        title: str | None = None,
        category: str = "",
        tags: Sequence[str] = (),
        attributes: dict[str, Any] | None = None,
        interaction_count: int = 0,
        popularity: float | None = None,
        popularity_age_days: float = 0.0,
        in_catalog: bool = True,
        behavior_strength: float = 1.0,
        behavior_version: int = 1,
        created_days_ago: float = 365.0,
    ) -> None:
        vectors: dict[str, Any] = {
            name: list(v) for name, v in ((CONTENT, content), (BEHAVIOR, behavior)) if v is not None
        }
        payload: dict[str, Any] = {
            ItemField.ITEM_ID.key: item_id,
            ItemField.TITLE.key: title if title is not None else f"Title of {item_id}",
            ItemField.CATEGORY.key: category,
            ItemField.TAGS.key: list(tags),
            ItemField.ATTRIBUTES.key: attributes or {},
            ItemField.VERSION.key: 1,
            ItemField.CREATED_AT.key: self.now - created_days_ago * 86_400,
            ItemField.UPDATED_AT.key: self.now,
            ItemField.INTERACTION_COUNT.key: interaction_count,
            ItemField.BEHAVIOR_NORM.key: behavior_strength if behavior is not None else 0.0,
            ItemField.BEHAVIOR_VERSION.key: behavior_version if behavior is not None else None,
            ItemField.RECENT_EVENT_IDS.key: pack_ids([]),
            ItemField.IN_CATALOG.key: in_catalog,
        }
        if popularity is not None:
            payload[ItemField.POPULARITY.key] = popularity
            payload[ItemField.POPULARITY_TS.key] = self.now - popularity_age_days * 86_400
        await self.store.client.upsert(
            ITEMS, [models.PointStruct(id=point_id(item_id), vector=vectors, payload=payload)]
        )

    async def user(
        self,
        user_id: str,
        *,
        taste: Sequence[float] | None = None,
        session: Sequence[float] | None = None,
        behavior: Sequence[float] | None = None,
        seen: Sequence[str] = (),
        events: int | None = None,
        behavior_version: int = 1,
    ) -> None:
        named = ((TASTE, taste), (SESSION, session), (BEHAVIOR, behavior))
        vectors: dict[str, Any] = {name: list(v) for name, v in named if v is not None}
        payload: dict[str, Any] = {
            UserField.USER_ID.key: user_id,
            UserField.EVENT_COUNT.key: events if events is not None else len(seen),
            UserField.LAST_EVENT_TS.key: self.now,
            UserField.TASTE_NORM.key: 1.0 if taste is not None else 0.0,
            UserField.TASTE_TS.key: self.now,
            UserField.SESSION_ID.key: "s1" if session is not None else None,
            UserField.SESSION_NORM.key: 1.0 if session is not None else 0.0,
            UserField.SESSION_TS.key: self.now,
            UserField.BEHAVIOR_NORM.key: 1.0 if behavior is not None else 0.0,
            UserField.BEHAVIOR_TS.key: self.now,
            UserField.HISTORY.key: pack_history([(item_id, 1.0, self.now) for item_id in seen]),
            UserField.SEEN.key: pack_ids(seen),
            UserField.RECENT_EVENT_IDS.key: pack_ids([]),
            UserField.BEHAVIOR_VERSION.key: behavior_version if behavior is not None else None,
        }
        await self.store.client.upsert(
            USERS, [models.PointStruct(id=point_id(user_id), vector=vectors, payload=payload)]
        )
