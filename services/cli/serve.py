"""`recsys run`: start services in one asyncio loop, stop them together on SIGTERM/SIGINT."""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import signal
import sys
from pathlib import Path

from recsys.cli.runner import ServiceName, start_system
from recsys.encoder.roles import EncoderRole
from recsys.shared.logs import log_event

_log = logging.getLogger(__name__)

HELP = "run services until SIGTERM/SIGINT: all in one process, or one of them"
QUIET = False
RUNS_SERVICES = True


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("service", choices=["all", "encoder", "recommender", "monitor"])
    parser.add_argument(
        "--role",
        choices=[role.value for role in EncoderRole],
        default=EncoderRole.ALL.value,
        help="encoder only: the text role (model, Embed, items), the interactions role (no model), or both",
    )
    parser.add_argument("--data-dir", type=Path, help="embedded Qdrant and monitor state (RECSYS_DATA_DIR)")


def run(args: argparse.Namespace) -> int:
    if args.role != EncoderRole.ALL and args.service != "encoder":
        print("--role applies to `recsys run encoder` only", file=sys.stderr)
        return 2
    overrides: dict[str, object] = {"data_dir": args.data_dir} if args.data_dir else {}
    names: tuple[ServiceName, ...] = ("encoder", "recommender", "monitor") if args.service == "all" else (args.service,)
    asyncio.run(serve(names, overrides, EncoderRole(args.role)))
    return 0


async def serve(names: tuple[ServiceName, ...], overrides: dict[str, object], role: EncoderRole) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    system = await start_system(names, overrides, encoder_role=role)
    loop.add_signal_handler(signal.SIGHUP, system.reload_credentials)
    # What the services loaded at start (a model, clients: millions of objects) lives as long as the
    # process; out of the garbage collector's sight, full collections stay short (scanning it all
    # paused the encoder for up to 300 ms).
    gc.freeze()
    ports = {name: system.port(name) for name in system.services}  # type: ignore[arg-type]
    log_event(_log, "system_started", services=list(system.services), ports=ports, store=system.store.location)
    try:
        await stop.wait()
        log_event(_log, "shutdown_requested")
    finally:
        await system.stop()
        log_event(_log, "system_stopped")
