"""The feeds' query shapes on qdrant-edge (Qdrant's engine embedded in the process), for comparing it with local mode.

Only what the comparison needs: an items shard with the content and behavior vectors and the
payload indexes a server builds, upserts of qdrant-client points, nearest queries carrying a feed's
filter (exact or by HNSW), and the popularity order. The filter shapes translated are the ones
`recsys.recommender.qdrant_filters` and the feeds produce; anything else is refused, not guessed.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

from qdrant_client import models
from qdrant_client.http import models as rest

from recsys.shared.points import ItemField, payload_indexes

try:  # an optional engine: the bench skips its section where the package is absent
    import qdrant_edge as edge
except ImportError:  # pragma: no cover - depends on the environment
    edge = None  # type: ignore[assignment]

_INDEX_TYPES = {"keyword": "Keyword", "float": "Float", "bool": "Bool"}


def available() -> bool:
    return edge is not None


class EdgeItems:
    """An items collection in a qdrant-edge shard under `path`."""

    def __init__(self, path: Path, vectors: dict[str, int]) -> None:
        self._shard = create_shard(path, vectors)
        for key, index in payload_indexes("items"):
            schema = getattr(edge.PayloadSchemaType, _INDEX_TYPES[index])
            self._shard.update(edge.UpdateOperation.create_field_index(key, schema))

    @property
    def shard(self) -> Any:
        return self._shard

    def upsert(self, points: Sequence[models.PointStruct]) -> None:
        upsert(self._shard, points)

    def build_index(self) -> None:
        """Builds the HNSW graphs and payload indexes now (the optimizers), instead of on the first queries."""
        self._shard.flush()
        self._shard.optimize()

    def nearest(
        self,
        using: str,
        vector: Sequence[float],
        limit: int,
        query_filter: models.Filter | None,
        exact: bool = False,
        with_vectors: bool = True,
    ) -> list[tuple[str, float]]:
        """(point id, score) of the nearest points, best first; payload and vectors are read as the feeds read them."""
        request = edge.QueryRequest(
            limit=limit,
            query=edge.Query.Nearest([float(x) for x in vector], using=using),
            filter=to_edge_filter(query_filter) if query_filter is not None else None,
            with_payload=True,
            with_vector=with_vectors,
            params=edge.SearchParams(exact=exact),
        )
        return [(str(point.id), point.score) for point in self._shard.query(request)]

    def most_popular(self, limit: int, query_filter: models.Filter | None) -> list[str]:
        """Point ids by stored popularity, highest first (the cold user's feed)."""
        request = edge.QueryRequest(
            limit=limit,
            query=edge.OrderBy(ItemField.POPULARITY.key, edge.Direction.Desc),
            filter=to_edge_filter(query_filter) if query_filter is not None else None,
            with_payload=True,
            with_vector=True,
        )
        return [str(point.id) for point in self._shard.query(request)]

    def close(self) -> None:
        self._shard.close()


def create_shard(path: Path, vectors: dict[str, int]) -> Any:
    """A new qdrant-edge shard with named cosine vectors."""
    if edge is None:
        raise RuntimeError("qdrant-edge-py is not installed (pip install qdrant-edge-py)")
    config = edge.EdgeConfig(
        vectors={
            name: edge.EdgeVectorParams(size=dims, distance=edge.Distance.Cosine) for name, dims in vectors.items()
        }
    )
    return edge.EdgeShard.create(str(path), config)


def upsert(shard: Any, points: Sequence[models.PointStruct]) -> None:
    shard.update(
        edge.UpdateOperation.upsert_points(
            [edge.Point(id=str(p.id), vector=dict(p.vector), payload=p.payload) for p in points]  # type: ignore[arg-type]
        )
    )


def to_edge_filter(query_filter: models.Filter) -> Any:
    """The same filter for qdrant-edge: must / should / must_not of field, id, empty and nested conditions."""

    def clauses(conditions: Any) -> list[Any] | None:
        if conditions is None:
            return None
        listed = conditions if isinstance(conditions, list) else [conditions]
        return [_condition(c) for c in listed]

    return edge.Filter(
        must=clauses(query_filter.must), should=clauses(query_filter.should), must_not=clauses(query_filter.must_not)
    )


def _condition(condition: Any) -> Any:
    if isinstance(condition, models.Filter):
        return to_edge_filter(condition)
    if isinstance(condition, models.HasIdCondition):
        return edge.HasIdCondition({str(point) for point in condition.has_id})
    if isinstance(condition, models.IsEmptyCondition):
        return edge.IsEmptyCondition(condition.is_empty.key)
    if isinstance(condition, models.FieldCondition):
        if isinstance(condition.match, models.MatchValue):
            return edge.FieldCondition(condition.key, match=edge.MatchValue(condition.match.value))
        if isinstance(condition.match, models.MatchAny):
            return edge.FieldCondition(condition.key, match=edge.MatchAny(cast(list[str], list(condition.match.any))))
        if isinstance(condition.range, models.Range) and condition.match is None:
            bounds = condition.range
            return edge.FieldCondition(
                condition.key, range=edge.RangeFloat(gte=bounds.gte, gt=bounds.gt, lte=bounds.lte, lt=bounds.lt)
            )
    raise ValueError(f"no qdrant-edge translation for the condition {condition!r}")


class EdgeFeedsClient:
    """The few AsyncQdrantClient calls the feeds make, answered by qdrant-edge shards (one per collection).

    For the benchmark only: it lets the recommender's own Feeds run on qdrant-edge unchanged, so the
    two engines are compared on whole feeds, not just single queries. Calls run on the event loop,
    as local mode's do.
    """

    def __init__(self, shards: dict[str, Any]) -> None:
        self._shards = shards

    async def query_points(
        self,
        collection_name: str,
        query: Any,
        using: str | None = None,
        query_filter: models.Filter | None = None,
        limit: int = 10,
        with_payload: Any = True,
        with_vectors: Any = False,
    ) -> rest.QueryResponse:
        if isinstance(query, models.OrderByQuery):
            order = query.order_by
            assert isinstance(order, models.OrderBy)
            direction = edge.Direction.Desc if order.direction == models.Direction.DESC else edge.Direction.Asc
            scoring: Any = edge.OrderBy(order.key, direction)
        else:
            scoring = edge.Query.Nearest([float(x) for x in query], using=using)
        request = edge.QueryRequest(
            limit=limit,
            query=scoring,
            filter=to_edge_filter(query_filter) if query_filter is not None else None,
            with_payload=with_payload,
            with_vector=with_vectors,
        )
        points = [
            models.ScoredPoint(id=str(p.id), version=p.version, score=p.score, payload=p.payload, vector=p.vector)
            for p in self._shards[collection_name].query(request)
        ]
        return rest.QueryResponse(points=points)

    async def retrieve(
        self, collection_name: str, ids: Sequence[Any], with_payload: Any = True, with_vectors: Any = False
    ) -> list[models.Record]:
        records = self._shards[collection_name].retrieve(
            [str(i) for i in ids], with_payload=with_payload, with_vector=with_vectors
        )
        return [models.Record(id=str(r.id), payload=r.payload, vector=r.vector) for r in records]

    async def scroll(
        self,
        collection_name: str,
        scroll_filter: models.Filter | None = None,
        limit: int = 10,
        with_payload: Any = True,
        with_vectors: Any = False,
    ) -> tuple[list[models.Record], None]:
        request = edge.ScrollRequest(
            limit=limit,
            filter=to_edge_filter(scroll_filter) if scroll_filter is not None else None,
            with_payload=with_payload,
            with_vector=with_vectors,
        )
        records, _ = self._shards[collection_name].scroll(request)
        return [models.Record(id=str(r.id), payload=r.payload, vector=r.vector) for r in records], None

    async def collection_exists(self, collection_name: str) -> bool:
        return collection_name in self._shards

    async def get_collections(self) -> models.CollectionsResponse:
        return models.CollectionsResponse(collections=[models.CollectionDescription(name=n) for n in self._shards])

    async def close(self) -> None:
        for shard in self._shards.values():
            shard.close()
