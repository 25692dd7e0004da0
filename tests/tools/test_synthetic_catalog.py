"""The synthetic catalog: valid payloads, deterministic, and a truth with every signal the recommender claims to use."""

from __future__ import annotations

import argparse
import json
import re
import time
from collections import Counter
from dataclasses import fields
from pathlib import Path

import numpy as np
import pytest

from recsys.cli import synth
from recsys.cli.publish import line_to_fields
from recsys.shared.events import Interaction, ItemUpserted, parse_interaction, parse_item_event
from recsys.tools.synthetic_catalog import SyntheticCatalog, SyntheticConfig, generate, write_jsonl
from tests.tools.synthetic_probe import holdout, probe


@pytest.fixture(scope="module")
def catalog() -> SyntheticCatalog:
    return generate(SyntheticConfig())


def _topic_mix(catalog: SyntheticCatalog, rows: np.ndarray) -> np.ndarray:
    counts = np.bincount(catalog.item_topics[catalog.log.item[rows]], minlength=catalog.config.topics)
    return counts / max(counts.sum(), 1)


def _user_rows(catalog: SyntheticCatalog) -> list[np.ndarray]:
    order = np.argsort(catalog.log.user, kind="stable")  # stable: each user's rows stay in time order
    return np.split(order, np.flatnonzero(np.diff(catalog.log.user[order])) + 1)


def test_every_written_line_passes_publish_and_the_consumers_parsers(catalog: SyntheticCatalog, tmp_path: Path) -> None:
    items_path, interactions_path = write_jsonl(catalog, tmp_path / "synthetic")

    items = [parse_item_event(line_to_fields("items", line)) for line in items_path.read_text().splitlines()]
    interactions = [
        parse_interaction(line_to_fields("interactions", line)) for line in interactions_path.read_text().splitlines()
    ]

    assert all(isinstance(item, ItemUpserted) for item in items)
    assert all(isinstance(event, Interaction) for event in interactions)
    assert len(items) == catalog.config.items and len(interactions) == len(catalog.interactions)
    released = {item.item_id: item.ts for item in items}
    assert all(event.item_id in released for event in interactions)
    assert all(event.ts is not None and event.ts >= (released[event.item_id] or 0.0) for event in interactions)
    times = [event.ts for event in interactions]
    assert times == sorted(times)
    assert len({event.event_id for event in interactions}) == len(interactions)
    assert {event.type.value for event in interactions} == {"view", "click", "purchase"}


def test_the_same_seed_gives_the_same_catalog_and_another_seed_another() -> None:
    first, again, other = generate(SyntheticConfig()), generate(SyntheticConfig()), generate(SyntheticConfig(seed=1))

    assert first.items == again.items and first.interactions == again.interactions
    assert first.cold_items == again.cold_items and np.array_equal(first.user_tastes.end, again.user_tastes.end)
    assert first.interactions != other.interactions and first.items != other.items


def test_item_popularity_follows_a_power_law(catalog: SyntheticCatalog) -> None:
    counts = np.sort(np.bincount(catalog.log.item, minlength=catalog.config.items))[::-1]
    share = counts / counts.sum()
    tenth, half = len(counts) // 10, len(counts) // 2
    ranks = np.arange(1, half + 1)
    slope = np.polyfit(np.log(ranks), np.log(counts[:half] + 1), 1)[0]

    assert share[:tenth].sum() > 1.5 * share[half:].sum()
    assert slope < -0.4  # equal weights give about -0.13, sampling noise alone


def test_users_interact_mostly_within_their_two_main_topics(catalog: SyntheticCatalog) -> None:
    mean_taste = (catalog.user_tastes.start + catalog.user_tastes.end) / 2
    in_true_top_two = [
        _topic_mix(catalog, rows)[np.argsort(mean_taste[user])[-2:]].sum()
        for user, rows in enumerate(_user_rows(catalog))
    ]

    own_top_two = [np.sort(_topic_mix(catalog, rows))[-2:].sum() for rows in _user_rows(catalog)]

    # Taste-blind picks over 8 topics would give about 0.26 and 0.35.
    assert np.mean(in_true_top_two) > 0.5
    assert np.mean(own_top_two) > 0.6


