"""Small inline SVG charts (lines over time, scatter, bars) for the HTML report: no libraries, no external files."""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from html import escape

FONT = "font-family:system-ui,sans-serif;font-size:11px"
_MARGIN_LEFT, _MARGIN_RIGHT, _MARGIN_TOP, _MARGIN_BOTTOM = 56, 12, 26, 30


@dataclass(frozen=True)
class Series:
    """One line: y over Unix times x."""

    name: str
    xs: Sequence[float]
    ys: Sequence[float | None]
    color: str
    dashed: bool = False


@dataclass(frozen=True)
class Guide:
    """A horizontal reference line (alpha, AUC 0.5, ...)."""

    value: float
    label: str
    color: str = "#888"


@dataclass(frozen=True)
class PointGroup:
    """Scatter points of one kind."""

    name: str
    points: Sequence[tuple[float, float]]
    color: str


@dataclass
class _Frame:
    width: int
    height: int
    x_range: tuple[float, float]
    y_range: tuple[float, float]
    log_y: bool = False
    parts: list[str] = field(default_factory=list)

    def x(self, value: float) -> float:
        low, high = self.x_range
        span = high - low or 1.0
        return _MARGIN_LEFT + (value - low) / span * (self.width - _MARGIN_LEFT - _MARGIN_RIGHT)

    def y(self, value: float) -> float:
        low, high = self.y_range
        if self.log_y:
            value, low, high = (math.log10(max(v, 1e-300)) for v in (value, low, high))
        span = high - low or 1.0
        return self.height - _MARGIN_BOTTOM - (value - low) / span * (self.height - _MARGIN_TOP - _MARGIN_BOTTOM)


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round tick values covering [low, high]: steps of 1, 2 or 5 times a power of ten."""
    if not math.isfinite(low) or not math.isfinite(high):
        return []
    if high <= low:
        return [low]
    raw = (high - low) / max(count - 1, 1)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    first = math.ceil(low / step - 1e-9) * step
    ticks = []
    value = first
    while value <= high + step * 1e-9:
        ticks.append(0.0 if abs(value) < step * 1e-9 else value)
        value += step
    return ticks


def log_ticks(low: float, high: float) -> list[float]:
    """Powers of ten covering [low, high] (low > 0)."""
    return [10.0**e for e in range(math.floor(math.log10(low)), math.ceil(math.log10(high)) + 1)]


def format_number(value: float) -> str:
    if value == 0:
        return "0"
    if abs(value) >= 1e4 or abs(value) < 1e-3:
        return f"{value:.0e}".replace("e-0", "e-").replace("e+0", "e")
    return f"{value:.4g}"


def format_time(value: float, span: float) -> str:
    pattern = "%m-%d %H:%M" if span > 2 * 86_400 else "%H:%M:%S" if span < 600 else "%H:%M"
    return time.strftime(pattern, time.localtime(value))


def line_chart(
    title: str,
    series: Sequence[Series],
    *,
    guides: Sequence[Guide] = (),
    log_y: bool = False,
    y_min: float | None = None,
    y_max: float | None = None,
    width: int = 460,
    height: int = 220,
) -> str:
    """Lines over time; points with a None (or, on a log axis, non-positive) y are gaps."""
    xs = [x for s in series for x in s.xs]
    ys = [y for s in series for y in s.ys if y is not None and math.isfinite(y) and (y > 0 or not log_y)]
    ys += [g.value for g in guides if g.value > 0 or not log_y]
    if not xs or not ys:
        return _empty(title, width, height, "no figures yet")
    # y_min and y_max widen the axis to include them; data beyond them still shows.
    low = min(ys) if y_min is None else min(y_min, *ys)
    high = max(ys) if y_max is None else max(y_max, *ys)
    if log_y:
        low, high = 10 ** math.floor(math.log10(low)), 10 ** math.ceil(math.log10(high))
    elif high == low:
        low, high = low - 1.0, high + 1.0
    x_low, x_high = min(xs), max(xs)
    if x_high == x_low:
        x_low, x_high = x_low - 60.0, x_high + 60.0
    frame = _Frame(width, height, (x_low, x_high), (low, high), log_y)
    _axes(frame, log_ticks(low, high) if log_y else nice_ticks(low, high), time_axis=True)
    for guide in guides:
        y = frame.y(guide.value)
        frame.parts.append(
            f'<line x1="{_MARGIN_LEFT}" x2="{width - _MARGIN_RIGHT}" y1="{y:.1f}" y2="{y:.1f}" '
            f'stroke="{guide.color}" stroke-dasharray="4 3"/>'
            f'<text x="{width - _MARGIN_RIGHT - 2}" y="{y - 3:.1f}" text-anchor="end" fill="{guide.color}" '
            f'style="{FONT}">{escape(guide.label)}</text>'
        )
    for line in series:
        _polyline(frame, line)
    _legend(frame, [(s.name, s.color) for s in series])
    return _svg(title, frame)


def scatter_chart(title: str, groups: Sequence[PointGroup], *, width: int = 460, height: int = 400) -> str:
    points = [p for g in groups for p in g.points]
    if not points:
        return _empty(title, width, height, "no vectors")
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    pad_x, pad_y = (max(xs) - min(xs)) * 0.05 or 1.0, (max(ys) - min(ys)) * 0.05 or 1.0
    frame = _Frame(width, height, (min(xs) - pad_x, max(xs) + pad_x), (min(ys) - pad_y, max(ys) + pad_y))
    _axes(frame, nice_ticks(*frame.y_range), time_axis=False)
    for group in groups:
        dots = "".join(f'<circle cx="{frame.x(x):.1f}" cy="{frame.y(y):.1f}" r="2.2"/>' for x, y in group.points)
        frame.parts.append(f'<g fill="{group.color}" fill-opacity="0.55">{dots}</g>')
    _legend(frame, [(f"{g.name} ({len(g.points)})", g.color) for g in groups])
    return _svg(title, frame)


def bar_chart(title: str, bars: Sequence[tuple[str, float]], *, color: str = "#c0392b", width: int = 460) -> str:
    """Horizontal bars, one per label."""
    if not bars:
        return _empty(title, width, 80, "none")
    row = 22
    height = _MARGIN_TOP + row * len(bars) + 10
    top = max(value for _, value in bars) or 1.0
    label_width = 130
    parts = []
    for i, (label, value) in enumerate(bars):
        y = _MARGIN_TOP + i * row
        length = (width - label_width - 60) * value / top
        parts.append(
            f'<text x="{label_width - 6}" y="{y + 14}" text-anchor="end" style="{FONT}">{escape(label)}</text>'
            f'<rect x="{label_width}" y="{y + 3}" width="{length:.1f}" height="{row - 8}" fill="{color}"/>'
            f'<text x="{label_width + length + 4:.1f}" y="{y + 14}" style="{FONT}">{format_number(value)}</text>'
        )
    frame = _Frame(width, height, (0, 1), (0, 1), parts=parts)
    return _svg(title, frame)


def _axes(frame: _Frame, y_ticks: Sequence[float], *, time_axis: bool) -> None:
    bottom, right = frame.height - _MARGIN_BOTTOM, frame.width - _MARGIN_RIGHT
    parts = [
        f'<line x1="{_MARGIN_LEFT}" x2="{_MARGIN_LEFT}" y1="{_MARGIN_TOP}" y2="{bottom}" stroke="#444"/>',
        f'<line x1="{_MARGIN_LEFT}" x2="{right}" y1="{bottom}" y2="{bottom}" stroke="#444"/>',
    ]
    for tick in y_ticks:
        y = frame.y(tick)
        if _MARGIN_TOP - 1 <= y <= bottom + 1:
            parts.append(
                f'<line x1="{_MARGIN_LEFT}" x2="{right}" y1="{y:.1f}" y2="{y:.1f}" stroke="#eee"/>'
                f'<text x="{_MARGIN_LEFT - 4}" y="{y + 4:.1f}" text-anchor="end" style="{FONT}">'
                f"{format_number(tick)}</text>"
            )
    low, high = frame.x_range
    x_ticks = [low + (high - low) * i / 3 for i in range(4)] if time_axis else nice_ticks(low, high)
    for index, tick in enumerate(x_ticks):
        x = frame.x(tick)
        text = format_time(tick, high - low) if time_axis else format_number(tick)
        # The outer time labels hang inwards so that they are not cut at the edges.
        anchor = "middle" if not time_axis or 0 < index < len(x_ticks) - 1 else "start" if index == 0 else "end"
        parts.append(
            f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{bottom}" y2="{bottom + 4}" stroke="#444"/>'
            f'<text x="{x:.1f}" y="{bottom + 16}" text-anchor="{anchor}" style="{FONT}">{escape(text)}</text>'
        )
    frame.parts[:0] = parts


def _polyline(frame: _Frame, series: Series) -> None:
    segments: list[list[str]] = [[]]
    for x, y in zip(series.xs, series.ys, strict=True):
        if y is None or not math.isfinite(y) or (frame.log_y and y <= 0):
            segments.append([])
            continue
        segments[-1].append(f"{frame.x(x):.1f},{frame.y(y):.1f}")
    dash = ' stroke-dasharray="5 3"' if series.dashed else ""
    for points in segments:
        if len(points) == 1:
            cx, cy = points[0].split(",")
            frame.parts.append(f'<circle cx="{cx}" cy="{cy}" r="2.5" fill="{series.color}"/>')
        elif points:
            frame.parts.append(
                f'<polyline points="{" ".join(points)}" fill="none" stroke="{series.color}" stroke-width="1.6"{dash}/>'
            )


def _legend(frame: _Frame, entries: Sequence[tuple[str, str]]) -> None:
    x = _MARGIN_LEFT + 4
    for name, color in entries:
        frame.parts.append(
            f'<rect x="{x}" y="{_MARGIN_TOP - 14}" width="10" height="10" fill="{color}"/>'
            f'<text x="{x + 14}" y="{_MARGIN_TOP - 5}" style="{FONT}">{escape(name)}</text>'
        )
        x += 24 + 6 * len(name)


def _svg(title: str, frame: _Frame) -> str:
    return (
        f'<figure class="chart"><figcaption>{escape(title)}</figcaption>'
        f'<svg width="{frame.width}" height="{frame.height}" viewBox="0 0 {frame.width} {frame.height}" '
        f'role="img" aria-label="{escape(title)}">{"".join(frame.parts)}</svg></figure>'
    )


def _empty(title: str, width: int, height: int, note: str) -> str:
    return (
        f'<figure class="chart"><figcaption>{escape(title)}</figcaption>'
        f'<svg width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{escape(title)}">'
        f'<rect x="1" y="1" width="{width - 2}" height="{height - 2}" fill="#fafafa" stroke="#ddd"/>'
        f'<text x="{width / 2}" y="{height / 2}" text-anchor="middle" fill="#888" style="{FONT}">{escape(note)}</text>'
        f"</svg></figure>"
    )
