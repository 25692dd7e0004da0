"""The monitor's saved state (windows, drift history, anomalies) read back and rendered as one HTML file."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from recsys.monitor.anomalies import Anomaly
from recsys.monitor.drift import DriftReport
from recsys.monitor.spaces import SPACE_NAMES
from recsys.monitor.state_store import StateStore
from recsys.tools.monitor_report.html import SpaceView, render_report


def build_report(state_dir: Path, *, max_points: int = 500) -> str | None:
    """The HTML report of the state saved under state_dir, or None when nothing was saved there."""

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
