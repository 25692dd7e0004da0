"""Carries items with little evidence in the behavior space: a map from content vectors to behavior vectors.

At each behavior refresh the map is learnt on the warm items (those with at least `min_evidence`
interactions), from their content vectors to their raw behavior vectors (unit × strength, so the
longest observed vector has length 1). It has two ridge parts, both on the same centered content
matrix with their penalties chosen by generalized cross-validation: one for the *direction* (content →
raw behavior vector) and one for the *strength* (content → log length of the warm items' vectors). The
direction's own length says little: a ridge shrinks towards the mean, so its outputs are a fraction of
any warm item's length (median ≈ 0.4× on MovieLens) and a cold item carried by it never reached a top
10. The inferred vector is therefore the ridge direction at the strength that warm items with similar
content have (geometric mean: exp of the predicted log-strength). Every item with content then gets

    share · observed + (1 − share) · inferred,   share = n / (n + k)

(n its evidence, k the item evidence constant: the rule of `recsys.shared.blending.behavior_share`),
so a never-interacted item is carried by its content alone and a well-known one keeps what its
interactions say. Strengths stay relative to the longest *observed* vector (capped at 1), the same
reference the factorization used, so a new item's strength can be computed later from the map alone
and the scale the recommender's weights were tuned on does not move.

Pure numpy: both encoder roles import it (the interactions role never loads torch), and the offline
evaluation replays it.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from recsys.encoder.interactions.behavior_model import ItemFactors

# Items with fewer interactions than this are "cold": their observed vectors are too noisy to learn from.
DEFAULT_MIN_EVIDENCE = 3
# Below this many warm items a map learns nothing worth carrying other items with.
MIN_WARM_ITEMS = 5
# Ridge penalties tried, relative to the mean squared singular value of the centered content matrix.
_LAMBDA_GRID = np.logspace(-3.0, 3.0, 25)
# An inferred vector shorter than this (relative to the longest observed) carries no direction worth storing.
_NEGLIGIBLE = 1e-9


@dataclass(frozen=True)
class ContentMap:
    """A map from content vectors to raw behavior vectors.

    Direction: (content − content_mean) · weights + behavior_mean. Strength (when learnt):
    exp((content − content_mean) · strength_weights + log_strength_mean), capped at 1; without a
    strength part (a map stored before it existed) the direction's own length is the strength.
    """

    weights: np.ndarray  # (content_dims, behavior_dims) float32
    content_mean: np.ndarray  # (content_dims,) float32
    behavior_mean: np.ndarray  # (behavior_dims,) float32
    ridge_lambda: float
    # The behavior model version the map was learnt for: its output lives in that version's basis.
    version: int = 0
    # The evidence constant k the refresh blended with, and how many warm items the map was learnt on.
    item_evidence_k: float = 0.0
    warm_items: int = 0
    # The strength part: a ridge from content to the log length of the warm items' raw vectors.
    strength_weights: np.ndarray | None = None  # (content_dims,) float32
    log_strength_mean: float = 0.0
    strength_lambda: float = 0.0

    @property
    def content_dims(self) -> int:
        return int(self.weights.shape[0])

    @property
    def behavior_dims(self) -> int:
        return int(self.weights.shape[1])

    def direction(self, content: np.ndarray) -> np.ndarray:
        """The direction ridge's raw output (rows) for content vectors (rows): shrunk, its length means little."""
        matrix = self._rows(content)
        return ((matrix - self.content_mean) @ self.weights + self.behavior_mean).astype(np.float32)

    def strength(self, content: np.ndarray) -> np.ndarray:
        """The expected strength (relative to the longest observed vector, capped at 1) of items with this content."""
        matrix = self._rows(content)
        if self.strength_weights is None:
            return np.minimum(np.linalg.norm(self.direction(matrix).astype(np.float64), axis=1), 1.0)
        log_strength = (matrix - self.content_mean).astype(np.float64) @ self.strength_weights + self.log_strength_mean
        return np.minimum(np.exp(np.minimum(log_strength, 0.0)), 1.0)

    def infer(self, content: np.ndarray) -> np.ndarray:
        """Raw behavior vectors (rows; length 1 = the longest observed vector) of content vectors (rows): the
        direction ridge's unit vector × the strength part's expected strength."""
        raw = self.direction(content).astype(np.float64)
        if self.strength_weights is None:
            return raw.astype(np.float32)
        lengths = np.linalg.norm(raw, axis=1)
        units = np.divide(raw, lengths[:, None], out=np.zeros_like(raw), where=lengths[:, None] > _NEGLIGIBLE)
        return (units * self.strength(content)[:, None]).astype(np.float32)

    def _rows(self, content: np.ndarray) -> np.ndarray:
        matrix = np.atleast_2d(np.asarray(content, dtype=np.float32))
        if matrix.shape[1] != self.content_dims:
            raise ValueError(f"content vectors have {matrix.shape[1]} dimensions, the map expects {self.content_dims}")
        return matrix

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe form (arrays as base64 of little-endian float32), what the model record stores."""
        return {
            "weights": _encode(self.weights),
            "content_mean": _encode(self.content_mean),
            "behavior_mean": _encode(self.behavior_mean),
            "content_dims": self.content_dims,
            "behavior_dims": self.behavior_dims,
            "ridge_lambda": self.ridge_lambda,
            "version": self.version,
            "item_evidence_k": self.item_evidence_k,
            "warm_items": self.warm_items,
            **(
                {
                    "strength_weights": _encode(self.strength_weights),
                    "log_strength_mean": self.log_strength_mean,
                    "strength_lambda": self.strength_lambda,
                }
                if self.strength_weights is not None
                else {}
            ),
        }

    @classmethod
    def from_dict(cls, stored: dict[str, Any]) -> ContentMap:
        content_dims, behavior_dims = int(stored["content_dims"]), int(stored["behavior_dims"])
        return cls(
            weights=_decode(stored["weights"]).reshape(content_dims, behavior_dims),
            content_mean=_decode(stored["content_mean"]).reshape(content_dims),
            behavior_mean=_decode(stored["behavior_mean"]).reshape(behavior_dims),
            ridge_lambda=float(stored["ridge_lambda"]),
            version=int(stored.get("version", 0)),
            item_evidence_k=float(stored.get("item_evidence_k", 0.0)),
            warm_items=int(stored.get("warm_items", 0)),
            strength_weights=(
                _decode(stored["strength_weights"]).reshape(content_dims) if "strength_weights" in stored else None
            ),
            log_strength_mean=float(stored.get("log_strength_mean", 0.0)),
            strength_lambda=float(stored.get("strength_lambda", 0.0)),
        )


def _encode(values: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(values, dtype="<f4").tobytes()).decode("ascii")


def _decode(text: str) -> np.ndarray:
    return np.frombuffer(base64.b64decode(text), dtype="<f4").astype(np.float32)


def behavior_share(evidence: np.ndarray, k: float) -> np.ndarray:
    """n / (n + k) per item: how much of an item's vector its own interactions decide (1 when k is 0)."""
    n = np.maximum(np.asarray(evidence, dtype=np.float64), 0.0)
    if k <= 0:
        return np.ones_like(n)
    return n / (n + k)


