"""The vector spaces the monitor watches: which collection and named vector each one reads."""

from __future__ import annotations

from dataclasses import dataclass

from recsys.shared.errors import InvalidRequest
from recsys.shared.points import BEHAVIOR, CONTENT, ITEMS, TASTE, USERS, ItemField, PayloadField


@dataclass(frozen=True)
class Space:
    """One watched space, named "<collection>.<vector>"."""

    collection: str
    vector: str
    # Two users who engaged with the same single item share a taste vector legitimately, and so do two
    # items engaged with by the same single user in behavior space: only item content looks for
    # near-duplicates. Outliers are looked for among items.
    near_duplicates_checked: bool = False
    outliers_checked: bool = False
    # The payload field holding the basis version of the vector, for spaces whose basis is
    # recomputed (vectors of two versions live in different bases and must never be compared).
    version_field: PayloadField[int | None] | None = None

    @property
    def name(self) -> str:
        return f"{self.collection}.{self.vector}"


SPACES: tuple[Space, ...] = (
    Space(ITEMS, CONTENT, near_duplicates_checked=True, outliers_checked=True),
    Space(ITEMS, BEHAVIOR, outliers_checked=True, version_field=ItemField.BEHAVIOR_VERSION),
    Space(USERS, TASTE),
)
SPACE_NAMES: tuple[str, ...] = tuple(space.name for space in SPACES)


def space_named(name: str) -> Space:
    """The space called name; InvalidRequest listing the known ones otherwise."""
    for space in SPACES:
        if space.name == name:
            return space
    known = ", ".join(f'"{n}"' for n in SPACE_NAMES)
    raise InvalidRequest(f"unknown space {name!r}; known spaces: {known}")


def space_of(collection: str, vector: str) -> Space | None:
    """The watched space a stored vector belongs to, or None when it is not watched."""
    for space in SPACES:
        if space.collection == collection and space.vector == vector:
            return space
    return None
