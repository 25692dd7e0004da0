"""`recsys report`: the monitor's saved state as one self-contained HTML file with plots."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

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

    data_dir = args.data_dir or MonitorSettings().data_dir
    html = build_report(data_dir / "monitor", max_points=args.max_points)
    if html is None:
        print(f"no monitor state under {data_dir / 'monitor'}: has a monitor run with this data dir?", file=sys.stderr)
        return 1
    args.output.write_text(html, encoding="utf-8")
    print(f"wrote {args.output} ({len(html) / 1024:.0f} KiB)")
    return 0


def build_report(state_dir: Path, *, max_points: int = 500) -> str | None:
    """The HTML report of the state saved under state_dir, or None when nothing was saved there."""
    from recsys.monitor.anomalies import Anomaly
    from recsys.monitor.drift import DriftReport
    from recsys.monitor.html_report import SpaceView, render_report
    from recsys.monitor.spaces import SPACE_NAMES
    from recsys.monitor.state_store import StateStore

    store = StateStore(state_dir)
    document = store.load_document()
    windows = {name: store.load_space(name) for name in SPACE_NAMES}
    if document is None and not any(windows.values()):
        return None
    document = document or {}
    reports = document.get("reports", {})
    views = []
    for name in SPACE_NAMES:
        stored = windows[name]
        empty = np.empty((0, 0), dtype=np.float32)
        reference, current = (stored[0]["reference"], stored[0]["current"]) if stored else (empty, empty)
        views.append(
            SpaceView(
                name=name,
                report=DriftReport.from_dict(reports[name]) if name in reports else None,
                history=document.get("history", {}).get(name, []),
                reference=reference,
                current=current,
            )
        )
    anomalies = [Anomaly.from_dict(data) for data in reversed(document.get("anomalies", []))]
    return render_report(
        views, anomalies, source=str(state_dir), saved_at=document.get("saved_at"), max_points=max_points
    )
