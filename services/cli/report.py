"""`recsys report`: the monitor's saved state as one self-contained HTML file with plots."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HELP = "write the monitor's drift history, a projection of its windows and its anomalies as one HTML file"
QUIET = True


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data-dir", type=Path, help="the monitor's RECSYS_DATA_DIR (its state lives in DATA_DIR/monitor)"
    )
    parser.add_argument("--output", "-o", type=Path, default=Path("monitor-report.html"), help="the HTML file to write")
    parser.add_argument("--max-points", type=int, default=500, help="most vectors per window in the projection plot")


def run(args: argparse.Namespace) -> int:
    from recsys.monitor.settings import MonitorSettings
    from recsys.tools.monitor_report.build import build_report

    data_dir = args.data_dir or MonitorSettings().data_dir
    html = build_report(data_dir / "monitor", max_points=args.max_points)
    if html is None:
        print(f"no monitor state under {data_dir / 'monitor'}: has a monitor run with this data dir?", file=sys.stderr)
        return 1
    args.output.write_text(html, encoding="utf-8")
    print(f"wrote {args.output} ({len(html) / 1024:.0f} KiB)")
    return 0
