"""Score blending: per-candidate signal similarities and weights in, one score and its weighted parts out."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

# Signal names; they are also the score_parts keys callers see.
CONTENT = "content"
BEHAVIOR = "behavior"
TASTE = "taste"
SESSION = "session"
POPULARITY = "popularity"
SEARCH = "search"

_SECONDS_PER_DAY = 86_400.0


@dataclass(frozen=True)
class BlendedScore:
    """A candidate's score and what each signal contributed to it (the parts sum to the score)."""

    score: float
    parts: dict[str, float]


def blend(signals: Mapping[str, float], weights: Mapping[str, float]) -> BlendedScore:
    """Weighted sum of the signals present, with the weights renormalized over those signals.

    A signal missing for this candidate (no vector to compare) hands its weight to the others
    instead of counting as zero similarity.
    """
    missing = [name for name in signals if name not in weights]
    if missing:
        raise ValueError(f"no weight for signals {missing}")
    total = sum(weights[name] for name in signals)
    if total <= 0:
        return BlendedScore(0.0, {name: 0.0 for name in signals})
    parts = {name: weights[name] / total * value for name, value in signals.items()}
    return BlendedScore(sum(parts.values()), parts)


def behavior_share(interaction_count: int, evidence_k: float) -> float:
    """How much an item's behavior vector is trusted: n/(n+k), so a new item leans on content."""
    if evidence_k <= 0:
        raise ValueError(f"evidence_k must be positive, got {evidence_k}")
    count = max(0, interaction_count)
    return count / (count + evidence_k)


def similar_items_weights(seed_interaction_count: int, evidence_k: float) -> dict[str, float]:
    """SimilarItems weights: behavior earns its share from the seed's interactions, content gets the rest."""
    share = behavior_share(seed_interaction_count, evidence_k)
    return {CONTENT: 1.0 - share, BEHAVIOR: share}


@dataclass(frozen=True)
class ForYouWeights:
    """Relative weights of the ForYou signals; they are renormalized over the signals a candidate has."""

    taste: float
    session: float
    behavior: float
    popularity: float

    def as_mapping(self) -> dict[str, float]:
        return {TASTE: self.taste, SESSION: self.session, BEHAVIOR: self.behavior, POPULARITY: self.popularity}


@dataclass(frozen=True)
class UserVectors:
    """What a user brings to ForYou; any of them may be missing."""

    taste: Sequence[float] | None = None
    session: Sequence[float] | None = None
    behavior: Sequence[float] | None = None

    @property
    def is_empty(self) -> bool:
        return self.taste is None and self.session is None and self.behavior is None


@dataclass(frozen=True)
class ItemVectors:
    """An item's vectors; either may be missing."""

    content: Sequence[float] | None = None
    behavior: Sequence[float] | None = None


def for_you_signals(user: UserVectors, item: ItemVectors) -> dict[str, float]:
    """The personal signals this user and item can be compared on (both sides need the vector)."""
    signals: dict[str, float] = {}
    if item.content is not None:
        if user.taste is not None:
            signals[TASTE] = cosine(user.taste, item.content)
        if user.session is not None:
            signals[SESSION] = cosine(user.session, item.content)
    if user.behavior is not None and item.behavior is not None:
        signals[BEHAVIOR] = cosine(user.behavior, item.behavior)
    return signals


def for_you_blend(user: UserVectors, item: ItemVectors, popularity: float, weights: ForYouWeights) -> BlendedScore:
    """A ForYou score: the popularity prior plus the personal signals, weights normalized over what is present.

    The popularity prior keeps its share of the weights of the signals the user has; the rest is
    shared among the personal signals this item can be compared on. So an item without a behavior
    vector (nobody touched it yet) competes on content alone, and an item with no personal signal
    at all only gets the popularity share, never a full score from popularity.
    """
    weight_of = weights.as_mapping()
    user_signals = [
        name
        for name, vector in ((TASTE, user.taste), (SESSION, user.session), (BEHAVIOR, user.behavior))
        if vector is not None
    ]
    total = weight_of[POPULARITY] + sum(weight_of[name] for name in user_signals)
    if total <= 0:
        return BlendedScore(0.0, {POPULARITY: 0.0})
    popularity_share = weight_of[POPULARITY] / total
    personal = blend(for_you_signals(user, item), weight_of)
    parts = {name: (1.0 - popularity_share) * value for name, value in personal.parts.items()}
    parts[POPULARITY] = popularity_share * popularity
    return BlendedScore(sum(parts.values()), parts)


def similar_items_signals(seed: ItemVectors, candidate: ItemVectors) -> dict[str, float]:
    """Content similarity, and behavior similarity when both items have a behavior vector."""
    signals: dict[str, float] = {}
    if seed.content is not None and candidate.content is not None:
        signals[CONTENT] = cosine(seed.content, candidate.content)
    if seed.behavior is not None and candidate.behavior is not None:
        signals[BEHAVIOR] = cosine(seed.behavior, candidate.behavior)
    return signals


def cosine(a: Sequence[float], b: Sequence[float]) -> float:
    """Cosine similarity; 0 when either vector is zero (a degenerate vector resembles nothing)."""
    left = np.asarray(a, dtype=np.float64)
    right = np.asarray(b, dtype=np.float64)
    if left.shape != right.shape:
        raise ValueError(f"vectors of different lengths: {left.shape[0]} and {right.shape[0]}")
    norms = float(np.linalg.norm(left) * np.linalg.norm(right))
    if norms == 0.0 or not math.isfinite(norms):
        return 0.0
    return float(np.dot(left, right) / norms)


def decayed_popularity(popularity: float, popularity_ts: float | None, now: float, half_life_days: float) -> float:
    """The stored popularity (as of popularity_ts) decayed to now; no timestamp means it is current."""
    if popularity <= 0 or not math.isfinite(popularity):
        return 0.0
    if popularity_ts is None:
        return popularity
    age_days = max(0.0, now - popularity_ts) / _SECONDS_PER_DAY
    return popularity * 0.5 ** (age_days / half_life_days)


def popularity_prior(decayed: float, midpoint: float) -> float:
    """Squashes a decayed popularity into 0..1: log-scaled so a few blockbusters do not drown the rest.

    Strictly increasing, 0 for no popularity, 0.5 at `midpoint`, approaching 1 as popularity grows.
    """
    if decayed <= 0:
        return 0.0
    scaled = math.log1p(decayed)
    return scaled / (scaled + math.log1p(midpoint))
