"""The `recsys` command: one subcommand per module listed in COMMANDS."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from typing import Protocol

from recsys.shared.logs import configure_logging
from recsys.shared.settings import ConnectionSettings

# Command words → the module that implements them. Each module defines HELP, QUIET (whether its
# logs default to warnings only, for commands that print results), add_arguments(parser) and
# run(args) -> exit code. Its top-level imports stay light: heavy ones go inside run().
COMMANDS: dict[tuple[str, ...], str] = {
    ("run",): "recsys.cli.serve",
    ("publish",): "recsys.cli.publish",
    ("call",): "recsys.cli.call",
    ("health",): "recsys.cli.health",
    ("demo",): "recsys.cli.demo",
    ("settings",): "recsys.cli.settings_doc",
    ("secrets",): "recsys.cli.make_secrets",
    ("contracts",): "recsys.cli.contracts",
    ("bench", "encoder"): "recsys.cli.bench_encoder",
    ("eval",): "recsys.cli.evaluate",
    ("synth",): "recsys.cli.synth",
    ("convert-movielens",): "recsys.cli.convert_movielens",
    ("report",): "recsys.cli.report",
    ("bench", "drift"): "recsys.cli.bench_drift",
    ("bench", "roles"): "recsys.cli.bench_roles",
    ("bench", "soak"): "recsys.cli.bench_soak",
    ("bench", "interactions"): "recsys.cli.bench_interactions",
    ("bench", "refresh"): "recsys.cli.bench_refresh",
    ("bench", "feeds"): "recsys.cli.bench_feeds",
}


class Command(Protocol):
    HELP: str
    QUIET: bool

    def add_arguments(self, parser: argparse.ArgumentParser) -> None: ...

    def run(self, args: argparse.Namespace) -> int: ...


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="recsys", description="Event-driven recommendation system.")
    top = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    groups: dict[str, argparse._SubParsersAction[argparse.ArgumentParser]] = {}
    for words, module_name in COMMANDS.items():
        command: Command = importlib.import_module(module_name)  # type: ignore[assignment]
        subparsers = top
        # Two-word commands ("bench encoder") share a parent parser per first word.
        if len(words) == 2:
            group_word = words[0]
            if group_word not in groups:
                group = top.add_parser(group_word, help=f"{group_word} subcommands")
                groups[group_word] = group.add_subparsers(dest=f"{group_word}_command", required=True, metavar="WHAT")
            subparsers = groups[group_word]
        sub = subparsers.add_parser(words[-1], help=command.HELP, description=command.HELP)
        command.add_arguments(sub)
        sub.set_defaults(command_module=command)
    return parser


def main(argv: list[str] | None = None) -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    args = _parser().parse_args(argv)
    command: Command = args.command_module
    quiet = command.QUIET and "RECSYS_LOG_LEVEL" not in os.environ
    settings = ConnectionSettings()
    configure_logging(
        "WARNING" if quiet else settings.log_level,
        # Commands that run services (RUNS_SERVICES) log JSON lines on stdout; the others keep stdout for their
        # output and log on stderr.
        service=getattr(command, "RUNS_SERVICES", False),
        log_format=settings.log_format,
    )
    sys.exit(command.run(args))


if __name__ == "__main__":
    main()
