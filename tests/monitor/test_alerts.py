"""Alert policy: one drift alert per episode, a cooldown against flapping, one alert per anomaly."""

from __future__ import annotations

import json

from recsys.monitor.alerts import ANOMALY_EVENT, DRIFT_EVENT, AlertPolicy
from recsys.monitor.anomalies import Anomaly, AnomalyKind
from recsys.monitor.drift import DriftReport

SPACE = "items.content"


def report(drifted: bool, sufficient: bool = True, p: float = 0.01) -> DriftReport:
    return DriftReport(
        space=SPACE,
        reference_size=40,
        current_size=40,
        sufficient=sufficient,
        reason="" if sufficient else "short",
        permutations=100,
        alpha=0.05,
        computed_at=0.0,
        drifted=drifted,
        mmd2=0.1 if sufficient else None,
        p_value=(p if drifted else 0.5) if sufficient else None,
    )


def test_a_drift_episode_is_alerted_once_however_often_it_is_evaluated() -> None:
    policy = AlertPolicy(cooldown_s=0)
    sent = 0
    for now in range(10):
        policy.observe_report(report(drifted=True), float(now))
        alert = policy.due_drift_alert(SPACE)
        if alert is not None:
            policy.sent(alert, float(now))
            sent += 1

    assert sent == 1


def test_a_new_episode_after_recovery_is_alerted_again_once_cooled_down() -> None:
    policy = AlertPolicy(cooldown_s=100)
    policy.observe_report(report(drifted=True), 0.0)
    policy.sent(policy.due_drift_alert(SPACE), 0.0)  # type: ignore[arg-type]

    policy.observe_report(report(drifted=False), 10.0)
    policy.observe_report(report(drifted=True), 20.0)
    within_cooldown = policy.due_drift_alert(SPACE)
    policy.observe_report(report(drifted=False), 200.0)
    policy.observe_report(report(drifted=True), 210.0)
    after_cooldown = policy.due_drift_alert(SPACE)

    assert within_cooldown is None
    assert after_cooldown is not None and after_cooldown.event == DRIFT_EVENT


def test_an_unsent_drift_alert_stays_due() -> None:
    policy = AlertPolicy(cooldown_s=0)
    policy.observe_report(report(drifted=True), 0.0)
    first = policy.due_drift_alert(SPACE)
    policy.observe_report(report(drifted=True), 1.0)

    assert first is not None
    assert policy.due_drift_alert(SPACE) is first


def test_an_insufficient_report_neither_opens_nor_closes_an_episode() -> None:
    policy = AlertPolicy(cooldown_s=0)
    policy.observe_report(report(drifted=False, sufficient=False), 0.0)
    assert policy.due_drift_alert(SPACE) is None

    policy.observe_report(report(drifted=True), 1.0)
    policy.sent(policy.due_drift_alert(SPACE), 1.0)  # type: ignore[arg-type]
    policy.observe_report(report(drifted=False, sufficient=False), 2.0)
    policy.observe_report(report(drifted=True), 3.0)

    assert policy.due_drift_alert(SPACE) is None


def test_drift_alert_fields_carry_space_statistics_and_reason() -> None:
    policy = AlertPolicy(cooldown_s=0)
    policy.observe_report(report(drifted=True, p=0.0099), 0.0)

    fields = policy.due_drift_alert(SPACE).to_fields()  # type: ignore[union-attr]
    data = json.loads(fields["data"])

    assert fields["event"] == DRIFT_EVENT
    assert data["space"] == SPACE
    assert data["statistics"]["p_value"] == 0.0099
    assert "p-value" in data["reason"]


def test_an_anomaly_is_alerted_once_per_cooldown() -> None:
    policy = AlertPolicy(cooldown_s=60)
    anomaly = Anomaly(AnomalyKind.DEGENERATE_VECTOR, SPACE, "a", float("nan"), 0.0, 0.0, "zero vector")

    first = policy.anomaly_alert_due(anomaly, 0.0)
    assert first is not None and first.event == ANOMALY_EVENT
    policy.sent(first, 0.0)

    assert policy.anomaly_alert_due(anomaly, 30.0) is None
    assert policy.anomaly_alert_due(anomaly, 61.0) is not None
    # NaN never reaches the JSON of the stream.
    assert json.loads(first.to_fields()["data"])["statistics"]["score"] is None
