"""`recsys bench feeds`: SimilarItems and ForYou latency against catalog size on embedded Qdrant; engines compared."""

from __future__ import annotations

import argparse
import asyncio
import sys

HELP = "SimilarItems and ForYou p50/p99 against catalog size (embedded Qdrant), and qdrant-edge compared"
QUIET = True


def _sizes(text: str) -> list[int]:
    sizes = sorted({int(size.replace("_", "").replace(",", "")) for size in text.split(",") if size.strip()})
    if not sizes or sizes[0] < 100:
        raise argparse.ArgumentTypeError("sizes are item counts of at least 100, comma-separated")
    return sizes


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--sizes",
        type=_sizes,
        default=[10_000, 100_000],
        help="catalog sizes, comma-separated (e.g. 10000,100000,1000000)",
    )
    parser.add_argument("--calls", type=int, default=300, help="sequential calls per feed and size, after a warm-up")
    parser.add_argument(
        "--budget-s", type=float, default=60.0, help="at most this many seconds of calls per feed and size"
    )
    parser.add_argument("--users", type=int, default=200, help="users with taste, session and behavior vectors")
    parser.add_argument(
        "--engine",
        choices=("local", "edge"),
        default="edge",
        help="edge: also run the feeds' queries on qdrant-edge-py (when installed); local: local mode only",
    )


def run(args: argparse.Namespace) -> int:
    from recsys.tools.feeds_bench import edge
    from recsys.tools.feeds_bench.run import run_feeds_bench

    if args.engine == "edge" and not edge.available():
        print("qdrant-edge-py is not installed: its section is skipped (pip install qdrant-edge-py)", file=sys.stderr)
    report = asyncio.run(
        run_feeds_bench(
            args.sizes,
            args.calls,
            args.budget_s,
            args.users,
            with_edge=args.engine == "edge",
            progress=lambda line: print(line, file=sys.stderr, flush=True),
        )
    )
    print(report.render())
    return 0
