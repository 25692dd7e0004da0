"""The refresh's tuning: the log it read and the catalog's content in, the ForYou weights and model constants out.

The tuning itself (blend_tuning.py) is pure; this fits its validation model the way the refresh
fits the real one (the configured factorizer, the same decay, the content map when it is on), and
chooses with it the interaction types' contrast and the content map's item evidence constant k.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace

import numpy as np

from recsys.encoder.content_map import ContentMap, carry_by_content
from recsys.encoder.interactions.behavior_model import EventColumns, InteractionMatrixBuilder, ItemFactors
from recsys.encoder.interactions.blend_tuning import TunedBlend, TuningPlan, tune_blend
from recsys.encoder.interactions.factorizer import BehaviorFit, Factorizer
from recsys.encoder.interactions.rules import InteractionRules
from recsys.encoder.interactions.type_weights import TYPE_CONTRASTS, TypeWeighting, weighted_types
from recsys.encoder.interactions.user_profile import UserProfile
from recsys.shared.blend_settings import BlendSettings
from recsys.shared.blending import ForYouWeights

# The content map's item evidence constants k tried on validation (RECSYS_BEHAVIOR_ITEM_EVIDENCE_K): 0 keeps every
# observed vector as it is (only never-interacted items are carried by content), then the map's own scale.
ITEM_EVIDENCE_GRID = (0.0, 1.0, 3.0, 10.0)
# What carrying fresh items by content may cost: at most this share of the validation NDCG@10 of the same model
# without the map (the 1% issue 17 accepts). A product budget, not fitted.
NO_MAP_NDCG_TOLERANCE = 0.01


@dataclass(frozen=True)
class BlendTuning:
    """Whether the refresh tunes the ForYou blend, from which defaults, on how many users."""

    enabled: bool
    defaults: ForYouWeights
    plan: TuningPlan

    @classmethod
    def from_settings(cls, settings: BlendSettings) -> BlendTuning:
        return cls(
            enabled=settings.blend_self_tuning,
            defaults=settings.for_you_weights(),
            plan=TuningPlan(
                min_users=settings.blend_tuning_min_users,
                max_users=settings.blend_tuning_max_users,
                popularity_midpoint=settings.popularity_midpoint,
                fresh_max_interactions=settings.fresh_max_interactions,
            ),
        )


@dataclass(frozen=True)
class ModelFit:
    """How the refresh fits item vectors: its factorizer, decay, dimensions and content map settings."""

    factorizer: Factorizer
    model_half_life_s: float
    dims: int
    content_map: bool
    item_evidence_k: float
    content_min_evidence: int
    # How much each interaction type counts in the model; applied to the events before anything else.
    type_weighting: TypeWeighting = field(default_factory=TypeWeighting)

    def fit(self, events: EventColumns, catalog_ids: list[str], catalog_content: np.ndarray) -> ItemFactors:
        return self.fit_with_map(events, catalog_ids, catalog_content)[0]

    def fit_with_map(
        self, events: EventColumns, catalog_ids: list[str], catalog_content: np.ndarray, version: int = 0
    ) -> tuple[ItemFactors, ContentMap | None]:
        """The item vectors (every catalog item carried by its content when the map is on) and the map."""
        return self.carried(self.factorized(events), events, catalog_ids, catalog_content, version)

    def factorized(self, events: EventColumns) -> BehaviorFit:
        """The factorization alone (weighted by type): the costly part, which the item evidence k does not change."""
        return self.factorizer.fit(self.type_weighting.applied_to(events), self.model_half_life_s, self.dims)

    def carried(
        self,
        fitted: BehaviorFit,
        events: EventColumns,
        catalog_ids: list[str],
        catalog_content: np.ndarray,
        version: int = 0,
    ) -> tuple[ItemFactors, ContentMap | None]:
        """The factorization of `events` with every catalog item carried by its content (when the map is on)."""
        if not self.content_map or not len(catalog_ids):
            return fitted.factors, None
        # An item's evidence: the users of its column in the matrix the model was fit on.
        evidence_of = dict(zip(events.item_ids, fitted.evidence, strict=True))
        evidence = np.asarray([evidence_of.get(item_id, 0) for item_id in catalog_ids], dtype=np.float64)
        return carry_by_content(
            fitted.factors,
            catalog_ids,
            catalog_content,
            evidence,
            self.item_evidence_k,
            min_evidence=self.content_min_evidence,
            version=version,
        )


@dataclass(frozen=True)
class ItemEvidenceChoice:
    """The content map's item evidence k the tuner chose, and what each k's tuned blend and the map-less one scored on
    validation: NDCG@10 and held-out fresh items won in the top 10."""

    k: float
    figures: dict[float, tuple[float, int]]
    no_map: tuple[float, int]

    def as_record(self) -> dict[str, float]:
        """Flat figures for the model record: the chosen k, then per k (and without the map) NDCG and fresh hits."""
        record = {"item_evidence_k": self.k}
        for k, (ndcg, hits) in self.figures.items():
            record |= {f"item_evidence_k_{k:g}_ndcg": ndcg, f"item_evidence_k_{k:g}_fresh_hits": float(hits)}
        return record | {"no_map_ndcg": self.no_map[0], "no_map_fresh_hits": float(self.no_map[1])}


@dataclass(frozen=True)
class RefreshTuning:
    """What the tuner chose for a refresh: the blend (None: tuning off or too few users, the defaults stay), how much
    each interaction type counts in the model, and the content map's item evidence k (the configured one unless
    `evidence` says it was chosen)."""

    blend: TunedBlend | None
    type_weighting: TypeWeighting
    item_evidence_k: float
    evidence: ItemEvidenceChoice | None = None

    def model(self, configured: ModelFit) -> ModelFit:
        """The model to fit for real: the configured one under the chosen weighting and k."""
        return replace(configured, type_weighting=self.type_weighting, item_evidence_k=self.item_evidence_k)


def tune_on_log(
    entries: InteractionMatrixBuilder,
    catalog_ids: list[str],
    catalog_content: np.ndarray,
    model: ModelFit,
    rules: InteractionRules,
    tuning: BlendTuning,
) -> RefreshTuning:
    """The blend the refresh should rank with, how much each interaction type should count in its model, and with
    the content map on, its item evidence k.

    Where the log holds interaction types of different configured weights, the validation model is fit
    under each contrast of TYPE_CONTRASTS (the configured one first: ties keep it) and the contrast whose
    tuned blend scores best wins; the users are replayed with the configured weights every time, as the
    service folds them. Under the chosen contrast, each k of ITEM_EVIDENCE_GRID and the model without the map
    get a tuned blend of their own; the k kept is the one whose blend wins the most held-out fresh items among
    those within NO_MAP_NDCG_TOLERANCE of the map-less blend's NDCG@10 (ties: the better NDCG, then the
    configured k; none within: the best NDCG). The map-less model is a yardstick only: the map stays on.
    The validation split is the same for every try, so each contrast's training part is factorized once and
    the validation users are replayed once.
    """
    configured = model.type_weighting
    untuned = RefreshTuning(None, configured, model.item_evidence_k)
    if not tuning.enabled or not len(catalog_ids):
        return untuned
    events = entries.events()
    content, has_content = _content_rows(events, catalog_ids, catalog_content)
    # Every try splits the same log the same way: the factorization (per contrast) and the validation users' replay
    # are made once, and each try redoes only what its model changes.
    factorizations = _Factorizations()
    replayed: dict[int, UserProfile] = {}

    def tuned_under(fit: ModelFit) -> TunedBlend | None:
        return tune_blend(
            events,
            content,
            has_content,
            tuning.defaults,
            rules,
            lambda train: fit.carried(factorizations.of(fit, train), train, catalog_ids, catalog_content)[0],
            tuning.plan,
            replayed,
        )

    magnitudes = {abs(configured.configured[name]) for name in weighted_types(events, configured)}
    contrasts = dict.fromkeys((configured.contrast, *TYPE_CONTRASTS)) if len(magnitudes) > 1 else [configured.contrast]
    best: tuple[TunedBlend, ModelFit] | None = None
    for contrast in contrasts:
        fit = replace(model, type_weighting=configured.with_contrast(contrast))
        tuned = tuned_under(fit)
        if tuned is None:
            return untuned  # too few users: the same for every contrast
        if best is None or tuned.ndcg > best[0].ndcg:
            best = (tuned, fit)
    assert best is not None
    blend, fit = best
    if not fit.content_map:
        return RefreshTuning(blend, fit.type_weighting, fit.item_evidence_k)
    # The configured k first: its blend is the contrast's own.
    by_k: dict[float, TunedBlend | None] = {fit.item_evidence_k: blend}
    for k in ITEM_EVIDENCE_GRID:
        if k not in by_k:
            by_k[k] = tuned_under(replace(fit, item_evidence_k=k))
    unmapped = tuned_under(replace(fit, content_map=False))
    tried = {k: tuned for k, tuned in by_k.items() if tuned is not None}
    if unmapped is None or len(tried) < len(by_k):
        return RefreshTuning(blend, fit.type_weighting, fit.item_evidence_k)  # the same split: never, in practice
    chosen = _chosen_evidence(tried, unmapped, fit.item_evidence_k)
    figures = {k: (tuned.ndcg, tuned.fresh_target_hits) for k, tuned in tried.items()}
    evidence = ItemEvidenceChoice(chosen, figures, (unmapped.ndcg, unmapped.fresh_target_hits))
    return RefreshTuning(tried[chosen], fit.type_weighting, chosen, evidence)


def _chosen_evidence(tried: dict[float, TunedBlend], unmapped: TunedBlend, configured: float) -> float:
    """The evaluation's rule (choose_item_evidence): the most fresh hits within the tolerance of the map-less NDCG."""
    within = [k for k, tuned in tried.items() if tuned.ndcg >= (1.0 - NO_MAP_NDCG_TOLERANCE) * unmapped.ndcg]
    if within:
        return max(within, key=lambda k: (tried[k].fresh_target_hits, tried[k].ndcg, k == configured))
    return max(tried, key=lambda k: (tried[k].ndcg, k == configured))


