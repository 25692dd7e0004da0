"""`recsys eval`: the offline evaluation on MovieLens against popularity, content, item-kNN, ALS and BPR."""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = "replay MovieLens through the services' code and compare the blended feed with baselines"
QUIET = True


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--dataset", type=Path, required=True, help="folder of MovieLens ml-latest-small (ratings.csv, ...)"
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
    from recsys.encoder.settings import EncoderSettings
    from recsys.tools.evaluation.run import EvalConfig, evaluate, format_report

    encoder = EncoderSettings()
    if args.users is not None and args.users < 1:
        print("--users must be at least 1")
        return 2
    config = EvalConfig(
        dataset=args.dataset,
        users=args.users,
        seed=args.seed,
        cache_dir=args.cache_dir or encoder.data_dir / "eval-cache",
        progress=not args.quiet,
        tune=not args.no_tune,
        bootstrap=args.bootstrap,
    )
    try:
        report = evaluate(config, encoder)
    except FileNotFoundError as exc:
        print(exc)
        return 2
    print(format_report(report, args.bootstrap))
    return 0
