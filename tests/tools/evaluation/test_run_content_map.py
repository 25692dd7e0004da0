"""evaluate() with the content map and the refresh's own tuner; the baselines' parameters chosen on validation."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from recsys.encoder.interactions.refresh_tuning import ITEM_EVIDENCE_GRID
from recsys.encoder.interactions.rules import EventWeights
from recsys.encoder.settings import EncoderSettings
from recsys.recommender.settings import RecommenderSettings
from recsys.tools.evaluation import baselines
from recsys.tools.evaluation.content import cache_path
from recsys.tools.evaluation.dataset import EventDataset, load_events
from recsys.tools.evaluation.run import (
    DEFAULTS,
    NO_MAP,
    NO_MAP_RETUNED,
    PRIMARY,
    SELF_TUNED,
    EvalConfig,
    _Prepared,
    _Validation,
    content_only_weights,
    evaluate,
    format_report,
    select_baselines,
    validation_ndcg,
)
from recsys.tools.evaluation.split import Split
from recsys.tools.synthetic_catalog import SyntheticConfig, generate, write_jsonl
from tests.tools.evaluation.columns import ratings


def synthetic(tmp_path: Path, settings: EncoderSettings) -> EventDataset:
    """A synthetic shop whose fake content vectors (cached, so no model loads) say each item's topic and community."""
    catalog = generate(SyntheticConfig(users=150, items=160, events_per_user=25.0, cold_share=0.2, seed=3))
    items, interactions = write_jsonl(catalog, tmp_path / "data")
    data = load_events(items, interactions, EventWeights.from_settings(settings))
    group = {
        item_id: int(catalog.item_topics[row]) * catalog.config.communities + int(catalog.item_communities[row])
        for row, item_id in enumerate(catalog.item_ids)
    }
    rows = [row for row, text in enumerate(data.texts) if text is not None]
    texts = [text for text in data.texts if text is not None]
    rng = np.random.default_rng(1)
    groups = catalog.config.topics * catalog.config.communities
    vectors = 0.3 * rng.normal(size=(len(rows), groups + 8)).astype(np.float32)
    for index, row in enumerate(rows):
        vectors[index, group[data.item_ids[row]]] += 1.0
    path = cache_path(tmp_path, texts, settings.model or "shipped")
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, vectors)
    return data


def small_config(cache_dir: Path, **changes: Any) -> EvalConfig:
    """A quick evaluation: one small grid per baseline, few bootstrap resamples."""
    options: dict[str, Any] = {
        "cache_dir": cache_dir,
        "progress": False,
        "bootstrap": 50,
        "als_factors": (8,),
        "bpr_factors": (),
        "ease_l2": (10.0, 100.0),
        "rp3beta": ((0.5, 0.5),),
    }
    return EvalConfig(**{**options, **changes})


def test_the_content_map_lifts_cold_items_under_the_same_fixed_weights(tmp_path: Path) -> None:
    settings = EncoderSettings(behavior_dims=8, blend_tuning_min_users=10)
    config = small_config(tmp_path, tune=False, ease_l2=(10.0,))
    # No fresh slots: the rows compared differ in the content map alone.
    recommender = RecommenderSettings(fresh_share=0.0)
    report = evaluate(config, settings, recommender, dataset=synthetic(tmp_path, settings))
    mapped, unmapped = report.method(DEFAULTS), report.method(NO_MAP)
    # Same weights, same users: only the item vectors of the content map differ, and cold items gain from them.
    assert mapped.cold_hit_rate > unmapped.cold_hit_rate


def test_the_content_map_row_pair_and_the_self_tuned_row(tmp_path: Path) -> None:
    settings = EncoderSettings(behavior_dims=8, blend_tuning_min_users=10)
    data = synthetic(tmp_path, settings)
    config = small_config(tmp_path)

    report = evaluate(config, settings, dataset=data)

    names = [method.name for method in report.methods]
    assert names[:4] == [PRIMARY, NO_MAP, NO_MAP_RETUNED, SELF_TUNED]
    assert report.content_map and report.implicit  # no `rate` events: the ×1.20 target
    assert report.cold_targets > 0
    # The map's own effect on cold items is checked with fixed weights (below): tuned ones may lean on
    # signals (sequence, popularity) that leave cold items out either way.
    assert report.has(NO_MAP)
    assert report.self_tuned is not None and report.self_tuned.users >= 10
    # The refresh's tuner chose the map's k as well, and the self-tuned row was fit with it.
    self_evidence = report.self_tuned_evidence
    assert self_evidence is not None and report.self_tuned_evidence_k == self_evidence.k in ITEM_EVIDENCE_GRID
    assert set(self_evidence.figures) == set(ITEM_EVIDENCE_GRID)
    assert any(name.startswith("EASE (λ=") and name.endswith("chosen on validation)") for name in names)
    assert any(name.startswith("RP3beta (α=0.5, β=0.5)") for name in names)
    text = format_report(report, 50)
    assert "(target ×1.20, implicit events only)" in text
    assert "cold-item HR@10 with the content map" in text and "within 1%:" in text
    assert "of the best blend without the map or fresh slots (blended, no content map" in text
    assert "self-tuned (fresh deployment) NDCG@10" in text and "no more than 3% below:" in text
    assert f"content map item evidence k {self_evidence.k:g} (validation NDCG@10, fresh hits by k:" in text
    # The map's item evidence k and the fresh-slot gate are chosen on validation, and the primary ranks with both.
    assert report.evidence is not None and report.evidence.k in ITEM_EVIDENCE_GRID
    assert set(report.evidence.figures) == set(ITEM_EVIDENCE_GRID)
    assert report.fresh_gate is not None and report.weights.fresh_gate == report.fresh_gate.gate
    assert f"content map item evidence k: {report.evidence.k:g}, chosen on validation" in text
    assert f"fresh slots: 10% of a feed, gate {report.fresh_gate.gate:g} chosen on validation" in text
    # The gate answers to the map-less blend, as k does: a slot that costs more than 1% of its NDCG@10 is not given.
    held_against = report.fresh_gate_held_against
    assert held_against is not None and "within 1% of the map-less blend's" in text
    gate = report.fresh_gate
    assert gate.gate == 1.0 or gate.ndcg >= 0.99 * held_against


