"""The three feeds read from Qdrant: items similar to an item, a user's personal feed, and text search."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Protocol, cast

import numpy as np
from qdrant_client import models
from qdrant_client.http.exceptions import ResponseHandlingException, UnexpectedResponse

from recsys.recommender.diversity import validate_lambda
from recsys.recommender.exposure import fresh_slots, with_fresh_share
from recsys.recommender.filters import ItemFilter, validate_exclusions, validate_limit, validate_subject_id
from recsys.recommender.pagination import decode_token, encode_token
from recsys.recommender.qdrant_filters import to_qdrant_filter
from recsys.recommender.ranking import feed_order
from recsys.recommender.recommendations import Feed, Recommendation, Strategy
from recsys.recommender.settings import RecommenderSettings
from recsys.recommender.tuned_blend import TunedWeights
from recsys.shared.blending import (
    BEHAVIOR,
    CONTENT,
    POPULARITY,
    SEARCH,
    Blend,
    Candidates,
    UserQuery,
    blend,
    decayed_popularity,
    for_you_blend,
    popularity_prior,
    similar_items_signals,
    similar_items_weights,
    worth_a_slot,
)
from recsys.shared.errors import InvalidRequest, NotFound, Unavailable
from recsys.shared.ids import point_id
from recsys.shared.points import ITEMS, SESSION, TASTE, USERS, ItemField, UserField, keys
from recsys.shared.store import VectorStore
from recsys.shared.successors import recent_items, sequence_scores, sequence_signal

# Only what ranking and display need: item points also carry bounded event-id lists.
_ITEM_FIELDS = keys(
    [
        ItemField.ITEM_ID,
        ItemField.TITLE,
        ItemField.CATEGORY,
        ItemField.INTERACTION_COUNT,
        ItemField.POPULARITY,
        ItemField.POPULARITY_TS,
        ItemField.IN_CATALOG,
        ItemField.CREATED_AT,
        ItemField.BEHAVIOR_NORM,
        ItemField.BEHAVIOR_VERSION,
    ]
)
_USER_FIELDS = keys(
    [UserField.USER_ID, UserField.SEEN, UserField.EVENT_COUNT, UserField.BEHAVIOR_VERSION, UserField.HISTORY]
)

Point = models.ScoredPoint | models.Record


class QueryEmbedder(Protocol):
    """Turns a search text into a content-space vector."""

    async def embed_query(self, text: str) -> list[float]: ...


@dataclass(frozen=True)
class FeedControls:
    """Per-request controls: weight overrides, MMR λ, the page token, seen-exclusion and fresh share."""

    weights: Mapping[str, float] = field(default_factory=dict)
    mmr_lambda: float | None = None
    page_token: str = ""
    exclude_seen: bool | None = None
    fresh_share: float | None = None


@dataclass(frozen=True)
class _Pool:
    """Fetched candidates as arrays, with what display and exposure need."""

    candidates: Candidates
    titles: list[str]
    categories: list[str]
    fresh: np.ndarray


class Feeds:
    """Answers feed requests; stateless, so any number of replicas can share one store."""

    def __init__(
        self,
        store: VectorStore,
        settings: RecommenderSettings,
        embedder: QueryEmbedder,
        clock: Callable[[], float] = time.time,
        tuned_weights: TunedWeights | None = None,
    ) -> None:
        self._client = store.client
        # Without a model record to read (tests of other logic), ForYou ranks with the configured weights.
        self._weights = tuned_weights or TunedWeights(_no_record, settings.for_you_weights(), enabled=False)
        self._settings = settings
        self._embedder = embedder
        self._clock = clock
        self._content_dims: int | None = None

    async def similar_items(
        self,
        item_id: str,
        limit: int,
        item_filter: ItemFilter | None = None,
        exclude: Iterable[str] = (),
        controls: FeedControls | None = None,
    ) -> Feed:
        """Items like `item_id`: content similarity blended with behavior similarity by the seed's evidence."""
        controls = controls or FeedControls()
        validate_subject_id("item_id", item_id)
        validate_limit(limit, self._settings.max_limit)
        excluded = validate_exclusions(exclude, self._settings.max_excluded_ids)
        served = self._served(controls, limit)
        lam = validate_lambda(controls.mmr_lambda if controls.mmr_lambda is not None else self._settings.mmr_lambda)
        seed = await self._retrieve(ITEMS, item_id, _ITEM_FIELDS)
        if seed is None or not ItemField.IN_CATALOG.read(seed.payload):
            raise NotFound(f"item {item_id!r} not found")
        seed_vectors = _named_vectors(seed)
        seed_version = ItemField.BEHAVIOR_VERSION.read(seed.payload)
        seed_behavior = seed_vectors.get(BEHAVIOR) if seed_version is not None else None
        weights = similar_items_weights(
            ItemField.INTERACTION_COUNT.read(seed.payload), self._settings.behavior_evidence_k
        )
        weights.update(_checked_overrides(controls.weights, {CONTENT, BEHAVIOR}))
        query_filter = to_qdrant_filter(item_filter or ItemFilter(), [item_id, *excluded, *served])
        pool = self._settings.pool_size(limit)
        points = await self._nearest_to_any(
            [(CONTENT, seed_vectors.get(CONTENT)), (BEHAVIOR, seed_behavior)], pool, query_filter
        )
        found = self._pool(points, seed_version)
        if not len(found.candidates):
            return Feed([], Strategy.SIMILAR)
        content = np.asarray(seed_vectors[CONTENT]) if CONTENT in seed_vectors else None
        behavior = np.asarray(seed_behavior) if seed_behavior is not None else None
        blended = blend(similar_items_signals(content, behavior, found.candidates), weights)
        has_signal = ~np.all([np.isnan(values) for values in blended.parts.values()], axis=0)
        rows = feed_order(blended.scores, has_signal, limit, lam, found.candidates.content)
        return self._feed(found, blended, rows, Strategy.SIMILAR, served, limit)

    async def for_you(
        self,
        user_id: str,
        limit: int,
        item_filter: ItemFilter | None = None,
        exclude: Iterable[str] = (),
        controls: FeedControls | None = None,
    ) -> Feed:
        """A personal feed from the user's taste, session and behavior vectors and what followed their latest items
        in others' histories (the sequence signal, when weighted); trending items for a user with neither."""
        controls = controls or FeedControls()
        validate_subject_id("user_id", user_id)
        validate_limit(limit, self._settings.max_limit)
        item_filter = item_filter or ItemFilter()
        excluded = validate_exclusions(exclude, self._settings.max_excluded_ids)
        served = self._served(controls, limit)
        lam = validate_lambda(controls.mmr_lambda if controls.mmr_lambda is not None else self._settings.mmr_lambda)
        share = controls.fresh_share if controls.fresh_share is not None else self._settings.fresh_share
        if not 0.0 <= share <= 1.0:
            raise InvalidRequest(f"fresh_share must be between 0 and 1, got {share}")
        weights = (await self._weights.current()).overridden(controls.weights)
        user = await self._retrieve(USERS, user_id, _USER_FIELDS)
        payload = user.payload if user is not None else None
        vectors = _named_vectors(user) if user is not None else {}
        version = UserField.BEHAVIOR_VERSION.read(payload)
        query = UserQuery(
            taste=_array(vectors.get(TASTE)),
            session=_array(vectors.get(SESSION)),
            behavior=_array(vectors.get(BEHAVIOR)) if version is not None else None,
            events=UserField.EVENT_COUNT.read(payload),
        )
        exclude_seen = controls.exclude_seen if controls.exclude_seen is not None else self._settings.exclude_seen
        seen = UserField.SEEN.read(payload) if exclude_seen else []
        query_filter = to_qdrant_filter(item_filter, [*excluded, *served, *seen])
        pool = self._settings.pool_size(limit)
        fresh_points = await self._fresh_points(fresh_slots(limit, share), query, query_filter)
        # Weighted 0 the signal costs no read: its scores would only add zeros.
        recent = recent_items(UserField.HISTORY.read(payload)) if weights.sequence > 0 else []
        sequence = await self._sequence_scores(recent)
        # A user with history but no vector yet (their items had none) still has successors to go on: ranked
        # by them, not by trend alone. With neither, the trending feed.
        if query.is_empty and not sequence:
            points = await self._popular_points(pool, query_filter, with_vectors=True)
            found = self._pool([*points, *fresh_points], None)
            popular = blend({POPULARITY: found.candidates.popularity}, {POPULARITY: 1.0})
            rows = feed_order(
                popular.scores, np.ones(len(found.candidates), bool), limit, lam, found.candidates.content
            )
            return self._feed(found, popular, rows, Strategy.POPULAR, served, limit, share)

        points, successors = await asyncio.gather(
            self._nearest_to_any(
                [(CONTENT, query.taste), (CONTENT, query.session), (BEHAVIOR, query.behavior)], pool, query_filter
            ),
            self._successor_points(sequence, pool, query_filter),
        )
        # Popular items compete too: a thin or filtered neighbourhood never leaves the feed short.
        points += await self._popular_points(limit, query_filter, with_vectors=True)
        found = self._pool([*points, *successors, *fresh_points], version)
        if sequence:
            found = replace(
                found, candidates=found.candidates.with_sequence(sequence_signal(sequence, found.candidates.item_ids))
            )
        blended = for_you_blend(query, found.candidates, weights)
        rows = feed_order(blended.scores, np.ones(len(found.candidates), bool), limit, lam, found.candidates.content)
        return self._feed(found, blended, rows, Strategy.PERSONALIZED, served, limit, share, weights.fresh_gate)

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
        items = []
        for point in points:
            item_id = ItemField.ITEM_ID.read(point.payload)
            if item_id:
                items.append(
                    Recommendation(
                        item_id=item_id,
                        score=point.score,
                        score_parts={SEARCH: point.score},
                        title=ItemField.TITLE.read(point.payload),
                        category=ItemField.CATEGORY.read(point.payload),
                    )
                )
        items.sort(key=lambda r: (-r.score, r.item_id))
        return Feed(items[:limit], Strategy.SEARCH)

    def _served(self, controls: FeedControls, limit: int) -> list[str]:
        served = decode_token(controls.page_token, self._settings.max_page_depth)
        if len(served) + limit > self._settings.max_page_depth:
            raise InvalidRequest(
                f"this page would go past the deepest page allowed ({self._settings.max_page_depth} items)"
            )
        return served

    def _feed(
        self,
        found: _Pool,
        blended: Blend,
        rows: list[int],
        strategy: Strategy,
        served: list[str],
        limit: int,
        fresh_share: float = 0.0,
        fresh_gate: float = 0.0,
    ) -> Feed:
        """The response; with a fresh share, fresh items take their slots where the gate lets them (personal
        feeds: a fresh item nearly as good a match as the ranked item it displaces; the trending feed: any)."""
        ids = found.candidates.item_ids
        ordered = [ids[row] for row in rows]
        if fresh_share > 0:
            last_score = float(blended.scores[rows[limit - 1]]) if len(rows) >= limit else -np.inf
            gated = found.fresh & worth_a_slot(blended.scores, last_score, fresh_gate)
            fresh_rows = feed_order(blended.scores, gated, limit, 1.0, found.candidates.content)
            ordered = with_fresh_share(ordered, [ids[row] for row in fresh_rows], fresh_share, limit)
        row_of = {item_id: row for row, item_id in enumerate(ids)}
        items = [
            Recommendation(
                item_id=item_id,
                score=float(blended.scores[row_of[item_id]]),
                score_parts=blended.parts_of(row_of[item_id]),
                title=found.titles[row_of[item_id]],
                category=found.categories[row_of[item_id]],
            )
            for item_id in ordered[:limit]
        ]
        now_served = [*served, *(item.item_id for item in items)]
        more = len(items) == limit and len(now_served) < self._settings.max_page_depth
        return Feed(items, strategy, encode_token(now_served) if more else "")

    def _pool(self, points: Iterable[Point], version: int | None) -> _Pool:
        """One candidate per catalog item (first occurrence wins), as arrays.

        Behavior vectors count only when they come from the same model version as the query's:
        during a refresh, vectors of two factorizations live in unrelated bases.
        """
        now = self._clock()
        settings = self._settings
        unique: dict[str, Point] = {}
        for point in points:
            item_id = ItemField.ITEM_ID.read(point.payload)
            if item_id and item_id not in unique:
                unique[item_id] = point
        chosen = list(unique.values())
        payloads = [p.payload for p in chosen]
        named = [_named_vectors(p) for p in chosen]
        content_dims = next((len(v[CONTENT]) for v in named if CONTENT in v), 1)
        behavior_dims = next((len(v[BEHAVIOR]) for v in named if BEHAVIOR in v), 1)
        content = np.zeros((len(chosen), content_dims), dtype=np.float32)
        behavior = np.zeros((len(chosen), behavior_dims), dtype=np.float32)
        has_behavior = np.zeros(len(chosen), dtype=bool)
        for row, (vectors, payload) in enumerate(zip(named, payloads, strict=True)):
            if CONTENT in vectors:
                content[row] = vectors[CONTENT]
            item_version = ItemField.BEHAVIOR_VERSION.read(payload)
            if BEHAVIOR in vectors and item_version is not None and item_version == version:
                behavior[row] = vectors[BEHAVIOR]
                has_behavior[row] = True
        stored = np.asarray([ItemField.POPULARITY.read(p) for p in payloads])
        stamps = np.asarray([ItemField.POPULARITY_TS.read(p) for p in payloads], dtype=np.float64)
        prior = popularity_prior(
            decayed_popularity(stored, stamps, now, settings.popularity_half_life_days), settings.popularity_midpoint
        )
        created = np.asarray([ItemField.CREATED_AT.read(p) for p in payloads], dtype=np.float64)
        counts = np.asarray([ItemField.INTERACTION_COUNT.read(p) for p in payloads])
        fresh = (counts < settings.fresh_max_interactions) & (created >= now - settings.fresh_max_age_days * 86_400.0)
        candidates = Candidates.of(
            list(unique),
            content,
            np.asarray([CONTENT in v for v in named], dtype=bool),
            behavior,
            has_behavior,
            np.asarray([ItemField.BEHAVIOR_NORM.read(p) for p in payloads]),
            prior,
        )
        return _Pool(
            candidates,
            [ItemField.TITLE.read(p) for p in payloads],
            [ItemField.CATEGORY.read(p) for p in payloads],
            fresh,
        )

    async def _fresh_points(self, slots: int, query: UserQuery, query_filter: models.Filter) -> list[Point]:
        """Candidates for the fresh slots: new items with little evidence, nearest to the user's taste or newest."""
        if slots == 0:
            return []
        settings = self._settings
        fresh_filter = models.Filter(
            must=[
                query_filter,
                models.FieldCondition(
                    key=ItemField.CREATED_AT.key,
                    range=models.Range(gte=self._clock() - settings.fresh_max_age_days * 86_400.0),
                ),
            ],
            must_not=[
                models.FieldCondition(
                    key=ItemField.INTERACTION_COUNT.key, range=models.Range(gte=settings.fresh_max_interactions)
                )
            ],
        )
        pool = self._settings.pool_size(slots)
        anchor = query.taste if query.taste is not None else query.session
        if anchor is not None:
            return list(await self._nearest(CONTENT, list(anchor), pool, fresh_filter))
        async with _store_errors():
            response = await self._client.query_points(
                ITEMS,
                query=models.OrderByQuery(
                    order_by=models.OrderBy(key=ItemField.CREATED_AT.key, direction=models.Direction.DESC)
                ),
                query_filter=fresh_filter,
                limit=pool,
                with_payload=_ITEM_FIELDS,
                with_vectors=True,
            )
        return list(response.points)

    async def _sequence_scores(self, recent: Sequence[tuple[str, float]]) -> dict[str, float]:
        """The user's sequence score of every successor of their recent items (successors.py): one read of their lists.

        A recent item deleted since still says what tends to follow it; its successors pass the
        catalog filter like any candidate (_successor_points).
        """
        if not recent:
            return {}
        async with _store_errors():
            records = await self._client.retrieve(
                ITEMS,
                [point_id(item_id) for item_id, _ in recent],
                with_payload=keys([ItemField.ITEM_ID, ItemField.SUCCESSORS]),
                with_vectors=False,
            )
        lists = {ItemField.ITEM_ID.read(r.payload): ItemField.SUCCESSORS.read(r.payload) for r in records}
        return sequence_scores(recent, lists)

    async def _successor_points(
        self, scores: Mapping[str, float], limit: int, query_filter: models.Filter
    ) -> list[Point]:
        """The best-scoring successors as candidates, through the request's filter: exclusions, served and seen
        items, deleted items and the item filter hold for them as for every candidate."""
        if not scores:
            return []
        best = sorted(scores, key=lambda item_id: (-scores[item_id], item_id))[:limit]
        wanted = models.HasIdCondition(has_id=[point_id(item_id) for item_id in best])  # type: ignore[arg-type]
        async with _store_errors():
            records, _ = await self._client.scroll(
                ITEMS,
                scroll_filter=models.Filter(must=[query_filter, wanted]),
                limit=len(best),
                with_payload=_ITEM_FIELDS,
                with_vectors=True,
            )
        return list(records)

    async def _popular_points(self, limit: int, query_filter: models.Filter, with_vectors: bool) -> list[Point]:
        """Most popular first by stored popularity, then items nobody has engaged with yet.

        A pool larger than `limit` is fetched because the stored values are as of different times;
        ranking re-orders them by popularity decayed to now.
        """
        pool = self._settings.pool_size(limit)
        async with _store_errors():
            response = await self._client.query_points(
                ITEMS,
                query=models.OrderByQuery(
                    order_by=models.OrderBy(key=ItemField.POPULARITY.key, direction=models.Direction.DESC)
                ),
                query_filter=query_filter,
                limit=pool,
                with_payload=_ITEM_FIELDS,
                with_vectors=with_vectors,
            )
        points: list[Point] = list(response.points)
        if len(points) < pool:
            # An order_by query skips points without the key: items nobody engaged with come last.
            unranked: list[models.Condition] = [
                models.IsEmptyCondition(is_empty=models.PayloadField(key=ItemField.POPULARITY.key))
            ]
            unranked.append(query_filter)
            async with _store_errors():
                records, _ = await self._client.scroll(
                    ITEMS,
                    scroll_filter=models.Filter(must=unranked),
                    limit=pool - len(points),
                    with_payload=_ITEM_FIELDS,
                    with_vectors=with_vectors,
                )
            points += records
        return points

    async def _nearest_to_any(
        self,
        queries: Sequence[tuple[str, Sequence[float] | np.ndarray | None]],
        limit: int,
        query_filter: models.Filter,
    ) -> list[Point]:
        """The nearest items to each present (vector name, query) pair, concatenated in query order."""
        found = await asyncio.gather(
            *(
                self._nearest(using, list(vector), limit, query_filter)
                for using, vector in queries
                if vector is not None
            )
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
                query=[float(x) for x in vector],
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


async def _no_record() -> None:
    return None


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


def _checked_overrides(overrides: Mapping[str, float], allowed: set[str]) -> dict[str, float]:
    checked = {}
    for name, value in overrides.items():
        if name not in allowed:
            raise InvalidRequest(f"unknown weight {name!r}: use one of {', '.join(sorted(allowed))}")
        if not np.isfinite(value) or value < 0:
            raise InvalidRequest(f"weight {name!r} must be a finite number ≥ 0, got {value}")
        checked[name] = float(value)
    return checked


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


def _array(values: list[float] | None) -> np.ndarray | None:
    return np.asarray(values, dtype=np.float32) if values is not None else None
