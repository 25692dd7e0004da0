"""The collaborative model: the decayed interaction matrix and the item vectors its SVD gives."""

from __future__ import annotations

import numpy as np
import pytest

from recsys.encoder.interactions.behavior_model import LoggedInteraction, factorize, interaction_matrix

DAY = 86_400.0


def logged(n: int, user: str, item: str, weight: float = 1.0, ts: float = 0.0) -> LoggedInteraction:
    return LoggedInteraction(f"{user}-{item}-{n}", user, item, weight, ts)


def audiences() -> list[LoggedInteraction]:
    """Fans watch space films and soundtracks; cooks watch food shows; two items share both audiences a little."""
    entries = []
    for n in range(12):
        entries += [logged(n, f"fan{n}", "space"), logged(n, f"fan{n}", "soundtrack"), logged(n, f"fan{n}", "sequel")]
        entries += [logged(n, f"cook{n}", "soup"), logged(n, f"cook{n}", "bread")]
    return entries


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def test_items_with_one_audience_are_close_and_items_of_different_audiences_are_not() -> None:
    factors = factorize(interaction_matrix(audiences()), dims=4)
    vectors = factors.as_mapping()

    assert cosine(vectors["space"], vectors["soundtrack"]) > 0.95
    assert cosine(vectors["soup"], vectors["bread"]) > 0.95
    assert abs(cosine(vectors["space"], vectors["soup"])) < 0.2


def test_vectors_are_unit_and_strength_is_relative_to_the_strongest_item() -> None:
    entries = [*audiences(), *(logged(n, f"fan{n}", "space", ts=1.0) for n in range(12, 20))]
    factors = factorize(interaction_matrix(entries), dims=4)

    np.testing.assert_allclose(np.linalg.norm(factors.vectors, axis=1), 1.0, rtol=1e-5)
    strengths = dict(zip(factors.item_ids, factors.strengths, strict=True))
    assert strengths["space"] == pytest.approx(1.0)
    assert 0 < strengths["soundtrack"] < strengths["space"]


def test_a_replayed_event_counts_once_in_the_matrix() -> None:
    once = interaction_matrix([logged(1, "u1", "a", 2.0), logged(2, "u1", "a", 1.0)])
    replayed = interaction_matrix([logged(1, "u1", "a", 2.0), logged(1, "u1", "a", 2.0), logged(2, "u1", "a", 1.0)])

    assert replayed.values.toarray().tolist() == once.values.toarray().tolist() == [[3.0]]


def test_an_event_counts_half_one_half_life_before_its_users_latest() -> None:
    entries = [logged(1, "u1", "old", ts=0.0), logged(2, "u1", "new", ts=30 * DAY), logged(3, "u2", "old", ts=0.0)]
    matrix = interaction_matrix(entries, half_life_s=30 * DAY)
    cell = {
        (user, item): matrix.values[r, c]
        for r, user in enumerate(matrix.user_ids)
        for c, item in enumerate(matrix.item_ids)
    }

    assert cell[("u1", "old")] == pytest.approx(0.5)
    assert cell[("u1", "new")] == pytest.approx(1.0)
    assert cell[("u2", "old")] == pytest.approx(1.0)  # relative to u2's own latest event, not the wall clock
    assert interaction_matrix(entries).values[0, 0] == pytest.approx(1.0)  # no half-life: no decay


def test_an_item_whose_interactions_cancel_out_gets_no_vector() -> None:
    entries = [*audiences(), logged(1, "fan1", "flop", 1.0), logged(2, "fan1", "flop", -1.0)]
    factors = factorize(interaction_matrix(entries), dims=4)

    assert "flop" not in factors.item_ids and "space" in factors.item_ids


def test_a_matrix_smaller_than_the_dimensions_pads_them_with_zeros() -> None:
    factors = factorize(interaction_matrix([logged(1, "u1", "a"), logged(2, "u2", "b")]), dims=8)

    assert factors.vectors.shape == (2, 8)
    np.testing.assert_allclose(factors.vectors[:, 2:], 0.0)


def test_the_factorization_is_repeatable() -> None:
    first = factorize(interaction_matrix(audiences()), dims=3)
    second = factorize(interaction_matrix(audiences()), dims=3)

    np.testing.assert_allclose(first.vectors, second.vectors, atol=1e-6)


def _cuda_available() -> bool:
    import torch

    return bool(torch.cuda.is_available())


@pytest.mark.skipif(not _cuda_available(), reason="needs a CUDA GPU")
def test_the_gpu_factorization_finds_the_same_structure_as_the_cpu_one() -> None:
    vectors = factorize(interaction_matrix(audiences()), dims=4, device="cuda").as_mapping()

    assert cosine(vectors["space"], vectors["soundtrack"]) > 0.95
    assert abs(cosine(vectors["space"], vectors["soup"])) < 0.2
