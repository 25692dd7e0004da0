"""What the monitor saves and loads across restarts: each space's windows, the traffic watch (bots, spikes),
and one document with the latest reports, the history, the anomaly log and the alert state."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from typing import Any

from recsys.monitor.alerts import AlertPolicy, json_safe
from recsys.monitor.anomalies import AnomalyLog
from recsys.monitor.drift import DriftReport
from recsys.monitor.history import DriftHistory
from recsys.monitor.space_watch import SpaceWatch
from recsys.monitor.state_store import StateStore
from recsys.monitor.traffic import TrafficWatch
from recsys.monitor.windows import WindowError
from recsys.shared.logs import log_event

_log = logging.getLogger(__name__)

DOCUMENT_FORMAT = 1


class MonitorPersistence:
    """Writes only what changed since the last save: a space's windows when their version moved, the
    document when `changes` (a counter the service bumps on reports, anomalies and alerts) moved."""

    def __init__(
        self,
        store: StateStore,
        watches: Mapping[str, SpaceWatch],
        traffic: TrafficWatch,
        history: DriftHistory,
        anomalies: AnomalyLog,
        alerts: AlertPolicy,
        settings: dict[str, Any],
    ) -> None:
        self._store = store
        self._watches = watches
        self._traffic = traffic
        self._saved_traffic = 0
        self._history = history
        self._anomalies = anomalies
        self._alerts = alerts
        self._settings = settings
        self._saved_versions: dict[str, int] = {}
        self._saved_changes = -1
        # The previous run's reports stay in the document until fresh ones replace them.
        self._restored_reports: dict[str, Any] = {}

    def restore(self) -> None:
        """Loads whatever was saved; a missing or unreadable part starts empty (and is logged)."""
        for name, watch in self._watches.items():
            stored = self._store.load_space(name)
            if stored is None:
                continue
            try:
                watch.restore(*stored)
            except (WindowError, KeyError, ValueError, TypeError) as exc:
                log_event(_log, "state_restore_failed", logging.WARNING, space=name, error=repr(exc))
                continue
            self._saved_versions[name] = watch.windows.version
            log_event(
                _log,
                "windows_restored",
                space=name,
                reference_size=watch.windows.reference_count,
                current_size=watch.windows.current_count,
            )
        traffic = self._store.load_traffic()
        if traffic is not None:
            try:
                self._traffic.restore(*traffic)
                self._saved_traffic = self._traffic.version
            except (KeyError, ValueError, TypeError, IndexError) as exc:
                log_event(_log, "state_restore_failed", logging.WARNING, part="traffic", error=repr(exc))
        document = self._store.load_document()
        if document is None or document.get("format") != DOCUMENT_FORMAT:
            return
        try:
            self._restored_reports = dict(document.get("reports", {}))
            self._history.restore(document.get("history", {}))
            self._anomalies.restore(document.get("anomalies", []))
            self._alerts.restore(document.get("alerts", {}))
        except (KeyError, ValueError, TypeError) as exc:
            log_event(_log, "state_restore_failed", logging.WARNING, part="document", error=repr(exc))

    async def save(self, reports: Mapping[str, DriftReport], changes: int) -> None:
        """Gathers the state on the event loop (consistent), writes it off the loop."""
        for name, watch in self._watches.items():
            version = watch.windows.version
            if self._saved_versions.get(name) == version:
                continue
            arrays, meta = watch.export()
            await asyncio.to_thread(self._store.save_space, name, arrays, meta)
            self._saved_versions[name] = version
        if self._traffic.version != self._saved_traffic:
            version = self._traffic.version
            arrays, meta = self._traffic.export()
            await asyncio.to_thread(self._store.save_traffic, arrays, meta)
            self._saved_traffic = version
        if changes != self._saved_changes:
            document = {
                "format": DOCUMENT_FORMAT,
                "saved_at": time.time(),
                "settings": self._settings,
                "reports": self._restored_reports | {space: report.to_dict() for space, report in reports.items()},
                "history": self._history.export(),
                "anomalies": self._anomalies.export(),
                "alerts": self._alerts.export(),
            }
            await asyncio.to_thread(self._store.save_document, json_safe(document))
            self._saved_changes = changes
