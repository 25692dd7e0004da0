"""The vector spaces the monitor watches: which collection and named vector each one reads."""

from __future__ import annotations

from dataclasses import dataclass

from recsys.shared.errors import InvalidRequest
from recsys.shared.store import CONTENT, ITEMS, TASTE, USERS


@dataclass(frozen=True)
class Space:
    """One watched space, named "<collection>.<vector>"."""

    collection: str
    vector: str
    # Two users who engaged with the same single item share a taste vector legitimately, so only
    # item spaces look for near-duplicates.
    near_duplicates_checked: bool = True

    @property
    def name(self) -> str:
        return f"{self.collection}.{self.vector}"


# Item behavior vectors are left out until reports can be kept per factorization version:
# two versions live in different bases and would always look drifted.
SPACES: tuple[Space, ...] = (Space(ITEMS, CONTENT), Space(USERS, TASTE, near_duplicates_checked=False))
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
