"""The catalog part of an `items` point: what an item.upserted event writes into the payload."""

from __future__ import annotations

from typing import Any

from recsys.encoder.item_activity import ItemActivity
from recsys.shared.events import ItemUpserted


def catalog_fields(event: ItemUpserted, ts: float) -> dict[str, Any]:
    """Fields a newer version replaces; interaction counters and created_at are left alone."""
    return {
        "item_id": event.item_id,
        "title": event.title,
        "category": event.category,
        "tags": list(event.tags),
        "attributes": dict(event.attributes),
        "version": event.version,
        "updated_at": ts,
        "in_catalog": True,
    }


def new_item_payload(event: ItemUpserted, ts: float) -> dict[str, Any]:
    """The whole payload of an item written for the first time."""
    # behavior_norm stays 0 (no behavior vector) until a refresh of the collaborative model covers the item.
    return {
        **catalog_fields(event, ts),
        "created_at": ts,
        **ItemActivity(popularity_ts=ts).payload(),
        "behavior_norm": 0.0,
    }


def activity_only_payload(item_id: str, activity: ItemActivity, ts: float) -> dict[str, Any]:
    """The payload of an item seen in interactions before its item.upserted: activity, no catalog entry.

    Version -1 and updated_at -1 let the first item.upserted of any version complete it in place,
    keeping the activity gathered so far.
    """
    return {
        "item_id": item_id,
        "in_catalog": False,
        "version": -1,
        "updated_at": -1.0,
        "created_at": ts,
        **activity.payload(),
    }
