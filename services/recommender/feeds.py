"""The three feeds read from Qdrant: items similar to an item, a user's personal feed, and text search."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, cast

from qdrant_client import models
from qdrant_client.http.exceptions import ResponseHandlingException, UnexpectedResponse

from recsys.recommender.blending import (
    POPULARITY,
    SEARCH,
    ForYouWeights,
    ItemVectors,
    UserVectors,
    blend,
    decayed_popularity,
    for_you_blend,
    popularity_prior,
    similar_items_signals,
    similar_items_weights,
)
from recsys.recommender.filters import (
    ItemFilter,
    validate_exclusions,
    validate_limit,
    validate_subject_id,
)
from recsys.recommender.qdrant_filters import to_qdrant_filter
from recsys.recommender.recommendations import Feed, Recommendation, Strategy, best_first
from recsys.recommender.settings import RecommenderSettings
from recsys.shared.errors import InvalidRequest, NotFound, Unavailable
from recsys.shared.ids import point_id
from recsys.shared.store import BEHAVIOR, CONTENT, ITEMS, SESSION, TASTE, USERS, VectorStore

# Only what ranking and display need: item points also carry bounded event-id lists.
_ITEM_FIELDS = ["item_id", "title", "category", "interaction_count", "popularity", "popularity_ts", "in_catalog"]
_USER_FIELDS = ["user_id", "seen"]

Point = models.ScoredPoint | models.Record


class QueryEmbedder(Protocol):
    """Turns a search text into a content-space vector."""

    async def embed_query(self, text: str) -> list[float]: ...


@dataclass(frozen=True)
class _Candidate:
    item_id: str
    title: str
    category: str
    vectors: ItemVectors
    popularity: float  # the prior in 0..1, decayed to the time of the request


class Feeds:
    """Answers feed requests; stateless, so any number of replicas can share one store."""

    def __init__(
        self,
        store: VectorStore,
        settings: RecommenderSettings,
        embedder: QueryEmbedder,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._client = store.client
        self._settings = settings
        self._embedder = embedder
        self._clock = clock
        self._content_dims: int | None = None

    async def similar_items(
        self, item_id: str, limit: int, item_filter: ItemFilter | None = None, exclude: Iterable[str] = ()
    ) -> Feed:
        """Items like `item_id`: content similarity blended with behavior similarity by the seed's evidence."""
        validate_subject_id("item_id", item_id)
        validate_limit(limit, self._settings.max_limit)
        excluded = validate_exclusions(exclude, self._settings.max_excluded_ids)
        seed = await self._retrieve(ITEMS, item_id, _ITEM_FIELDS)
        if seed is None or _payload(seed).get("in_catalog") is False:
            raise NotFound(f"item {item_id!r} not found")
        seed_vectors = _item_vectors(seed)
        query_filter = to_qdrant_filter(item_filter or ItemFilter(), [item_id, *excluded])
        pool = self._settings.pool_size(limit)
        points = await self._nearest_to_any(
            [(CONTENT, seed_vectors.content), (BEHAVIOR, seed_vectors.behavior)], pool, query_filter
        )
        weights = similar_items_weights(
            _int(_payload(seed).get("interaction_count")), self._settings.behavior_evidence_k
        )
        scored = []
        for candidate in self._candidates(points):
            signals = similar_items_signals(seed_vectors, candidate.vectors)
            if signals:
                blended = blend(signals, weights)
                scored.append(_recommendation(candidate, blended.score, blended.parts))
        return Feed(best_first(scored, limit), Strategy.SIMILAR)

    async def for_you(
        self, user_id: str, limit: int, item_filter: ItemFilter | None = None, exclude: Iterable[str] = ()
    ) -> Feed:
        """A personal feed from the user's taste, session and behavior vectors; popular items for a cold user."""
        validate_subject_id("user_id", user_id)
        validate_limit(limit, self._settings.max_limit)
        item_filter = item_filter or ItemFilter()
        excluded = validate_exclusions(exclude, self._settings.max_excluded_ids)
        user = await self._retrieve(USERS, user_id, _USER_FIELDS)
        vectors = _named_vectors(user) if user is not None else {}
        user_vectors = UserVectors(
            taste=vectors.get(TASTE), session=vectors.get(SESSION), behavior=vectors.get(BEHAVIOR)
        )
        seen = [s for s in _payload(user).get("seen") or [] if isinstance(s, str)] if user is not None else []
        excluded_all = [*excluded, *seen]
        if user_vectors.is_empty:
            return Feed(await self._popular_feed(limit, item_filter, excluded_all), Strategy.POPULAR)

        query_filter = to_qdrant_filter(item_filter, excluded_all)
        pool = self._settings.pool_size(limit)
        points = await self._nearest_to_any(
            [(CONTENT, user_vectors.taste), (CONTENT, user_vectors.session), (BEHAVIOR, user_vectors.behavior)],
            pool,
            query_filter,
        )
        candidates = self._candidates(points)
        if len(candidates) < limit:
            # Filters or a thin catalog left too few personalized candidates: popular items fill the feed.
            found = [c.item_id for c in candidates]
            candidates += self._candidates(
                await self._popular_points(limit - len(candidates), item_filter, [*excluded_all, *found], True)
            )
        weights = ForYouWeights(
            taste=self._settings.taste_weight,
            session=self._settings.session_weight,
            behavior=self._settings.user_behavior_weight,
            popularity=self._settings.popularity_weight,
        )
        scored = []
        for candidate in candidates:
            blended = for_you_blend(user_vectors, candidate.vectors, candidate.popularity, weights)
            scored.append(_recommendation(candidate, blended.score, blended.parts))
        return Feed(best_first(scored, limit), Strategy.PERSONALIZED)

    async def search_items(
        self, text: str, limit: int, item_filter: ItemFilter | None = None, exclude: Iterable[str] = ()
    ) -> Feed:
        """Items whose content is nearest to the query text, embedded by the encoder."""
        if not text.strip():
            raise InvalidRequest("text must not be empty")
        if len(text) > self._settings.max_query_chars:
            raise InvalidRequest(f"text has {len(text)} characters; at most {self._settings.max_query_chars} allowed")
        validate_limit(limit, self._settings.max_limit)
        excluded = validate_exclusions(exclude, self._settings.max_excluded_ids)
        query_filter = to_qdrant_filter(item_filter or ItemFilter(), excluded)
        vector = await self._embedder.embed_query(text)
        content_dims = await self._content_vector_dims()
        if len(vector) != content_dims:
            raise Unavailable(
                f"encoder returned {len(vector)}-dim query vectors but items hold {content_dims}-dim content vectors"
            )
        points = await self._nearest(CONTENT, vector, limit, query_filter, with_vectors=False)
        now = self._clock()
        scored = []
        for point in points:
            candidate = self._candidate(point, now)
            if candidate is not None:
                scored.append(_recommendation(candidate, point.score, {SEARCH: point.score}))
        return Feed(best_first(scored, limit), Strategy.SEARCH)

    async def _popular_feed(self, limit: int, item_filter: ItemFilter, excluded: Sequence[str]) -> list[Recommendation]:
        points = await self._popular_points(limit, item_filter, excluded, False)
        ranked = [
            _recommendation(candidate, candidate.popularity, {POPULARITY: candidate.popularity})
            for candidate in self._candidates(points)
        ]
        return best_first(ranked, limit)

    async def _popular_points(
        self, limit: int, item_filter: ItemFilter, excluded: Sequence[str], with_vectors: bool
    ) -> list[Point]:
        """Most popular first by stored popularity, then items nobody has engaged with yet.

        A pool larger than `limit` is fetched because the stored values are as of different times;
        ranking re-orders them by popularity decayed to now.
        """
        query_filter = to_qdrant_filter(item_filter, excluded)
        pool = self._settings.pool_size(limit)
        async with _store_errors():
            response = await self._client.query_points(
                ITEMS,
                query=models.OrderByQuery(order_by=models.OrderBy(key="popularity", direction=models.Direction.DESC)),
                query_filter=query_filter,
                limit=pool,
                with_payload=_ITEM_FIELDS,
                with_vectors=with_vectors,
            )
        points: list[Point] = list(response.points)
        if len(points) < limit:
            # An order_by query skips points without the key: items nobody engaged with come last.
            unranked: list[models.Condition] = [models.IsEmptyCondition(is_empty=models.PayloadField(key="popularity"))]
            unranked.append(query_filter)
            async with _store_errors():
                records, _ = await self._client.scroll(
                    ITEMS,
                    scroll_filter=models.Filter(must=unranked),
                    limit=limit - len(points),
                    with_payload=_ITEM_FIELDS,
                    with_vectors=with_vectors,
                )
            points += records
        return points

    async def _nearest_to_any(
        self, queries: Sequence[tuple[str, Sequence[float] | None]], limit: int, query_filter: models.Filter | None
    ) -> list[Point]:
        """The nearest items to each present (vector name, query) pair, concatenated in query order."""
        found = await asyncio.gather(
            *(self._nearest(using, vector, limit, query_filter) for using, vector in queries if vector is not None)
        )
        return [point for points in found for point in points]

    async def _nearest(
        self,
        using: str,
        vector: Sequence[float],
        limit: int,
        query_filter: models.Filter | None,
        with_vectors: bool = True,
    ) -> list[models.ScoredPoint]:
        async with _store_errors():
            response = await self._client.query_points(
                ITEMS,
                query=list(vector),
                using=using,
                query_filter=query_filter,
                limit=limit,
                with_payload=_ITEM_FIELDS,
                with_vectors=with_vectors,
            )
        return list(response.points)

    async def _retrieve(self, collection: str, external_id: str, fields: list[str]) -> models.Record | None:
        async with _store_errors():
            records = await self._client.retrieve(
                collection, [point_id(external_id)], with_payload=fields, with_vectors=True
            )
        return records[0] if records else None

    async def _content_vector_dims(self) -> int:
        if self._content_dims is None:
            async with _store_errors():
                info = await self._client.get_collection(ITEMS)
            vectors = info.config.params.vectors
            if not isinstance(vectors, dict) or CONTENT not in vectors:
                raise Unavailable(f"collection {ITEMS!r} has no {CONTENT!r} vector")
            self._content_dims = vectors[CONTENT].size
        return self._content_dims

    def _candidates(self, points: Iterable[Point]) -> list[_Candidate]:
        """One candidate per item, first occurrence wins."""
        now = self._clock()
        candidates: dict[str, _Candidate] = {}
        for point in points:
            candidate = self._candidate(point, now)
            if candidate is not None and candidate.item_id not in candidates:
                candidates[candidate.item_id] = candidate
        return list(candidates.values())

    def _candidate(self, point: Point, now: float) -> _Candidate | None:
        """The item a point holds; None for a point without an item id, which could never be returned."""
        payload = _payload(point)
        item_id = payload.get("item_id")
        if not isinstance(item_id, str) or not item_id:
            return None
        decayed = decayed_popularity(
            _float(payload.get("popularity")),
            _optional_float(payload.get("popularity_ts")),
            now,
            self._settings.popularity_half_life_days,
        )
        return _Candidate(
            item_id=item_id,
            title=str(payload.get("title") or ""),
            category=str(payload.get("category") or ""),
            vectors=_item_vectors(point),
            popularity=popularity_prior(decayed, self._settings.popularity_midpoint),
        )


