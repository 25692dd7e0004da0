"""The blend's self-tuning: its validation split, its scoring against the recommender's own blend, its choices."""

from __future__ import annotations

import math

import numpy as np
import pytest

from recsys.encoder.interactions.behavior_model import EventColumns, InteractionMatrix, decayed_matrix, factorize
from recsys.encoder.interactions.blend_tuning import (
    FRESH_GATE_GRID,
    POPULARITY_ONLY,
    FreshCase,
    TuningPlan,
    _PopularityClock,
    candidate_weights,
    choose_fresh_gate,
    fresh_case,
    fresh_target_hits,
    grid_scores,
    ndcg_rows,
    tune_blend,
    validation_split,
)
from recsys.encoder.interactions.decay import add_decayed
from recsys.encoder.interactions.rules import InteractionRules
from recsys.shared.blending import Candidates, ForYouWeights, UserQuery, blend, for_you_signals

DAY = 86_400.0
RULES = InteractionRules(
    taste_half_life_s=30 * DAY,
    session_half_life_s=1800.0,
    behavior_half_life_s=30 * DAY,
    popularity_half_life_s=7 * DAY,
    history_size=100,
    seen_size=100,
    recent_events_size=50,
    behavior_dims=8,
)
DEFAULTS = ForYouWeights(behavior=1.0, taste=0.0, session=0.05, popularity=0.02, evidence_k=1.0)


def columns(users: list[int], items: list[int], weights: list[float], ts: list[float], n_items: int) -> EventColumns:
    return EventColumns(
        np.asarray(users, dtype=np.int64),
        np.asarray(items, dtype=np.int64),
        np.asarray(weights, dtype=np.float64),
        np.asarray(ts, dtype=np.float64),
        [f"u{u}" for u in range(max(users) + 1)],
        [f"i{i}" for i in range(n_items)],
    )


def svd_fit(events: EventColumns):
    values = decayed_matrix(
        events.user, events.item, events.weight, events.ts, (len(events.user_ids), len(events.item_ids))
    )
    return factorize(InteractionMatrix(events.user_ids, events.item_ids, values), RULES.behavior_dims)


def test_the_last_positives_of_each_user_are_held_out_and_nothing_from_then_on_is_trained_on() -> None:
    # user 0: six positives and a negative after the first held-out one; user 1: too few positives.
    events = columns(
        [0, 0, 0, 0, 0, 0, 0, 1, 1],
        [0, 1, 2, 3, 4, 5, 6, 0, 1],
        [1, 1, 1, 1, 1, -1, 1, 1, 1],
        [1, 2, 3, 4, 5, 6, 7, 1, 2],
        7,
    )
    split = validation_split(events, TuningPlan(held_out=3, min_users=1))
    assert list(split.targets) == [0]
    assert sorted(split.targets[0].tolist()) == [3, 4, 6]  # the negative (item 5) is no target
    assert split.cutoff[0] == 4.0
    trained = {(int(events.user[r]), int(events.item[r])) for r in split.train}
    assert trained == {(0, 0), (0, 1), (0, 2), (1, 0), (1, 1)}


def test_the_validation_sample_is_capped_and_seeded() -> None:
    rng = np.random.default_rng(1)
    users = np.repeat(np.arange(40), 8)
    events = columns(
        users.tolist(), rng.integers(0, 20, len(users)).tolist(), [1.0] * len(users), list(range(len(users))), 20
    )
    plan = TuningPlan(held_out=2, max_users=10, seed=3)
    first, second = validation_split(events, plan), validation_split(events, plan)
    assert len(first.targets) == 10
    assert sorted(first.targets) == sorted(second.targets)
    assert sorted(first.targets) != sorted(
        validation_split(events, TuningPlan(held_out=2, max_users=10, seed=4)).targets
    )


def testgrid_scores_are_the_recommenders_blend_for_every_weight_setting() -> None:
    rng = np.random.default_rng(0)
    n = 30
    content = rng.normal(size=(n, 6))
    behavior = rng.normal(size=(n, 4))
    has_behavior = rng.random(n) > 0.3
    items = Candidates.of(
        [str(i) for i in range(n)], content, np.ones(n, bool), behavior, has_behavior, rng.random(n), rng.random(n)
    )
    query = UserQuery(taste=rng.normal(size=6), session=rng.normal(size=6), behavior=rng.normal(size=4), events=3)
    signals = for_you_signals(query, items)
    choices = candidate_weights(DEFAULTS)
    scores = grid_scores(signals, choices, query.events)
    for row in (0, 1, 17, len(choices) - 1):
        expected = blend(signals, choices[row].for_user(query.events)).scores
        np.testing.assert_allclose(scores[row], expected, atol=1e-9)