def raw_vectors(factors: ItemFactors) -> np.ndarray:
    """unit × strength per item: the factorization's vectors with the longest at length 1."""
    return np.asarray(factors.vectors, dtype=np.float64) * np.asarray(factors.strengths, dtype=np.float64)[:, None]


def fit_content_map(
    content: np.ndarray,
    behavior: np.ndarray,
    evidence: np.ndarray,
    *,
    min_evidence: float = DEFAULT_MIN_EVIDENCE,
    version: int = 0,
    item_evidence_k: float = 0.0,
) -> ContentMap | None:
    """A map learnt on the warm rows (evidence ≥ min_evidence); None when fewer than MIN_WARM_ITEMS are warm.

    `content` (items × content_dims) and `behavior` (items × behavior_dims, raw: unit × strength)
    are row-aligned with `evidence`. Two ridges share one SVD of the centered warm content matrix: the
    direction (content → raw vector) and the strength (content → log length, on the warm rows with a
    non-zero vector). Each penalty is the one with the lowest generalized cross-validation error
    (closed form), chosen within the warm items only: deterministic, positive, no held-out data involved.
    """
    content = np.asarray(content, dtype=np.float64)
    behavior = np.asarray(behavior, dtype=np.float64)
    evidence = np.asarray(evidence, dtype=np.float64)
    if not len(content) == len(behavior) == len(evidence):
        raise ValueError(f"rows differ: content {len(content)}, behavior {len(behavior)}, evidence {len(evidence)}")
    finite = np.isfinite(content).all(axis=1) & np.isfinite(behavior).all(axis=1)
    warm = np.flatnonzero((evidence >= min_evidence) & finite)
    if len(warm) < MIN_WARM_ITEMS:
        return None
    x, y = content[warm], behavior[warm]
    content_mean, behavior_mean = x.mean(axis=0), y.mean(axis=0)
    x, y = x - content_mean, y - behavior_mean
    left, singular, right_t = np.linalg.svd(x, full_matrices=False)
    ridge_lambda = _gcv_lambda(left, singular, y)
    # W = V · diag(s / (s² + λ)) · Uᵀ · Y
    weights = right_t.T @ ((singular / (singular**2 + ridge_lambda))[:, None] * (left.T @ y))
    strength_weights, log_strength_mean, strength_lambda = _strength_ridge(
        x, np.linalg.norm(behavior[warm], axis=1), left, singular, right_t
    )
    return ContentMap(
        weights=weights.astype(np.float32),
        content_mean=content_mean.astype(np.float32),
        behavior_mean=behavior_mean.astype(np.float32),
        ridge_lambda=float(ridge_lambda),
        version=version,
        item_evidence_k=float(item_evidence_k),
        warm_items=len(warm),
        strength_weights=strength_weights,
        log_strength_mean=log_strength_mean,
        strength_lambda=strength_lambda,
    )


