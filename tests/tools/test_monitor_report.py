"""The HTML report: one self-contained page with the charts, the projection and the anomalies, from saved state."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from recsys.cli import report as report_command
from recsys.monitor.anomalies import Anomaly, AnomalyKind, AnomalyLog
from recsys.monitor.drift import DriftTest, compare_windows
from recsys.monitor.history import DriftHistory
from recsys.monitor.state_store import StateStore
from recsys.monitor.windows import VectorWindows, WindowPolicy
from recsys.tools.monitor_report.html import SpaceView, pca_projection, render_report
from recsys.tools.monitor_report.svg_charts import log_ticks, nice_ticks


def drifting_history(rng: np.random.Generator) -> tuple[DriftHistory, list[np.ndarray]]:
    history = DriftHistory(100)
    reference = rng.standard_normal((60, 16))
    current = reference
    for step in range(6):
        current = rng.standard_normal((60, 16)) + 0.15 * step
        at = 1_700_000_000.0 + 60 * step
        history.record(compare_windows("items.content", reference, current, DriftTest(10, 49, 0.05), now=at))
    return history, [reference, current]


def test_the_page_is_self_contained_and_shows_every_part() -> None:
    rng = np.random.default_rng(0)
    history, (reference, current) = drifting_history(rng)
    report = compare_windows("items.content", reference, current, DriftTest(10, 49, 0.05), now=1_700_000_400.0)
    anomaly = Anomaly(AnomalyKind.OUTLIER, "items.content", "<script>x</script>", 0.9, 0.5, 1_700_000_100.0, "far")
    views = [
        SpaceView("items.content", report, history.of("items.content"), reference, current),
        SpaceView("users.taste", None, [], np.empty((0, 0)), np.empty((0, 0))),
    ]

    html = render_report(views, [anomaly], source="/data/monitor", saved_at=1_700_000_500.0)

    assert html.startswith("<!DOCTYPE html>")
    assert not re.search(r"(src|href)\s*=|https?://|@import|url\(", html)  # nothing fetched from anywhere
    assert html.count("<svg") == 2 * 6 + 1  # six charts per space, one anomaly chart
    assert html.count("<polyline") >= 4  # the lines over time of items.content
    assert html.count("<circle") >= 2 * 60  # both windows in the projection
    assert "drifted" in html and report.explanation[0].split(":")[0] in html
    assert "&lt;script&gt;x&lt;/script&gt;" in html and "<script>" not in html
    assert "no report yet" in html and "no figures yet" in html


def test_projection_keeps_the_two_windows_apart_when_they_differ() -> None:
    rng = np.random.default_rng(1)
    reference, current = rng.standard_normal((200, 32)), rng.standard_normal((300, 32)) + 1.0

    ref_points, cur_points, explained = pca_projection(reference, current, max_points=100)

    assert ref_points.shape == (100, 2) and cur_points.shape == (100, 2)
    assert abs(ref_points[:, 0].mean() - cur_points[:, 0].mean()) > 3.0  # the shift is the first axis
    assert 0.0 < explained < 1.0


@pytest.mark.parametrize(("low", "high"), [(0.0, 1.0), (0.0031, 0.047), (-2.5, 7.0), (180.0, 183.0)])
def test_ticks_are_round_and_cover_the_range(low: float, high: float) -> None:
    ticks = nice_ticks(low, high)

    assert ticks[0] >= low - 1e-12 and ticks[-1] <= high + 1e-12
    assert 2 <= len(ticks) <= 8
    steps = np.diff(ticks)
    assert np.allclose(steps, steps[0])
    assert log_ticks(0.004, 1.0) == [0.001, 0.01, 0.1, 1.0]


def test_the_report_command_renders_the_saved_state(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    history, (reference, _) = drifting_history(rng)
    windows = VectorWindows(WindowPolicy(reference_size=60, current_size=60))
    for i, vector in enumerate(reference):
        windows.add(f"s{i}", vector, now=0.0)
    anomalies = AnomalyLog(10)
    anomalies.record(Anomaly(AnomalyKind.BOT_LIKE_USER, "interactions", "u9", 31.0, 30.0, 5.0, "burst"))
    state = StateStore(tmp_path / "monitor")
    state.save_space("items.content", *windows.export())
    state.save_document({"saved_at": 10.0, "history": history.export(), "anomalies": anomalies.export()})
    output = tmp_path / "report.html"

    code = report_command.run(_args(data_dir=tmp_path, output=output))

    html = output.read_text()
    assert code == 0
    assert "u9" in html and "bot_like_user" in html
    assert html.count("<polyline") >= 4


def test_the_report_command_says_when_there_is_no_state(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = report_command.run(_args(data_dir=tmp_path, output=tmp_path / "report.html"))

    assert code == 1
    assert "no monitor state" in capsys.readouterr().err
    assert not (tmp_path / "report.html").exists()


def _args(**values: object) -> object:
    import argparse

    return argparse.Namespace(max_points=200, **values)
