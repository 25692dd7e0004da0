"""Exposure for fresh items: a share of every feed's slots goes to items too new to have earned a place."""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import TypeVar

Item = TypeVar("Item", bound=Hashable)


def fresh_slots(limit: int, share: float) -> int:
    """How many of `limit` slots are reserved for fresh items (rounded; none when the share is 0)."""
    return min(limit, round(limit * share)) if share > 0 else 0


def with_fresh_share(ranked: Sequence[Item], fresh: Sequence[Item], share: float, limit: int) -> list[Item]:
    """`limit` ids: the ranked ones with fresh ones spread evenly over their reserved slots.

    Fresh ids already in the ranked part keep their place and count toward the share; missing fresh
    candidates leave their slots to ranked items.
    """
    reserved = fresh_slots(limit, share)
    ranked_head = list(dict.fromkeys(ranked))
    already = sum(1 for item in ranked_head[:limit] if item in set(fresh))
    extra = [item for item in dict.fromkeys(fresh) if item not in set(ranked_head[:limit])][
        : max(0, reserved - already)
    ]
    if not extra:
        return ranked_head[:limit]
    others = [item for item in ranked_head if item not in set(extra)]
    result: list[Item] = []
    step = limit / len(extra)
    # Fresh items go to the last slot of each equal stretch, so the top of the feed stays the best match.
    positions = {min(limit - 1, round(step * (n + 1)) - 1) for n in range(len(extra))}
    fresh_iter, other_iter = iter(extra), iter(others)
    for position in range(limit):
        source = fresh_iter if position in positions else other_iter
        item = next(source, None)
        if item is None:
            item = next(other_iter if source is fresh_iter else fresh_iter, None)
        if item is None:
            break
        result.append(item)
    return result
