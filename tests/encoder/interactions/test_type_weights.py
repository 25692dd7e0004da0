"""Event-type weights the data supports: the contrast's arithmetic, and the refresh's tuner choosing it (and, with
the content map on, the map's item evidence k)."""

from __future__ import annotations

import numpy as np

from recsys.encoder.interactions.behavior_model import EventColumns, InteractionMatrixBuilder, LoggedInteraction
from recsys.encoder.interactions.blend_tuning import TuningPlan
from recsys.encoder.interactions.factorizer import BehaviorFit, Factorizer, InProcessFactorizer
from recsys.encoder.interactions.refresh_tuning import (
    ITEM_EVIDENCE_GRID,
    NO_MAP_NDCG_TOLERANCE,
    BlendTuning,
    ModelFit,
    tune_on_log,
)
from recsys.encoder.interactions.type_weights import TYPE_CONTRASTS, TypeWeighting, weighted_types
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

    chosen = tune_on_log(entries, catalog, content, model(), RULES, tuning())
    tuned, weighting = chosen.blend, chosen.type_weighting

    assert tuned is not None
    # Counting a view as 1/8 of a purchase buried the communities under purchases of anything.
    assert weighting.contrast < 1.0
    assert weighting.weights()["view"] > CONFIGURED["view"]


def test_where_views_are_noise_the_tuner_never_makes_them_count_like_purchases() -> None:
    entries, catalog, content = funnel_log(5, views_tell_taste=False)

    chosen = tune_on_log(entries, catalog, content, model(), RULES, tuning())
    tuned, weighting = chosen.blend, chosen.type_weighting

    assert tuned is not None
    assert weighting.contrast > 0.0
    assert weighting.weights()["view"] < weighting.weights()["purchase"]


def test_a_log_of_one_type_keeps_the_configured_weighting_without_trying_others() -> None:
    single, catalog, content = funnel_log(5, views_tell_taste=True, one_type="click")

    chosen = tune_on_log(single, catalog, content, model(), RULES, tuning())
    tuned, weighting = chosen.blend, chosen.type_weighting

    assert tuned is not None
    assert weighting.contrast == 1.0


class CountingFactorizer:
    """The in-process factorizer, counting its fits: the costly step the tuner must not repeat per k."""

    def __init__(self) -> None:
        self.fits = 0
        self._inner = InProcessFactorizer()

    def fit(self, events: EventColumns, half_life_s: float, dims: int) -> BehaviorFit:
        self.fits += 1
        return self._inner.fit(events, half_life_s, dims)


def sparse_items_log(seed: int) -> tuple[InteractionMatrixBuilder, list[str], np.ndarray]:
    """Four communities, each with a few warm items and many sparse ones; content says an item's community.

    Each sparse item's only training events are a click or two from users of other communities (noise); each user
    ends on five sparse items of their own community, the targets the validation split holds out. Its few events
    point a sparse item's observed vector at the wrong community: only its content says whom it is for.
    """
    rng = np.random.default_rng(seed)
    communities, warm, sparse, users_per = 4, 10, 15, 30
    n_items, n_users = communities * (warm + sparse), communities * users_per
    community_of, user_community = np.arange(n_items) % communities, np.arange(n_users) % communities
    is_sparse = np.arange(n_items) >= communities * warm
    content = np.hstack([np.eye(communities)[community_of], np.zeros((n_items, 4))])
    content += rng.normal(0.0, 0.3, content.shape)
    builder = InteractionMatrixBuilder()

    def add(user: int, item: int) -> None:
        n = builder.read
        builder.add(LoggedInteraction(f"e{n}", f"u{user}", f"i{item}", 1.0, 60.0 * (n + 1), "click"))

    for item in np.flatnonzero(is_sparse):
        for _ in range(int(rng.integers(1, 3))):
            add(int(rng.choice(np.flatnonzero(user_community != community_of[item]))), int(item))
    for _ in range(12):
        for user in range(n_users):
            add(user, int(rng.choice(np.flatnonzero((community_of == user_community[user]) & ~is_sparse))))
    for user in range(n_users):
        own_sparse = np.flatnonzero((community_of == user_community[user]) & is_sparse)
        for item in rng.choice(own_sparse, 5, replace=False):
            add(user, int(item))
    return builder, [f"i{item}" for item in range(n_items)], content.astype(np.float32)


def mapped_model(factorizer: Factorizer, k: float = 0.0) -> ModelFit:
    return ModelFit(factorizer, 0.0, RULES.behavior_dims, True, k, 3, TypeWeighting(1.0, CONFIGURED))


def test_where_content_tells_whom_sparse_items_are_for_the_tuner_carries_them_with_a_k_above_zero() -> None:
    entries, catalog, content = sparse_items_log(0)
    factorizer = CountingFactorizer()

    chosen = tune_on_log(entries, catalog, content, mapped_model(factorizer), RULES, tuning())

    assert chosen.blend is not None and chosen.evidence is not None
    assert chosen.item_evidence_k > 0 and chosen.evidence.k == chosen.item_evidence_k
    assert set(chosen.evidence.figures) == set(ITEM_EVIDENCE_GRID)
    ndcg, fresh_hits = chosen.evidence.figures[chosen.item_evidence_k]
    # The map-less model (like k = 0) trusts the noise and misses sparse items the map finds, at no NDCG cost.
    assert fresh_hits > chosen.evidence.no_map[1] and fresh_hits > chosen.evidence.figures[0.0][1]
    assert ndcg >= (1 - NO_MAP_NDCG_TOLERANCE) * chosen.evidence.no_map[0]
    # The blend kept is the one tuned under the chosen k; the model to fit for real carries that k.
    assert chosen.blend.fresh_target_hits == fresh_hits and chosen.blend.ndcg == ndcg
    assert chosen.model(mapped_model(factorizer)).item_evidence_k == chosen.item_evidence_k
    # One log type: one contrast, one factorization of the training part for every k and the map-less model.
    assert factorizer.fits == 1


def test_the_tuner_factorizes_the_training_part_once_per_contrast_whatever_the_ks_it_tries() -> None:
    entries, catalog, content = funnel_log(5, views_tell_taste=True)
    factorizer = CountingFactorizer()

    chosen = tune_on_log(entries, catalog, content, mapped_model(factorizer, k=3.0), RULES, tuning())

    assert chosen.evidence is not None and chosen.evidence.k in ITEM_EVIDENCE_GRID
    assert factorizer.fits == len(dict.fromkeys((1.0, *TYPE_CONTRASTS)))


def test_without_the_content_map_the_tuner_keeps_the_configured_k_and_scores_none() -> None:
    entries, catalog, content = funnel_log(5, views_tell_taste=True)

    chosen = tune_on_log(entries, catalog, content, model(), RULES, tuning())

    assert chosen.evidence is None and chosen.item_evidence_k == model().item_evidence_k
