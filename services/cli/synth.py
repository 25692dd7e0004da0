"""`recsys synth`: a synthetic catalog with a known truth, as the JSONL files `recsys publish` reads."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HELP = "write a synthetic catalog (items.jsonl, interactions.jsonl) whose topics, communities and drift are known"
QUIET = True

# Options → SyntheticConfig fields; left out, the generator's default applies (kept there, in one place).
_OPTIONS: dict[str, tuple[type, str]] = {
    "users": (int, "users (default 300)"),
    "items": (int, "items (default 400)"),
    "topics": (int, "topics, at most 12 (default 8)"),
    "communities": (int, "communities per topic: co-consumed items that share no words (default 3)"),
    "events_per_user": (float, "mean events per user (default 40)"),
    "popularity_exponent": (float, "item weight = rank^-exponent (default 0.8)"),
    "drift": (float, "0: fixed tastes; 1: end tastes unrelated to start tastes (default 0.6)"),
    "consumable_share": (float, "share of items bought again and again (default 0.1)"),
    "repeat_probability": (float, "chance of buying a consumable again after each purchase (default 0.6)"),
    "cold_share": (float, "share of items released in the last tenth of the span (default 0.05)"),
    "start_ts": (float, "Unix seconds where the span starts (default 1700000000)"),
    "span_days": (float, "length of the span in days (default 90)"),
    "seed": (int, "random seed: the same seed gives the same files (default 0)"),
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--out", type=Path, required=True, help="the folder to write items.jsonl and interactions.jsonl"
    )
    for name, (kind, help_text) in _OPTIONS.items():
        parser.add_argument(f"--{name.replace('_', '-')}", type=kind, help=help_text)


def run(args: argparse.Namespace) -> int:
    from recsys.tools.synthetic_catalog import SyntheticConfig, generate, write_jsonl

    chosen = {name: getattr(args, name) for name in _OPTIONS if getattr(args, name) is not None}
    try:
        config = SyntheticConfig(**chosen)
    except ValueError as exc:
        print(f"recsys synth: {exc}", file=sys.stderr)
        return 2
    catalog = generate(config)
    items_path, interactions_path = write_jsonl(catalog, args.out)
    print(
        f"wrote {len(catalog.items)} items to {items_path} ({len(catalog.cold_items)} cold,"
        f" {len(catalog.consumable_items)} consumable) and {len(catalog.interactions)} interactions"
        f" to {interactions_path}"
    )
    return 0
