"""Synthetic catalogs for the feeds benchmark: items and users with the encoder's payload schema, in batches.

Content vectors are unit vectors around a few hundred topic centres (real catalogs cluster; uniform
random vectors in 384 dimensions are all nearly orthogonal, the worst case for an HNSW graph), and
so are behavior vectors. Popularity, interaction counts and behavior vectors go to the engaged
share of the items, creation times spread over two years so that a few items are fresh.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
from qdrant_client import models

from recsys.shared.ids import point_id
from recsys.shared.packed import pack_history, pack_ids
from recsys.shared.points import BEHAVIOR, CONTENT, SESSION, TASTE, ItemField, UserField

CONTENT_DIMS = 384
BEHAVIOR_DIMS = 64
_TOPICS = 256
_CATEGORIES = [f"category-{n}" for n in range(20)]
_ENGAGED_SHARE = 0.6
_SEEN_PER_USER = 20


@dataclass(frozen=True)
class CatalogShape:
    items: int
    users: int = 200
    seed: int = 7


def item_id(n: int) -> str:
    return f"item-{n}"


def user_id(n: int) -> str:
    return f"user-{n}"


class SyntheticCatalog:
    """Reproducible items and users of one shape; the same batches for every engine."""

    def __init__(self, shape: CatalogShape) -> None:
        self.shape = shape
        self.now = time.time()
        rng = np.random.default_rng(shape.seed)
        self._content_topics = _unit(rng.standard_normal((_TOPICS, CONTENT_DIMS)))
        self._behavior_topics = _unit(rng.standard_normal((_TOPICS, BEHAVIOR_DIMS)))

    def item_batches(self, batch_size: int = 1000) -> Iterator[list[models.PointStruct]]:
        for start in range(0, self.shape.items, batch_size):
            yield self._items(start, min(start + batch_size, self.shape.items))

    def _items(self, start: int, stop: int) -> list[models.PointStruct]:
        rng = np.random.default_rng((self.shape.seed, 0, start))
        count = stop - start
        topics = rng.integers(0, _TOPICS, count)
        content = _unit(self._content_topics[topics] + 0.03 * rng.standard_normal((count, CONTENT_DIMS)))
        behavior = _unit(self._behavior_topics[topics] + 0.08 * rng.standard_normal((count, BEHAVIOR_DIMS)))
        engaged = rng.random(count) < _ENGAGED_SHARE
        popularity = rng.exponential(5.0, count)
        interactions = rng.poisson(20, count)
        created = self.now - rng.uniform(0, 730, count) * 86_400
        points = []
        for row in range(count):
            n = start + row
            vectors: dict[str, Any] = {CONTENT: content[row].tolist()}
            payload: dict[str, Any] = {
                ItemField.ITEM_ID.key: item_id(n),
                ItemField.TITLE.key: f"Item {n}",
                ItemField.CATEGORY.key: _CATEGORIES[int(topics[row]) % len(_CATEGORIES)],
                ItemField.TAGS.key: [f"topic-{int(topics[row])}"],
                ItemField.ATTRIBUTES.key: {},
                ItemField.VERSION.key: 1,
                ItemField.CREATED_AT.key: float(created[row]),
                ItemField.UPDATED_AT.key: self.now,
                ItemField.IN_CATALOG.key: True,
                ItemField.RECENT_EVENT_IDS.key: pack_ids([]),
                ItemField.INTERACTION_COUNT.key: int(interactions[row]) if engaged[row] else 0,
                ItemField.BEHAVIOR_NORM.key: 0.0,
                ItemField.BEHAVIOR_VERSION.key: None,
            }
            if engaged[row]:
                vectors[BEHAVIOR] = behavior[row].tolist()
                payload[ItemField.BEHAVIOR_NORM.key] = 0.8
                payload[ItemField.BEHAVIOR_VERSION.key] = 1
                payload[ItemField.POPULARITY.key] = float(popularity[row])
                payload[ItemField.POPULARITY_TS.key] = self.now - 3600.0
            points.append(models.PointStruct(id=point_id(item_id(n)), vector=vectors, payload=payload))
        return points

    def users(self) -> list[models.PointStruct]:
        """Users with taste, session and behavior vectors near a topic, each having seen some items."""
        rng = np.random.default_rng((self.shape.seed, 1, 0))
        count = self.shape.users
        topics = rng.integers(0, _TOPICS, count)
        taste = _unit(self._content_topics[topics] + 0.03 * rng.standard_normal((count, CONTENT_DIMS)))
        session = _unit(self._content_topics[topics] + 0.05 * rng.standard_normal((count, CONTENT_DIMS)))
        behavior = _unit(self._behavior_topics[topics] + 0.08 * rng.standard_normal((count, BEHAVIOR_DIMS)))
        points = []
        for row in range(count):
            seen = [item_id(int(n)) for n in rng.integers(0, self.shape.items, _SEEN_PER_USER)]
            payload: dict[str, Any] = {
                UserField.USER_ID.key: user_id(row),
                UserField.EVENT_COUNT.key: 50,
                UserField.LAST_EVENT_TS.key: self.now,
                UserField.TASTE_NORM.key: 1.0,
                UserField.TASTE_TS.key: self.now,
                UserField.SESSION_ID.key: "s1",
                UserField.SESSION_NORM.key: 1.0,
                UserField.SESSION_TS.key: self.now,
                UserField.BEHAVIOR_NORM.key: 1.0,
                UserField.BEHAVIOR_TS.key: self.now,
                UserField.HISTORY.key: pack_history([(seen_id, 1.0, self.now) for seen_id in seen]),
                UserField.SEEN.key: pack_ids(seen),
                UserField.RECENT_EVENT_IDS.key: pack_ids([]),
                UserField.BEHAVIOR_VERSION.key: 1,
            }
            vectors = {TASTE: taste[row].tolist(), SESSION: session[row].tolist(), BEHAVIOR: behavior[row].tolist()}
            points.append(models.PointStruct(id=point_id(user_id(row)), vector=vectors, payload=payload))
        return points


def _unit(vectors: np.ndarray) -> np.ndarray:
    return (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)
