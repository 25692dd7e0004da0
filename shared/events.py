"""Event schemas of the input streams and their wire layout (two stream fields: `event` and `data`).

Any backend publishes with a plain XADD, no client library needed:

    XADD recsys:items * event item.upserted data '{"item_id":"m1","title":"Alien","version":1}'
    XADD recsys:items * event item.deleted data '{"item_id":"m1","version":2}'
    XADD recsys:interactions * event interaction data '{"event_id":"e1","user_id":"u1","item_id":"m1","type":"click"}'
"""

from __future__ import annotations

import json
import time
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

# Bounds that keep one event from exhausting memory or the model: a catalog text past these
# is a producer bug, not something to embed.
MAX_ID_CHARS = 256
MAX_TEXT_CHARS = 32_768
MAX_TAGS = 64
MAX_ATTRIBUTES = 64

# How far ahead of this process's clock an event's ts may be (producers' clocks drift a little).
# Far beyond it is a unit mistake (milliseconds) or garbage, and stored it would freeze the decayed
# vectors it feeds: a user whose taste is "as of" the year 9999 never moves again.
DEFAULT_MAX_FUTURE_S = 300.0

ExternalId = Annotated[str, Field(min_length=1, max_length=MAX_ID_CHARS, pattern=r"^\S(.*\S)?$")]
AttributeValue = str | int | float | bool


class MalformedEvent(ValueError):
    """An entry that can never be processed; it goes to the dead-letter stream with this reason."""


class ItemEventType(StrEnum):
    UPSERTED = "item.upserted"
    DELETED = "item.deleted"


class InteractionType(StrEnum):
    VIEW = "view"
    CLICK = "click"
    ADD_TO_CART = "add_to_cart"
    PURCHASE = "purchase"
    LIKE = "like"
    DISLIKE = "dislike"
    RATE = "rate"


INTERACTION_EVENT = "interaction"


def _to_epoch(value: Any) -> Any:
    """Accepts Unix seconds or an ISO-8601 string; returns Unix seconds."""
    if isinstance(value, str) and not value.replace(".", "", 1).isdigit():
        try:
            return datetime.fromisoformat(value).timestamp()
        except ValueError as exc:
            raise ValueError(f"ts must be Unix seconds or ISO-8601, got {value!r}") from exc
    return value


class _Event(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, strict=False)

    @field_validator("ts", mode="before", check_fields=False)
    @classmethod
    def _parse_ts(cls, value: Any) -> Any:
        return _to_epoch(value)


class ItemUpserted(_Event):
    """A catalog item was created or changed."""

    item_id: ExternalId
    title: str = Field(min_length=1, max_length=1024)
    text: str = Field(default="", max_length=MAX_TEXT_CHARS)
    tags: list[Annotated[str, Field(max_length=128)]] = Field(default_factory=list, max_length=MAX_TAGS)
    category: str = Field(default="", max_length=256)
    attributes: dict[str, AttributeValue] = Field(default_factory=dict, max_length=MAX_ATTRIBUTES)
    # Higher versions win; a replay or a late older version never overwrites a newer one.
    version: int = Field(default=0, ge=0)
    ts: float | None = Field(default=None, ge=0, allow_inf_nan=False)

    def content_text(self) -> str:
        """The text the content vector is made from."""
        parts = [self.title]
        if self.category:
            parts.append(self.category)
        if self.tags:
            parts.append(", ".join(self.tags))
        if self.text:
            parts.append(self.text)
        return ". ".join(parts)


class ItemDeleted(_Event):
    """A catalog item was removed."""

    item_id: ExternalId
    version: int = Field(default=0, ge=0)
    ts: float | None = Field(default=None, ge=0, allow_inf_nan=False)


class Interaction(_Event):
    """A user did something with an item."""

    event_id: ExternalId
    user_id: ExternalId
    item_id: ExternalId
    type: InteractionType
    # The rating for `rate`; an optional strength for the others.
    value: float | None = Field(default=None, allow_inf_nan=False)
    session_id: str | None = Field(default=None, max_length=MAX_ID_CHARS)
    ts: float | None = Field(default=None, ge=0, allow_inf_nan=False)

    @field_validator("value")
    @classmethod
    def _rating_range(cls, value: float | None) -> float | None:
        if value is not None and not -1e6 <= value <= 1e6:
            raise ValueError("value out of range")
        return value


ItemEvent = ItemUpserted | ItemDeleted


def entry_time(entry_id: str) -> float:
    """The Unix time a stream entry was added, from its id ("<ms>-<seq>")."""
    try:
        return int(entry_id.split("-", 1)[0]) / 1000.0
    except ValueError:
        return time.time()


