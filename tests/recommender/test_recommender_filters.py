"""Unit tests of request validation: filters, limits, exclusions."""

from __future__ import annotations

import math

import pytest

from recsys.recommender.filters import (
    MAX_CONDITIONS,
    Condition,
    ItemFilter,
    NumericRange,
    validate_exclusions,
    validate_limit,
    validate_subject_id,
)
from recsys.shared.errors import InvalidRequest


@pytest.mark.parametrize(
    ("field", "operators", "problem"),
    [
        ("price", {"equals": "3"}, "unknown filter field 'price'"),
        ("attributes.", {"equals": "3"}, "invalid attribute name"),
        ("attributes.a b", {"equals": "3"}, "invalid attribute name"),
        ("attributes.x$", {"equals": "3"}, "invalid attribute name"),
        ("category", {}, "exactly one operator (equals, any_of or range), got none"),
        (
            "category",
            {"equals": "a", "any_of": ("b",)},
            "exactly one operator (equals, any_of or range), got equals, any_of",
        ),
        ("category", {"equals": "  "}, "equals on 'category' needs a non-empty value"),
        ("tags", {"any_of": ()}, "any_of on 'tags' needs at least one value"),
        ("tags", {"any_of": ("a", "")}, "any_of on 'tags' needs a non-empty value"),
        ("attributes.year", {"range": NumericRange()}, "needs at least one bound"),
        ("attributes.year", {"range": NumericRange(gte=2000, lte=1990)}, "gte 2000 exceeds lte 1990"),
        ("attributes.year", {"range": NumericRange(gte=math.nan)}, "non-finite gte"),
        ("category", {"range": NumericRange(gte=1)}, "range applies only to numeric attributes"),
    ],
)
def test_invalid_condition_is_refused_naming_the_problem(
    field: str, operators: dict[str, object], problem: str
) -> None:
    with pytest.raises(InvalidRequest) as refused:
        Condition(field, **operators)  # type: ignore[arg-type]
    assert problem in str(refused.value)


@pytest.mark.parametrize(
    "condition",
    [
        Condition("category", equals="books"),
        Condition("tags", any_of=("a", "b")),
        Condition("attributes.year", range=NumericRange(gte=1990)),
        Condition("attributes.year", range=NumericRange(lte=1990)),
        Condition("attributes.year", range=NumericRange(gte=1990, lte=1990)),
        Condition("attributes.release.date-v2_x", equals="x"),
    ],
)
def test_valid_condition_is_accepted(condition: Condition) -> None:
    assert ItemFilter((condition,)).conditions == (condition,)


def test_too_many_conditions_are_refused() -> None:
    conditions = tuple(Condition("category", equals=str(i)) for i in range(MAX_CONDITIONS + 1))
    with pytest.raises(InvalidRequest, match=f"at most {MAX_CONDITIONS}"):
        ItemFilter(conditions)


@pytest.mark.parametrize("limit", [0, -1, 501, 10_000])
def test_limit_outside_one_to_max_is_refused(limit: int) -> None:
    with pytest.raises(InvalidRequest) as refused:
        validate_limit(limit, 500)
    assert str(refused.value) == f"limit must be between 1 and 500, got {limit}"


@pytest.mark.parametrize("limit", [1, 500])
def test_limit_at_the_bounds_is_accepted(limit: int) -> None:
    assert validate_limit(limit, 500) == limit


def test_exclusions_are_deduplicated_and_bounded() -> None:
    assert validate_exclusions(["a", "b", "a"], 2) == ("a", "b")
    with pytest.raises(InvalidRequest, match="exclude_item_ids has 3 ids; at most 2 allowed"):
        validate_exclusions(["a", "b", "c"], 2)
    with pytest.raises(InvalidRequest, match=r"exclude_item_ids\[1\] is empty"):
        validate_exclusions(["a", " "], 10)


def test_blank_subject_id_is_refused() -> None:
    with pytest.raises(InvalidRequest, match="item_id must not be empty"):
        validate_subject_id("item_id", " ")
    assert validate_subject_id("user_id", "u1") == "u1"
