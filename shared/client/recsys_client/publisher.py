"""Publishes events onto the input streams with a plain XADD, through a Redis client the caller provides.

Any object with redis-py's `xadd(name, fields)` will do (blocking for EventPublisher, awaitable for
AsyncEventPublisher), so the caller keeps its own connection, pool, TLS and ACL user. `connect(url)`
makes one with redis-py, which is an optional extra: `pip install "recsys-client[redis]"`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Iterable, Mapping
from types import TracebackType
from typing import Any, Generic, Protocol, Self, TypeVar

from recsys_client import events
from recsys_client.events import DEFAULT_STREAM_PREFIX, AttributeValue, Timestamp


class StreamWriter(Protocol):
    """A blocking Redis client, as far as publishing needs one (redis.Redis)."""

    def xadd(self, name: Any, fields: Any) -> Any: ...


class AsyncStreamWriter(Protocol):
    """An asyncio Redis client, as far as publishing needs one (redis.asyncio.Redis)."""

    def xadd(self, name: Any, fields: Any) -> Awaitable[Any]: ...


Writer = TypeVar("Writer", bound=StreamWriter)
AsyncWriter = TypeVar("AsyncWriter", bound=AsyncStreamWriter)


def _entry_id(raw: Any) -> str:
    return raw.decode() if isinstance(raw, bytes) else str(raw)


def _import_redis() -> Any:
    """redis-py, imported on first use: only connect() needs it (the `redis` extra)."""
    try:
        import redis.asyncio
        import redis.asyncio.cluster
        import redis.cluster
    except ImportError as exc:
        raise ImportError('connect() needs redis-py: pip install "recsys-client[redis]"') from exc
    return redis


class _Streams:
    def __init__(
        self, stream_prefix: str, items_stream: str | None, interactions_stream: str | None, partitions: int
    ) -> None:
        if partitions < 1:
            raise ValueError("partitions must be at least 1")
        self.items_stream = items_stream or events.items_stream(stream_prefix)
        self.interactions_stream = interactions_stream or events.interactions_stream(stream_prefix)
        self.partitions = partitions

    def items_stream_for(self, item_id: str) -> str:
        """The items stream's partition of this item (the stream itself when not partitioned)."""
        return events.stream_for(self.items_stream, item_id, self.partitions)

    def interactions_stream_for(self, user_id: str) -> str:
        """The interactions stream's partition of this user (the stream itself when not partitioned)."""
        return events.stream_for(self.interactions_stream, user_id, self.partitions)


