"""The monitor's settings: window sizes, drift test, anomaly thresholds and alerting."""

from __future__ import annotations

from pydantic import Field, model_validator

from recsys.shared.settings import ConnectionSettings


class MonitorSettings(ConnectionSettings):
    """Every knob of the monitor; each can be set as RECSYS_<FIELD> in the environment."""

    monitor_host: str = Field("0.0.0.0", description="Interface the gRPC server binds.")
    monitor_port: int = Field(50053, ge=0, le=65535, description="gRPC port; 0 picks a free one (tests).")
    metrics_port: int = Field(
        9090, ge=-1, le=65535, description="Prometheus /metrics port; 0 picks a free one, -1 serves none."
    )

    reference_size: int = Field(
        500,
        ge=2,
        description="The first this many vectors seen in a space (one per subject) form its reference window.",
    )
    current_size: int = Field(
        500, ge=2, description="The current window holds the latest vector of the most recently changed subjects."
    )
    min_window: int = Field(
        30, ge=2, description="With fewer vectors in either window the drift report says so instead of giving figures."
    )
    permutations: int = Field(200, ge=1, description="Permutations behind the MMD² p-value.")
    alpha: float = Field(0.05, gt=0, lt=1, description="A space has drifted when the p-value is below this.")
    drift_seed: int = Field(0, ge=0, description="Seed of the permutation test, so a report can be reproduced.")
    evaluate_interval_s: float = Field(10.0, gt=0, description="How often every space's drift report is recomputed.")

    near_duplicate_cosine: float = Field(
        0.98, gt=0, le=1, description="Two different subjects this similar (cosine) are near-duplicates."
    )
    degenerate_norm_ratio: float = Field(
        10.0,
        gt=1,
        description="A vector with a norm outside [median/ratio, median*ratio] of the current window is degenerate.",
    )
    anomaly_capacity: int = Field(1000, ge=1, description="Anomalies kept for ListAnomalies (newest first).")

    monitor_group: str = Field("monitor", description="Consumer group reading the embeddings notice stream.")
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

    @model_validator(mode="after")
    def _windows_can_be_sufficient(self) -> MonitorSettings:
        for name in ("reference_size", "current_size"):
            if getattr(self, name) < self.min_window:
                raise ValueError(
                    f"{name} {getattr(self, name)} is below min_window {self.min_window}: no report could ever be given"
                )
        return self

    @property
    def grpc_address(self) -> str:
        return f"{self.monitor_host}:{self.monitor_port}"
