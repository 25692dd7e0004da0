"""Score blending over a whole candidate set at once: signal arrays and weights in, scores and their parts out.

The recommender calls these on the candidates it fetched; the encoder's behavior refresh calls them
when it tunes the blend weights on its own recent events, and the offline evaluation on the whole
catalog (recsys.tools.evaluation), so the figures it prints are this code's.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace

import numpy as np

from recsys.shared.errors import InvalidRequest

# Signal names; they are also the score_parts keys callers see.
CONTENT = "content"
BEHAVIOR = "behavior"
TASTE = "taste"
SESSION = "session"
POPULARITY = "popularity"
SEQUENCE = "sequence"
SEARCH = "search"
# Not a signal: the fresh-slot gate stored with the weights (ForYouWeights.fresh_gate).
FRESH_GATE = "fresh_gate"

_SECONDS_PER_DAY = 86_400.0


@dataclass(frozen=True)
class Blend:
    """Scores of n candidates and each signal's weighted contribution (NaN where a candidate lacks the signal)."""

    scores: np.ndarray
    parts: dict[str, np.ndarray]

    def parts_of(self, row: int) -> dict[str, float]:
        """The contributions to one candidate's score: they sum to its score."""
        return {name: float(values[row]) for name, values in self.parts.items() if not math.isnan(values[row])}


def blend(signals: Mapping[str, np.ndarray], weights: Mapping[str, float]) -> Blend:
    """Weighted sum of the signals; a signal a candidate lacks (NaN) contributes nothing.

    Missing signals are not renormalized away: scores of candidates with and without a signal stay
    on one scale, so an item nobody has touched cannot outrank proven ones on content alone.
    """
    missing = [name for name in signals if name not in weights]
    if missing:
        raise ValueError(f"no weight for signals {missing}")
    parts = {name: weights[name] * np.asarray(values, dtype=np.float64) for name, values in signals.items()}
    if not parts:
        return Blend(np.zeros(0), {})
    scores = np.sum([np.nan_to_num(values, nan=0.0) for values in parts.values()], axis=0)
    return Blend(scores, parts)


