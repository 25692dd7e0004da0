"""How much each interaction type counts in the collaborative model: the configured weights, or flatter ones.

The configured weights (RECSYS_WEIGHT_VIEW … RECSYS_WEIGHT_PURCHASE: view 0.5, click 1, add-to-cart 2,
like 3, purchase 4) say one purchase is worth eight views. Whether a catalog's data bears that out
differs: where views are the bulk of the signal and say as much about taste as purchases, those
weights leave view-only items with almost no behavior vector; where views are noise, they are right.
A type weighting raises each type's configured weight to a power, its contrast α: 1 keeps the
configured weights, 0 makes every positive type count 1 (and every negative one −1), 0.5 lies
between, always in the configured order. The refresh's tuner fits the model under each of
TYPE_CONTRASTS and keeps the one whose model ranks its validation users best (refresh_tuning.py).

Only the collaborative model's cells change: the users' taste, session and behavior vectors keep
folding the configured weights, which is what the tuner's validation replays, so what it measured
is what the service runs. Ratings (`rate`) keep their own weight (rating − neutral) under every
contrast, and so do events logged before the log kept their type.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from recsys.encoder.interactions.behavior_model import EventColumns

# Contrasts the tuner tries: the configured weights first (ties keep them), then halfway, then all alike.
# A fixed, coarse grid set before any evaluation: each one costs the tuner a factorization.
TYPE_CONTRASTS = (1.0, 0.5, 0.0)


@dataclass(frozen=True)
class TypeWeighting:
    """Each interaction type's weight in the model: sign(w)·|w|^contrast of its configured weight w."""

    contrast: float = 1.0
    # Configured base weights by type name; types not named here (rate, unknown) keep their events' weights.
    configured: Mapping[str, float] = field(default_factory=dict)

    def weight(self, type_name: str) -> float | None:
        """The type's weight in the model; None for a type whose events keep their own weights."""
        base = self.configured.get(type_name)
        if base is None:
            return None
        if base == 0:
            return 0.0
        return math.copysign(abs(base) ** self.contrast, base)

    def weights(self) -> dict[str, float]:
        """Every configured type's weight in the model, for the model record and the metrics."""
        return {name: float(self.weight(name) or 0.0) for name in self.configured}

    def applied_to(self, events: EventColumns) -> EventColumns:
        """The events with each one's weight scaled from its type's configured weight to its weight here.

        An event's logged weight is its type's configured weight times its strength (value), so the
        scale keeps the strength. Events without a type, and types without a configured weight, are
        left as they are.
        """
        if self.contrast == 1.0 or events.kind is None or not len(events):
            return events
        scales = np.ones(len(events.kinds) + 1)  # the last: events without a known type (kind −1)
        for code, name in enumerate(events.kinds):
            base, weight = self.configured.get(name), self.weight(name)
            if base and weight is not None:
                scales[code] = weight / base
        return replace(events, weight=events.weight * scales[events.kind])

    def with_contrast(self, contrast: float) -> TypeWeighting:
        return replace(self, contrast=contrast)


def weighted_types(events: EventColumns, weighting: TypeWeighting) -> list[str]:
    """The types in the events whose weight a contrast changes (configured, non-zero), each present at least once."""
    if events.kind is None or not len(events):
        return []
    present = np.unique(events.kind[events.kind >= 0])
    return [events.kinds[int(code)] for code in present if weighting.configured.get(events.kinds[int(code)])]
