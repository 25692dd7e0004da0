"""The Qdrant point schema: collections, their named vectors, and every payload field with its type.

Every read and write of a payload goes through the fields defined here: a field knows its key, how
a stored value is read back (with the value it has when absent) and whether a server indexes it.
Nothing else in the code names a payload key.

`items` points are written by the encoder (the text role: the catalog fields and the content
vector; the interactions role: the activity fields; the behavior refresh: the behavior vector, its
version and strength) and read by the recommender and the monitor. An item seen in interactions
before its `item.upserted` has a point with in_catalog = false and version -1: activity, no
content; feeds never return it, and the first `item.upserted` completes it in place.

`behavior_models` points (payload only, no vectors) record each behavior model version: the content
map the refresh learnt with it (behavior_models.py), one point per version plus a "current" one.

`users` points are written by the interactions role only. The *_norm fields keep the length of the
un-normalized accumulator: cosine collections store unit vectors, and decayed sums need their
magnitude to add the next event correctly.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, Literal, TypeVar

from recsys.shared.packed import unpack_floats, unpack_history, unpack_ids

T = TypeVar("T")

ITEMS = "items"
USERS = "users"
# One point per behavior model version (and one naming the current version); payload only.
MODELS = "behavior_models"

# Named vectors. The content space is the text model's (its dimensions); the behavior space is the
# collaborative model's (behavior_dims); vectors of the two spaces are never compared.
CONTENT = "content"
BEHAVIOR = "behavior"
TASTE = "taste"
SESSION = "session"
CONTENT_SPACE_VECTORS = {ITEMS: (CONTENT,), USERS: (TASTE, SESSION)}
BEHAVIOR_SPACE_VECTORS = {ITEMS: (BEHAVIOR,), USERS: (BEHAVIOR,)}


def collection_vectors(content_dims: int, behavior_dims: int) -> dict[str, dict[str, int]]:
    """Each collection's named vectors and their dimensions (all cosine)."""
    return {
        collection: {
            **dict.fromkeys(CONTENT_SPACE_VECTORS[collection], content_dims),
            **dict.fromkeys(BEHAVIOR_SPACE_VECTORS[collection], behavior_dims),
        }
        for collection in (ITEMS, USERS)
    }


@dataclass(frozen=True)
class PayloadField(Generic[T]):
    """One payload field: its key, how a stored value is read (absent or null reads as `read_as(None)`)."""

    key: str
    read_as: Callable[[Any], T]
    # The payload index a Qdrant server builds, so filters and order_by on the field are cheap (embedded mode scans).
    index: Literal["keyword", "float", "bool"] | None = None

    def read(self, payload: Mapping[str, Any] | None) -> T:
        return self.read_as((payload or {}).get(self.key))


def _str(value: Any) -> str:
    return "" if value is None else str(value)


def _optional_str(value: Any) -> str | None:
    return None if value is None else str(value)


def _int(value: Any) -> int:
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0


def _optional_int(value: Any) -> int | None:
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _float(value: Any) -> float:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0.0


def _times(value: Any) -> list[float]:
    # Packed (recsys.shared.packed), or a JSON list where null stands for a time not known: the oldest possible.
    return unpack_floats(value, absent=float("-inf"))


def _strings(value: Any) -> list[str]:
    return [str(v) for v in value] if isinstance(value, list | tuple) else []


def _mapping(value: Any) -> dict[str, Any]:
    return dict(value) if isinstance(value, Mapping) else {}


def _optional_mapping(value: Any) -> dict[str, Any] | None:
    return dict(value) if isinstance(value, Mapping) else None


def _optional_floats(value: Any) -> dict[str, float] | None:
    if not isinstance(value, Mapping):
        return None
    return {str(k): float(v) for k, v in value.items() if isinstance(v, int | float) and not isinstance(v, bool)}