class EventPublisher(_Streams, Generic[Writer]):
    """Publishes catalog changes and interactions; each method returns the new entry's id.

    Streams: `<stream_prefix>:items` and `<stream_prefix>:interactions` (the services' defaults with
    the default prefix "recsys"), or the names given. With `partitions` > 1 (the services'
    RECSYS_STREAM_PARTITIONS) each entry goes to its item's or user's partition (recsys_client.events.stream_for);
    `publish(stream, fields)` writes to the stream named, as it is. `close()` closes the Redis client only when
    `owns_redis` (as when connect() made it).
    """

    def __init__(
        self,
        redis: Writer,
        *,
        stream_prefix: str = DEFAULT_STREAM_PREFIX,
        items_stream: str | None = None,
        interactions_stream: str | None = None,
        partitions: int = 1,
        owns_redis: bool = False,
    ) -> None:
        super().__init__(stream_prefix, items_stream, interactions_stream, partitions)
        self.redis = redis
        self.owns_redis = owns_redis

    @classmethod
    def connect(
        cls,
        url: str = "redis://127.0.0.1:6379/0",
        *,
        stream_prefix: str = DEFAULT_STREAM_PREFIX,
        items_stream: str | None = None,
        interactions_stream: str | None = None,
        partitions: int = 1,
        cluster: bool = False,
        **redis_options: Any,
    ) -> EventPublisher[Any]:
        """A publisher on a redis.Redis made from the URL (rediss:// for TLS; `redis_options` such as
        username, password, ssl_ca_certs go to redis.Redis.from_url), or on a redis.cluster.RedisCluster
        when `cluster` (the URL names any node). `partitions`: the services' RECSYS_STREAM_PARTITIONS."""
        redis = _import_redis()
        factory = redis.cluster.RedisCluster if cluster else redis.Redis
        client = factory.from_url(url, **redis_options)
        return EventPublisher(
            client,
            stream_prefix=stream_prefix,
            items_stream=items_stream,
            interactions_stream=interactions_stream,
            partitions=partitions,
            owns_redis=True,
        )

    def publish(self, stream: str, fields: Mapping[str, str]) -> str:
        """XADDs an entry as it is (fields made by recsys_client.events, or a line of your own)."""
        return _entry_id(self.redis.xadd(stream, dict(fields)))

    def upsert_item(
        self,
        item_id: str,
        title: str,
        *,
        text: str | None = None,
        tags: Iterable[str] | None = None,
        category: str | None = None,
        attributes: Mapping[str, AttributeValue] | None = None,
        version: int | None = None,
        ts: Timestamp | None = None,
    ) -> str:
        """item.upserted: the item's content vector is made from title, category, tags and text."""
        fields = events.item_upserted(
            item_id, title, text=text, tags=tags, category=category, attributes=attributes, version=version, ts=ts
        )
        return self.publish(self.items_stream_for(item_id), fields)

    def delete_item(self, item_id: str, *, version: int | None = None, ts: Timestamp | None = None) -> str:
        """item.deleted: the item leaves the catalog."""
        return self.publish(self.items_stream_for(item_id), events.item_deleted(item_id, version=version, ts=ts))

    def record_interaction(
        self,
        event_id: str,
        user_id: str,
        item_id: str,
        type: str,
        *,
        value: float | None = None,
        session_id: str | None = None,
        ts: Timestamp | None = None,
    ) -> str:
        """interaction: view, click, add_to_cart, purchase, like, dislike, or rate (with the rating as `value`)."""
        fields = events.interaction(event_id, user_id, item_id, type, value=value, session_id=session_id, ts=ts)
        return self.publish(self.interactions_stream_for(user_id), fields)

    def close(self) -> None:
        if self.owns_redis:
            self.redis.close()  # type: ignore[attr-defined]

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class AsyncEventPublisher(_Streams, Generic[AsyncWriter]):
    """EventPublisher for asyncio: the same methods, awaited, on a redis.asyncio.Redis or the like."""

    def __init__(
        self,
        redis: AsyncWriter,
        *,
        stream_prefix: str = DEFAULT_STREAM_PREFIX,
        items_stream: str | None = None,
        interactions_stream: str | None = None,
        partitions: int = 1,
        owns_redis: bool = False,
    ) -> None:
        super().__init__(stream_prefix, items_stream, interactions_stream, partitions)
        self.redis = redis
        self.owns_redis = owns_redis

    @classmethod
    def connect(
        cls,
        url: str = "redis://127.0.0.1:6379/0",
        *,
        stream_prefix: str = DEFAULT_STREAM_PREFIX,
        items_stream: str | None = None,
        interactions_stream: str | None = None,
        partitions: int = 1,
        cluster: bool = False,
        **redis_options: Any,
    ) -> AsyncEventPublisher[Any]:
        """A publisher on a redis.asyncio.Redis (or, when `cluster`, a redis.asyncio.cluster.RedisCluster)
        made from the URL (see EventPublisher.connect)."""
        redis = _import_redis()
        factory = redis.asyncio.cluster.RedisCluster if cluster else redis.asyncio.Redis
        client = factory.from_url(url, **redis_options)
        return AsyncEventPublisher(
            client,
            stream_prefix=stream_prefix,
            items_stream=items_stream,
            interactions_stream=interactions_stream,
            partitions=partitions,
            owns_redis=True,
        )

    async def publish(self, stream: str, fields: Mapping[str, str]) -> str:
        """XADDs an entry as it is (fields made by recsys_client.events, or a line of your own)."""
        return _entry_id(await self.redis.xadd(stream, dict(fields)))

    async def upsert_item(
        self,
        item_id: str,
        title: str,
        *,
        text: str | None = None,
        tags: Iterable[str] | None = None,
        category: str | None = None,
        attributes: Mapping[str, AttributeValue] | None = None,
        version: int | None = None,
        ts: Timestamp | None = None,
    ) -> str:
        """item.upserted: the item's content vector is made from title, category, tags and text."""
        fields = events.item_upserted(
            item_id, title, text=text, tags=tags, category=category, attributes=attributes, version=version, ts=ts
        )
        return await self.publish(self.items_stream_for(item_id), fields)

    async def delete_item(self, item_id: str, *, version: int | None = None, ts: Timestamp | None = None) -> str:
        """item.deleted: the item leaves the catalog."""
        return await self.publish(self.items_stream_for(item_id), events.item_deleted(item_id, version=version, ts=ts))

    async def record_interaction(
        self,
        event_id: str,
        user_id: str,
        item_id: str,
        type: str,
        *,
        value: float | None = None,
        session_id: str | None = None,
        ts: Timestamp | None = None,
    ) -> str:
        """interaction: view, click, add_to_cart, purchase, like, dislike, or rate (with the rating as `value`)."""
        fields = events.interaction(event_id, user_id, item_id, type, value=value, session_id=session_id, ts=ts)
        return await self.publish(self.interactions_stream_for(user_id), fields)

    async def close(self) -> None:
        if self.owns_redis:
            await self.redis.aclose()  # type: ignore[attr-defined]

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()
