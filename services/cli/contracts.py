"""`recsys contracts`: writes the event contracts (AsyncAPI document, JSON Schemas) made from the event models."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HELP = "write the event streams' AsyncAPI 3 document and JSON Schemas (shared/contracts), or --check them"
QUIET = True


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, default=None, help="folder (default: the package's shared/contracts)")
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 when a file is stale")


def run(args: argparse.Namespace) -> int:
    # Imported here: the generator imports every service's settings and models.
    from recsys.tools.event_contracts import default_folder, stale_contracts, write_contracts

    folder: Path = args.out or default_folder()
    if args.check:
        stale = stale_contracts(folder)
        for path in stale:
            print(f"stale: {folder / path}", file=sys.stderr)
        if stale:
            print("run `recsys contracts` (make contracts) and commit the result", file=sys.stderr)
        return 1 if stale else 0
    written = write_contracts(folder)
    print(f"wrote {len(written)} files to {folder}")
    return 0
