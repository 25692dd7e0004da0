"""`recsys bench refresh`: the behavior refresh's factorization, fold-in and write time and peak memory per log size."""

from __future__ import annotations

import argparse

HELP = "time and peak memory of the behavior refresh on synthetic logs of growing size, one subprocess per size"
QUIET = True


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--sizes",
        type=lambda text: [int(size.replace("_", "")) for size in text.split(",")],
        default=[10_000, 100_000, 1_000_000],
        help="users per log, comma-separated (default 10000,100000,1000000)",
    )
    parser.add_argument("--items", type=int, default=100_000, help="items in the catalog")
    parser.add_argument("--per-user", type=int, default=20, help="interactions per user, on average")
    parser.add_argument("--dims", type=int, default=64, help="dimensions of the behavior space")
    parser.add_argument(
        "--write-up-to",
        type=int,
        default=10_000,
        help="measure the writes into embedded Qdrant only for logs of at most this many users (0: never)",
    )
    parser.add_argument("--batch", type=int, default=256, help="points per write batch")


def run(args: argparse.Namespace) -> int:
    from recsys.tools.refresh_bench import render, run_sizes

    figures = run_sizes(args.sizes, args.items, args.per_user, args.dims, args.write_up_to, args.batch)
    print(render(figures))
    return 0