def test_without_the_content_map_there_is_no_pair(tmp_path: Path) -> None:
    settings = EncoderSettings(behavior_dims=8, behavior_content_map=False)
    data = synthetic(tmp_path, settings)
    config = EvalConfig(
        cache_dir=tmp_path, progress=False, tune=False, bootstrap=20, als_factors=(), bpr_factors=(), ease_l2=(),
        rp3beta=(),
    )  # fmt: skip

    report = evaluate(config, settings, dataset=data)

    assert NO_MAP not in [method.name for method in report.methods] and not report.content_map
    assert "content map: off" in format_report(report, 20)


def test_ease_and_rp3beta_parameters_are_chosen_on_the_validation_split() -> None:
    # Validation users 0-5 had items 0-2 and hold out item 5. Item 5 is niche (users 6-11 with 0 and 1); item 4 is
    # popular (users 12-29 with 0). Co-occurrence puts 4 first; RP3beta's popularity discount β = 1 puts 5 first.
    rows = [(u, i, 5.0, float(i)) for u in range(6) for i in (0, 1, 2)]
    held_rows = [(u, 5, 5.0, 10.0) for u in range(6)]
    rows += [(u, i, 5.0, float(i)) for u in range(6, 12) for i in (0, 1, 5)]
    rows += [(u, i, 5.0, float(i)) for u in range(12, 30) for i in (0, 4)]
    data = ratings([*rows, *held_rows])
    n_items = len(data.item_ids)
    split = Split(np.arange(len(rows)), {u: np.array([5]) for u in range(6)}, {u: 10.0 for u in range(6)})
    validation = _Validation(data, split, {u: np.array([0, 1, 2]) for u in range(6)})
    has_content, content = np.ones(n_items, dtype=bool), np.eye(n_items, dtype=np.float32)
    prepared = _Prepared(
        EventDataset.__new__(EventDataset), split, content, has_content, EncoderSettings(), None,  # type: ignore[arg-type]
    )  # fmt: skip
    grid = ((1.0, 0.0), (1.0, 1.0))
    config = EvalConfig(progress=False, als_factors=(), bpr_factors=(), ease_l2=(), rp3beta=grid)
    matrix = baselines.interactions(data.user[: len(rows)], data.item[: len(rows)], len(data.user_ids), n_items)
    scores = [validation_ndcg(baselines.rp3beta(matrix, a, b), validation, has_content, content) for a, b in grid]
    assert scores[1] > scores[0]  # the planted case: the discount finds the niche item

    chosen = [name for name, _ in select_baselines(prepared, config, validation, matrix)]

    assert chosen == ["RP3beta (α=1, β=1, chosen on validation)"]


def test_ease_l2_is_the_validation_argmax() -> None:
    rows = [(u, i, 5.0, float(i)) for u in range(6) for i in (0, 1, 2)]
    rows += [(u, i, 5.0, float(i)) for u in range(6, 12) for i in (0, 1, 5)]
    rows += [(u, i, 5.0, float(i)) for u in range(12, 30) for i in (0, 4)]
    data = ratings([*rows, *[(u, 5, 5.0, 10.0) for u in range(6)]])
    n_items = len(data.item_ids)
    split = Split(np.arange(len(rows)), {u: np.array([5]) for u in range(6)}, {u: 10.0 for u in range(6)})
    validation = _Validation(data, split, {u: np.array([0, 1, 2]) for u in range(6)})
    has_content, content = np.ones(n_items, dtype=bool), np.eye(n_items, dtype=np.float32)
    prepared = _Prepared(
        EventDataset.__new__(EventDataset), split, content, has_content, EncoderSettings(), None,  # type: ignore[arg-type]
    )  # fmt: skip
    grid = (1e4, 0.1)
    config = EvalConfig(progress=False, als_factors=(), bpr_factors=(), ease_l2=grid, rp3beta=())
    matrix = baselines.interactions(data.user[: len(rows)], data.item[: len(rows)], len(data.user_ids), n_items)
    scores = [validation_ndcg(baselines.ease(matrix, l2), validation, has_content, content) for l2 in grid]

    chosen = [name for name, _ in select_baselines(prepared, config, validation, matrix)]

    assert chosen == [f"EASE (λ={grid[int(np.argmax(scores))]:g}, chosen on validation)"]


def test_the_content_only_baseline_weighs_taste_alone() -> None:
    for events in (0, 3, 1000):
        weights = content_only_weights().for_user(events)
        assert {name for name, weight in weights.items() if weight != 0} == {"taste"}
