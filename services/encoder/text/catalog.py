"""The catalog part of an `items` point: what an item.upserted writes into the payload, and an item.deleted leaves."""

from __future__ import annotations

from typing import Any

from recsys.shared.events import ItemDeleted, ItemUpserted
from recsys.shared.packed import pack_ids
from recsys.shared.points import ItemField


def catalog_fields(event: ItemUpserted, ts: float) -> dict[str, Any]:
    """Fields a newer version replaces; interaction counters and created_at are left alone."""
    return {
        ItemField.ITEM_ID.key: event.item_id,
        ItemField.TITLE.key: event.title,
        ItemField.CATEGORY.key: event.category,
        ItemField.TAGS.key: list(event.tags),
        ItemField.ATTRIBUTES.key: dict(event.attributes),
        ItemField.VERSION.key: event.version,
        ItemField.UPDATED_AT.key: ts,
        ItemField.IN_CATALOG.key: True,
        ItemField.DELETED_AT.key: None,
    }


def new_item_payload(event: ItemUpserted, ts: float) -> dict[str, Any]:
    """The whole payload of an item written for the first time: no interactions yet, no behavior vector."""
    return {
        **catalog_fields(event, ts),
        ItemField.CREATED_AT.key: ts,
        # Present from the start, so filters and order_by on them (fresh items, popular items) see the item.
        ItemField.INTERACTION_COUNT.key: 0,
        ItemField.POPULARITY.key: 0.0,
        ItemField.POPULARITY_TS.key: ts,
        ItemField.RECENT_EVENT_IDS.key: pack_ids([]),
        ItemField.REVISION.key: 0,
        # 0 until a refresh of the collaborative model covers the item.
        ItemField.BEHAVIOR_NORM.key: 0.0,
    }


def tombstone_payload(event: ItemDeleted, ts: float) -> dict[str, Any]:
    """What stays of a deleted item: its id, the deletion's version and time; no vectors, out of the catalog."""
    return {
        ItemField.ITEM_ID.key: event.item_id,
        ItemField.VERSION.key: event.version,
        ItemField.UPDATED_AT.key: ts,
        ItemField.IN_CATALOG.key: False,
        ItemField.DELETED_AT.key: ts,
    }
