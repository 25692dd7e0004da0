"""Prometheus metrics of the interactions role: interactions applied or skipped, and the behavior refresh."""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from recsys.encoder.interactions.behavior_refresh import RefreshReport

# Why ingestion skips an interaction (ingestion.py); each series exists from the start, at 0, so that
# increase() sees the first one.
SKIP_REASONS = ("item_deleted", "item_replay_horizon", "user_replay_horizon")
# A refresh of a small catalog takes a second; of millions of interactions, many minutes.
REFRESH_BUCKETS_S = (1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1200.0, 1800.0, 3600.0)


class InteractionMetrics:
    """The role's metrics in its service's registry; implements the ingestion's and the refresh's observers."""

    def __init__(self, registry: CollectorRegistry, refresh_interval_s: float) -> None:
        self.applied = Counter(
            "recsys_interactions_applied", "Interactions applied to a user (counted once each)", registry=registry
        )
        self.skipped = Counter(
            "recsys_interactions_skipped",
            "Interactions not applied: item_deleted (a tombstone), item_replay_horizon or user_replay_horizon"
            " (older than what the item or user still remembers, so possibly counted already)",
            ["reason"],
            registry=registry,
        )
        for reason in SKIP_REASONS:
            self.skipped.labels(reason)
        self.refresh_seconds = Histogram(
            "recsys_behavior_refresh_duration_seconds",
            "Time a behavior refresh took from reading the log to the last vector written",
            buckets=REFRESH_BUCKETS_S,
            registry=registry,
        )
        self.refresh_phase_seconds = Gauge(
            "recsys_behavior_refresh_phase_seconds",
            "Time each phase of the last refresh written here took (read, factorize, write)",
            ["phase"],
            registry=registry,
        )
        self.refresh_failures = Counter(
            "recsys_behavior_refresh_failures", "Behavior refreshes that failed (old vectors kept)", registry=registry
        )
        self.refresh_last_success = Gauge(
            "recsys_behavior_refresh_last_success_timestamp_seconds",
            "Unix time the last refresh written by this process finished",
            registry=registry,
        )
        self.behavior_version = Gauge(
            "recsys_behavior_version",
            "Behavior version of the last refresh written by this process (milliseconds since the epoch)",
            registry=registry,
        )
        self.refresh_interactions = Gauge(
            "recsys_behavior_refresh_interactions",
            "Interactions in the log the last refresh written here was fitted on",
            registry=registry,
        )
        self.blend_weight = Gauge(
            "recsys_blend_weight",
            "ForYou weight of each signal the last refresh written here chose (evidence_k: the user evidence constant)",
            ["signal"],
            registry=registry,
        )
        self.event_type_weight = Gauge(
            "recsys_event_type_weight",
            "Weight of each interaction type in the collaborative model the last refresh written here fit",
            ["type"],
            registry=registry,
        )
        self.item_evidence_k = Gauge(
            "recsys_content_map_item_evidence_k",
            "Item evidence constant k of the content map this process's last refresh fit (an item's own vector counts"
            " n/(n+k), n its interactions): the configured one, or the one its tuner chose",
            registry=registry,
        )
        self.blend_self_tuned = Gauge(
            "recsys_blend_self_tuned",
            "1 when the last refresh tuned the ForYou weights on recent events, 0 when it kept the configured ones",
            registry=registry,
        )
        self.blend_validation_ndcg = Gauge(
            "recsys_blend_validation_ndcg",
            "NDCG@10 on the refresh's validation split: of the chosen weights, the configured defaults, popularity",
            ["ranking"],
            registry=registry,
        )
        # A configured value, exported so an alert can say "stale" relative to it.
        Gauge(
            "recsys_behavior_refresh_interval_seconds",
            "Longest a refresh waits while interactions are waiting (RECSYS_BEHAVIOR_REFRESH_INTERVAL_S)",
            registry=registry,
        ).set(refresh_interval_s)

    def interaction_applied(self) -> None:
        self.applied.inc()

    def interaction_skipped(self, reason: str) -> None:
        self.skipped.labels(reason).inc()

    def refresh_succeeded(self, report: RefreshReport) -> None:
        self.refresh_seconds.observe(report.read_s + report.factorize_s + report.write_s)
        for phase, seconds in (("read", report.read_s), ("factorize", report.factorize_s), ("write", report.write_s)):
            self.refresh_phase_seconds.labels(phase).set(seconds)
        self.refresh_last_success.set(time.time())
        self.behavior_version.set(report.version)
        self.refresh_interactions.set(report.interactions)
        tuning = report.blend_tuning or {}
        self.blend_self_tuned.set(tuning.get("self_tuned", 0.0))
        for signal, weight in (report.blend_weights or {}).items():
            self.blend_weight.labels(signal).set(weight)
        for ranking, key in (("tuned", "ndcg"), ("defaults", "defaults_ndcg"), ("popularity", "popularity_ndcg")):
            if key in tuning:
                self.blend_validation_ndcg.labels(ranking).set(tuning[key])
        for kind, weight in (report.event_type_weights or {}).items():
            self.event_type_weight.labels(kind).set(weight)
        if report.item_evidence_k is not None:
            self.item_evidence_k.set(report.item_evidence_k)

    def refresh_failed(self) -> None:
        self.refresh_failures.inc()
