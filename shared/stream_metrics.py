"""Prometheus metrics of stream consumption: what each group processed, failed, dead-lettered, and lost to the cap."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge


class StreamMetrics:
    """Counters per stream and group in a service's registry; retention passes also set lengths and lags."""

    def __init__(self, registry: CollectorRegistry) -> None:
        labels = ["stream", "group"]
        self.processed = Counter(
            "recsys_stream_entries_processed",
            "Entries handled to the end (applied or skipped)",
            labels,
            registry=registry,
        )
        self.failed = Counter(
            "recsys_stream_entries_failed",
            "Attempts that failed: kind=entry counts toward the dead-letter stream, kind=transient (a dependency"
            " down or busy) does not",
            [*labels, "kind"],
            registry=registry,
        )
        self.dead_lettered = Counter(
            "recsys_stream_entries_dead_lettered", "Entries sent to the dead-letter stream", labels, registry=registry
        )
        self.dropped_unread = Counter(
            "recsys_stream_entries_dropped_unread",
            "Entries deleted by the hard cap before every group processed them (data lost)",
            ["stream"],
            registry=registry,
        )
        self.length = Gauge(
            "recsys_stream_length", "Entries in the stream (last retention pass)", ["stream"], registry=registry
        )
        self.lag = Gauge(
            "recsys_stream_group_lag",
            "Entries the group has not read yet (last retention pass)",
            labels,
            registry=registry,
        )
        self.pending = Gauge(
            "recsys_stream_group_pending",
            "Entries read but not acknowledged (last retention pass)",
            labels,
            registry=registry,
        )
