"""Counts the vector store's requests by operation (`recsys_store_calls_total{op}`): what a batch saves shows here."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any

from prometheus_client import CollectorRegistry, Counter

from recsys.shared.store import VectorStore

# The client's request methods the encoder uses; each call is one round trip to a Qdrant server.
COUNTED_OPS = (
    "retrieve",
    "upsert",
    "set_payload",
    "batch_update_points",
    "update_vectors",
    "delete",
    "scroll",
    "query_points",
    "count",
)


def count_store_calls(store: VectorStore, registry: CollectorRegistry) -> Counter:
    """Wraps the store's client so every request above increments the counter under its operation."""
    calls = Counter("recsys_store_calls", "Requests this process made to the vector store", ["op"], registry=registry)
    for op in COUNTED_OPS:
        method = getattr(store.client, op, None)
        if method is not None:
            calls.labels(op)
            setattr(store.client, op, _counted(method, calls.labels(op).inc))
    store.on_request = lambda op: calls.labels(op).inc()
    return calls


def _counted(method: Callable[..., Awaitable[Any]], count: Callable[[], None]) -> Callable[..., Awaitable[Any]]:
    @functools.wraps(method)
    async def counted(*args: Any, **kwargs: Any) -> Any:
        count()
        return await method(*args, **kwargs)

    return counted
