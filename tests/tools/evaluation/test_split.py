"""The evaluation's split: held-out positives, the cutoff, and that nothing held out leaks into training."""

from __future__ import annotations

import numpy as np

from recsys.shared.events import InteractionType
from recsys.tools.evaluation.dataset import Interactions
from recsys.tools.evaluation.movielens import Tag, tags_without_held_out
from recsys.tools.evaluation.split import (
    has_repeated_positives,
    holdout_split,
    positives,
    repeated_targets,
    sample_users,
    seen_items,
)
from tests.tools.evaluation.columns import ratings, typed

PURCHASE, VIEW, CLICK, DISLIKE = (
    InteractionType.PURCHASE,
    InteractionType.VIEW,
    InteractionType.CLICK,
    InteractionType.DISLIKE,
)


def random_ratings(seed: int = 3) -> Interactions:
    rng = np.random.default_rng(seed)
    rows = [
        (int(rng.integers(0, 30)), int(rng.integers(0, 200)), float(rng.choice([1.0, 2.5, 4.0, 5.0])), float(t))
        for t in rng.integers(0, 50, size=3000)  # many equal timestamps, as in MovieLens
    ]
    return ratings(rows)


def test_the_last_five_positives_are_held_out_and_everything_from_the_first_of_them_on_is_not_trained() -> None:
    data = ratings(
        [(0, item, 5.0, float(item)) for item in range(7)]  # seven positives at t=0..6
        + [(0, 10, 1.0, 1.5), (0, 11, 1.0, 2.0), (0, 12, 1.0, 9.0)]  # negatives before, at and after the cutoff
        + [(1, item, 5.0, float(item)) for item in range(5)]  # only five positives: training only
    )
    split = holdout_split(data)

    assert sorted(split.targets) == [0]
    assert sorted(split.targets[0].tolist()) == [2, 3, 4, 5, 6]
    assert split.cutoff[0] == 2.0
    trained = {(int(data.user[r]), int(data.item[r])) for r in split.train}
    assert trained == {(0, 0), (0, 1), (0, 10), *((1, item) for item in range(5))}


def test_no_held_out_or_later_interaction_of_an_evaluated_user_is_ever_trained_on() -> None:
    data = random_ratings()
    split = holdout_split(data)
    assert split.targets, "the random data should give some evaluated users"

    for row in split.train:
        user = int(data.user[row])
        if user in split.targets:
            assert data.ts[row] < split.cutoff[user]
            assert int(data.item[row]) not in split.targets[user].tolist() or data.ts[row] < split.cutoff[user]
    held = {(u, int(i)) for u, items in split.targets.items() for i in items}
    train_rows = set(split.train.tolist())
    for row in range(len(data)):
        if (int(data.user[row]), int(data.item[row])) in held and data.value[row] >= 4:
            assert row not in train_rows or data.ts[row] < split.cutoff[int(data.user[row])]


def test_sampling_users_keeps_training_whole_and_is_repeatable() -> None:
    split = holdout_split(random_ratings())
    sample = sample_users(split, 3, seed=7)

    assert len(sample.targets) == 3 and set(sample.targets) <= set(split.targets)
    assert np.array_equal(sample.train, split.train)
    assert sample_users(split, 3, seed=7).targets.keys() == sample.targets.keys()


def test_tags_a_user_gave_their_own_held_out_items_are_dropped() -> None:
    data = ratings([(0, item, 5.0, float(item)) for item in range(6)])
    split = holdout_split(data)
    tags = [Tag("u0", "i5", "spoiler"), Tag("u0", "i0", "kept: trained on"), Tag("u9", "i5", "kept: other user")]

    assert [tag.text for tag in tags_without_held_out(tags, data, split)] == ["kept: trained on", "kept: other user"]


def test_implicit_events_with_no_values_are_positives_and_give_held_out_targets() -> None:
    kinds = [PURCHASE, VIEW, CLICK, PURCHASE, CLICK, VIEW, PURCHASE]
    data = typed([(0, item, kind, None, float(item)) for item, kind in enumerate(kinds)] + [(0, 9, DISLIKE, None, 8.0)])

    assert positives(data).tolist() == [True] * 7 + [False]
    split = holdout_split(data)
    assert sorted(split.targets[0].tolist()) == [2, 3, 4, 5, 6]
    assert split.cutoff[0] == 2.0
    assert sorted(data.item[split.train].tolist()) == [0, 1]


def test_a_rating_is_positive_from_four_whatever_its_weight() -> None:
    data = ratings([(0, 0, 3.5, 0.0), (0, 1, 4.0, 1.0), (0, 2, 1.0, 2.0)])

    assert data.weight[0] > 0  # 3.5 is above the neutral rating, yet below the convention's 4
    assert positives(data).tolist() == [False, True, False]


def test_a_re_bought_item_stays_a_target_and_is_seen_unless_its_type_is_repeatable() -> None:
    # Item 0 bought at t=0 and bought again at t=3, inside the held-out window; item 7 only viewed in training.
    rows = [(0, 0, PURCHASE, None, 0.0), (0, 7, VIEW, None, 0.5)]
    rows += [(0, item, PURCHASE, None, float(item)) for item in (1, 2)]
    rows += [(0, 0, PURCHASE, None, 3.0)] + [(0, item, PURCHASE, None, float(item)) for item in (4, 5, 6)]
    data = typed(rows)
    split = holdout_split(data)

    assert sorted(split.targets[0].tolist()) == [0, 2, 4, 5, 6]
    assert repeated_targets(split, data) == 1
    assert has_repeated_positives(data)
    assert sorted(seen_items(data, split.train)[0].tolist()) == [0, 1, 7]
    assert sorted(seen_items(data, split.train, {PURCHASE})[0].tolist()) == [7]


def test_a_user_buying_each_item_once_has_no_repeated_positives() -> None:
    assert not has_repeated_positives(typed([(0, item, PURCHASE, None, float(item)) for item in range(7)]))
