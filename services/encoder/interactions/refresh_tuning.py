"""The refresh's blend tuning: the log it read and the catalog's content in, the ForYou weights to rank with out.

The tuning itself (blend_tuning.py) is pure; this fits its validation model the way the refresh
fits the real one (the configured factorizer, the same decay, the content map when it is on).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from recsys.encoder.content_map import ContentMap, carry_by_content
from recsys.encoder.interactions.behavior_model import EventColumns, InteractionMatrixBuilder, ItemFactors
from recsys.encoder.interactions.blend_tuning import TunedBlend, TuningPlan, tune_blend
from recsys.encoder.interactions.factorizer import Factorizer
from recsys.encoder.interactions.rules import InteractionRules
from recsys.encoder.interactions.type_weights import TYPE_CONTRASTS, TypeWeighting, weighted_types
from recsys.shared.blend_settings import BlendSettings
from recsys.shared.blending import ForYouWeights


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
        fitted = self.factorizer.fit(self.type_weighting.applied_to(events), self.model_half_life_s, self.dims)
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


def tune_on_log(
    entries: InteractionMatrixBuilder,
    catalog_ids: list[str],
    catalog_content: np.ndarray,
    model: ModelFit,
    rules: InteractionRules,
    tuning: BlendTuning,
) -> tuple[TunedBlend | None, TypeWeighting]:
    """The blend the refresh should rank with (None when tuning is off or there are too few events to tell), and
    how much each interaction type should count in its model.

    Where the log holds interaction types of different configured weights, the validation model is fit
    under each contrast of TYPE_CONTRASTS (the configured one first: ties keep it) and the contrast whose
    tuned blend scores best wins; the users are replayed with the configured weights every time, as the
    service folds them.
    """
    configured = model.type_weighting
    if not tuning.enabled or not len(catalog_ids):
        return None, configured
    events = entries.events()
    row_of = {item_id: row for row, item_id in enumerate(catalog_ids)}
    content = np.zeros((len(events.item_ids), catalog_content.shape[1]), dtype=np.float32)
    has_content = np.zeros(len(events.item_ids), dtype=bool)
    for row, item_id in enumerate(events.item_ids):
        source = row_of.get(item_id)
        if source is not None:
            content[row], has_content[row] = catalog_content[source], True
    magnitudes = {abs(configured.configured[name]) for name in weighted_types(events, configured)}
    contrasts = dict.fromkeys((configured.contrast, *TYPE_CONTRASTS)) if len(magnitudes) > 1 else [configured.contrast]
    best: tuple[TunedBlend, TypeWeighting] | None = None
    for contrast in contrasts:
        weighting = configured.with_contrast(contrast)
        fit = replace(model, type_weighting=weighting)
        tuned = tune_blend(
            events,
            content,
            has_content,
            tuning.defaults,
            rules,
            lambda train, fit=fit: fit.fit(train, catalog_ids, catalog_content),  # type: ignore[misc]
            tuning.plan,
        )
        if tuned is None:
            return None, configured  # too few users: the same for every contrast
        if best is None or tuned.ndcg > best[0].ndcg:
            best = (tuned, weighting)
    assert best is not None
    return best


def blend_record(tuned: TunedBlend | None, tuning: BlendTuning) -> tuple[dict[str, float], dict[str, float]]:
    """The ForYou weights in effect after this refresh (tuned, else the defaults) and the tuning figures."""
    weights = tuned.weights if tuned is not None else tuning.defaults
    figures = {**tuned.as_record(), "self_tuned": 1.0} if tuned is not None else {"self_tuned": 0.0}
    return weights.as_record(), figures
