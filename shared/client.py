"""A small typed Python client: the gRPC calls of the three services and event publishing.

The CLI, the tests and the recommender (for query embeddings) use it; a product backend can too.
Each client takes a ChannelSecurity (TLS, a client certificate for mTLS, a bearer token); without
one it connects in plaintext with no credentials, as to a local server.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from types import TracebackType
from typing import Any

from redis.asyncio import Redis

from recsys.shared.api import (
    common_pb2,
    encoder_pb2,
    encoder_pb2_grpc,
    monitor_pb2,
    monitor_pb2_grpc,
    recommender_pb2,
    recommender_pb2_grpc,
)
from recsys.shared.events import Interaction, ItemDeleted, ItemUpserted, to_fields
from recsys.shared.grpc_security import ChannelSecurity, open_channel
from recsys.shared.grpc_server import MAX_MESSAGE_BYTES
from recsys.shared.redis_connection import redis_options
from recsys.shared.settings import ConnectionSettings, StreamNames

_CHANNEL_OPTIONS = [
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
]


def item_filter(conditions: dict[str, Any] | None) -> common_pb2.ItemFilter:
    """Builds an ItemFilter from {field: value | [values] | {"gte": x, "lte": y}}."""
    result = common_pb2.ItemFilter()
    for field, test in (conditions or {}).items():
        condition = result.conditions.add(field=field)
        if isinstance(test, dict):
            condition.range.CopyFrom(common_pb2.NumericRange(**test))
        elif isinstance(test, list | tuple | set):
            condition.any_of.values.extend(str(v) for v in test)
        else:
            condition.equals = str(test)
    return result


class _Channel:
    def __init__(self, address: str, security: ChannelSecurity | None = None) -> None:
        self.address = address
        self.channel = open_channel(address, security, _CHANNEL_OPTIONS)

    async def close(self) -> None:
        await self.channel.close()

    async def __aenter__(self) -> Any:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


class EncoderClient(_Channel):
    """Calls recsys.v1.EncoderService."""

    def __init__(self, address: str, security: ChannelSecurity | None = None) -> None:
        super().__init__(address, security)
        self.stub = encoder_pb2_grpc.EncoderServiceStub(self.channel)

    async def embed(
        self,
        texts: Sequence[str],
        *,
        normalize: bool = True,
        dimensions: int = 0,
        truncate: bool = True,
        timeout: float | None = 30.0,
    ) -> list[list[float]]:
        response = await self.embed_raw(
            texts, normalize=normalize, dimensions=dimensions, truncate=truncate, timeout=timeout
        )
        return [list(e.values) for e in response.embeddings]

    async def embed_raw(
        self,
        texts: Sequence[str],
        *,
        normalize: bool = True,
        dimensions: int = 0,
        truncate: bool = True,
        timeout: float | None = 30.0,
    ) -> encoder_pb2.EmbedResponse:
        request = encoder_pb2.EmbedRequest(
            texts=list(texts), normalize=normalize, dimensions=dimensions, truncate=truncate
        )
        return await self.stub.Embed(request, timeout=timeout)

    async def model_info(self) -> encoder_pb2.GetModelInfoResponse:
        return await self.stub.GetModelInfo(encoder_pb2.GetModelInfoRequest())


class RecommenderClient(_Channel):
    """Calls recsys.v1.RecommenderService."""

    def __init__(self, address: str, security: ChannelSecurity | None = None) -> None:
        super().__init__(address, security)
        self.stub = recommender_pb2_grpc.RecommenderServiceStub(self.channel)

    async def similar_items(
        self,
        item_id: str,
        limit: int = 10,
        *,
        where: dict[str, Any] | None = None,
        exclude: Iterable[str] = (),
        controls: recommender_pb2.FeedControls | None = None,
    ) -> recommender_pb2.SimilarItemsResponse:
        return await self.stub.SimilarItems(
            recommender_pb2.SimilarItemsRequest(
                item_id=item_id,
                limit=limit,
                filter=item_filter(where),
                exclude_item_ids=list(exclude),
                controls=controls,
            ),
            timeout=30,
        )

    async def for_you(
        self,
        user_id: str,
        limit: int = 10,
        *,
        where: dict[str, Any] | None = None,
        exclude: Iterable[str] = (),
        controls: recommender_pb2.FeedControls | None = None,
    ) -> recommender_pb2.ForYouResponse:
        return await self.stub.ForYou(
            recommender_pb2.ForYouRequest(
                user_id=user_id,
                limit=limit,
                filter=item_filter(where),
                exclude_item_ids=list(exclude),
                controls=controls,
            ),
            timeout=30,
        )

    async def search_items(
        self,
        text: str,
        limit: int = 10,
        *,
        where: dict[str, Any] | None = None,
        exclude: Iterable[str] = (),
    ) -> recommender_pb2.SearchItemsResponse:
        return await self.stub.SearchItems(
            recommender_pb2.SearchItemsRequest(
                text=text, limit=limit, filter=item_filter(where), exclude_item_ids=list(exclude)
            ),
            timeout=30,
        )


class MonitorClient(_Channel):
    """Calls recsys.v1.MonitorService."""

    def __init__(self, address: str, security: ChannelSecurity | None = None) -> None:
        super().__init__(address, security)
        self.stub = monitor_pb2_grpc.MonitorServiceStub(self.channel)

    async def drift_report(self, space: str = "items.content") -> monitor_pb2.DriftReport:
        response = await self.stub.GetDriftReport(monitor_pb2.GetDriftReportRequest(space=space), timeout=60)
        return response.report

    async def anomalies(self, kind: str = "", limit: int = 100, space: str = "") -> list[monitor_pb2.Anomaly]:
        response = await self.stub.ListAnomalies(
            monitor_pb2.ListAnomaliesRequest(kind=kind, limit=limit, space=space), timeout=30
        )
        return list(response.anomalies)

    async def reset_reference(self, space: str) -> monitor_pb2.DriftReport:
        response = await self.stub.ResetReference(monitor_pb2.ResetReferenceRequest(space=space), timeout=60)
        return response.report

    def watch_alerts(self, after_id: str = "", event: str = "", space: str = "") -> Any:
        """A server stream of WatchAlertsResponse (iterate it with `async for`; cancel() ends it)."""
        return self.stub.WatchAlerts(monitor_pb2.WatchAlertsRequest(after_id=after_id, event=event, space=space))


class EventPublisher:
    """Publishes events with the same plain XADD layout any backend uses (fields `event` and `data`)."""

    def __init__(self, redis_url: str, stream_prefix: str = "recsys", **redis_options: Any) -> None:
        """`redis_options`: TLS files and the like (recsys.shared.redis_connection.redis_options)."""
        self.redis: Redis = Redis.from_url(redis_url, **redis_options)
        self.streams = StreamNames(stream_prefix)

    @classmethod
    def from_settings(cls, settings: ConnectionSettings) -> EventPublisher:
        """As the settings describe Redis: URL, ACL user and password (a `publisher`), TLS files."""
        return cls(settings.redis_url, settings.stream_prefix, **redis_options(settings))

    async def publish_item(self, event: ItemUpserted | ItemDeleted) -> str:
        return await self._xadd(self.streams.items, to_fields(event))

    async def publish_interaction(self, event: Interaction) -> str:
        return await self._xadd(self.streams.interactions, to_fields(event))

    async def publish_raw(self, stream: str, event: str, data: dict[str, Any]) -> str:
        """Publishes an already shaped payload (for example a line of a JSONL file)."""
        return await self._xadd(stream, {"event": event, "data": json.dumps(data)})

    async def _xadd(self, stream: str, fields: dict[str, str]) -> str:
        entry_id = await self.redis.xadd(stream, fields)  # type: ignore[arg-type]
        return entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)

    async def close(self) -> None:
        await self.redis.aclose()

    async def __aenter__(self) -> EventPublisher:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()
