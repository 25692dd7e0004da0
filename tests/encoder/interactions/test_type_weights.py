"""Event-type weights the data supports: the contrast's arithmetic, and the refresh's tuner choosing it."""

from __future__ import annotations

import numpy as np

from recsys.encoder.interactions.behavior_model import EventColumns, InteractionMatrixBuilder, LoggedInteraction
from recsys.encoder.interactions.blend_tuning import TuningPlan
from recsys.encoder.interactions.factorizer import InProcessFactorizer
from recsys.encoder.interactions.refresh_tuning import BlendTuning, ModelFit, tune_on_log
from recsys.encoder.interactions.type_weights import TypeWeighting, weighted_types
from recsys.shared.blending import ForYouWeights
from tests.encoder.interactions.test_blend_tuning import RULES

CONFIGURED = {"view": 0.5, "click": 1.0, "purchase": 4.0, "dislike": -3.0}


def events_of(kinds: list[str | None], weights: list[float]) -> EventColumns:
    builder = InteractionMatrixBuilder()
    for n, (kind, weight) in enumerate(zip(kinds, weights, strict=True)):
        builder.add(LoggedInteraction(f"e{n}", f"u{n % 2}", f"i{n}", weight, float(n), kind))
    return builder.events()


def test_contrast_one_keeps_the_configured_weights_and_zero_makes_every_type_count_alike() -> None:
    events = events_of(["view", "purchase", "purchase", "dislike", "rate", None], [0.5, 4.0, 8.0, -3.0, 1.5, 2.0])

    same = TypeWeighting(1.0, CONFIGURED).applied_to(events)
    flat = TypeWeighting(0.0, CONFIGURED).applied_to(events)
    half = TypeWeighting(0.5, CONFIGURED).applied_to(events)

    np.testing.assert_array_equal(same.weight, events.weight)
    # A purchase of strength 2 (logged 8) stays twice a purchase; ratings and untyped events keep their weights.
    np.testing.assert_allclose(flat.weight, [1.0, 1.0, 2.0, -1.0, 1.5, 2.0])
    np.testing.assert_allclose(half.weight, [0.5**0.5, 2.0, 4.0, -(3.0**0.5), 1.5, 2.0])
    assert TypeWeighting(0.0, CONFIGURED).weights() == {"view": 1.0, "click": 1.0, "purchase": 1.0, "dislike": -1.0}


def test_a_subset_of_the_events_keeps_each_ones_type() -> None:
    events = events_of(["view", "purchase", "view"], [0.5, 4.0, 0.5])
    part = events.subset(np.array([2, 1]))

    assert [part.kinds[code] for code in part.kind] == ["view", "purchase"]
    np.testing.assert_allclose(TypeWeighting(0.0, CONFIGURED).applied_to(part).weight, [1.0, 1.0])


def test_only_types_whose_weight_a_contrast_changes_count_as_weighted() -> None:
    assert weighted_types(events_of(["view", "purchase", "rate"], [0.5, 4.0, 1.0]), TypeWeighting(1.0, CONFIGURED)) == [
        "view",
        "purchase",
    ]
    assert weighted_types(events_of(["rate", None], [1.0, 1.0]), TypeWeighting(1.0, CONFIGURED)) == []


def funnel_log(
    seed: int, views_tell_taste: bool, one_type: str | None = None
) -> tuple[InteractionMatrixBuilder, list[str], np.ndarray]:
    """Users in six communities, each with many views and a few purchases.

    views_tell_taste: views stay within the user's community and purchases go to any item (gifts,
    errands); otherwise the reverse: views wander the catalog, purchases stay within the community.
    one_type: every event logged as that type instead.
    """
    rng = np.random.default_rng(seed)
    n_users, n_items, communities = 200, 120, 6
    community = rng.integers(0, communities, n_users)
    builder = InteractionMatrixBuilder()
    clock = 0.0
    n = 0
    for _ in range(24):
        for user in range(n_users):
            kind = "purchase" if rng.random() < 0.25 else "view"
            within = (kind == "view") == views_tell_taste
            p = (np.arange(n_items) % communities == community[user]) if within else np.ones(n_items)
            item = int(rng.choice(n_items, p=p / p.sum()))
            clock += 60.0
            logged = one_type or kind
            builder.add(LoggedInteraction(f"e{n}", f"u{user}", f"i{item}", CONFIGURED[logged], clock, logged))
            n += 1
    catalog = [f"i{item}" for item in range(n_items)]
    return builder, catalog, rng.normal(size=(n_items, 8)).astype(np.float32)


def tuning() -> BlendTuning:
    return BlendTuning(
        True,
        ForYouWeights(behavior=1.0, taste=0.0, session=0.05, popularity=0.02, evidence_k=1.0),
        TuningPlan(min_users=20),
    )


def model() -> ModelFit:
    return ModelFit(InProcessFactorizer(), 0.0, RULES.behavior_dims, False, 0.0, 3, TypeWeighting(1.0, CONFIGURED))


def test_where_views_tell_taste_the_tuner_lets_them_count_more() -> None:
    entries, catalog, content = funnel_log(5, views_tell_taste=True)

    tuned, weighting = tune_on_log(entries, catalog, content, model(), RULES, tuning())

    assert tuned is not None
    # Counting a view as 1/8 of a purchase buried the communities under purchases of anything.
    assert weighting.contrast < 1.0
    assert weighting.weights()["view"] > CONFIGURED["view"]


def test_where_views_are_noise_the_tuner_never_makes_them_count_like_purchases() -> None:
    entries, catalog, content = funnel_log(5, views_tell_taste=False)

    tuned, weighting = tune_on_log(entries, catalog, content, model(), RULES, tuning())

    assert tuned is not None
    assert weighting.contrast > 0.0
    assert weighting.weights()["view"] < weighting.weights()["purchase"]


def test_a_log_of_one_type_keeps_the_configured_weighting_without_trying_others() -> None:
    single, catalog, content = funnel_log(5, views_tell_taste=True, one_type="click")

    tuned, weighting = tune_on_log(single, catalog, content, model(), RULES, tuning())

    assert tuned is not None
    assert weighting.contrast == 1.0
