"""Blending arithmetic on candidate arrays: weights, missing signals, evidence, popularity prior, MMR, exposure."""

from __future__ import annotations

import math

import numpy as np
import pytest

from recsys.recommender.diversity import mmr_order
from recsys.recommender.exposure import with_fresh_share
from recsys.recommender.pagination import decode_token, encode_token
from recsys.recommender.ranking import feed_order
from recsys.shared.blending import (
    BEHAVIOR,
    POPULARITY,
    SESSION,
    TASTE,
    Candidates,
    ForYouWeights,
    UserQuery,
    behavior_share,
    blend,
    decayed_popularity,
    for_you_blend,
    popularity_prior,
    similar_items_weights,
)
from recsys.shared.errors import InvalidRequest

WEIGHTS = ForYouWeights(behavior=1.0, taste=0.1, session=0.05, popularity=0.2, evidence_k=5.0)


def candidates(content: list[list[float]], behavior: list[list[float] | None], strength: list[float]) -> Candidates:
    dims = len(next(b for b in behavior if b is not None))
    return Candidates.of(
        [f"i{n}" for n in range(len(content))],
        np.asarray(content, dtype=np.float32),
        np.ones(len(content), dtype=bool),
        np.asarray([b if b is not None else [0.0] * dims for b in behavior], dtype=np.float32),
        np.asarray([b is not None for b in behavior]),
        np.asarray(strength),
        np.zeros(len(content)),
    )


def test_parts_are_weighted_signals_and_sum_to_the_score() -> None:
    result = blend({TASTE: np.array([0.5, 1.0]), POPULARITY: np.array([0.2, 0.0])}, {TASTE: 0.4, POPULARITY: 0.1})

    np.testing.assert_allclose(result.scores, [0.4 * 0.5 + 0.1 * 0.2, 0.4])
    assert result.parts_of(0) == pytest.approx({TASTE: 0.2, POPULARITY: 0.02})
    assert sum(result.parts_of(1).values()) == pytest.approx(result.scores[1])


def test_a_missing_signal_contributes_nothing_and_is_not_in_the_parts() -> None:
    result = blend({BEHAVIOR: np.array([0.5, np.nan]), TASTE: np.array([0.1, 0.9])}, {BEHAVIOR: 1.0, TASTE: 0.1})

    assert result.scores[1] == pytest.approx(0.09)  # no renormalization: the cold item keeps its content share only
    assert set(result.parts_of(1)) == {TASTE}


def test_a_signal_without_a_weight_is_refused() -> None:
    with pytest.raises(ValueError, match="no weight"):
        blend({SESSION: np.array([1.0])}, {TASTE: 1.0})


def test_behavior_scores_are_cosine_times_the_items_strength() -> None:
    items = candidates([[1.0, 0.0], [1.0, 0.0]], [[1.0, 0.0], [0.6, 0.8]], [0.5, 1.0])
    user = UserQuery(behavior=np.array([2.0, 0.0]), events=1_000_000)
    result = for_you_blend(user, items, WEIGHTS)

    np.testing.assert_allclose(result.parts[BEHAVIOR], [0.5, 0.6], rtol=1e-5)


def test_a_newcomer_leans_on_taste_and_an_established_user_on_behavior() -> None:
    newcomer, regular = WEIGHTS.for_user(1), WEIGHTS.for_user(95)

    assert newcomer[BEHAVIOR] == pytest.approx(1.0 * 1 / 6)
    assert newcomer[TASTE] == pytest.approx(0.1 + 1.0 * 5 / 6)
    assert regular[BEHAVIOR] == pytest.approx(0.95)
    assert newcomer[BEHAVIOR] + newcomer[TASTE] == pytest.approx(regular[BEHAVIOR] + regular[TASTE])


def test_weight_overrides_replace_named_weights_and_refuse_unknown_or_negative_ones() -> None:
    assert WEIGHTS.overridden({TASTE: 2.0}).taste == 2.0
    assert WEIGHTS.overridden({TASTE: 2.0}).behavior == WEIGHTS.behavior
    with pytest.raises(InvalidRequest, match="unknown weight 'charm'"):
        WEIGHTS.overridden({"charm": 1.0})
    with pytest.raises(InvalidRequest, match="finite"):
        WEIGHTS.overridden({TASTE: -1.0})


def test_similar_items_weights_follow_the_seed_evidence() -> None:
    assert similar_items_weights(0, 10.0) == {"content": 1.0, "behavior": 0.0}
    assert similar_items_weights(30, 10.0) == pytest.approx({"content": 0.25, "behavior": 0.75})
    with pytest.raises(ValueError):
        behavior_share(3, 0.0)


def test_popularity_decays_by_half_lives_and_its_prior_is_half_at_the_midpoint() -> None:
    day = 86_400.0
    decayed = decayed_popularity(np.array([80.0, 10.0, 5.0]), np.array([0.0, 14 * day, np.nan]), 14 * day, 7.0)

    np.testing.assert_allclose(decayed, [20.0, 10.0, 5.0])
    prior = popularity_prior(np.array([0.0, 20.0, 1e6]), 20.0)
    assert prior[0] == 0.0 and prior[1] == pytest.approx(0.5) and 0.8 < prior[2] < 1.0


def test_feed_order_is_best_first_with_ties_by_position_and_skips_disallowed_rows() -> None:
    scores = np.array([0.1, 0.9, 0.5, 0.9, 0.7])
    allowed = np.array([True, True, True, True, False])

    assert feed_order(scores, allowed, 3, 1.0, np.zeros((5, 2))) == [1, 3, 2]


def test_mmr_trades_score_for_difference_from_what_is_already_listed() -> None:
    vectors = np.array([[1.0, 0.0], [0.99, math.sqrt(1 - 0.99**2)], [0.0, 1.0]], dtype=np.float32)
    scores = np.array([1.0, 0.95, 0.6])

    assert mmr_order(scores, vectors, 1.0, 3) == [0, 1, 2]
    assert mmr_order(scores, vectors, 0.5, 3)[:2] == [0, 2]


def test_fresh_items_take_their_share_of_slots_spread_over_the_feed() -> None:
    ranked = [f"r{n}" for n in range(10)]
    result = with_fresh_share(ranked, ["f1", "f2", "f3"], 0.2, 10)

    assert len(result) == 10 and result[0] == "r0"
    assert {"f1", "f2"} <= set(result) and "f3" not in result
    assert result.index("f1") == 4 and result.index("f2") == 9
    assert with_fresh_share(ranked, [], 0.2, 10) == ranked


def test_a_page_token_carries_the_items_served_and_refuses_forgeries() -> None:
    token = encode_token(["a", "b"])

    assert decode_token(token, 100) == ["a", "b"]
    assert decode_token("", 100) == []
    with pytest.raises(InvalidRequest, match="page_token"):
        decode_token("not-a-token", 100)
    with pytest.raises(InvalidRequest, match="deepest page"):
        decode_token(token, 1)
