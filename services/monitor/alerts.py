"""When to alert (once per drift episode, once per new anomaly, with a cooldown), what it says, how it reads back."""

from __future__ import annotations

import json
import math
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from recsys.monitor.anomalies import Anomaly
from recsys.monitor.drift import DriftReport

DRIFT_EVENT = "drift.detected"
ANOMALY_EVENT = "anomaly.detected"


@dataclass(frozen=True)
class Alert:
    """One entry of the alerts stream: fields `event` and `data` (JSON), like every stream of the system."""

    event: str
    key: tuple[str, ...]
    data: dict[str, Any] = field(default_factory=dict)

    def to_fields(self) -> dict[str, str]:
        return {"event": self.event, "data": json.dumps(json_safe(self.data), sort_keys=True)}


@dataclass(frozen=True)
class AlertRecord:
    """An alert as read back from the alerts stream."""

    entry_id: str
    event: str
    space: str
    # "drift" for drift alerts, else the anomaly kind.
    kind: str
    # The space for drift alerts, else the anomaly's subject.
    subject: str
    reason: str
    # The numeric figures of the alert (null figures left out).
    statistics: dict[str, float]
    at: float
    explanation: tuple[str, ...]
    data_json: str


def drift_alert(report: DriftReport) -> Alert:
    reason = (
        f"MMD² {report.mmd2:.4g} with p-value {report.p_value:.4g} < alpha {report.alpha:g} "
        f"({report.current_size} current vs {report.reference_size} reference vectors)"
    )
    return Alert(
        DRIFT_EVENT,
        ("drift", report.space),
        {
            "space": report.space,
            "statistics": report.statistics(),
            "reason": reason,
            "explanation": list(report.explanation),
            "computed_at": report.computed_at,
        },
    )


def anomaly_alert(anomaly: Anomaly) -> Alert:
    return Alert(
        ANOMALY_EVENT,
        anomaly.key,
        {
            "space": anomaly.space,
            "kind": anomaly.kind.value,
            "subject": anomaly.subject,
            "statistics": {"score": anomaly.score, "threshold": anomaly.threshold},
            "reason": anomaly.detail,
            "detected_at": anomaly.detected_at,
        },
    )


@dataclass
class _DriftEpisode:
    open: bool = False
    pending: Alert | None = None


class AlertPolicy:
    """Decides which alerts go out; the caller publishes them and confirms with `sent`.

    Drift: an episode starts when a sufficient report says drifted and ends with a sufficient
    report that says not drifted; only the start is alerted, and not at all when the space was
    alerted less than cooldown_s ago (a p-value hovering around alpha must not flood the stream).
    An alert stays due until `sent` confirms it, so a failed publish is retried.
    Anomalies: one alert per (kind, space, subject) per cooldown_s.
    """

    def __init__(self, cooldown_s: float, remembered: int = 100_000) -> None:
        self.cooldown_s = cooldown_s
        self._remembered = remembered
        self._episodes: dict[str, _DriftEpisode] = {}
        # Last alert time per key, oldest first, bounded so a stream of distinct anomalies cannot grow it forever.
        self._last_sent: OrderedDict[tuple[str, ...], float] = OrderedDict()

    def observe_report(self, report: DriftReport, now: float) -> None:
        """Takes a freshly computed report into account."""
        if not report.sufficient:
            return
        episode = self._episodes.setdefault(report.space, _DriftEpisode())
        if not report.drifted:
            episode.open = False
            episode.pending = None
            return
        if not episode.open:
            episode.open = True
            if self._cooled_down(("drift", report.space), now):
                episode.pending = drift_alert(report)

    def due_drift_alert(self, space: str) -> Alert | None:
        episode = self._episodes.get(space)
        return episode.pending if episode else None

    def anomaly_alert_due(self, anomaly: Anomaly, now: float) -> Alert | None:
        return anomaly_alert(anomaly) if self._cooled_down(anomaly.key, now) else None

    def sent(self, alert: Alert, now: float) -> None:
        """The alert reached the stream."""
        self._last_sent.pop(alert.key, None)
        self._last_sent[alert.key] = now
        while len(self._last_sent) > self._remembered:
            self._last_sent.popitem(last=False)
        if alert.event == DRIFT_EVENT:
            episode = self._episodes.get(alert.key[1])
            if episode is not None and episode.pending is alert:
                episode.pending = None

    def _cooled_down(self, key: tuple[str, ...], now: float) -> bool:
        last = self._last_sent.get(key)
        return last is None or now - last >= self.cooldown_s

    def export(self) -> dict[str, Any]:
        """What must survive a restart: open episodes (not alerted again) and when each key was last alerted."""
        return {
            "open_episodes": sorted(space for space, episode in self._episodes.items() if episode.open),
            "last_sent": [[list(key), at] for key, at in self._last_sent.items()],
        }

    def restore(self, exported: dict[str, Any]) -> None:
        for space in exported.get("open_episodes", []):
            self._episodes.setdefault(space, _DriftEpisode()).open = True
        for key, at in exported.get("last_sent", []):
            self._last_sent[tuple(key)] = float(at)
        while len(self._last_sent) > self._remembered:
            self._last_sent.popitem(last=False)


def alert_record(entry_id: str, fields: dict[str, str]) -> AlertRecord:
    """An alerts-stream entry read back; anything that is not one of ours reads as an "unknown" record."""
    event = fields.get("event", "")
    raw = fields.get("data", "{}")
    try:
        data = json.loads(raw)
    except json.JSONDecodeError:
        data = {}
    if not isinstance(data, dict):
        data = {}
    statistics = data.get("statistics") if isinstance(data.get("statistics"), dict) else {}
    numbers = {
        name: float(value)
        for name, value in (statistics or {}).items()
        if isinstance(value, int | float) and not isinstance(value, bool)
    }
    space = str(data.get("space", ""))
    drift = event == DRIFT_EVENT
    explanation = data.get("explanation") if isinstance(data.get("explanation"), list) else []
    return AlertRecord(
        entry_id=entry_id,
        event=event,
        space=space,
        kind="drift" if drift else str(data.get("kind", "unknown")),
        subject=space if drift else str(data.get("subject", "")),
        reason=str(data.get("reason", "")),
        statistics=numbers,
        at=float(data.get("computed_at" if drift else "detected_at") or 0.0),
        explanation=tuple(str(line) for line in explanation or []),
        data_json=raw,
    )


def json_safe(value: Any) -> Any:
    """JSON has no NaN or infinity: such figures become null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return value