def unit_rows(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to length 1; zero rows stay zero."""
    matrix = np.asarray(vectors, dtype=np.float32)
    if matrix.ndim != 2:
        raise ValueError(f"expected a matrix, got shape {matrix.shape}")
    lengths = np.linalg.norm(matrix, axis=1, keepdims=True)
    return np.divide(matrix, lengths, out=np.zeros_like(matrix), where=lengths > 0)


def cosines(query: np.ndarray | None, rows: np.ndarray, present: np.ndarray) -> np.ndarray:
    """Cosine of the query with every unit row; NaN where the row is absent or there is no query."""
    result = np.full(len(present), np.nan)
    if query is None or not present.any():
        return result
    vector = np.asarray(query, dtype=np.float32)
    if vector.shape[0] != rows.shape[1]:
        raise ValueError(f"vectors of different lengths: {vector.shape[0]} and {rows.shape[1]}")
    length = float(np.linalg.norm(vector))
    if length == 0 or not math.isfinite(length):
        return result
    result[present] = rows[present] @ (vector / length)
    return result


@dataclass(frozen=True)
class Candidates:
    """The vectors and priors of n candidate items, as arrays (rows of absent vectors are zero).

    `behavior_strength` is the length of the item's behavior vector relative to the model's
    longest (0..1): cosine × strength is the dot product the collaborative model was fit for.
    """

    item_ids: list[str]
    content: np.ndarray
    has_content: np.ndarray
    behavior: np.ndarray
    has_behavior: np.ndarray
    behavior_strength: np.ndarray
    popularity: np.ndarray
    # This user's sequence score of each candidate (successors.py; 0 where nothing recent led to it), if known.
    sequence: np.ndarray | None = None

    @classmethod
    def of(
        cls,
        item_ids: list[str],
        content: np.ndarray,
        has_content: np.ndarray,
        behavior: np.ndarray,
        has_behavior: np.ndarray,
        behavior_strength: np.ndarray,
        popularity: np.ndarray,
    ) -> Candidates:
        return cls(
            item_ids,
            unit_rows(content),
            np.asarray(has_content, dtype=bool),
            unit_rows(behavior),
            np.asarray(has_behavior, dtype=bool),
            np.clip(np.asarray(behavior_strength, dtype=np.float64), 0.0, 1.0),
            np.asarray(popularity, dtype=np.float64),
        )

    def __len__(self) -> int:
        return len(self.item_ids)

    def with_popularity(self, popularity: np.ndarray) -> Candidates:
        return replace(self, popularity=np.asarray(popularity, dtype=np.float64))

    def with_sequence(self, sequence: np.ndarray | None) -> Candidates:
        return replace(self, sequence=None if sequence is None else np.asarray(sequence, dtype=np.float64))


@dataclass(frozen=True)
class UserQuery:
    """What a user brings to ForYou (any vector may be missing) and how much evidence backs it."""

    taste: np.ndarray | None = None
    session: np.ndarray | None = None
    behavior: np.ndarray | None = None
    events: int = 0

    @property
    def is_empty(self) -> bool:
        return self.taste is None and self.session is None and self.behavior is None


@dataclass(frozen=True)
class ForYouWeights:
    """Weights of the ForYou signals, and how fast behavior earns its weight from the user's evidence.

    A user with n interactions gives behavior the share n/(n+evidence_k) of its weight; the rest
    goes to taste, so a newcomer's feed leans on content. `fresh_gate` is not a weight but travels with
    them, tuned on the same validation users: how good a match a fresh item must be to take a reserved
    fresh slot of a personal feed (worth_a_slot; 0: every fresh item).
    """

    behavior: float
    taste: float
    session: float
    popularity: float
    evidence_k: float
    sequence: float = 0.0
    fresh_gate: float = 0.0

    def for_user(self, events: int) -> dict[str, float]:
        share = behavior_share(events, self.evidence_k)
        return {
            BEHAVIOR: self.behavior * share,
            TASTE: self.taste + self.behavior * (1.0 - share),
            SESSION: self.session,
            POPULARITY: self.popularity,
            SEQUENCE: self.sequence,
        }

    def as_record(self) -> dict[str, float]:
        """The weights by signal name, and evidence_k: what the model record and GetModelInfo hold."""
        return {
            BEHAVIOR: self.behavior,
            TASTE: self.taste,
            SESSION: self.session,
            POPULARITY: self.popularity,
            SEQUENCE: self.sequence,
            "evidence_k": self.evidence_k,
            FRESH_GATE: self.fresh_gate,
        }

    def overridden(self, overrides: Mapping[str, float]) -> ForYouWeights:
        """These weights with some replaced per request; unknown names or bad values are InvalidRequest."""
        allowed = {BEHAVIOR, TASTE, SESSION, POPULARITY, SEQUENCE}
        changes: dict[str, float] = {}
        for name, value in overrides.items():
            if name not in allowed:
                raise InvalidRequest(f"unknown weight {name!r}: use one of {', '.join(sorted(allowed))}")
            if not math.isfinite(value) or value < 0:
                raise InvalidRequest(f"weight {name!r} must be a finite number ≥ 0, got {value}")
            changes[name] = float(value)
        return replace(self, **changes)


def worth_a_slot(fresh_scores: np.ndarray, last_ranked_score: float, gate: float) -> np.ndarray:
    """Which fresh candidates may take a reserved fresh slot (ForYouWeights.fresh_gate): those whose score is at
    least `gate` × the score of the feed's last ranked item, the one the slot displaces (within (1 − gate) of its
    size when that score is negative), so a slot goes only to a fresh item nearly as good a match for the user.

    gate 0: every fresh candidate (the plain share); 1: only one that scores as well as the last ranked item.
    A feed shorter than its slots (last_ranked_score −inf) gives every fresh candidate its chance.
    """
    scores = np.asarray(fresh_scores, dtype=np.float64)
    if gate <= 0 or not math.isfinite(last_ranked_score):
        return np.ones(len(scores), dtype=bool)
    return scores >= last_ranked_score - (1.0 - gate) * abs(last_ranked_score)


def behavior_share(interaction_count: int, evidence_k: float) -> float:
    """How much behavior evidence is trusted: n/(n+k), so a newcomer (user or item) leans on content."""
    if evidence_k <= 0:
        raise ValueError(f"evidence_k must be positive, got {evidence_k}")
    count = max(0, interaction_count)
    return count / (count + evidence_k)


def for_you_signals(user: UserQuery, items: Candidates) -> dict[str, np.ndarray]:
    """Every signal of every candidate: taste and session against content, behavior, popularity, sequence."""
    signals = {
        TASTE: cosines(user.taste, items.content, items.has_content),
        SESSION: cosines(user.session, items.content, items.has_content),
        BEHAVIOR: cosines(user.behavior, items.behavior, items.has_behavior) * items.behavior_strength,
    }
    present = {name: values for name, values in signals.items() if not np.isnan(values).all()}
    present[POPULARITY] = items.popularity
    if items.sequence is not None:
        present[SEQUENCE] = items.sequence
    return present


def for_you_blend(user: UserQuery, items: Candidates, weights: ForYouWeights) -> Blend:
    """ForYou scores: the user's signals weighted by for_user(evidence)."""
    return blend(for_you_signals(user, items), weights.for_user(user.events))


def similar_items_weights(seed_interaction_count: int, evidence_k: float) -> dict[str, float]:
    """SimilarItems weights: behavior earns its share from the seed's interactions, content gets the rest."""
    share = behavior_share(seed_interaction_count, evidence_k)
    return {CONTENT: 1.0 - share, BEHAVIOR: share}


def similar_items_signals(
    seed_content: np.ndarray | None, seed_behavior: np.ndarray | None, items: Candidates
) -> dict[str, np.ndarray]:
    """Content similarity, and behavior similarity (× the candidate's strength) where both have a vector."""
    signals = {
        CONTENT: cosines(seed_content, items.content, items.has_content),
        BEHAVIOR: cosines(seed_behavior, items.behavior, items.has_behavior) * items.behavior_strength,
    }
    return {name: values for name, values in signals.items() if not np.isnan(values).all()}


def decayed_popularity(
    popularity: np.ndarray, popularity_ts: np.ndarray, now: float, half_life_days: float
) -> np.ndarray:
    """Stored popularities (each as of its popularity_ts; NaN ts means current) decayed to `now`."""
    values = np.nan_to_num(np.asarray(popularity, dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    values = np.maximum(values, 0.0)
    stamps = np.asarray(popularity_ts, dtype=np.float64)
    age_days = np.maximum(0.0, now - np.where(np.isnan(stamps), now, stamps)) / _SECONDS_PER_DAY
    return values * np.power(0.5, age_days / half_life_days)


def popularity_prior(decayed: np.ndarray, midpoint: float) -> np.ndarray:
    """Squashes decayed popularity into 0..1: log-scaled so a few blockbusters do not drown the rest.

    Strictly increasing, 0 for no popularity, 0.5 at `midpoint`, approaching 1 as popularity grows.
    """
    scaled = np.log1p(np.maximum(np.asarray(decayed, dtype=np.float64), 0.0))
    return scaled / (scaled + math.log1p(midpoint))
