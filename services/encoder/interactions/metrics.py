"""Prometheus metrics of the interactions role: interactions applied, and skipped with the reason why."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter


class InteractionMetrics:
    """The role's metrics in its service's registry; implements the ingestion's observer."""

    def __init__(self, registry: CollectorRegistry) -> None:
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

    def interaction_applied(self) -> None:
        self.applied.inc()

    def interaction_skipped(self, reason: str) -> None:
        self.skipped.labels(reason).inc()