def _payload(fields: dict[str, str]) -> dict[str, Any]:
    if "data" not in fields:
        raise MalformedEvent(f"missing field 'data' (fields present: {sorted(fields)})")
    try:
        payload = json.loads(fields["data"])
    except json.JSONDecodeError as exc:
        raise MalformedEvent(f"field 'data' is not JSON: {exc.msg} at position {exc.pos}") from exc
    except RecursionError:
        # Arrays or objects nested thousands deep: refused as what they are, not retried as a crash.
        raise MalformedEvent("field 'data' nests JSON deeper than the parser allows") from None
    if not isinstance(payload, dict):
        raise MalformedEvent(f"field 'data' must be a JSON object, got {type(payload).__name__}")
    return payload


def _validate(model: type[BaseModel], payload: dict[str, Any], name: str) -> Any:
    try:
        return model.model_validate(payload)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'data'}: {err['msg']}" for err in exc.errors()[:5]
        )
        raise MalformedEvent(f"invalid {name}: {problems}") from exc


def check_event_time(ts: float, now: float, max_future_s: float = DEFAULT_MAX_FUTURE_S) -> None:
    """Raises MalformedEvent for a ts too far ahead of `now` (Unix seconds expected)."""
    ahead = ts - now
    if ahead <= max_future_s:
        return
    # Milliseconds since 1970 land within a few years of now once divided by 1000.
    hint = ": Unix seconds expected, this looks like milliseconds" if abs(ts / 1000.0 - now) < 3.2e8 else ""
    years = ahead / (365.25 * 86_400)
    when = f"{years:.3g} years" if years >= 1 else f"{ahead:.0f} s"
    raise MalformedEvent(
        f"ts {ts:g} is {when} ahead of now ({now:.0f}), more than the {max_future_s:g} s allowed{hint}"
    )


def _checked(event: Any, entry_id: str, now: float | None, max_future_s: float) -> Any:
    if event.ts is None:
        return event.model_copy(update={"ts": entry_time(entry_id)})
    check_event_time(event.ts, time.time() if now is None else now, max_future_s)
    return event


def parse_item_event(
    fields: dict[str, str],
    entry_id: str = "0-0",
    *,
    now: float | None = None,
    max_future_s: float = DEFAULT_MAX_FUTURE_S,
) -> ItemEvent:
    """Validates one `recsys:items` entry; raises MalformedEvent naming what is wrong.

    A missing ts is the entry's time in the stream; a ts more than `max_future_s` ahead of `now`
    (default: this process's clock) is refused.
    """
    kind = fields.get("event")
    if kind == ItemEventType.UPSERTED:
        event = _validate(ItemUpserted, _payload(fields), kind)
    elif kind == ItemEventType.DELETED:
        event = _validate(ItemDeleted, _payload(fields), kind)
    else:
        raise MalformedEvent(f"unknown event type {kind!r}; expected item.upserted or item.deleted")
    checked: ItemEvent = _checked(event, entry_id, now, max_future_s)
    return checked


def parse_interaction(
    fields: dict[str, str],
    entry_id: str = "0-0",
    *,
    now: float | None = None,
    max_future_s: float = DEFAULT_MAX_FUTURE_S,
) -> Interaction:
    """Validates one `recsys:interactions` entry; raises MalformedEvent naming what is wrong.

    The ts rules are parse_item_event's.
    """
    kind = fields.get("event", INTERACTION_EVENT)
    if kind != INTERACTION_EVENT:
        raise MalformedEvent(f"unknown event type {kind!r}; expected interaction")
    event: Interaction = _validate(Interaction, _payload(fields), kind)
    checked: Interaction = _checked(event, entry_id, now, max_future_s)
    return checked


def to_fields(event: ItemEvent | Interaction) -> dict[str, str]:
    """The stream fields for an event: what XADD receives."""
    if isinstance(event, ItemUpserted):
        kind = ItemEventType.UPSERTED.value
    elif isinstance(event, ItemDeleted):
        kind = ItemEventType.DELETED.value
    else:
        kind = INTERACTION_EVENT
    return {"event": kind, "data": event.model_dump_json(exclude_none=True)}


class EmbeddingNotice(BaseModel):
    """Published on `recsys:embeddings` whenever a stored vector changes, for the monitor.

    At least once: a notice whose publishing may have failed after the store's write is published
    again when the entry is redelivered, with the same `version` (the item's version, the user's
    revision, the behavior model's version), so a reader can drop the copy.
    """

    model_config = ConfigDict(frozen=True)

    collection: Literal["items", "users"]
    vector: str
    subject_id: str
    change: Literal["updated", "deleted"]
    ts: float
    version: int | None = None

    def to_fields(self) -> dict[str, str]:
        return {"event": f"vector.{self.change}", "data": self.model_dump_json()}

    @classmethod
    def from_fields(cls, fields: dict[str, str]) -> EmbeddingNotice:
        notice: EmbeddingNotice = _validate(cls, _payload(fields), "embedding notice")
        return notice