def _strength_ridge(
    centered: np.ndarray, lengths: np.ndarray, left: np.ndarray, singular: np.ndarray, right_t: np.ndarray
) -> tuple[np.ndarray | None, float, float]:
    """Ridge from centered content to log length (GCV penalty); (None, 0, 0) with too few non-zero lengths.

    The log: strengths are positive and spread over orders of magnitude (the factorization's lengths grow
    with an item's popularity), so the prediction is a geometric mean, never negative. With every warm
    length non-zero the warm SVD is reused; otherwise the rows with a vector get their own.
    """
    positive = lengths > _NEGLIGIBLE
    if int(positive.sum()) < MIN_WARM_ITEMS:
        return None, 0.0, 0.0
    if not positive.all():
        left, singular, right_t = np.linalg.svd(centered[positive], full_matrices=False)
    log_lengths = np.log(lengths[positive])
    mean = float(log_lengths.mean())
    y = (log_lengths - mean)[:, None]
    strength_lambda = _gcv_lambda(left, singular, y)
    weights = right_t.T @ ((singular / (singular**2 + strength_lambda))[:, None] * (left.T @ y))
    # The content mean the direction uses is the warm rows' mean; the intercept absorbs the difference.
    offset = float(centered[positive].mean(axis=0) @ weights[:, 0])
    return weights[:, 0].astype(np.float32), mean - offset, float(strength_lambda)


def _gcv_lambda(left: np.ndarray, singular: np.ndarray, y: np.ndarray) -> float:
    """The grid penalty minimizing GCV(λ) = n·‖(I − H)Y‖² / (n − tr H)², H = U diag(s²/(s²+λ)) Uᵀ."""
    n = y.shape[0]
    squared = singular**2
    scale = float(squared.mean()) if len(squared) and squared.mean() > 0 else 1.0
    projected = np.sum((left.T @ y) ** 2, axis=1)  # ‖(UᵀY)_i‖² per singular direction
    total = float(np.sum(y**2))
    best, best_score = scale * float(_LAMBDA_GRID[-1]), math.inf
    for relative in _LAMBDA_GRID:
        ridge_lambda = scale * float(relative)
        shrink = squared / (squared + ridge_lambda)
        residual = total - float(np.sum((2 * shrink - shrink**2) * projected))
        dof = n - float(shrink.sum())
        if dof <= 0:
            continue
        score = n * max(residual, 0.0) / dof**2
        if score < best_score - 1e-12 * abs(best_score if math.isfinite(best_score) else 0.0):
            best, best_score = ridge_lambda, score
    return best


