"""Request validation: item filters on category, tags and attributes, limits and exclusion lists."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from recsys.shared.errors import InvalidRequest
from recsys.shared.points import ItemField, attribute_key

# A filter names its field by its payload key: category, tags, or attributes.<name>.
ATTRIBUTE_PREFIX = attribute_key("")
KEYWORD_FIELDS = (ItemField.CATEGORY.key, ItemField.TAGS.key)
MAX_CONDITIONS = 32
MAX_ANY_OF_VALUES = 1024
MAX_VALUE_CHARS = 1024

# Attribute names become payload key paths, so anything that could address another field is refused.
_ATTRIBUTE_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")


@dataclass(frozen=True)
class NumericRange:
    """An inclusive interval; either bound may be open."""

    gte: float | None = None
    lte: float | None = None


@dataclass(frozen=True)
class Condition:
    """One test on one item field; exactly one of equals, any_of and range is set. Invalid ones refuse to exist."""

    field: str
    equals: str | None = None
    any_of: tuple[str, ...] | None = None
    range: NumericRange | None = None

    def __post_init__(self) -> None:
        _check_field(self.field)
        operators = [name for name in ("equals", "any_of", "range") if getattr(self, name) is not None]
        if len(operators) != 1:
            given = ", ".join(operators) if operators else "none"
            raise InvalidRequest(
                f"condition on {self.field!r} must set exactly one operator (equals, any_of or range), got {given}"
            )
        if self.equals is not None:
            _check_value(self.field, "equals", self.equals)
        if self.any_of is not None:
            if not self.any_of:
                raise InvalidRequest(f"any_of on {self.field!r} needs at least one value")
            if len(self.any_of) > MAX_ANY_OF_VALUES:
                raise InvalidRequest(
                    f"any_of on {self.field!r} has {len(self.any_of)} values; at most {MAX_ANY_OF_VALUES} allowed"
                )
            for value in self.any_of:
                _check_value(self.field, "any_of", value)
        if self.range is not None:
            _check_range(self.field, self.range)

    @property
    def is_attribute(self) -> bool:
        return self.field.startswith(ATTRIBUTE_PREFIX)


@dataclass(frozen=True)
class ItemFilter:
    """Conditions that must all hold; no conditions matches every item."""

    conditions: tuple[Condition, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        if len(self.conditions) > MAX_CONDITIONS:
            raise InvalidRequest(f"filter has {len(self.conditions)} conditions; at most {MAX_CONDITIONS} allowed")


def _check_field(name: str) -> None:
    if name in KEYWORD_FIELDS:
        return
    if name.startswith(ATTRIBUTE_PREFIX):
        attribute = name.removeprefix(ATTRIBUTE_PREFIX)
        if attribute and _ATTRIBUTE_NAME.match(attribute):
            return
        raise InvalidRequest(
            f"filter field {name!r} has an invalid attribute name: use attributes.<name> "
            "with a non-empty name of letters, digits, '_', '.' or '-'"
        )
    raise InvalidRequest(f"unknown filter field {name!r}: use 'category', 'tags' or 'attributes.<name>'")


def _check_value(field_name: str, operator: str, value: str) -> None:
    if not value.strip():
        raise InvalidRequest(f"{operator} on {field_name!r} needs a non-empty value")
    if len(value) > MAX_VALUE_CHARS:
        raise InvalidRequest(f"{operator} value on {field_name!r} is longer than {MAX_VALUE_CHARS} characters")


def _check_range(field_name: str, bounds: NumericRange) -> None:
    if not field_name.startswith(ATTRIBUTE_PREFIX):
        raise InvalidRequest(f"range applies only to numeric attributes (attributes.<name>), not {field_name!r}")
    if bounds.gte is None and bounds.lte is None:
        raise InvalidRequest(f"range on {field_name!r} needs at least one bound (gte or lte)")
    for name, bound in (("gte", bounds.gte), ("lte", bounds.lte)):
        if bound is not None and not math.isfinite(bound):
            raise InvalidRequest(f"range on {field_name!r} has a non-finite {name}: {bound}")
    if bounds.gte is not None and bounds.lte is not None and bounds.gte > bounds.lte:
        raise InvalidRequest(f"range on {field_name!r} is empty: gte {bounds.gte:g} exceeds lte {bounds.lte:g}")


def validate_limit(limit: int, max_limit: int) -> int:
    """The limit itself when it is within 1..max_limit."""
    if not 1 <= limit <= max_limit:
        raise InvalidRequest(f"limit must be between 1 and {max_limit}, got {limit}")
    return limit


def validate_exclusions(item_ids: Iterable[str], max_ids: int) -> tuple[str, ...]:
    """The excluded ids without duplicates, refusing empty ids and lists past max_ids."""
    given = list(item_ids)
    for position, item_id in enumerate(given):
        if not item_id.strip():
            raise InvalidRequest(f"exclude_item_ids[{position}] is empty")
    unique = tuple(dict.fromkeys(given))
    if len(unique) > max_ids:
        raise InvalidRequest(f"exclude_item_ids has {len(unique)} ids; at most {max_ids} allowed")
    return unique


def validate_subject_id(kind: str, external_id: str) -> str:
    """An item or user id as given, refusing a blank one."""
    if not external_id.strip():
        raise InvalidRequest(f"{kind} must not be empty")
    return external_id
