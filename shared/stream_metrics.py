"""Prometheus metrics of stream consumption: what each group processed, failed, dead-lettered, and lost to the cap."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge

from recsys.shared.stream_backlog import StreamBacklog


class StreamMetrics:
    """Counters per stream and group in a service's registry; gauges of each stream's backlog, measured
    every stream_metrics_interval_s by the subscriptions that read it."""

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
        self.length = Gauge("recsys_stream_length", "Entries in the stream", ["stream"], registry=registry)
        self.dead_letter_length = Gauge(
            "recsys_stream_dead_letter_length",
            "Entries in the stream's dead-letter stream (malformed or repeatedly failing, kept for a person)",
            ["stream"],
            registry=registry,
        )
        self.oldest_pending_age = Gauge(
            "recsys_stream_group_oldest_pending_age_seconds",
            "Age of the group's oldest pending entry (read, not acknowledged), from its id; 0 when none",
            labels,
            registry=registry,
        )
        self.lag = Gauge(
            "recsys_stream_group_lag",
            "Entries the group has not read yet",
            labels,
            registry=registry,
        )
        self.pending = Gauge(
            "recsys_stream_group_pending",
            "Entries read but not acknowledged",
            labels,
            registry=registry,
        )

    def start_counting(self, stream: str, group: str) -> None:
        """Makes a consumer's series exist at 0 before anything happens, so that rate() and increase() (and the
        alerts built on them) see the first dead letter or failure, not only the ones after it."""
        self.processed.labels(stream, group)
        self.dead_lettered.labels(stream, group)
        for kind in ("entry", "transient"):
            self.failed.labels(stream, group, kind)
        self.dropped_unread.labels(stream)

    def record_backlog(self, backlog: StreamBacklog) -> None:
        self.length.labels(backlog.stream).set(backlog.length)
        self.dead_letter_length.labels(backlog.stream).set(backlog.dead_letter_length)
        for group, measured in backlog.groups.items():
            self.lag.labels(backlog.stream, group).set(measured.lag)
            self.pending.labels(backlog.stream, group).set(measured.pending)
            self.oldest_pending_age.labels(backlog.stream, group).set(measured.oldest_pending_age_s)