def carry_items(
    factors: ItemFactors,
    content_map: ContentMap | None,
    item_ids: Sequence[str],
    content: np.ndarray,
    evidence: np.ndarray,
    item_evidence_k: float,
) -> ItemFactors:
    """Behavior vectors for every item with content: share · observed + (1 − share) · inferred, share = n/(n+k).

    `item_ids`, `content` (rows) and `evidence` (interaction counts) are row-aligned: the items with
    content (deleted ones left out by the caller). Items of `factors` without content keep their
    observed vectors; items with content but no observed vector get the inferred one alone. Strengths
    are relative to the longest observed vector (strength 1 in `factors`), capped at 1. Without a map
    the factors come back unchanged. The result lists the factors' items first, in their order.
    """
    if content_map is None or not len(item_ids):
        return factors
    content = np.asarray(content, dtype=np.float32)
    if len(content) != len(item_ids) or len(np.asarray(evidence)) != len(item_ids):
        raise ValueError(f"{len(item_ids)} item ids, {len(content)} content rows, {len(evidence)} evidence values")
    observed_rows = {item_id: row for row, item_id in enumerate(factors.item_ids)}
    observed = raw_vectors(factors)
    order = list(factors.item_ids) + [item_id for item_id in item_ids if item_id not in observed_rows]
    combined = np.zeros((len(order), content_map.behavior_dims), dtype=np.float64)
    combined[: len(factors.item_ids)] = observed
    positions = {item_id: row for row, item_id in enumerate(order)}
    inferred = content_map.infer(content).astype(np.float64)
    share = behavior_share(np.asarray(evidence, dtype=np.float64), item_evidence_k)
    rows = np.asarray([positions[item_id] for item_id in item_ids], dtype=np.int64)
    has_observed = np.asarray([item_id in observed_rows for item_id in item_ids], dtype=bool)
    # Nothing observed: the content alone carries the item, whatever its count says.
    share = np.where(has_observed, share, 0.0)
    combined[rows] = share[:, None] * combined[rows] + (1.0 - share)[:, None] * inferred
    lengths = np.linalg.norm(combined, axis=1)
    keep = np.flatnonzero(lengths > _NEGLIGIBLE)
    units = combined[keep] / lengths[keep, None]
    return ItemFactors(
        [order[row] for row in keep],
        units.astype(np.float32),
        np.minimum(lengths[keep], 1.0).astype(np.float32),
    )


def carry_by_content(
    factors: ItemFactors,
    item_ids: Sequence[str],
    content: np.ndarray,
    evidence: np.ndarray,
    item_evidence_k: float,
    *,
    min_evidence: float = DEFAULT_MIN_EVIDENCE,
    version: int = 0,
) -> tuple[ItemFactors, ContentMap | None]:
    """Fits the map on the warm items among `item_ids` and carries every item: one call after a fit.

    `item_ids`, `content` and `evidence` are row-aligned (every catalog item with content); the
    observed vector of each comes from `factors` (zero where the model has none).
    """
    content = np.asarray(content, dtype=np.float32)
    evidence = np.asarray(evidence, dtype=np.float64)
    observed_rows = {item_id: row for row, item_id in enumerate(factors.item_ids)}
    observed = raw_vectors(factors)
    behavior = np.zeros((len(item_ids), factors.vectors.shape[1] if factors.vectors.ndim == 2 else 0))
    present = np.asarray([item_id in observed_rows for item_id in item_ids], dtype=bool)
    if present.any():
        behavior[present] = observed[[observed_rows[item_id] for item_id in item_ids if item_id in observed_rows]]
    # Only items the model holds a vector for can teach the map.
    fit_evidence = np.where(present, evidence, 0.0)
    content_map = fit_content_map(
        content, behavior, fit_evidence, min_evidence=min_evidence, version=version, item_evidence_k=item_evidence_k
    )
    return carry_items(factors, content_map, item_ids, content, evidence, item_evidence_k), content_map


def inferred_item(content_map: ContentMap, content: np.ndarray) -> tuple[np.ndarray, float] | None:
    """A new item's unit behavior vector and strength (relative to the longest observed, capped at 1), or None:
    the same inferred vector as an item with no interactions gets in carry_items."""
    row = np.asarray(content, dtype=np.float32).reshape(1, -1)
    raw = content_map.infer(row)[0].astype(np.float64)
    length = float(np.linalg.norm(raw))
    if not math.isfinite(length) or length <= _NEGLIGIBLE:
        return None
    strength = float(content_map.strength(row)[0]) if content_map.strength_weights is not None else length
    return (raw / length).astype(np.float32), min(strength, 1.0)


def with_version(content_map: ContentMap, version: int) -> ContentMap:
    return replace(content_map, version=version)
