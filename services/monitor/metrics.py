"""Prometheus /metrics of the monitor: the latest drift figures per space and anomaly counts."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

from recsys.monitor.alerts import ANOMALY_EVENT, DRIFT_EVENT
from recsys.monitor.anomalies import Anomaly
from recsys.monitor.drift import DriftReport
from recsys.shared.metrics_endpoint import service_registry


class MonitorMetrics:
    """One registry per service instance, so several monitors in one process (tests) never collide."""

    def __init__(self) -> None:
        self.registry = service_registry()
        labels = ["space"]
        self.mmd2 = Gauge(
            "recsys_drift_mmd2", "Unbiased MMD² of current vs reference window", labels, registry=self.registry
        )
        self.p_value = Gauge("recsys_drift_p_value", "Permutation p-value of the MMD²", labels, registry=self.registry)
        self.centroid_distance = Gauge(
            "recsys_drift_centroid_cosine_distance",
            "Cosine distance of the window centroids",
            labels,
            registry=self.registry,
        )
        self.drifted = Gauge("recsys_drift_detected", "1 when the space has drifted", labels, registry=self.registry)
        self.classifier_auc = Gauge(
            "recsys_drift_classifier_auc",
            "Cross-validated AUC of a classifier telling current from reference (0.5: no difference)",
            labels,
            registry=self.registry,
        )
        self.dimension_share = Gauge(
            "recsys_drift_dimension_share",
            "Share of dimensions drifted (KS per dimension, Benjamini-Hochberg)",
            labels,
            registry=self.registry,
        )
        self.effective_rank = Gauge(
            "recsys_window_effective_rank",
            "Effective rank of a window (collapse shows as a drop)",
            ["space", "window"],
            registry=self.registry,
        )
        self.mean_pairwise_cosine = Gauge(
            "recsys_window_mean_pairwise_cosine",
            "Mean cosine between the vectors of a window (collapse shows as a rise towards 1)",
            ["space", "window"],
            registry=self.registry,
        )
        self.alerts = Counter("recsys_alerts", "Alerts published", ["event"], registry=self.registry)
        for event in (DRIFT_EVENT, ANOMALY_EVENT):  # at 0 from the start, so increase() sees the first one
            self.alerts.labels(event)
        self.window_size = Gauge(
            "recsys_window_vectors", "Vectors in a window", ["space", "window"], registry=self.registry
        )
        self.anomalies = Counter("recsys_anomalies", "Anomalies found", ["space", "kind"], registry=self.registry)

    def record_report(self, report: DriftReport) -> None:
        self.window_size.labels(report.space, "reference").set(report.reference_size)
        self.window_size.labels(report.space, "current").set(report.current_size)
        if not report.sufficient:
            return
        self.mmd2.labels(report.space).set(report.mmd2 or 0.0)
        self.p_value.labels(report.space).set(report.p_value if report.p_value is not None else 1.0)
        self.centroid_distance.labels(report.space).set(report.centroid_cosine_distance or 0.0)
        self.drifted.labels(report.space).set(1.0 if report.drifted else 0.0)
        if report.classifier_auc is not None:
            self.classifier_auc.labels(report.space).set(report.classifier_auc)
        if report.drifted_dimension_share is not None:
            self.dimension_share.labels(report.space).set(report.drifted_dimension_share)
        for window, profile in (("reference", report.reference_profile), ("current", report.current_profile)):
            if profile is not None:
                self.effective_rank.labels(report.space, window).set(profile.effective_rank)
                self.mean_pairwise_cosine.labels(report.space, window).set(profile.mean_pairwise_cosine)

    def record_alert(self, event: str) -> None:
        self.alerts.labels(event).inc()

    def record_anomaly(self, anomaly: Anomaly) -> None:
        self.anomalies.labels(anomaly.space, anomaly.kind.value).inc()
