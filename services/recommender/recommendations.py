"""What a feed is made of: scored recommendations, the strategy that made them, and their ranking."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum


class Strategy(StrEnum):
    """How a list was made; callers see the value."""

    SIMILAR = "similar"
    PERSONALIZED = "personalized"
    POPULAR = "popular"
    SEARCH = "search"


@dataclass(frozen=True)
class Recommendation:
    """One recommended item with its score and the weighted signals the score is made of."""

    item_id: str
    score: float
    score_parts: dict[str, float] = field(default_factory=dict)
    title: str = ""
    category: str = ""


@dataclass(frozen=True)
class Feed:
    """Recommendations best first, and how they were made."""

    items: list[Recommendation]
    strategy: Strategy
    # Pass it back to get the next page; empty when there is none.
    next_page_token: str = ""


def best_first(candidates: Iterable[Recommendation], limit: int) -> list[Recommendation]:
    """The `limit` highest scores, one entry per item; ties broken by item id so results are repeatable."""
    best: dict[str, Recommendation] = {}
    for candidate in candidates:
        kept = best.get(candidate.item_id)
        if kept is None or candidate.score > kept.score:
            best[candidate.item_id] = candidate
    return sorted(best.values(), key=lambda r: (-r.score, r.item_id))[:limit]