class _Factorizations:
    """The training part's factorization, once per contrast: tune_blend splits the same log the same way on every
    call, so the tries after the first (each k, no map) reuse it and only redo the content map, cheap next to it.
    The training part is recognised by a digest of its columns (holding a copy of it would double the memory)."""

    def __init__(self) -> None:
        self._log = b""
        self._fitted: dict[float, BehaviorFit] = {}

    def of(self, fit: ModelFit, train: EventColumns) -> BehaviorFit:
        log = _digest(train)
        if log != self._log:
            self._log, self._fitted = log, {}
        contrast = fit.type_weighting.contrast
        if contrast not in self._fitted:
            self._fitted[contrast] = fit.factorized(train)
        return self._fitted[contrast]


def _digest(events: EventColumns) -> bytes:
    digest = hashlib.blake2b(f"{len(events.user_ids)} {len(events.item_ids)} {events.kinds}".encode(), digest_size=16)
    for column in (events.user, events.item, events.weight, events.ts, events.kind):
        if column is not None:
            digest.update(np.ascontiguousarray(column).data)
    return digest.digest()


def _content_rows(
    events: EventColumns, catalog_ids: list[str], catalog_content: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """A content vector per item row of the log (zero where the catalog has none) and which rows have one."""
    row_of = {item_id: row for row, item_id in enumerate(catalog_ids)}
    content = np.zeros((len(events.item_ids), catalog_content.shape[1]), dtype=np.float32)
    has_content = np.zeros(len(events.item_ids), dtype=bool)
    for row, item_id in enumerate(events.item_ids):
        source = row_of.get(item_id)
        if source is not None:
            content[row], has_content[row] = catalog_content[source], True
    return content, has_content


def blend_record(tuned: TunedBlend | None, tuning: BlendTuning) -> tuple[dict[str, float], dict[str, float]]:
    """The ForYou weights in effect after this refresh (tuned, else the defaults) and the tuning figures."""
    weights = tuned.weights if tuned is not None else tuning.defaults
    figures = {**tuned.as_record(), "self_tuned": 1.0} if tuned is not None else {"self_tuned": 0.0}
    return weights.as_record(), figures
