"""`recsys eval`: the offline evaluation on event files or MovieLens against popularity, content, item-kNN, ALS, BPR,
EASE and RP3beta (parameters chosen on a validation split of the training data), with the self-tuned blend."""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = "replay events (files or MovieLens) through the services' code and compare the blended feed with baselines"
QUIET = True


def add_arguments(parser: argparse.ArgumentParser) -> None:
    source = parser.add_argument_group("data: a MovieLens folder, or --items and --interactions")
    source.add_argument(
        "--movielens",
        "--dataset",
        dest="movielens",
        type=Path,
        default=None,
        help="folder of MovieLens ml-latest-small (ratings.csv, movies.csv, tags.csv), converted to events in memory",
    )
    source.add_argument(
        "--implicit", action="store_true", help="with --movielens: every rating becomes a click with no value"
    )
    source.add_argument("--items", type=Path, default=None, help="items JSONL, as `recsys publish items` takes it")
    source.add_argument(
        "--interactions", type=Path, default=None, help="interactions JSONL, as `recsys publish interactions` takes it"
    )
    parser.add_argument(
        "--repeatable",
        default=None,
        metavar="TYPES",
        help="comma-separated interaction types that do not mark an item seen: adds a 'repeats allowed' row"
        " (default: RECSYS_REPEATABLE_INTERACTION_TYPES)",
    )
    parser.add_argument("--users", type=int, default=None, help="evaluate this many users drawn at random (quick run)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the user sample, the baselines and the bootstrap")
    parser.add_argument(
        "--cache-dir",
        type=Path,
        default=None,
        help="where catalog embeddings are cached (default: <data_dir>/eval-cache)",
    )
    parser.add_argument("--no-tune", action="store_true", help="skip tuning the blend weights on the validation split")
    parser.add_argument("--bootstrap", type=int, default=2000, help="bootstrap resamples for the 95%% intervals")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def run(args: argparse.Namespace) -> int:
    from recsys.encoder.interactions.settings import parse_interaction_types
    from recsys.encoder.settings import EncoderSettings
    from recsys.tools.evaluation.run import EvalConfig, evaluate, format_report

    problem = _usage_problem(args)
    if problem:
        print(problem)
        return 2
    try:
        repeatable = None if args.repeatable is None else parse_interaction_types(args.repeatable)
    except ValueError as exc:
        print(f"--repeatable: {exc}")
        return 2
    encoder = EncoderSettings()
    config = EvalConfig(
        movielens=args.movielens,
        implicit=args.implicit,
        items=args.items,
        interactions=args.interactions,
        repeatable=repeatable,
        users=args.users,
        seed=args.seed,
        cache_dir=args.cache_dir or encoder.data_dir / "eval-cache",
        progress=not args.quiet,
        tune=not args.no_tune,
        bootstrap=args.bootstrap,
    )
    try:
        report = evaluate(config, encoder)
    except (FileNotFoundError, ValueError) as exc:  # a missing file, a refused line (DatasetError), no catalog
        print(exc)
        return 2
    print(format_report(report, args.bootstrap))
    return 0


def _usage_problem(args: argparse.Namespace) -> str | None:
    files = args.items is not None or args.interactions is not None
    if args.movielens is not None and files:
        return "give --movielens PATH or --items and --interactions, not both"
    if args.movielens is None and (args.items is None or args.interactions is None):
        return "give --movielens PATH (alias --dataset), or both --items FILE and --interactions FILE"
    if args.implicit and args.movielens is None:
        return "--implicit applies to --movielens only: event files say their own types"
    if args.users is not None and args.users < 1:
        return "--users must be at least 1"
    return None
