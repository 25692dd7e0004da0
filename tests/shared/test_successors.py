"""The sequence model: what followed each item in users' histories, and a user's scores from their latest items."""

from __future__ import annotations

import numpy as np
import pytest

from recsys.shared.successors import (
    SuccessorTable,
    recent_items,
    sequence_array,
    sequence_scores,
    sequence_signal,
    strongest_per_row,
    successor_lists,
    transition_matrix,
)


def matrix_of(events: list[tuple[int, int, float, float]], n_items: int, window: int = 5, keep: int = 50):
    user, item, weight, ts = (np.asarray(column) for column in zip(*events, strict=True))
    return transition_matrix(user, item, weight.astype(float), ts.astype(float), n_items, window=window, keep=keep)


def test_an_item_that_came_next_is_a_successor_nearer_ones_weigh_more_and_per_item_events_divide() -> None:
    # user 0: 0 → 1 → 2; user 1: 0 → 2. Item 0 was consumed twice.
    matrix = matrix_of([(0, 0, 1, 1), (0, 1, 1, 2), (0, 2, 1, 3), (1, 0, 1, 1), (1, 2, 1, 5)], 3).toarray()
    assert matrix[0, 1] == pytest.approx(1.0 / 2)  # once, right after, over 2 events of item 0
    assert matrix[0, 2] == pytest.approx((0.5 + 1.0) / 2)  # two steps later for user 0, next for user 1
    assert matrix[1, 2] == pytest.approx(1.0)
    assert matrix[2].sum() == 0.0  # nothing followed item 2
    assert matrix[1, 0] == 0.0  # order matters: 1 never came before 0


def test_negative_events_and_other_users_break_no_sequence() -> None:
    matrix = matrix_of([(0, 0, 1, 1), (0, 1, -2, 2), (1, 2, 1, 3)], 3).toarray()
    assert matrix.sum() == 0.0  # a dislike is no successor, and user 1's item does not follow user 0's


def test_only_the_window_counts() -> None:
    events = [(0, item, 1.0, float(item)) for item in range(4)]
    matrix = matrix_of(events, 4, window=2).toarray()
    assert matrix[0, 2] > 0 and matrix[0, 3] == 0.0


def test_each_item_keeps_its_strongest_successors() -> None:
    dense = np.array([[0.0, 3.0, 1.0, 2.0], [5.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0], [1.0, 1.0, 1.0, 0.0]])
    from scipy import sparse

    kept = strongest_per_row(sparse.csr_matrix(dense), 2).toarray()
    np.testing.assert_array_equal(strongest_per_row(sparse.csr_matrix(dense), 2, rows_per_block=1).toarray(), kept)
    assert kept[0].tolist() == [0.0, 3.0, 0.0, 2.0]
    assert kept[1].tolist() == [5.0, 0.0, 0.0, 0.0]
    assert kept[3].tolist() == [1.0, 1.0, 0.0, 0.0]  # ties: the lower item first
    lists = successor_lists(sparse.csr_matrix(kept), ["a", "b", "c", "d"])
    assert lists["a"] == [("b", 3.0), ("d", 2.0)]
    assert "c" not in lists


def test_recent_items_are_the_latest_positive_ones_newest_first_each_once() -> None:
    history = [("a", 1.0, 1.0), ("b", -1.0, 5.0), ("c", 2.0, 3.0), ("a", 1.0, 4.0), ("d", 1.0, 2.0)]
    recent = recent_items(history, count=3, decay=0.5)
    assert recent == [("a", 1.0), ("c", 0.5), ("d", 0.25)]


def test_scores_sum_what_followed_the_recent_items_and_the_best_is_one() -> None:
    successors = {"a": [("x", 0.5), ("y", 0.1)], "b": [("x", 0.2), ("z", 1.0)]}
    scores = sequence_scores([("a", 1.0), ("b", 0.5)], successors)
    raw = {"x": 0.5 + 0.1, "y": 0.1, "z": 0.5}
    assert scores == pytest.approx({item: value / 0.6 for item, value in raw.items()})
    assert sequence_scores([("q", 1.0)], successors) == {}
    assert sequence_signal(scores, ["z", "nothing", "x"]).tolist() == pytest.approx([0.5 / 0.6, 0.0, 1.0])


def test_the_array_form_equals_the_lists_form() -> None:
    rng = np.random.default_rng(0)
    events = [(int(rng.integers(0, 5)), int(rng.integers(0, 12)), 1.0, float(t)) for t in range(200)]
    matrix = matrix_of(events, 12, keep=4)
    ids = [f"i{n}" for n in range(12)]
    recent = [("i3", 1.0), ("i7", 0.8), ("i1", 0.64)]
    lists = successor_lists(matrix, ids)
    expected = sequence_signal(sequence_scores(recent, lists), ids)
    array = sequence_array(recent, {item_id: row for row, item_id in enumerate(ids)}, matrix)
    np.testing.assert_allclose(array, expected)


def test_the_table_gives_each_item_the_lists_payload() -> None:
    rng = np.random.default_rng(3)
    events = [(int(rng.integers(0, 6)), int(rng.integers(0, 15)), 1.0, float(t)) for t in range(300)]
    matrix = matrix_of(events, 15, keep=5)
    ids = [f"i{n}" for n in range(15)]
    table = SuccessorTable(matrix, ids)
    lists = successor_lists(matrix, ids)
    for item_id in ids:
        expected = [[successor, round(weight, 6)] for successor, weight in lists.get(item_id, [])]
        assert table.payload_of(item_id) == expected
    assert table.payload_of("unknown") == [] and SuccessorTable.empty().payload_of("i1") == []