def test_ndcg_of_each_row_counts_hits_by_rank_and_never_a_left_out_item() -> None:
    scores = np.array(
        [
            [5.0, 4.0, 3.0, 2.0, 1.0],  # targets 0 and 2 at ranks 1 and 3
            [1.0, 2.0, 3.0, 4.0, 5.0],  # targets last: out of the top 2
            [-np.inf, 4.0, -np.inf, 2.0, 1.0],  # targets left out (seen)
        ]
    )
    ndcg = ndcg_rows(scores, np.array([0, 2]), k=3)
    ideal = 1 + 1 / math.log2(3)
    assert ndcg[0] == pytest.approx((1 + 1 / math.log2(4)) / ideal)
    assert ndcg[1] == pytest.approx((1 / math.log2(4)) / ideal)
    assert ndcg[2] == 0.0


def test_popularity_at_a_request_time_is_what_the_item_point_held_then() -> None:
    rng = np.random.default_rng(2)
    ts = np.sort(rng.uniform(0, 60 * DAY, 200))
    items = rng.integers(0, 5, 200)
    weights = rng.choice([-1.0, 0.5, 1.0, 4.0], 200)
    events = columns([0] * 200, items.tolist(), weights.tolist(), ts.tolist(), 5)
    clock = _PopularityClock(events, RULES.popularity_half_life_s)
    for now in (10 * DAY, 30 * DAY, 61 * DAY):
        got = clock.at(now)
        for item in range(5):
            total, total_ts = 0.0, 0.0
            for row in np.flatnonzero((items == item) & (ts < now) & (weights > 0)):
                total, total_ts = add_decayed(total, total_ts, weights[row], ts[row], RULES.popularity_half_life_s)
            expected = total * 0.5 ** ((now - total_ts) / RULES.popularity_half_life_s)
            assert got[item] == pytest.approx(expected, rel=1e-9, abs=1e-12)
    with pytest.raises(ValueError):
        clock.at(DAY)


def planted_catalog(seed: int, popular_only: bool) -> tuple[EventColumns, np.ndarray]:
    """Users in two communities; each picks within its community (or, popular_only, by global popularity)."""
    rng = np.random.default_rng(seed)
    n_users, n_items = 120, 60
    popularity = 1.0 / np.arange(1, n_items + 1) ** 1.1
    community = rng.integers(0, 2, n_users)
    content = rng.normal(size=(n_items, 8))
    users, items, ts = [], [], []
    clock = 0.0
    for _ in range(20):
        for user in range(n_users):
            if popular_only:
                p = popularity
            else:
                p = np.where(np.arange(n_items) % 2 == community[user], popularity[::-1] + 0.01, 0.0)
            item = int(rng.choice(n_items, p=p / p.sum()))
            clock += 60.0
            users.append(user)
            items.append(item)
            ts.append(clock)
    events = columns(users, items, [1.0] * len(users), ts, n_items)
    return events, content


def test_tuning_never_picks_weights_worse_than_popularity_alone() -> None:
    events, content = planted_catalog(0, popular_only=True)
    tuned = tune_blend(events, content, np.ones(len(content), bool), DEFAULTS, RULES, svd_fit, TuningPlan(min_users=20))
    assert tuned is not None
    assert tuned.ndcg >= tuned.popularity_ndcg
    assert tuned.ndcg >= tuned.defaults_ndcg


def test_tuning_finds_the_collaborative_signal_where_communities_drive_choices() -> None:
    events, content = planted_catalog(1, popular_only=False)
    tuned = tune_blend(events, content, np.ones(len(content), bool), DEFAULTS, RULES, svd_fit, TuningPlan(min_users=20))
    assert tuned is not None
    assert tuned.weights != POPULARITY_ONLY
    assert tuned.ndcg > tuned.popularity_ndcg


def test_too_few_users_with_enough_events_keep_the_defaults() -> None:
    events, content = planted_catalog(2, popular_only=False)
    assert (
        tune_blend(events, content, np.ones(len(content), bool), DEFAULTS, RULES, svd_fit, TuningPlan(min_users=500))
        is None
    )


def test_tuning_turns_the_sequence_signal_on_where_users_follow_chains() -> None:
    # Every user walks a chain of items from a random start: what comes next is what followed last time.
    rng = np.random.default_rng(4)
    n_users, n_items = 150, 80
    users, items, ts = [], [], []
    for user in range(n_users):
        start = int(rng.integers(0, n_items))
        for step in range(12):
            users.append(user)
            items.append((start + step) % n_items)
            ts.append(user * 1000.0 + step)
    events = columns(users, items, [1.0] * len(users), ts, n_items)
    content = rng.normal(size=(n_items, 8))
    tuned = tune_blend(events, content, np.ones(n_items, bool), DEFAULTS, RULES, svd_fit, TuningPlan(min_users=20))
    assert tuned is not None
    assert tuned.weights.sequence > 0
    assert tuned.ndcg > tuned.defaults_ndcg


def case(top_hits: list[bool], last: float, fresh: float, fresh_hit: bool, relevant: int = 1) -> FreshCase:
    return FreshCase(np.asarray(top_hits, dtype=bool), relevant, last, fresh, fresh_hit)


