"""Hand-made catalogs for recommender tests: points written straight into Qdrant with the encoder's payload schema."""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
from qdrant_client import models

from recsys.shared.ids import point_id
from recsys.shared.store import BEHAVIOR, CONTENT, ITEMS, SESSION, TASTE, USERS, VectorStore

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
    """Writes items and users the way the encoder would (see the payload schema in recsys.shared.store)."""

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
            "item_id": item_id,
            "title": title if title is not None else f"Title of {item_id}",
            "category": category,
            "tags": list(tags),
            "attributes": attributes or {},
            "version": 1,
            "created_at": self.now - created_days_ago * 86_400,
            "updated_at": self.now,
            "interaction_count": interaction_count,
            "behavior_norm": behavior_strength if behavior is not None else 0.0,
            "behavior_version": behavior_version if behavior is not None else None,
            "recent_event_ids": [],
            "in_catalog": in_catalog,
        }
        if popularity is not None:
            payload["popularity"] = popularity
            payload["popularity_ts"] = self.now - popularity_age_days * 86_400
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
            "user_id": user_id,
            "event_count": events if events is not None else len(seen),
            "last_event_ts": self.now,
            "taste_norm": 1.0 if taste is not None else 0.0,
            "taste_ts": self.now,
            "session_id": "s1" if session is not None else None,
            "session_norm": 1.0 if session is not None else 0.0,
            "session_ts": self.now,
            "behavior_norm": 1.0 if behavior is not None else 0.0,
            "behavior_ts": self.now,
            "history": [[item_id, 1.0, self.now] for item_id in seen],
            "seen": list(seen),
            "recent_event_ids": [],
            "behavior_version": behavior_version if behavior is not None else None,
        }
        await self.store.client.upsert(
            USERS, [models.PointStruct(id=point_id(user_id), vector=vectors, payload=payload)]
        )