@contextlib.asynccontextmanager
async def _store_errors() -> AsyncIterator[None]:
    """A store that cannot be reached, or lacks its collections, is a dependency problem, not a bug."""
    try:
        yield
    except ResponseHandlingException as exc:
        raise Unavailable(f"vector store is unreachable: {exc}") from exc
    except UnexpectedResponse as exc:
        if exc.status_code is not None and (exc.status_code == 404 or exc.status_code >= 500):
            raise Unavailable(f"vector store failed: {exc.status_code} {exc.reason_phrase}") from exc
        raise


def _recommendation(candidate: _Candidate, score: float, parts: dict[str, float]) -> Recommendation:
    return Recommendation(
        item_id=candidate.item_id, score=score, score_parts=parts, title=candidate.title, category=candidate.category
    )


def _payload(point: Point) -> dict[str, Any]:
    return point.payload or {}


def _named_vectors(point: Point) -> dict[str, list[float]]:
    vectors = point.vector
    if not isinstance(vectors, dict):
        return {}
    # Dense vectors only: this layout has no sparse or multi-vectors, and neither could be compared here.
    return {
        name: cast(list[float], vector)
        for name, vector in vectors.items()
        if isinstance(vector, list) and vector and isinstance(vector[0], float | int)
    }


def _item_vectors(point: Point) -> ItemVectors:
    vectors = _named_vectors(point)
    return ItemVectors(content=vectors.get(CONTENT), behavior=vectors.get(BEHAVIOR))


def _float(value: Any) -> float:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0.0


def _optional_float(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _int(value: Any) -> int:
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0
