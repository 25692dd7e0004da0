"""The `recsys` command: run services, publish events, run the demo."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path

from recsys.shared.logs import configure_logging
from recsys.shared.settings import ConnectionSettings


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="recsys", description="Event-driven recommendation system.")
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="run services until SIGTERM/SIGINT")
    run.add_argument("service", choices=["all", "encoder", "recommender", "monitor"])
    run.add_argument("--data-dir", type=Path, help="embedded Qdrant and monitor state (RECSYS_DATA_DIR)")

    publish = commands.add_parser("publish", help="publish items or interactions from a JSONL file")
    publish.add_argument("kind", choices=["items", "interactions"])
    publish.add_argument("file", type=Path, help="one JSON event payload per line")

    demo = commands.add_parser("demo", help="run the whole system on a small built-in catalog and print feeds")
    demo.add_argument("--data-dir", type=Path, help="where the demo's embedded Qdrant lives (default: a temp dir)")
    commands.add_parser("settings", help="print every RECSYS_* setting with its default (Markdown)")
    return parser


def main(argv: list[str] | None = None) -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    args = _parser().parse_args(argv)
    settings = ConnectionSettings()
    # The demo prints feeds; its logs only matter when something goes wrong (or RECSYS_LOG_LEVEL asks).
    quiet = args.command == "demo" and "RECSYS_LOG_LEVEL" not in os.environ
    configure_logging("WARNING" if quiet else settings.log_level)
    if args.command == "run":
        from recsys.cli.serve import serve

        overrides = {"data_dir": args.data_dir} if args.data_dir else {}
        names = ("encoder", "recommender", "monitor") if args.service == "all" else (args.service,)
        asyncio.run(serve(names, overrides))
    elif args.command == "publish":
        from recsys.cli.publish import publish_file

        published, problems = asyncio.run(
            publish_file(settings.redis_url, settings.stream_prefix, args.kind, args.file)
        )
        for problem in problems:
            print(f"skipped {problem}", file=sys.stderr)
        print(f"published {published} {args.kind} events, skipped {len(problems)} invalid lines")
        sys.exit(1 if problems else 0)
    elif args.command == "settings":
        from recsys.cli.settings_doc import settings_markdown

        print(settings_markdown())
    elif args.command == "demo":
        from recsys.cli.demo import run_demo

        sys.exit(asyncio.run(run_demo(args.data_dir)))


if __name__ == "__main__":
    main()
