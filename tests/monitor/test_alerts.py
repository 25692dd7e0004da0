"""Alert policy: one drift alert per episode, a cooldown against flapping, one alert per anomaly."""

from __future__ import annotations

import json

from recsys.monitor.alerts import ANOMALY_EVENT, DRIFT_EVENT, AlertPolicy, alert_record
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


def test_a_restored_policy_neither_realerts_an_open_episode_nor_forgets_a_cooldown() -> None:
    policy = AlertPolicy(cooldown_s=60)
    policy.observe_report(report(drifted=True), 0.0)
    policy.sent(policy.due_drift_alert(SPACE), 0.0)  # type: ignore[arg-type]
    anomaly = Anomaly(AnomalyKind.OUTLIER, SPACE, "a", 0.9, 0.5, 0.0, "far")
    policy.sent(policy.anomaly_alert_due(anomaly, 0.0), 0.0)  # type: ignore[arg-type]

    restored = AlertPolicy(cooldown_s=60)
    restored.restore(json.loads(json.dumps(policy.export())))
    restored.observe_report(report(drifted=True), 5000.0)  # the same episode, long after the cooldown

    assert restored.due_drift_alert(SPACE) is None
    assert restored.anomaly_alert_due(anomaly, 30.0) is None
    assert restored.anomaly_alert_due(anomaly, 61.0) is not None


def test_alerts_read_back_from_their_stream_fields() -> None:
    policy = AlertPolicy(cooldown_s=0)
    policy.observe_report(report(drifted=True, p=0.01), 0.0)
    drift = alert_record("5-0", policy.due_drift_alert(SPACE).to_fields())  # type: ignore[union-attr]
    anomaly = Anomaly(AnomalyKind.BOT_LIKE_USER, "interactions", "u1", 31.0, 30.0, 7.0, "31 events within 60 s")
    bot = alert_record("6-0", policy.anomaly_alert_due(anomaly, 0.0).to_fields())  # type: ignore[union-attr]

    assert (drift.entry_id, drift.event, drift.kind, drift.subject) == ("5-0", DRIFT_EVENT, "drift", SPACE)
    assert drift.statistics["p_value"] == 0.01 and "mmd2" in drift.statistics
    assert (bot.kind, bot.subject, bot.space, bot.at) == ("bot_like_user", "u1", "interactions", 7.0)
    assert bot.statistics == {"score": 31.0, "threshold": 30.0}
    assert alert_record("7-0", {"event": "x", "data": "not json"}).kind == "unknown"
