"""The monitor service: follows the embeddings notices, keeps windows per space, reports drift and anomalies."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from faststream.redis import RedisBroker
from redis.asyncio import Redis

from recsys.monitor.alerts import Alert, AlertPolicy
from recsys.monitor.anomalies import Anomaly, AnomalyKind, AnomalyLog
from recsys.monitor.drift import DriftReport, compare_windows
from recsys.monitor.grpc_api import MonitorServicer
from recsys.monitor.metrics import MonitorMetrics
from recsys.monitor.settings import MonitorSettings
from recsys.monitor.space_watch import SpaceWatch, WatchPolicy
from recsys.monitor.spaces import SPACES, Space, space_named, space_of
from recsys.monitor.vector_source import VectorSource
from recsys.shared.api import monitor_pb2, monitor_pb2_grpc
from recsys.shared.errors import InvalidRequest
from recsys.shared.events import EmbeddingNotice
from recsys.shared.grpc_server import GrpcServer
from recsys.shared.logs import log_event
from recsys.shared.store import VectorStore
from recsys.shared.streams import ConsumerPolicy, StreamConsumer, new_broker

_log = logging.getLogger(__name__)

DEFAULT_ANOMALY_LIMIT = 100
MAX_ANOMALY_LIMIT = 1000


class MonitorService:
    """Implements recsys.shared.lifecycle.Service; `ready` is set once gRPC is up and the store answers."""

    name = "monitor"

    def __init__(self, settings: MonitorSettings, store: VectorStore, redis: Redis) -> None:
        self.settings = settings
        self.store = store
        self.redis = redis
        self.ready = asyncio.Event()
        self._watches = {space.name: SpaceWatch(space.name, _watch_policy(settings, space)) for space in SPACES}
        self._anomalies = AnomalyLog(settings.anomaly_capacity)
        self._alerts = AlertPolicy(settings.alert_cooldown_s)
        # Held from "is an alert due" to "it was sent", so concurrent callers never publish one twice.
        self._alert_lock = asyncio.Lock()
        self._reports: dict[str, DriftReport] = {}
        self._report_versions: dict[str, int] = {}
        self._report_locks = {space.name: asyncio.Lock() for space in SPACES}
        self._source = VectorSource(
            store.client, max_batch=settings.fetch_batch_size, max_wait_s=settings.fetch_batch_wait_ms / 1000
        )
        self._grpc: GrpcServer | None = None
        self._broker: RedisBroker | None = None
        self._evaluator: asyncio.Task[None] | None = None
        self._port = 0
        self.metrics = MonitorMetrics()
        self.metrics_port = 0

    @property
    def port(self) -> int:
        """The bound gRPC port (after start)."""
        return self._port

    async def start(self) -> None:
        try:
            await self._start()
        except BaseException:
            # Whatever did start (gRPC, the broker, the tasks) must not outlive a failed start.
            await self.stop()
            raise
        log_event(_log, "monitor_started", port=self.port, spaces=list(self._watches), store=self.store.location)

    async def _start(self) -> None:
        self._grpc = GrpcServer(
            self.settings.grpc_address, [monitor_pb2.DESCRIPTOR.services_by_name["MonitorService"].full_name]
        )
        monitor_pb2_grpc.add_MonitorServiceServicer_to_server(MonitorServicer(self), self._grpc.server)
        self._port = await self._grpc.start()
        if self.settings.metrics_port >= 0:
            self.metrics_port = self.metrics.serve(self.settings.monitor_host, self.settings.metrics_port)
        self._source.start()
        self._broker = new_broker(self.settings.redis_url, graceful_timeout=self.settings.grpc_grace_s)
        consumer = StreamConsumer(
            self._broker,
            self.redis,
            stream=self.settings.streams.embeddings,
            group=self.settings.monitor_group,
            consumer=self.settings.consumer_name,
            handler=self.handle_notice,
            policy=ConsumerPolicy.from_settings(self.settings),
        )
        await consumer.prepare()
        await self._broker.start()
        self._evaluator = asyncio.create_task(self._evaluate_periodically(), name="monitor-evaluator")
        await self._refresh_readiness()

    async def stop(self) -> None:
        self.ready.clear()
        if self._grpc is not None:
            await self._grpc.set_serving(False)
        if self._evaluator is not None:
            self._evaluator.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._evaluator
            self._evaluator = None
        if self._broker is not None:
            # Handlers in flight finish (and ack) or leave their entry pending for a claimer.
            await self._broker.stop()
            self._broker = None
        await self._source.stop()
        if self._grpc is not None:
            await self._grpc.stop(self.settings.grpc_grace_s)
            self._grpc = None
        self.metrics.close()

    async def handle_notice(self, fields: dict[str, str], entry_id: str) -> None:
        """One `recsys:embeddings` entry: a stored vector changed or was deleted."""
        notice = EmbeddingNotice.from_fields(fields)  # MalformedEvent: dead-lettered
        space = space_of(notice.collection, notice.vector)
        if space is None:
            return  # a vector the monitor does not watch (yet)
        watch = self._watches[space.name]
        if notice.change == "deleted":
            watch.forget(notice.subject_id)
            return
        vector = await self._source.fetch(space, notice.subject_id)
        if vector is None:
            # Deleted (or never written) since the notice was sent; its deletion notice follows.
            return
        for anomaly in watch.observe(notice.subject_id, vector, now=time.time()):
            await self._report_anomaly(anomaly)

    async def drift_report(self, space: str) -> DriftReport:
        """The space's report: cached while its windows are unchanged, else computed afresh (off the event loop)."""
        space_named(space)
        watch = self._watches[space]
        async with self._report_locks[space]:
            cached = self._reports.get(space)
            if cached is not None and self._report_versions.get(space) == watch.windows.version:
                return cached
            snapshot = watch.snapshot()
            report = await asyncio.to_thread(
                compare_windows,
                space,
                snapshot.reference,
                snapshot.current,
                min_window=self.settings.min_window,
                permutations=self.settings.permutations,
                alpha=self.settings.alpha,
                seed=self.settings.drift_seed,
            )
            self._reports[space] = report
            self._report_versions[space] = snapshot.version
            self._alerts.observe_report(report, time.time())
            self.metrics.record_report(report)
        if report.sufficient:
            log_event(
                _log,
                "drift_evaluated",
                space=space,
                drifted=report.drifted,
                p_value=report.p_value,
                mmd2=report.mmd2,
                reference_size=report.reference_size,
                current_size=report.current_size,
            )
        await self._send_drift_alert(space)
        return report

    def anomalies(self, kind: str = "", limit: int = 0) -> list[Anomaly]:
        """Recent anomalies, newest first; kind "" means all kinds, limit 0 means 100."""
        if kind:
            try:
                wanted: AnomalyKind | None = AnomalyKind(kind)
            except ValueError:
                known = ", ".join(f'"{k.value}"' for k in AnomalyKind)
                raise InvalidRequest(f"unknown anomaly kind {kind!r}; known kinds: {known}") from None
        else:
            wanted = None
        if limit < 0 or limit > MAX_ANOMALY_LIMIT:
            raise InvalidRequest(
                f"limit must be between 1 and {MAX_ANOMALY_LIMIT} (0 means {DEFAULT_ANOMALY_LIMIT}), got {limit}"
            )
        return self._anomalies.recent(wanted, limit or DEFAULT_ANOMALY_LIMIT)

    async def evaluate(self) -> dict[str, DriftReport]:
        """One pass of the periodic work: readiness, then every space's report (and its alert, if due)."""
        await self._refresh_readiness()
        return {space.name: await self.drift_report(space.name) for space in SPACES}

    async def _evaluate_periodically(self) -> None:
        while True:
            await asyncio.sleep(self.settings.evaluate_interval_s)
            try:
                await self.evaluate()
            except Exception as exc:  # the next pass tries again; the loop must outlive a bad pass
                log_event(_log, "evaluation_failed", logging.ERROR, error=repr(exc))

    async def _report_anomaly(self, anomaly: Anomaly) -> None:
        if self._anomalies.record(anomaly):
            self.metrics.record_anomaly(anomaly)
            log_event(
                _log,
                "anomaly_detected",
                logging.WARNING,
                kind=anomaly.kind.value,
                space=anomaly.space,
                subject=anomaly.subject,
                score=anomaly.score,
                detail=anomaly.detail,
            )
        async with self._alert_lock:
            alert = self._alerts.anomaly_alert_due(anomaly, anomaly.detected_at)
            if alert is not None:
                # A failed publish raises: the notice is retried and the anomaly is found and alerted again.
                await self._publish(alert)

    async def _send_drift_alert(self, space: str) -> None:
        async with self._alert_lock:
            alert = self._alerts.due_drift_alert(space)
            if alert is None:
                return
            try:
                await self._publish(alert)
            except Exception as exc:  # stays due: the next evaluation publishes it
                log_event(_log, "alert_publish_failed", logging.WARNING, space=space, error=repr(exc))
                return
        log_event(_log, "drift_detected", logging.WARNING, space=space, **alert.data["statistics"])

    async def _publish(self, alert: Alert) -> None:
        await self.redis.xadd(
            self.settings.streams.alerts,
            alert.to_fields(),  # type: ignore[arg-type]
            maxlen=self.settings.alerts_stream_maxlen,
            approximate=True,
        )
        self._alerts.sent(alert, time.time())

    async def _refresh_readiness(self) -> None:
        serving = self._grpc is not None and await self.store.is_reachable()
        if serving == self.ready.is_set():
            return
        if self._grpc is not None:
            await self._grpc.set_serving(serving)
        if serving:
            self.ready.set()
        else:
            self.ready.clear()
        log_event(_log, "monitor_readiness", serving=serving)


def _watch_policy(settings: MonitorSettings, space: Space) -> WatchPolicy:
    return WatchPolicy(
        reference_size=settings.reference_size,
        current_size=settings.current_size,
        min_window=settings.min_window,
        near_duplicate_cosine=settings.near_duplicate_cosine if space.near_duplicates_checked else None,
        degenerate_norm_ratio=settings.degenerate_norm_ratio,
    )
