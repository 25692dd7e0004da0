"""Unit tests of the blending math and ranking: no servers."""

from __future__ import annotations

import math

import pytest

from recsys.recommender.blending import (
    BEHAVIOR,
    CONTENT,
    POPULARITY,
    SESSION,
    TASTE,
    ForYouWeights,
    ItemVectors,
    UserVectors,
    behavior_share,
    blend,
    cosine,
    decayed_popularity,
    for_you_blend,
    popularity_prior,
    similar_items_signals,
    similar_items_weights,
)
from recsys.recommender.recommendations import Recommendation, best_first
from tests.recommender.recommender_catalog import behavior_direction, direction

WEIGHTS = ForYouWeights(taste=0.35, session=0.2, behavior=0.4, popularity=0.05)


def test_missing_signal_hands_its_weight_to_the_others() -> None:
    weights = {CONTENT: 0.25, BEHAVIOR: 0.75}
    only_content = blend({CONTENT: 0.8}, weights)
    assert only_content.score == pytest.approx(0.8)
    assert only_content.parts == {CONTENT: pytest.approx(0.8)}


def test_score_parts_are_weighted_and_sum_to_the_score() -> None:
    blended = blend({CONTENT: 0.8, BEHAVIOR: 0.4}, {CONTENT: 1.0, BEHAVIOR: 3.0})
    assert blended.parts[CONTENT] == pytest.approx(0.25 * 0.8)
    assert blended.parts[BEHAVIOR] == pytest.approx(0.75 * 0.4)
    assert blended.score == pytest.approx(sum(blended.parts.values()))


def test_signal_without_a_weight_is_refused() -> None:
    with pytest.raises(ValueError, match="no weight"):
        blend({"mystery": 1.0}, {CONTENT: 1.0})


def test_new_item_leans_on_content_and_behavior_grows_with_evidence() -> None:
    k = 10.0
    assert behavior_share(0, k) == 0.0
    assert behavior_share(10, k) == pytest.approx(0.5)
    shares = [behavior_share(n, k) for n in (0, 1, 5, 50, 500)]
    assert shares == sorted(shares) and shares[-1] < 1.0
    weights = similar_items_weights(90, k)
    assert weights[BEHAVIOR] == pytest.approx(0.9)
    assert weights[CONTENT] == pytest.approx(0.1)


def test_behavior_is_compared_only_when_both_items_have_a_behavior_vector() -> None:
    seed = ItemVectors(content=direction(0), behavior=behavior_direction(0))
    with_behavior = ItemVectors(content=direction(0, 0.5), behavior=behavior_direction(0, 1.0))
    without_behavior = ItemVectors(content=direction(0, 0.5))
    assert similar_items_signals(seed, with_behavior) == {
        CONTENT: pytest.approx(math.cos(0.5)),
        BEHAVIOR: pytest.approx(math.cos(1.0)),
    }
    assert similar_items_signals(seed, without_behavior) == {CONTENT: pytest.approx(math.cos(0.5))}


def test_for_you_uses_session_only_when_the_user_has_one() -> None:
    item = ItemVectors(content=direction(0, 0.3))
    without_session = for_you_blend(UserVectors(taste=direction(0)), item, 0.0, WEIGHTS)
    with_session = for_you_blend(UserVectors(taste=direction(0), session=direction(0, 1.2)), item, 0.0, WEIGHTS)
    assert SESSION not in without_session.parts
    assert with_session.parts[SESSION] == pytest.approx(0.2 / 0.6 * math.cos(0.9))
    assert with_session.parts[TASTE] == pytest.approx(0.35 / 0.6 * math.cos(0.3))


def test_for_you_weights_are_normalized_over_the_users_signals() -> None:
    user = UserVectors(taste=direction(0), behavior=behavior_direction(0))
    item = ItemVectors(content=direction(0), behavior=behavior_direction(0))
    blended = for_you_blend(user, item, 1.0, WEIGHTS)
    # Identical vectors and a full prior: every signal gives its whole normalized weight.
    assert blended.score == pytest.approx(1.0)
    assert blended.parts[POPULARITY] == pytest.approx(0.05 / 0.8)
    assert blended.parts[BEHAVIOR] == pytest.approx(0.4 / 0.8)


def test_untouched_item_competes_on_content_not_on_missing_behavior() -> None:
    user = UserVectors(taste=direction(0), behavior=behavior_direction(0))
    untouched = for_you_blend(user, ItemVectors(content=direction(0, 0.1)), 0.0, WEIGHTS)
    engaged_elsewhere = for_you_blend(
        user, ItemVectors(content=direction(0, 0.1), behavior=behavior_direction(5)), 0.0, WEIGHTS
    )
    assert BEHAVIOR not in untouched.parts
    assert untouched.score == pytest.approx((1 - 0.05 / 0.8) * math.cos(0.1))
    assert untouched.score > engaged_elsewhere.score


def test_popularity_alone_never_outranks_a_personal_match() -> None:
    user = UserVectors(taste=direction(0))
    no_vectors = for_you_blend(user, ItemVectors(), 1.0, WEIGHTS)
    assert no_vectors.parts == {POPULARITY: pytest.approx(0.05 / 0.4)}
    close_match = for_you_blend(user, ItemVectors(content=direction(0, 0.2)), 0.0, WEIGHTS)
    assert close_match.score > no_vectors.score


def test_popularity_halves_every_half_life() -> None:
    now = 1_000_000_000.0
    day = 86_400.0
    assert decayed_popularity(40.0, now, now, 7.0) == pytest.approx(40.0)
    assert decayed_popularity(40.0, now - 7 * day, now, 7.0) == pytest.approx(20.0)
    assert decayed_popularity(40.0, now - 14 * day, now, 7.0) == pytest.approx(10.0)
    # A timestamp in the future (clock skew) never inflates popularity.
    assert decayed_popularity(40.0, now + day, now, 7.0) == pytest.approx(40.0)
    assert decayed_popularity(0.0, now, now, 7.0) == 0.0


def test_popularity_prior_is_increasing_and_stays_below_one() -> None:
    assert popularity_prior(0.0, 20.0) == 0.0
    assert popularity_prior(20.0, 20.0) == pytest.approx(0.5)
    priors = [popularity_prior(p, 20.0) for p in (0.5, 5.0, 20.0, 200.0, 1e9)]
    assert priors == sorted(priors)
    assert len(set(priors)) == len(priors)
    assert priors[0] > 0.0 and priors[-1] < 1.0


def test_cosine_of_a_zero_vector_is_zero() -> None:
    assert cosine([0.0, 0.0], [1.0, 0.0]) == 0.0
    assert cosine([2.0, 0.0], [3.0, 0.0]) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="different lengths"):
        cosine([1.0, 0.0], [1.0, 0.0, 0.0])


def test_best_first_keeps_one_entry_per_item_and_breaks_ties_by_id() -> None:
    ranked = best_first(
        [
            Recommendation("b", 0.5),
            Recommendation("a", 0.5),
            Recommendation("c", 0.9),
            Recommendation("b", 0.7),
            Recommendation("d", 0.1),
        ],
        limit=3,
    )
    assert [(r.item_id, r.score) for r in ranked] == [("c", 0.9), ("b", 0.7), ("a", 0.5)]
