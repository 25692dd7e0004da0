"""The content map: ridges from content to behavior directions and strengths, items carried by it by their evidence."""

from __future__ import annotations

import numpy as np

from recsys.encoder.content_map import ContentMap, carry_by_content, carry_items, fit_content_map, inferred_item
from recsys.encoder.interactions.behavior_model import ItemFactors


def planted(items: int = 400, content_dims: int = 24, behavior_dims: int = 6, noise: float = 0.01, seed: int = 0):
    rng = np.random.default_rng(seed)
    content = rng.normal(size=(items, content_dims)).astype(np.float32)
    truth = rng.normal(size=(content_dims, behavior_dims)) / np.sqrt(content_dims)
    behavior = content @ truth + noise * rng.normal(size=(items, behavior_dims))
    return content, behavior, truth


def factors_of(item_ids: list[str], raw: np.ndarray) -> ItemFactors:
    lengths = np.linalg.norm(raw, axis=1)
    return ItemFactors(
        item_ids, (raw / lengths[:, None]).astype(np.float32), (lengths / lengths.max()).astype(np.float32)
    )


def test_a_planted_linear_map_is_recovered_from_the_warm_items() -> None:
    content, behavior, truth = planted()
    fitted = fit_content_map(content, behavior, np.full(len(content), 10.0))
    assert fitted is not None
    np.testing.assert_allclose(fitted.weights, truth, atol=0.02)
    fresh, fresh_behavior, _ = planted(items=50, seed=1)
    fresh_behavior = fresh @ truth
    error = np.linalg.norm(fitted.direction(fresh) - fresh_behavior) / np.linalg.norm(fresh_behavior)
    assert error < 0.05
    # The inferred vector points where the direction ridge does.
    inferred = fitted.infer(fresh)
    cosines = np.sum(inferred * fresh_behavior, axis=1) / (
        np.linalg.norm(inferred, axis=1) * np.linalg.norm(fresh_behavior, axis=1)
    )
    assert cosines.min() > 0.99


def test_cold_items_do_not_teach_the_map_and_too_few_warm_items_give_none() -> None:
    content, behavior, truth = planted()
    evidence = np.full(len(content), 10.0)
    evidence[::2] = 1.0
    behavior[::2] = 0.0  # what a barely seen item looks like: nothing learnt about it
    fitted = fit_content_map(content, behavior, evidence)
    assert fitted is not None and fitted.warm_items == len(content) // 2
    np.testing.assert_allclose(fitted.weights, truth, atol=0.03)
    assert fit_content_map(content[:4], behavior[:4], np.full(4, 10.0)) is None


def test_the_penalty_is_positive_deterministic_and_larger_for_noisier_targets() -> None:
    content, behavior, _ = planted(noise=0.01)
    evidence = np.full(len(content), 5.0)
    first = fit_content_map(content, behavior, evidence)
    second = fit_content_map(content, behavior, evidence)
    assert first is not None and second is not None
    assert first.ridge_lambda > 0 and first.ridge_lambda == second.ridge_lambda
    noisy = fit_content_map(content, behavior + np.random.default_rng(3).normal(size=behavior.shape), evidence)
    assert noisy is not None and noisy.ridge_lambda > first.ridge_lambda


def test_the_map_survives_its_stored_form() -> None:
    content, behavior, _ = planted()
    fitted = fit_content_map(content, behavior, np.full(len(content), 10.0), version=7, item_evidence_k=4.0)
    assert fitted is not None
    back = ContentMap.from_dict(fitted.to_dict())
    np.testing.assert_array_equal(back.infer(content[:5]), fitted.infer(content[:5]))
    assert (back.version, back.item_evidence_k, back.ridge_lambda) == (7, 4.0, fitted.ridge_lambda)
    assert back.strength_lambda == fitted.strength_lambda and back.log_strength_mean == fitted.log_strength_mean


def test_a_map_stored_before_the_strength_part_still_loads_and_infers_its_ridge_output() -> None:
    content, behavior, _ = planted()
    fitted = fit_content_map(content, behavior, np.full(len(content), 10.0))
    assert fitted is not None
    stored = fitted.to_dict()
    for key in ("strength_weights", "log_strength_mean", "strength_lambda"):
        del stored[key]
    old = ContentMap.from_dict(stored)
    assert old.strength_weights is None
    np.testing.assert_allclose(old.infer(content[:5]), fitted.direction(content[:5]), atol=1e-6)