def test_tastes_drift_so_the_last_third_differs_from_the_first(catalog: SyntheticCatalog) -> None:
    def mean_change(drifting: SyntheticCatalog) -> float:
        changes = []
        for rows in _user_rows(drifting):
            third = len(rows) // 3
            changes.append(0.5 * np.abs(_topic_mix(drifting, rows[:third]) - _topic_mix(drifting, rows[-third:])).sum())
        return float(np.mean(changes))

    closer_to_end = [
        np.abs(_topic_mix(catalog, rows[-len(rows) // 3 :]) - catalog.user_tastes.end[user]).sum()
        < np.abs(_topic_mix(catalog, rows[-len(rows) // 3 :]) - catalog.user_tastes.start[user]).sum()
        for user, rows in enumerate(_user_rows(catalog))
    ]

    # Sessions and sampling move a fixed taste's mix too: the drift must show above that.
    assert mean_change(catalog) > mean_change(generate(SyntheticConfig(drift=0.0))) + 0.08
    assert np.mean(closer_to_end) > 0.6  # without drift: 0 (start and end are the same)


def test_consumables_and_only_they_are_bought_again(catalog: SyntheticCatalog) -> None:
    purchases = Counter(
        (event["user_id"], event["item_id"]) for event in catalog.interactions if event["type"] == "purchase"
    )
    bought_again = {item for (_, item), count in purchases.items() if count > 1}
    consumable_pairs = [count for (_, item), count in purchases.items() if item in catalog.consumable_items]

    assert bought_again and bought_again <= catalog.consumable_items
    assert np.mean(np.array(consumable_pairs) > 1) > 0.3


def test_cold_items_appear_late_and_are_held_out_targets(catalog: SyntheticCatalog) -> None:
    config = catalog.config
    late = config.start_ts + 0.9 * config.span_s
    cold_rows = np.array([row for row, item_id in enumerate(catalog.item_ids) if item_id in catalog.cold_items])
    early_counts = np.bincount(catalog.log.item[catalog.log.ts < late], minlength=config.items)[cold_rows]
    published = {item["item_id"]: item for item in catalog.items}
    positive = np.isin(catalog.log.type, ["click", "purchase"])
    late_positives = np.bincount(catalog.log.item[positive & (catalog.log.ts >= late)], minlength=config.items)
    targets = np.concatenate([request.targets for request in holdout(catalog)])

    assert len(cold_rows) == round(config.cold_share * config.items)
    assert np.all(early_counts <= 2)
    assert all(published[item_id]["ts"] >= late for item_id in catalog.cold_items)
    assert [item["item_id"] for item in catalog.items[-len(cold_rows) :]] != [] and all(
        item["item_id"] in catalog.cold_items for item in catalog.items[-len(cold_rows) :]
    )
    assert np.mean(late_positives[cold_rows] > 0) > 0.7
    assert np.isin(targets, cold_rows).sum() >= len(cold_rows)


def test_the_truth_ranks_held_out_items_better_than_popularity_and_popularity_better_than_chance(
    catalog: SyntheticCatalog,
) -> None:
    ndcg = probe(catalog)

    assert ndcg["true topic × community × popularity"] > 1.3 * ndcg["popularity"]
    assert ndcg["true topic × community × popularity"] > ndcg["true topic × popularity"]  # communities matter
    assert ndcg["popularity"] > 2 * ndcg["random"]


def test_a_hundred_thousand_events_take_seconds() -> None:
    started = time.perf_counter()
    big = generate(SyntheticConfig(users=2500, items=3000))
    elapsed = time.perf_counter() - started

    assert len(big.interactions) > 100_000
    assert elapsed < 5.0


@pytest.mark.parametrize(
    "change", [{"topics": 13}, {"items": 10}, {"drift": 1.5}, {"repeat_probability": 1.0}, {"type_mix": ()}]
)
def test_an_impossible_config_is_refused(change: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        SyntheticConfig(**change)  # type: ignore[arg-type]


def test_the_command_writes_the_files_publish_reads(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser()
    synth.add_arguments(parser)

    code = synth.run(parser.parse_args(["--out", str(tmp_path), "--users", "50", "--items", "100", "--seed", "3"]))

    lines = (tmp_path / "interactions.jsonl").read_text().splitlines()
    assert code == 0
    assert len((tmp_path / "items.jsonl").read_text().splitlines()) == 100
    assert {json.loads(line)["user_id"] for line in lines} == {f"u{row:02d}" for row in range(50)}
    assert "100 items" in capsys.readouterr().out
    assert synth.run(parser.parse_args(["--out", str(tmp_path), "--topics", "99"])) == 2


def test_the_command_help_states_the_generator_defaults() -> None:
    defaults = {field.name: field.default for field in fields(SyntheticConfig)}
    for name, (_, help_text) in synth._OPTIONS.items():
        stated = re.search(r"\(default ([\d.]+)\)", help_text)
        assert stated is not None, name
        assert float(stated.group(1)) == float(defaults[name]), name  # type: ignore[arg-type]