def _optional_float(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _catalog_flag(value: Any) -> bool:
    # Points written before the flag existed were all catalog items.
    return value is not False


def _version(value: Any) -> int:
    # A point without a version is older than any event's version (0 and up).
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else -1


def _time_or_never(value: Any) -> float:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else -1.0


def _successors(value: Any) -> list[tuple[str, float]]:
    if not isinstance(value, list):
        return []
    return [
        (str(pair[0]), float(pair[1]))
        for pair in value
        if isinstance(pair, list | tuple) and len(pair) == 2 and isinstance(pair[1], int | float)
    ]


# Bumped by every write of an item's activity or of a user: the compare-and-set guard of both collections.
REVISION = PayloadField("revision", _int)


class ItemField:
    """The payload of an `items` point."""

    ITEM_ID = PayloadField("item_id", _str, "keyword")
    TITLE = PayloadField("title", _str)
    CATEGORY = PayloadField("category", _str, "keyword")
    TAGS = PayloadField("tags", _strings, "keyword")
    # attributes.<name> holds what the producer sent (string, number or boolean).
    ATTRIBUTES = PayloadField("attributes", _mapping)
    VERSION = PayloadField("version", _version)
    # ForYou's fresh slots filter on creation time and interaction count: unindexed, a server checks
    # the payload of every candidate (`recsys bench feeds`, README "Feeds").
    CREATED_AT = PayloadField("created_at", _float, "float")
    UPDATED_AT = PayloadField("updated_at", _time_or_never)
    # Every feed query leaves out points not in the catalog.
    IN_CATALOG = PayloadField("in_catalog", _catalog_flag, "bool")
    # Set on a tombstone: the point an item.deleted leaves (no vectors, not in the catalog) so that no
    # replayed or late item.upserted with a version up to the deletion's brings the item back.
    DELETED_AT = PayloadField("deleted_at", _optional_float)
    # Positive interactions counted; the decayed sum of positive event weights as of popularity_ts.
    INTERACTION_COUNT = PayloadField("interaction_count", _int, "float")
    # Cold users get items ordered by popularity: order_by needs a range index on a server.
    POPULARITY = PayloadField("popularity", _float, "float")
    POPULARITY_TS = PayloadField("popularity_ts", _float)
    # Event ids applied lately (bounded) with their times, and the newest time among forgotten ones:
    # a replayed interaction is recognised, one older than the horizon refused (recent_events.py).
    # Ids and times are packed (recsys.shared.packed); lists written before packing read the same.
    RECENT_EVENT_IDS = PayloadField("recent_event_ids", unpack_ids)
    RECENT_EVENT_TIMES = PayloadField("recent_event_ts", _times)
    REPLAY_HORIZON_TS = PayloadField("replay_horizon_ts", _optional_float)
    REVISION = REVISION
    # The factorization the behavior vector comes from (null: no behavior vector) and its strength
    # in 0..1; written only by the behavior refresh.
    BEHAVIOR_VERSION = PayloadField("behavior_version", _optional_int)
    BEHAVIOR_NORM = PayloadField("behavior_norm", _float)
    # What followed this item in users' histories, strongest first ([item id, weight] pairs; successors.py),
    # written by the refresh with behavior_version.
    SUCCESSORS = PayloadField("successors", _successors)

    # What interactions rewrite; REVISION guards them against a concurrent writer.
    ACTIVITY: tuple[PayloadField[Any], ...] = (
        INTERACTION_COUNT,
        POPULARITY,
        POPULARITY_TS,
        RECENT_EVENT_IDS,
        RECENT_EVENT_TIMES,
        REPLAY_HORIZON_TS,
        REVISION,
    )


class UserField:
    """The payload of a `users` point."""

    USER_ID = PayloadField("user_id", _str)
    EVENT_COUNT = PayloadField("event_count", _int)
    LAST_EVENT_TS = PayloadField("last_event_ts", _float)
    TASTE_NORM = PayloadField("taste_norm", _float)
    TASTE_TS = PayloadField("taste_ts", _float)
    SESSION_ID = PayloadField("session_id", _optional_str)
    SESSION_NORM = PayloadField("session_norm", _float)
    SESSION_TS = PayloadField("session_ts", _float)
    BEHAVIOR_NORM = PayloadField("behavior_norm", _float)
    BEHAVIOR_TS = PayloadField("behavior_ts", _float)
    # The item model version the behavior vector was folded in from (null: none yet).
    BEHAVIOR_VERSION = PayloadField("behavior_version", _optional_int)
    # (item_id, weight, ts) oldest first, bounded; the item ids engaged with (newest last, bounded).
    # Both packed (recsys.shared.packed: pack_history, pack_ids); lists written before packing read the same.
    HISTORY = PayloadField("history", unpack_history)
    SEEN = PayloadField("seen", unpack_ids)
    # As ItemField's.
    RECENT_EVENT_IDS = PayloadField("recent_event_ids", unpack_ids)
    RECENT_EVENT_TIMES = PayloadField("recent_event_ts", _times)
    REPLAY_HORIZON_TS = PayloadField("replay_horizon_ts", _optional_float)
    REVISION = REVISION


class ModelField:
    """The payload of a `behavior_models` point (see recsys.shared.behavior_models)."""

    # On a version's point: its version; on the "current" point: the version that is current.
    MODEL_VERSION = PayloadField("model_version", _optional_int)
    # ContentMap.to_dict() of the map learnt at that version, or null (off, or too few warm items).
    CONTENT_MAP = PayloadField("content_map", _optional_mapping)
    BLEND_WEIGHTS = PayloadField("blend_weights", _optional_floats)
    BLEND_TUNING = PayloadField("blend_tuning", _optional_floats)
    # Each interaction type's weight in the model of that version (type_weights.py), or null (older records).
    EVENT_TYPE_WEIGHTS = PayloadField("event_type_weights", _optional_floats)
    SAVED_AT = PayloadField("saved_at", _float)


def keys(fields: Sequence[PayloadField[Any]]) -> list[str]:
    """The keys of some fields: what a read asks Qdrant for (`with_payload=keys(...)`)."""
    return [field.key for field in fields]


def attribute_key(name: str) -> str:
    """The payload key of one item attribute, as filters address it."""
    return f"{ItemField.ATTRIBUTES.key}.{name}"


def payload_indexes(collection: str) -> list[tuple[str, str]]:
    """The payload indexes a Qdrant server builds in a collection: (key, type)."""
    holder = ItemField if collection == ITEMS else UserField
    fields = [value for value in vars(holder).values() if isinstance(value, PayloadField)]
    return [(field.key, field.index) for field in fields if field.index is not None]