def test_inferred_strength_is_that_of_warm_items_with_similar_content_not_the_shrunk_ridge_length() -> None:
    # Half the items are "popular" (long vectors) and their content says so along one axis; the rest are short.
    rng = np.random.default_rng(5)
    content, behavior, _ = planted(items=600, noise=0.05)
    popular = rng.random(600) < 0.5
    content[:, 0] = np.where(popular, 3.0, -3.0) + 0.1 * rng.normal(size=600)
    lengths = np.where(popular, 1.0, 0.05) * np.exp(0.1 * rng.normal(size=600))
    units = behavior / np.linalg.norm(behavior, axis=1, keepdims=True)
    raw = units * lengths[:, None]
    fitted = fit_content_map(content, raw, np.full(600, 10.0))
    assert fitted is not None and fitted.strength_weights is not None
    strength = fitted.strength(content)
    # Geometric means of each group, not a length shrunk toward the overall mean.
    assert np.median(strength[popular]) > 0.7 and np.median(strength[~popular]) < 0.08
    assert np.median(np.linalg.norm(fitted.direction(content[popular]), axis=1)) < np.median(strength[popular])
    np.testing.assert_allclose(np.linalg.norm(fitted.infer(content), axis=1), strength, rtol=1e-4)


def test_carried_items_blend_observed_and_inferred_by_their_evidence() -> None:
    content, behavior, _ = planted(items=300)
    ids = [f"i{n}" for n in range(300)]
    evidence = np.full(300, 50.0)
    evidence[0], evidence[1] = 0.0, 2.0
    observed_ids = ids[1:]  # i0 was never interacted with
    factors = factors_of(observed_ids, behavior[1:])
    k = 10.0
    carried, content_map = carry_by_content(factors, ids, content, evidence, k)
    assert content_map is not None
    rows = {item_id: row for row, item_id in enumerate(carried.item_ids)}
    raw = carried.vectors * carried.strengths[:, None]
    scale = np.linalg.norm(behavior[1:], axis=1).max()  # observed raw vectors are relative to the longest
    observed = {item_id: factors.vectors[r] * factors.strengths[r] for r, item_id in enumerate(observed_ids)}
    inferred = content_map.infer(content)
    # Never interacted: its inferred vector alone.
    assert "i0" in rows
    np.testing.assert_allclose(raw[rows["i0"]], inferred[0], atol=1e-5)
    # Two interactions: share 2/12 of what was observed.
    expected = 2 / 12 * observed["i1"] + 10 / 12 * inferred[1]
    np.testing.assert_allclose(raw[rows["i1"]], expected, atol=1e-5)
    # Warm: close to its observed vector.
    warm = rows["i5"]
    assert float(carried.vectors[warm] @ factors.vectors[observed_ids.index("i5")]) > 0.99
    assert np.all((carried.strengths > 0) & (carried.strengths <= 1))
    assert scale > 0


def test_items_without_content_keep_their_vector_and_no_map_changes_nothing() -> None:
    content, behavior, _ = planted(items=50)
    ids = [f"i{n}" for n in range(50)]
    factors = factors_of([*ids, "no-content"], np.vstack([behavior, behavior[:1]]))
    carried, _ = carry_by_content(factors, ids, content, np.full(50, 20.0), 10.0)
    row = carried.item_ids.index("no-content")
    np.testing.assert_allclose(carried.vectors[row], factors.vectors[-1])
    assert carry_items(factors, None, ids, content, np.zeros(50), 10.0) is factors


def test_a_new_items_strength_is_relative_to_the_longest_observed_and_capped() -> None:
    content, behavior, _ = planted()
    fitted = fit_content_map(content, behavior * 100, np.full(len(content), 10.0))
    assert fitted is not None
    result = inferred_item(fitted, content[0])
    assert result is not None
    unit, strength = result
    assert abs(float(np.linalg.norm(unit)) - 1) < 1e-5 and strength == 1.0


def test_a_new_item_gets_what_a_never_interacted_item_gets_in_the_refresh() -> None:
    content, behavior, _ = planted(items=300)
    ids = [f"i{n}" for n in range(300)]
    evidence = np.full(300, 50.0)
    evidence[0] = 0.0
    carried, content_map = carry_by_content(factors_of(ids[1:], behavior[1:]), ids, content, evidence, 3.0)
    assert content_map is not None
    result = inferred_item(content_map, content[0])
    assert result is not None
    row = carried.item_ids.index("i0")
    np.testing.assert_allclose(carried.vectors[row], result[0], atol=1e-5)
    assert abs(float(carried.strengths[row]) - result[1]) < 1e-5
