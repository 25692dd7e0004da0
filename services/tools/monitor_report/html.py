"""The monitor's HTML report: one self-contained page (inline CSS and SVG, nothing fetched) with drift over time,
a 2-D projection of reference vs current vectors, and the anomaly list."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape
from typing import Any

import numpy as np

from recsys.monitor.anomalies import Anomaly
from recsys.monitor.drift import DriftReport
from recsys.tools.monitor_report.svg_charts import Guide, PointGroup, Series, bar_chart, line_chart, scatter_chart

REFERENCE_COLOR = "#2c7fb8"
CURRENT_COLOR = "#e6550d"
ALARM_COLOR = "#c0392b"
MAX_ANOMALY_ROWS = 200

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 24px; color: #222; max-width: 1000px; }
h1 { font-size: 22px; margin-bottom: 4px; } h2 { font-size: 18px; margin-top: 32px; border-bottom: 1px solid #ddd; }
.meta { color: #666; font-size: 13px; }
table { border-collapse: collapse; font-size: 13px; margin: 8px 0; }
th, td { border: 1px solid #ddd; padding: 3px 8px; text-align: left; vertical-align: top; }
th { background: #f4f4f4; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
.drifted { color: #c0392b; font-weight: 600; } .steady { color: #2e7d32; font-weight: 600; } .short { color: #888; }
.charts { display: flex; flex-wrap: wrap; gap: 8px 20px; }
figure.chart { margin: 4px 0; } figcaption { font-size: 13px; font-weight: 600; margin-bottom: 2px; }
ul.explanation { font-size: 14px; line-height: 1.45; }
"""


@dataclass(frozen=True)
class SpaceView:
    """What the report shows of one space."""

    name: str
    report: DriftReport | None
    history: Sequence[dict[str, Any]]
    reference: np.ndarray
    current: np.ndarray


def pca_projection(
    reference: np.ndarray, current: np.ndarray, *, max_points: int, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, float]:
    """Both windows on the first two principal axes of the pooled vectors (at most max_points of each shown),
    and the share of variance those axes explain."""
    if len(reference) + len(current) < 3:
        return np.empty((0, 2)), np.empty((0, 2)), 0.0
    pooled = np.vstack([reference, current]).astype(np.float64)
    centre = pooled.mean(axis=0)
    _, singular, axes = np.linalg.svd(pooled - centre, full_matrices=False)
    variance = singular**2
    explained = float(variance[:2].sum() / variance.sum()) if variance.sum() > 0 else 0.0
    basis = axes[:2].T
    if basis.shape[1] < 2:
        basis = np.hstack([basis, np.zeros((basis.shape[0], 2 - basis.shape[1]))])
    rng = np.random.default_rng(seed)

    def project(window: np.ndarray) -> np.ndarray:
        if len(window) > max_points:
            window = window[rng.choice(len(window), max_points, replace=False)]
        points: np.ndarray = (np.asarray(window, dtype=np.float64) - centre) @ basis
        return points

    return project(reference), project(current), explained


def render_report(
    spaces: Sequence[SpaceView],
    anomalies: Sequence[Anomaly],
    *,
    source: str,
    saved_at: float | None,
    max_points: int = 500,
    generated_at: float | None = None,
) -> str:
    generated = time.time() if generated_at is None else generated_at
    saved = f"state saved {_when(saved_at)}" if saved_at else "no state saved yet"
    body = [
        "<h1>recsys monitor report</h1>",
        f'<p class="meta">generated {_when(generated)} from {escape(source)}; {saved}</p>',
        "<h2>Summary</h2>",
        _summary_table(spaces),
    ]
    for view in spaces:
        body.append(_space_section(view, max_points))
    body.append(_anomaly_section(anomalies))
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        "<title>recsys monitor report</title>"
        f"<style>{_STYLE}</style></head><body>{''.join(body)}</body></html>\n"
    )


def _summary_table(spaces: Sequence[SpaceView]) -> str:
    rows = []
    for view in spaces:
        report = view.report
        if report is None:
            rows.append(f"<tr><td>{escape(view.name)}</td><td class='short'>no report yet</td>{'<td></td>' * 6}</tr>")
            continue
        rows.append(
            f"<tr><td>{escape(view.name)}</td><td>{_verdict(report)}</td>"
            f"<td class='num'>{_figure(report.p_value)}</td><td class='num'>{_figure(report.mmd2)}</td>"
            f"<td class='num'>{_figure(report.classifier_auc)}</td>"
            f"<td class='num'>{_dimensions(report)}</td>"
            f"<td class='num'>{report.reference_size} / {report.current_size}</td>"
            f"<td>{escape(report.version) or '—'}</td></tr>"
        )
    head = (
        "<tr><th>space</th><th>verdict</th><th>p-value</th><th>MMD²</th><th>classifier AUC</th>"
        "<th>drifted dimensions</th><th>reference / current</th><th>version</th></tr>"
    )
    return f"<table>{head}{''.join(rows)}</table>"


