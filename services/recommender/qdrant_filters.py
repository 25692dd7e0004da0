"""Translates a validated ItemFilter and excluded ids into the Qdrant filter every feed query carries."""

from __future__ import annotations

import math
from collections.abc import Iterable

from qdrant_client import models

from recsys.recommender.filters import Condition, ItemFilter
from recsys.shared.ids import point_id
from recsys.shared.points import ItemField

# Items known only from interactions (their item.upserted has not arrived yet) carry activity but
# no catalog entry; no feed may return them.
NOT_IN_CATALOG = models.FieldCondition(key=ItemField.IN_CATALOG.key, match=models.MatchValue(value=False))


def to_qdrant_filter(item_filter: ItemFilter, excluded_item_ids: Iterable[str] = ()) -> models.Filter:
    """All conditions must hold, no excluded item may match, and only catalog items qualify."""
    must: list[models.Condition] = [_condition(c) for c in item_filter.conditions]
    excluded = [point_id(item_id) for item_id in dict.fromkeys(excluded_item_ids)]
    must_not: list[models.Condition] = [NOT_IN_CATALOG]
    if excluded:
        must_not.append(models.HasIdCondition(has_id=excluded))  # type: ignore[arg-type]
    return models.Filter(must=must or None, must_not=must_not)


def _condition(condition: Condition) -> models.Condition:
    if condition.range is not None:
        return models.FieldCondition(
            key=condition.field, range=models.Range(gte=condition.range.gte, lte=condition.range.lte)
        )
    values = [condition.equals] if condition.equals is not None else list(condition.any_of or ())
    if not condition.is_attribute:
        # category and tags are stored as strings; on a list field (tags) a match means "has one of".
        if condition.equals is not None:
            return models.FieldCondition(key=condition.field, match=models.MatchValue(value=condition.equals))
        return models.FieldCondition(key=condition.field, match=models.MatchAny(any=values))
    return _attribute_equals_any(condition.field, values)


def _attribute_equals_any(key: str, values: list[str]) -> models.Filter:
    """Attribute values arrive as strings on the wire but are stored as the producer sent them
    (string, number or boolean), so "1979" must also match the number 1979 and "true" the boolean."""
    alternatives: list[models.Condition] = [models.FieldCondition(key=key, match=models.MatchAny(any=values))]
    for value in values:
        number = _as_number(value)
        if number is not None:
            # A one-point range matches 1979 stored as an int and 1979.0 stored as a float alike.
            alternatives.append(models.FieldCondition(key=key, range=models.Range(gte=number, lte=number)))
        flag = _as_bool(value)
        if flag is not None:
            alternatives.append(models.FieldCondition(key=key, match=models.MatchValue(value=flag)))
    return models.Filter(should=alternatives)


def _as_number(value: str) -> float | None:
    try:
        number = float(value)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def _as_bool(value: str) -> bool | None:
    lowered = value.strip().lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    return None
