"""The stream entries a backend publishes, built from plain arguments: the two fields the services parse.

Every entry has `event` (the event type) and `data` (a JSON object); what XADD receives. The
services validate each entry (recsys.shared.events) and dead-letter what they cannot use, so these
builders check only what is cheap to get wrong here: the interaction type, and numbers JSON cannot
carry (NaN, infinity). Fields left as None are left out; the services apply their defaults.
"""

from __future__ import annotations

import json
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