def _space_section(view: SpaceView, max_points: int) -> str:
    parts = [f'<h2 id="{escape(view.name)}">{escape(view.name)}</h2>']
    report = view.report
    if report is not None:
        mode = escape(report.reference_mode or "?")
        parts.append(f"<p>{_verdict(report)} — computed {_when(report.computed_at)}, reference: {mode}</p>")
        lines = "".join(f"<li>{escape(line)}</li>" for line in report.explanation)
        parts.append(f'<ul class="explanation">{lines}</ul>')
    history = list(view.history)
    times = [float(entry["computed_at"]) for entry in history]

    def column(name: str) -> list[float | None]:
        return [entry.get(name) for entry in history]

    alpha = report.alpha if report is not None else 0.05
    charts = [
        line_chart(
            "Permutation p-values (log scale)",
            [
                Series("MMD²", times, column("p_value"), REFERENCE_COLOR),
                Series("classifier", times, column("classifier_p_value"), "#7f7f7f", dashed=True),
            ],
            guides=[Guide(alpha, f"α = {alpha:g}", ALARM_COLOR)],
            log_y=True,
            y_max=1.0,
        ),
        line_chart(
            "MMD² and the drift threshold",
            [
                Series("MMD²", times, column("mmd2"), CURRENT_COLOR),
                Series(f"{1 - alpha:.0%} of reshuffles", times, column("mmd2_threshold"), "#7f7f7f", dashed=True),
            ],
        ),
        line_chart(
            "Domain classifier AUC",
            [Series("AUC", times, column("classifier_auc"), "#6a51a3")],
            guides=[Guide(0.5, "0.5 = no difference")],
            y_min=0.3,
            y_max=1.0,
        ),
        line_chart(
            "Share of drifted dimensions (KS + Benjamini–Hochberg)",
            [Series("share", times, column("drifted_dimension_share"), "#238b45")],
            y_min=0.0,
        ),
        line_chart(
            "Effective rank (a collapse drops it)",
            [
                Series("reference", times, column("reference_effective_rank"), REFERENCE_COLOR, dashed=True),
                Series("current", times, column("current_effective_rank"), CURRENT_COLOR),
            ],
            y_min=0.0,
        ),
    ]
    reference_points, current_points, explained = pca_projection(view.reference, view.current, max_points=max_points)
    charts.append(
        scatter_chart(
            f"Reference vs current, first two principal axes ({explained:.0%} of variance)",
            [
                PointGroup("reference", [tuple(p) for p in reference_points], REFERENCE_COLOR),
                PointGroup("current", [tuple(p) for p in current_points], CURRENT_COLOR),
            ],
        )
    )
    parts.append(f'<div class="charts">{"".join(charts)}</div>')
    if report is not None and report.top_dimensions:
        rows = "".join(
            f"<tr><td class='num'>{s.dimension}</td><td class='num'>{s.ks_statistic:.3f}</td>"
            f"<td class='num'>{_figure(s.q_value)}</td><td class='num'>{s.mean_shift:+.2f}</td></tr>"
            for s in report.top_dimensions
        )
        parts.append(
            "<table><tr><th>dimension</th><th>KS statistic</th><th>q-value (BH)</th>"
            f"<th>mean shift (reference sd)</th></tr>{rows}</table>"
        )
    return "".join(parts)


def _anomaly_section(anomalies: Sequence[Anomaly]) -> str:
    counts = Counter(f"{a.kind.value}" for a in anomalies)
    parts = [
        f'<h2 id="anomalies">Anomalies ({len(anomalies)})</h2>',
        bar_chart("Anomalies by kind", sorted(counts.items(), key=lambda item: -item[1])),
    ]
    if anomalies:
        rows = "".join(
            f"<tr><td>{_when(a.detected_at)}</td><td>{escape(a.kind.value)}</td><td>{escape(a.space)}</td>"
            f"<td>{escape(a.subject)}</td><td class='num'>{_figure(a.score)}</td>"
            f"<td class='num'>{_figure(a.threshold)}</td><td>{escape(a.detail)}</td></tr>"
            for a in anomalies[:MAX_ANOMALY_ROWS]
        )
        more = len(anomalies) - MAX_ANOMALY_ROWS
        note = f"<p class='meta'>{more} older anomalies not shown.</p>" if more > 0 else ""
        parts.append(
            "<table><tr><th>found</th><th>kind</th><th>space</th><th>subject</th><th>score</th>"
            f"<th>threshold</th><th>detail</th></tr>{rows}</table>{note}"
        )
    return "".join(parts)


def _verdict(report: DriftReport) -> str:
    if not report.sufficient:
        return f"<span class='short'>no test: {escape(report.reason)}</span>"
    if report.drifted:
        return "<span class='drifted'>drifted</span>"
    return "<span class='steady'>no drift</span>"


def _dimensions(report: DriftReport) -> str:
    if report.drifted_dimensions is None or not report.dimensions:
        return "—"
    return f"{report.drifted_dimensions} of {report.dimensions}"


def _figure(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:.3g}"


def _when(at: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(at))
