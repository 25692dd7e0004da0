"""The stream entries a backend publishes, built from plain arguments: the two fields the services parse.

Every entry has `event` (the event type) and `data` (a JSON object); what XADD receives. The
services validate each entry (recsys.shared.events) and dead-letter what they cannot use, so these
builders check only what is cheap to get wrong here: the interaction type, and numbers JSON cannot
carry (NaN, infinity). Fields left as None are left out; the services apply their defaults.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

ITEM_UPSERTED = "item.upserted"
ITEM_DELETED = "item.deleted"
INTERACTION = "interaction"
INTERACTION_TYPES = frozenset({"view", "click", "add_to_cart", "purchase", "like", "dislike", "rate"})

# The services' default stream names (RECSYS_STREAM_PREFIX): <prefix>:items, <prefix>:interactions.
DEFAULT_STREAM_PREFIX = "recsys"

AttributeValue = str | int | float | bool
# Unix seconds, or a datetime (a naive one is local time).
Timestamp = float | datetime


def items_stream(prefix: str = DEFAULT_STREAM_PREFIX) -> str:
    return f"{prefix}:items"


def interactions_stream(prefix: str = DEFAULT_STREAM_PREFIX) -> str:
    return f"{prefix}:interactions"


def partition_of(key: str, partitions: int) -> int:
    """The partition an entry goes to: CRC-32 (IEEE, as zlib, Java's CRC32 and Go's crc32.ChecksumIEEE
    compute it) of the key's UTF-8 bytes, modulo the number of partitions. The key is the item id on
    the items stream and the user id on the interactions stream, so every entry of one item or one user
    lands in one partition, in the order it was published. crc32("u1") is 1112514422, so
    partition_of("u1", 4) == 2."""
    if partitions < 1:
        raise ValueError("partitions must be at least 1")
    return zlib.crc32(key.encode("utf-8")) % partitions


def partition_stream(stream: str, partition: int, partitions: int) -> str:
    """The key of one partition of an input stream: the stream itself when it is not partitioned
    (partitions == 1), else `{<stream>:<partition>}`. The braces are a Redis Cluster hash tag: the
    partition, its dead-letter stream and its consumer groups' failure ledgers (keys that start with
    the partition's key) share one slot, and different partitions spread over the cluster's nodes."""
    if partitions == 1:
        return stream
    if not 0 <= partition < partitions:
        raise ValueError(f"partition {partition} is not in 0..{partitions - 1}")
    return "{" + f"{stream}:{partition}" + "}"


def partition_streams(stream: str, partitions: int) -> list[str]:
    """Every partition of an input stream, in partition order."""
    return [partition_stream(stream, partition, partitions) for partition in range(partitions)]


def stream_for(stream: str, key: str, partitions: int) -> str:
    """The partition of `stream` that an entry with this key (item id, or user id) goes to."""
    return partition_stream(stream, partition_of(key, partitions), partitions)


def _fields(event: str, payload: Mapping[str, Any]) -> dict[str, str]:
    data = {key: value for key, value in payload.items() if value is not None}
    try:
        encoded = json.dumps(data, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    except ValueError:
        raise ValueError(f"{event}: NaN and infinite numbers cannot be published") from None
    return {"event": event, "data": encoded}


def _seconds(ts: Timestamp | None) -> float | None:
    return ts.timestamp() if isinstance(ts, datetime) else ts


def item_upserted(
    item_id: str,
    title: str,
    *,
    text: str | None = None,
    tags: Iterable[str] | None = None,
    category: str | None = None,
    attributes: Mapping[str, AttributeValue] | None = None,
    version: int | None = None,
    ts: Timestamp | None = None,
) -> dict[str, str]:
    """A catalog item was created or changed; a higher `version` wins over older and replayed ones."""
    payload = {
        "item_id": item_id,
        "title": title,
        "text": text,
        "tags": list(tags) if tags is not None else None,
        "category": category,
        "attributes": dict(attributes) if attributes is not None else None,
        "version": version,
        "ts": _seconds(ts),
    }
    return _fields(ITEM_UPSERTED, payload)


def item_deleted(item_id: str, *, version: int | None = None, ts: Timestamp | None = None) -> dict[str, str]:
    """A catalog item was removed; it stays removed for every upsert up to this `version`."""
    return _fields(ITEM_DELETED, {"item_id": item_id, "version": version, "ts": _seconds(ts)})


def interaction(
    event_id: str,
    user_id: str,
    item_id: str,
    type: str,
    *,
    value: float | None = None,
    session_id: str | None = None,
    ts: Timestamp | None = None,
) -> dict[str, str]:
    """A user did something with an item; `event_id` makes a replay count once, `value` is a `rate`'s rating."""
    if type not in INTERACTION_TYPES:
        raise ValueError(f"unknown interaction type {type!r}; one of {', '.join(sorted(INTERACTION_TYPES))}")
    payload = {
        "event_id": event_id,
        "user_id": user_id,
        "item_id": item_id,
        "type": type,
        "value": value,
        "session_id": session_id,
        "ts": _seconds(ts),
    }
    return _fields(INTERACTION, payload)
