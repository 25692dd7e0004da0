"""Carries items with little evidence in the behavior space: a ridge map from content vectors to behavior vectors.

At each behavior refresh the map is learnt on the warm items (those with at least `min_evidence`
interactions), from their content vectors to their raw behavior vectors (unit × strength, so the
longest observed vector has length 1). Every item with content then gets

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
    """A linear map from content vectors to raw behavior vectors: (content − content_mean) · weights + behavior_mean."""

    weights: np.ndarray  # (content_dims, behavior_dims) float32
    content_mean: np.ndarray  # (content_dims,) float32
    behavior_mean: np.ndarray  # (behavior_dims,) float32
    ridge_lambda: float
    # The behavior model version the map was learnt for: its output lives in that version's basis.
    version: int = 0
    # The evidence constant k the refresh blended with, and how many warm items the map was learnt on.
    item_evidence_k: float = 0.0
    warm_items: int = 0

    @property
    def content_dims(self) -> int:
        return int(self.weights.shape[0])

    @property
    def behavior_dims(self) -> int:
        return int(self.weights.shape[1])

    def infer(self, content: np.ndarray) -> np.ndarray:
        """Raw behavior vectors (rows; length 1 = the longest observed vector) of content vectors (rows)."""
        matrix = np.atleast_2d(np.asarray(content, dtype=np.float32))
        if matrix.shape[1] != self.content_dims:
            raise ValueError(f"content vectors have {matrix.shape[1]} dimensions, the map expects {self.content_dims}")
        return ((matrix - self.content_mean) @ self.weights + self.behavior_mean).astype(np.float32)

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
    """A ridge map learnt on the warm rows (evidence ≥ min_evidence); None when fewer than MIN_WARM_ITEMS are warm.

    `content` (items × content_dims) and `behavior` (items × behavior_dims, raw: unit × strength)
    are row-aligned with `evidence`. The penalty is the one with the lowest generalized
    cross-validation error (closed form from one SVD of the centered warm content matrix), chosen
    within the warm items only: deterministic, positive, no held-out test data involved.
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
    return ContentMap(
        weights=weights.astype(np.float32),
        content_mean=content_mean.astype(np.float32),
        behavior_mean=behavior_mean.astype(np.float32),
        ridge_lambda=float(ridge_lambda),
        version=version,
        item_evidence_k=float(item_evidence_k),
        warm_items=len(warm),
    )


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
    """A new item's unit behavior vector and strength (relative to the longest observed, capped at 1), or None."""
    raw = content_map.infer(np.asarray(content, dtype=np.float32).reshape(1, -1))[0].astype(np.float64)
    length = float(np.linalg.norm(raw))
    if not math.isfinite(length) or length <= _NEGLIGIBLE:
        return None
    return (raw / length).astype(np.float32), min(length, 1.0)


def with_version(content_map: ContentMap, version: int) -> ContentMap:
    return replace(content_map, version=version)
