"""`recsys bench interactions`: interactions/s through one interactions-role process, calls per event, latency."""

from __future__ import annotations

import argparse
import asyncio

HELP = "interactions per second through one interactions-role process, its Qdrant and Redis calls per event, latency"
QUIET = True


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--events", type=int, default=10_000, help="backlog each mode applies for its throughput")
    parser.add_argument("--rounds", type=int, default=2, help="rounds of baseline then batched (the machine drifts)")
    parser.add_argument("--batch-size", type=int, default=64, help="RECSYS_INTERACTION_BATCH_SIZE of the batched run")
    parser.add_argument(
        "--rates",
        default="500,1000",
        help="steady rates (per s, comma-separated) for latency, besides half of each mode's throughput",
    )
    parser.add_argument("--rate-seconds", type=float, default=10.0, help="how long each steady rate runs")
    parser.add_argument("--items", type=int, default=2_000, help="catalog items (random content vectors)")
    parser.add_argument("--users", type=int, default=2_000, help="users the interactions come from")
    parser.add_argument("--redis-url", help="a Redis to use (default: a redis-server the bench starts)")


def run(args: argparse.Namespace) -> int:
    from recsys.tools.interaction_bench import run_interaction_bench

    report = asyncio.run(
        run_interaction_bench(
            args.redis_url,
            [1, args.batch_size],
            args.events,
            [float(rate) for rate in args.rates.split(",") if rate.strip()],
            args.rate_seconds,
            args.items,
            args.users,
            args.rounds,
        )
    )
    print(report.render())
    return 0
