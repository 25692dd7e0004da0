"""The interactions role's metrics: what a refresh's report sets."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from recsys.encoder.interactions.behavior_refresh import RefreshReport
from recsys.encoder.interactions.metrics import InteractionMetrics


def report(item_evidence_k: float) -> RefreshReport:
    return RefreshReport(1, 10, 5, 3, 0, 0.1, 0.2, 0.3, item_evidence_k=item_evidence_k)


def test_the_item_evidence_k_of_the_content_map_a_refresh_fit_is_exported() -> None:
    registry = CollectorRegistry()
    metrics = InteractionMetrics(registry, 60.0)

    metrics.refresh_succeeded(report(1.0))
    assert registry.get_sample_value("recsys_content_map_item_evidence_k") == 1.0
    metrics.refresh_succeeded(report(10.0))
    assert registry.get_sample_value("recsys_content_map_item_evidence_k") == 10.0
