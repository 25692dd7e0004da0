"""evaluate() on an already-loaded event dataset: purchases only, repeat purchases, the repeats row."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from recsys.encoder.interactions.rules import EventWeights
from recsys.encoder.settings import EncoderSettings
from recsys.shared.events import Interaction, InteractionType, ItemUpserted
from recsys.tools.evaluation.content import cache_path
from recsys.tools.evaluation.dataset import DatasetBuilder, EventDataset
from recsys.tools.evaluation.run import EvalConfig, evaluate, format_report


def purchases_dataset(settings: EncoderSettings) -> EventDataset:
    """30 users buying from 12 items, each re-buying item 0 (a consumable) at the end."""
    rng = np.random.default_rng(0)
    builder = DatasetBuilder(EventWeights.from_settings(settings))
    for item in range(12):
        builder.item_event(ItemUpserted(item_id=f"i{item}", title=f"Item {item}", category="grocery"))
    for user in range(30):
        bought = [0, *rng.permutation(np.arange(1, 12))[:8].tolist(), 0]
        for step, item in enumerate(bought):
            builder.interaction(
                Interaction(
                    event_id=f"{user}-{step}",
                    user_id=f"u{user}",
                    item_id=f"i{item}",
                    type=InteractionType.PURCHASE,
                    ts=1000.0 * user + step,
                )
            )
    return builder.build()


def test_evaluate_scores_a_loaded_dataset_with_and_without_repeats(tmp_path: Path) -> None:
    settings = EncoderSettings(behavior_dims=8)
    data = purchases_dataset(settings)
    texts = [text for text in data.texts if text is not None]
    # The content vectors come from the cache, so no model is loaded.
    vectors = np.random.default_rng(1).normal(size=(len(texts), 16)).astype(np.float32)
    path = cache_path(tmp_path, texts, settings.model or "shipped")
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, vectors)
    config = EvalConfig(
        repeatable=frozenset({InteractionType.PURCHASE}),
        cache_dir=tmp_path,
        progress=False,
        tune=False,
        bootstrap=50,
        als_factors=(8,),
        bpr_factors=(),
    )

    report = evaluate(config, settings, dataset=data)

    names = [method.name for method in report.methods]
    assert "blended, repeats allowed (types: purchase)" in names
    assert report.users == 30 and report.repeated_targets == 30
    without = report.method("blended (service defaults)")
    allowed = report.method("blended, repeats allowed (types: purchase)")
    # Without repeats the re-bought item is excluded as seen, so no user finds all five targets; with them some do.
    assert without.recall.max() <= 0.8 and allowed.recall.max() == 1.0
    assert "re-consumption): 30" in format_report(report, 50)
