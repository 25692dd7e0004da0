"""The monitor's settings: windows, drift test, anomaly thresholds, alerting and state."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, model_validator

from recsys.monitor.windows import ReferenceMode
from recsys.shared.settings import ConnectionSettings

# Windows are compared through a pooled kernel matrix of (reference + current)² float32 entries:
# 10,000 + 10,000 vectors take 1.6 GB, which is where the sizes stop.
MAX_WINDOW = 10_000


class MonitorSettings(ConnectionSettings):
    """Every knob of the monitor; each can be set as RECSYS_<FIELD> in the environment."""

    monitor_host: str = Field("0.0.0.0", description="Interface the gRPC server binds.")
    monitor_port: int = Field(50053, ge=0, le=65535, description="gRPC port; 0 picks a free one (tests).")
    monitor_health_port: int = Field(
        -1,
        ge=-1,
        le=65535,
        description="Port of a plaintext server with only gRPC health, for Kubernetes probes (they cannot speak"
        " TLS); -1 serves none, 0 picks a free one.",
    )
    metrics_port: int = Field(
        9090, ge=-1, le=65535, description="Prometheus /metrics port; 0 picks a free one, -1 serves none."
    )

    reference_mode: ReferenceMode = Field(
        ReferenceMode.FIRST,
        description="Reference window per space: 'first' (the first reference_size subjects seen, then frozen), "
        "'pinned' (a reservoir sample of what changed before reference_pinned_at), 'trailing' (the vectors "
        "that last left the current window).",
    )
    reference_pinned_at: float = Field(
        0.0, ge=0, description="Pinned mode: vectors that changed before this Unix time form the reference."
    )
    reference_size: int = Field(
        500,
        ge=2,
        le=MAX_WINDOW,
        description="Most vectors in a reference window (one per subject).",
    )
    current_size: int = Field(
        500,
        ge=2,
        le=MAX_WINDOW,
        description="Most vectors in a current window: the latest vector of the most recently changed subjects.",
    )
    current_window_s: float = Field(
        0.0,
        ge=0,
        description="0: the current window holds the latest current_size subjects; > 0: the subjects changed "
        "within this many seconds (a random sample of current_size when more).",
    )
    min_window: int = Field(
        30, ge=2, description="With fewer vectors in either window the drift report says so instead of giving figures."
    )
    permutations: int = Field(200, ge=1, description="Permutations behind the MMD² and classifier p-values.")
    alpha: float = Field(0.05, gt=0, lt=1, description="A space has drifted when the MMD² p-value is below this.")
    drift_seed: int = Field(0, ge=0, description="Seed of the permutation tests, so a report can be reproduced.")
    classifier_folds: int = Field(
        5, ge=2, le=20, description="Cross-validation folds of the domain classifier (its AUC)."
    )
    evaluate_interval_s: float = Field(10.0, gt=0, description="How often every space's drift report is recomputed.")
    report_history_size: int = Field(
        2000, ge=10, description="Drift reports kept per space for the history (and the HTML report's plots)."
    )

    near_duplicate_cosine: float = Field(
        0.98, gt=0, le=1, description="Two different items this similar (cosine) are near-duplicates."
    )
    degenerate_norm_ratio: float = Field(
        10.0,
        gt=1,
        description="A vector with a norm outside [median/ratio, median*ratio] of the current window is degenerate.",
    )
    outlier_neighbors: int = Field(
        5, ge=1, description="An item is an outlier by the cosine distance to its k-th nearest reference vector: k."
    )
    outlier_quantile: float = Field(
        0.999,
        gt=0.5,
        lt=1,
        description="An item is an outlier when that distance exceeds this quantile of the reference's own.",
    )
    bot_burst_events: int = Field(
        30, ge=2, description="A user with this many events within bot_burst_window_s is bot-like."
    )
    bot_burst_window_s: float = Field(60.0, gt=0, description="The window of bot_burst_events.")
    bot_regular_events: int = Field(
        20, ge=3, description="Timing regularity is judged over a user's last this many events."
    )
    bot_regular_cv: float = Field(
        0.1,
        ge=0,
        description="Intervals between those events with a coefficient of variation at or below this are machine-like.",
    )
    spike_window_s: float = Field(
        300.0, gt=0, description="An item's recent event rate is measured over about this many seconds."
    )
    spike_baseline_s: float = Field(
        86_400.0, gt=0, description="An item's usual event rate is measured over about this many seconds."
    )
    spike_ratio: float = Field(
        10.0, gt=1, description="A recent rate this many times the usual one (relative to all traffic) is a spike."
    )
    spike_min_events: int = Field(20, ge=1, description="Fewest recent events of an item for a spike.")
    traffic_tracked: int = Field(
        100_000, ge=100, description="Users and items whose traffic is followed at once (least recent forgotten)."
    )
    anomaly_capacity: int = Field(1000, ge=1, description="Anomalies kept for ListAnomalies (newest first).")

    monitor_group: str = Field("monitor", description="Consumer group reading the embeddings notice stream.")
    monitor_interactions_group: str = Field(
        "monitor-interactions", description="Consumer group reading the interactions stream (bots, spikes)."
    )
    fetch_batch_size: int = Field(64, ge=1, description="Most vectors read from Qdrant in one retrieve.")
    fetch_batch_wait_ms: float = Field(
        5.0, ge=0, description="How long a vector read waits for others to share its retrieve."
    )

    alert_cooldown_s: float = Field(
        3600.0,
        ge=0,
        description="After an alert, the same space's drift or the same anomaly is not alerted again for this long.",
    )
    alerts_stream_maxlen: int = Field(10_000, ge=100, description="Approximate cap of the alerts stream.")
    max_alert_watchers: int = Field(
        512,
        ge=1,
        description="Open WatchAlerts streams a monitor serves at once (one Redis reader feeds them all); past it"
        " a new one is RESOURCE_EXHAUSTED. Keep it below RECSYS_GRPC_MAX_CONCURRENT_RPCS.",
    )
    state_interval_s: float = Field(
        10.0,
        gt=0,
        description="How often the monitor's state is saved under data_dir/monitor; the notices and interactions it"
        " learned from are acknowledged only once saved, so a crash loses nothing (they are read again).",
    )

    @model_validator(mode="after")
    def _windows_can_be_sufficient(self) -> MonitorSettings:
        for name in ("reference_size", "current_size"):
            if getattr(self, name) < self.min_window:
                raise ValueError(
                    f"{name} {getattr(self, name)} is below min_window {self.min_window}: no report could ever be given"
                )
        if self.reference_mode == ReferenceMode.PINNED and not self.reference_pinned_at:
            raise ValueError("reference_mode 'pinned' needs reference_pinned_at (Unix seconds)")
        return self

    @property
    def state_dir(self) -> Path:
        return self.data_dir / "monitor"
