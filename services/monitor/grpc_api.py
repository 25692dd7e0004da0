"""The gRPC face of the monitor: recsys.v1.MonitorService translated to and from the service's methods."""

from __future__ import annotations

from typing import Protocol

import grpc

from recsys.monitor.anomalies import Anomaly
from recsys.monitor.drift import DriftReport
from recsys.shared.api import monitor_pb2, monitor_pb2_grpc
from recsys.shared.grpc_server import maps_errors


class MonitorQueries(Protocol):
    """What the servicer needs from the monitor (MonitorService provides it)."""

    async def drift_report(self, space: str) -> DriftReport: ...

    def anomalies(self, kind: str = "", limit: int = 0) -> list[Anomaly]: ...


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
        found = self._monitor.anomalies(request.kind, request.limit)
        return monitor_pb2.ListAnomaliesResponse(anomalies=[anomaly_message(a) for a in found])


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
    )
    if report.sufficient:
        message.centroid_cosine_distance = report.centroid_cosine_distance or 0.0
        message.centroid_euclidean_distance = report.centroid_euclidean_distance or 0.0
        message.mmd2 = report.mmd2 or 0.0
        message.p_value = report.p_value or 0.0
    return message


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
