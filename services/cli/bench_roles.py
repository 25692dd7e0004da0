"""`recsys bench roles`: start time and memory of the encoder's text and interactions roles, one table."""

from __future__ import annotations

import argparse
import asyncio

HELP = "start time to SERVING and resident memory of each encoder role, run as its own process"
QUIET = True


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--items", type=int, default=500, help="catalog items the text role ingests")
    parser.add_argument("--interactions", type=int, default=2000, help="interactions the interactions role applies")
    parser.add_argument("--users", type=int, default=200, help="users those interactions come from")
    parser.add_argument("--rounds", type=int, default=3, help="rounds (medians are reported)")
    parser.add_argument("--redis-url", help="Redis for the streams (default: RECSYS_REDIS_URL)")


def run(args: argparse.Namespace) -> int:
    from recsys.cli.demo import demo_catalog
    from recsys.shared.settings import ConnectionSettings
    from recsys.tools.encoder_bench.corpus import repeat_to
    from recsys.tools.role_bench import run_role_bench

    items = repeat_to(demo_catalog(), args.items, "roles")
    redis_url = args.redis_url or ConnectionSettings().redis_url
    report = asyncio.run(run_role_bench(redis_url, items, args.interactions, args.users, args.rounds))
    print(report.render())
    return 0