def test_the_fresh_gate_takes_the_hits_a_slot_wins_but_never_pays_more_ndcg_than_its_tolerance() -> None:
    # k = 2. One user's fresh item is nearly as good as their last item and is a hit; another's is far worse and a
    # miss that would push out a hit; others have no fresh candidate.
    cases = [
        case([False, False], last=1.0, fresh=0.95, fresh_hit=True),
        case([False, True], last=1.0, fresh=0.4, fresh_hit=False),
        *[case([True, False], last=1.0, fresh=math.nan, fresh_hit=False)] * 8,
    ]
    gate = choose_fresh_gate(cases, k=2, tolerance=0.005)
    assert gate.gate == 0.95 and gate.fresh_hits == 1 and gate.slots == 1
    assert gate.ndcg > gate.no_slot_ndcg
    # Ungated, the second user's hit is displaced: allowed only with a looser tolerance, and then still not chosen
    # since it wins no more hits.
    assert choose_fresh_gate(cases, k=2, tolerance=0.5).gate == 0.95


def test_the_fresh_gate_may_be_held_to_another_blend_s_ndcg() -> None:
    # k = 2. A slot that wins one hit (of two relevant) but displaces another user's only hit: it costs NDCG against
    # no slot, so held to no slot's NDCG it is refused; held to a weaker reference (a blend without the content
    # map, say), given.
    cases = [
        case([False, False], last=1.0, fresh=0.9, fresh_hit=True, relevant=2),
        case([False, True], last=1.0, fresh=0.9, fresh_hit=False),
    ]
    assert choose_fresh_gate(cases, k=2, tolerance=0.0).gate == 1.0
    no_slot = choose_fresh_gate(cases, k=2, tolerance=0.0).no_slot_ndcg
    held = choose_fresh_gate(cases, k=2, tolerance=0.0, reference=0.5 * no_slot)
    assert held.gate == 0.9 and held.fresh_hits == 1 and held.slots == 2
    # Still never below the reference's floor.
    assert choose_fresh_gate(cases, k=2, tolerance=0.0, reference=1.1 * no_slot).gate == 1.0


def test_a_fresh_slot_that_wins_nothing_is_not_given() -> None:
    cases = [case([True, False], last=1.0, fresh=0.99, fresh_hit=False), case([False, False], 1.0, 0.2, False)]
    gate = choose_fresh_gate(cases, k=2)
    assert gate.gate == 1.0 and gate.fresh_hits == 0 and gate.ndcg == gate.no_slot_ndcg
    assert choose_fresh_gate([], k=2).gate == 1.0


def test_a_fresh_case_offers_the_best_fresh_item_outside_the_top_unless_one_is_already_in_it() -> None:
    scores = np.array([0.9, 0.8, 0.7, 0.6, 0.5])
    fresh = np.array([False, False, False, True, True])
    allowed = np.array([True, True, True, True, True])
    offered = fresh_case(scores, allowed, fresh, np.array([3]), k=2)
    assert offered.last_score == 0.8 and offered.fresh_score == 0.6 and offered.fresh_hit
    assert offered.top_hits.tolist() == [False, False]
    inside = fresh_case(scores, allowed, np.array([False, True, False, True, False]), np.array([3]), k=2)
    assert math.isnan(inside.fresh_score)


def test_tuning_chooses_a_fresh_gate_from_its_grid_and_reports_it() -> None:
    events, content = planted_catalog(1, popular_only=False)
    tuned = tune_blend(events, content, np.ones(len(content), bool), DEFAULTS, RULES, svd_fit, TuningPlan(min_users=20))
    assert tuned is not None and tuned.fresh is not None
    assert tuned.weights.fresh_gate == tuned.fresh.gate and tuned.fresh.gate in FRESH_GATE_GRID
    assert tuned.fresh.ndcg >= (1 - 0.005) * tuned.fresh.no_slot_ndcg
    assert "fresh_gate_hits" in tuned.as_record()
    assert tuned.as_record()["fresh_target_hits"] == tuned.fresh_target_hits >= tuned.fresh.fresh_hits


def test_fresh_target_hits_count_the_slot_s_hit_where_the_gate_gives_one_else_the_fresh_hits_ranked_already() -> None:
    # k = 2. One user's top holds a fresh target already (no slot offered); another's fresh item outside the top is a
    # target that a slot wins only when the gate lets a score of 0.9 in under the last one's 1.0.
    ranked = FreshCase(np.array([True, True]), 2, -math.inf, math.nan, False, np.array([True, False]))
    offered = FreshCase(np.array([False, False]), 1, 1.0, 0.9, True, np.array([False, False]))
    assert fresh_target_hits([ranked, offered], gate=0.85) == 2
    assert fresh_target_hits([ranked, offered], gate=0.95) == 1
    # A case built from scores knows which of its top k are fresh.
    scores = np.array([0.9, 0.8, 0.7])
    built = fresh_case(scores, np.ones(3, bool), np.array([False, True, False]), np.array([1]), k=2)
    assert built.top_fresh is not None and built.top_fresh.tolist() == [False, True]
    assert fresh_target_hits([built], gate=1.0) == 1
