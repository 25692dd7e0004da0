"""The gRPC face of the monitor: recsys.v1.MonitorService translated to and from the service's methods."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Protocol

import grpc

from recsys.monitor.alerts import AlertRecord
from recsys.monitor.anomalies import Anomaly
from recsys.monitor.drift import DriftReport
from recsys.monitor.geometry import WindowProfile
from recsys.shared.grpc_server import maps_errors, status_for
from recsys.shared.logs import log_event
from recsys_client.api import monitor_pb2, monitor_pb2_grpc

_log = logging.getLogger(__name__)


class MonitorQueries(Protocol):
    """What the servicer needs from the monitor (MonitorService provides it)."""

    async def drift_report(self, space: str) -> DriftReport: ...

    async def reset_reference(self, space: str) -> DriftReport: ...

    def anomalies(self, kind: str = "", limit: int = 0, space: str = "") -> list[Anomaly]: ...

    def watch_alerts(self, after_id: str = "", event: str = "", space: str = "") -> AsyncIterator[AlertRecord]: ...


class MonitorServicer(monitor_pb2_grpc.MonitorServiceServicer):
    def __init__(self, monitor: MonitorQueries) -> None:
        self._monitor = monitor

    @maps_errors
    async def GetDriftReport(
        self, request: monitor_pb2.GetDriftReportRequest, context: grpc.aio.ServicerContext
    ) -> monitor_pb2.GetDriftReportResponse:
        report = await self._monitor.drift_report(request.space)
        return monitor_pb2.GetDriftReportResponse(report=drift_report_message(report))

    @maps_errors
    async def ListAnomalies(
        self, request: monitor_pb2.ListAnomaliesRequest, context: grpc.aio.ServicerContext
    ) -> monitor_pb2.ListAnomaliesResponse:
        found = self._monitor.anomalies(request.kind, request.limit, request.space)
        return monitor_pb2.ListAnomaliesResponse(anomalies=[anomaly_message(a) for a in found])

    @maps_errors
    async def ResetReference(
        self, request: monitor_pb2.ResetReferenceRequest, context: grpc.aio.ServicerContext
    ) -> monitor_pb2.ResetReferenceResponse:
        report = await self._monitor.reset_reference(request.space)
        return monitor_pb2.ResetReferenceResponse(report=drift_report_message(report))

    async def WatchAlerts(
        self, request: monitor_pb2.WatchAlertsRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[monitor_pb2.WatchAlertsResponse]:
        # maps_errors wraps unary calls; a stream maps its errors here, before and while it runs.
        try:
            alerts = self._monitor.watch_alerts(request.after_id, request.event, request.space)
            async for record in alerts:
                yield monitor_pb2.WatchAlertsResponse(alert=alert_message(record))
        except Exception as exc:
            code = status_for(exc)
            if code is None:
                log_event(_log, "rpc_failed", logging.ERROR, method="WatchAlerts", error=repr(exc))
                await context.abort(grpc.StatusCode.UNAVAILABLE, f"alerts stream failed: {type(exc).__name__}")
            await context.abort(code, str(exc))  # type: ignore[arg-type]


def drift_report_message(report: DriftReport) -> monitor_pb2.DriftReport:
    message = monitor_pb2.DriftReport(
        space=report.space,
        reference_size=report.reference_size,
        current_size=report.current_size,
        sufficient=report.sufficient,
        reason=report.reason,
        permutations=report.permutations,
        alpha=report.alpha,
        drifted=report.drifted,
        computed_at=report.computed_at,
        explanation=list(report.explanation),
        reference_mode=report.reference_mode,
        version=report.version,
    )
    if report.sufficient:
        message.centroid_cosine_distance = report.centroid_cosine_distance or 0.0
        message.centroid_euclidean_distance = report.centroid_euclidean_distance or 0.0
        message.mmd2 = report.mmd2 or 0.0
        message.p_value = report.p_value or 0.0
        message.kernel_sigma = report.kernel_sigma or 0.0
        message.mmd2_threshold = report.mmd2_threshold or 0.0
        message.classifier_auc = report.classifier_auc or 0.0
        message.classifier_p_value = report.classifier_p_value or 0.0
        message.dimensions = report.dimensions or 0
        message.drifted_dimensions = report.drifted_dimensions or 0
        message.drifted_dimension_share = report.drifted_dimension_share or 0.0
        message.top_dimensions.extend(
            monitor_pb2.DimensionShift(
                dimension=s.dimension, ks_statistic=s.ks_statistic, q_value=s.q_value, mean_shift=s.mean_shift
            )
            for s in report.top_dimensions
        )
        if report.reference_profile is not None:
            message.reference_profile.CopyFrom(profile_message(report.reference_profile))
        if report.current_profile is not None:
            message.current_profile.CopyFrom(profile_message(report.current_profile))
    return message


def profile_message(profile: WindowProfile) -> monitor_pb2.WindowProfile:
    return monitor_pb2.WindowProfile(
        norm_mean=profile.norm_mean,
        norm_std=profile.norm_std,
        norm_min=profile.norm_min,
        norm_max=profile.norm_max,
        mean_pairwise_cosine=profile.mean_pairwise_cosine,
        effective_rank=profile.effective_rank,
    )


def anomaly_message(anomaly: Anomaly) -> monitor_pb2.Anomaly:
    return monitor_pb2.Anomaly(
        kind=anomaly.kind.value,
        space=anomaly.space,
        subject=anomaly.subject,
        score=anomaly.score,
        threshold=anomaly.threshold,
        detected_at=anomaly.detected_at,
        detail=anomaly.detail,
    )


def alert_message(record: AlertRecord) -> monitor_pb2.Alert:
    return monitor_pb2.Alert(
        id=record.entry_id,
        event=record.event,
        space=record.space,
        kind=record.kind,
        subject=record.subject,
        reason=record.reason,
        statistics=record.statistics,
        at=record.at,
        explanation=list(record.explanation),
        data_json=record.data_json,
    )
