"""`recsys convert-movielens`: MovieLens ml-latest-small as event files that `recsys publish` and `recsys eval` read."""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = "write MovieLens (ml-latest-small) as items.jsonl and interactions.jsonl in the event format"
QUIET = True


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", type=Path, help="folder of MovieLens ml-latest-small (ratings.csv, movies.csv, ...)")
    parser.add_argument("--out", type=Path, required=True, help="folder to write items.jsonl and interactions.jsonl to")
    parser.add_argument(
        "--implicit", action="store_true", help="every rating becomes a click with no value (implicit events only)"
    )
    parser.add_argument(
        "--no-tags",
        action="store_true",
        help="items carry genres only; by default every user tag is part of the item text (a file cannot know"
        " the evaluation's split, so `recsys eval --movielens` is the leak-free way to use tags)",
    )


def run(args: argparse.Namespace) -> int:
    from recsys.tools.evaluation.movielens import write_events

    try:
        items, interactions = write_events(args.path, args.out, implicit=args.implicit, tags=not args.no_tags)
    except FileNotFoundError as exc:
        print(exc)
        return 2
    print(
        f"wrote {items} items to {args.out / 'items.jsonl'} and {interactions} interactions to"
        f" {args.out / 'interactions.jsonl'}"
    )
    return 0
