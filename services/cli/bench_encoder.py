"""`recsys bench encoder`: one command, one table of the encoder's speed against in-process sentence-transformers."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

HELP = "benchmark the encoder: in-process baseline, gRPC callers, live latency under bulk ingestion, ingestion"
QUIET = True

_QUICK = {"texts": 200, "one_by_one": 50, "latency_calls": 50, "bulk_items": 400, "ingest_items": 300}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--dataset", type=Path, help="a MovieLens folder (movies.csv, tags.csv); default: the demo catalog"
    )
    parser.add_argument("--texts", type=int, default=2000, help="texts for the baseline and the gRPC callers")
    parser.add_argument("--one-by-one", type=int, default=300, help="texts for naive encode and concurrency 1")
    parser.add_argument("--latency-calls", type=int, default=1000, help="live calls measured with nothing else running")
    parser.add_argument("--bulk-items", type=int, default=5000, help="items ingested while live latency is measured")
    parser.add_argument("--ingest-items", type=int, default=2000, help="items ingested alone for items/s")
    parser.add_argument("--quick", action="store_true", help="small sizes for a run of a minute or two")
    parser.add_argument("--redis-url", help="Redis for the ingestion runs (default: RECSYS_REDIS_URL)")


def run(args: argparse.Namespace) -> int:
    from recsys.cli.demo import demo_catalog
    from recsys.shared.settings import ConnectionSettings
    from recsys.tools.encoder_bench.corpus import movielens_items
    from recsys.tools.encoder_bench.run import BenchSizes, run_bench

    chosen = {
        "texts": args.texts,
        "one_by_one": args.one_by_one,
        "latency_calls": args.latency_calls,
        "bulk_items": args.bulk_items,
        "ingest_items": args.ingest_items,
    }
    sizes = BenchSizes(**(_QUICK if args.quick else chosen))
    if args.dataset:
        items, source = movielens_items(args.dataset), f"MovieLens {args.dataset.name} (title, genres, tags)"
    else:
        items, source = demo_catalog(), "the demo catalog"
    redis_url = args.redis_url or ConnectionSettings().redis_url
    report = asyncio.run(run_bench(items, source, sizes, redis_url))
    print(report.render())
    return 0
