"""`recsys bench soak`: the whole system under steady traffic for a long while; memory, lag and latency a minute."""

from __future__ import annotations

import argparse
import asyncio

HELP = "run the whole system under a steady mix of events and print memory, stream sizes and latency each minute"
QUIET = True


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--minutes", type=float, default=30.0, help="how long to run (default 30)")
    parser.add_argument("--rate", type=float, default=50.0, help="events per second, items and interactions together")
    parser.add_argument("--items", type=int, default=2000, help="catalog size (updated over and over)")
    parser.add_argument("--users", type=int, default=5000, help="users the interactions come from")
    parser.add_argument(
        "--warm-up",
        type=float,
        default=5.0,
        help="minutes left out of the flatness verdict (at least: until the behavior log reached its cap)",
    )
    parser.add_argument("--redis-url", help="Redis for the streams (default: RECSYS_REDIS_URL)")


def run(args: argparse.Namespace) -> int:
    from recsys.shared.settings import ConnectionSettings
    from recsys.tools.soak_bench import SoakOptions, run_soak

    options = SoakOptions(
        minutes=args.minutes, rate=args.rate, items=args.items, users=args.users, warm_up_minutes=args.warm_up
    )
    print(f"recsys bench soak: {options}", flush=True)
    report = asyncio.run(run_soak(options, args.redis_url or ConnectionSettings().redis_url, on_minute=_flush_print))
    print(report.summary())
    return 0


def _flush_print(line: str) -> None:
    print(line, flush=True)
