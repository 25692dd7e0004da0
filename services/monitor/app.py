"""The monitor service: follows vector notices and interactions, keeps windows per space, reports drift, anomalies."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import AsyncIterator
from typing import Any

from redis.asyncio import Redis

from recsys.monitor.alert_feed import AlertFeed, start_position
from recsys.monitor.alerts import Alert, AlertPolicy, AlertRecord
from recsys.monitor.anomalies import Anomaly, AnomalyKind, AnomalyLog
from recsys.monitor.drift import DriftReport, DriftTest, compare_windows, insufficient_report
from recsys.monitor.grpc_api import MonitorServicer
from recsys.monitor.history import DriftHistory
from recsys.monitor.metrics import MonitorMetrics
from recsys.monitor.persistence import MonitorPersistence
from recsys.monitor.settings import MonitorSettings
from recsys.monitor.space_watch import SpaceWatch, WatchPolicy
from recsys.monitor.spaces import SPACES, Space, space_named, space_of
from recsys.monitor.state_store import StateStore
from recsys.monitor.traffic import TrafficPolicy, TrafficWatch
from recsys.monitor.vector_source import VectorSource
from recsys.monitor.windows import WindowPolicy
from recsys.shared.errors import InvalidRequest, Unavailable
from recsys.shared.events import EmbeddingNotice, MalformedEvent, parse_interaction
from recsys.shared.grpc_server import GrpcServer
from recsys.shared.health import HealthReporter, redis_answers, store_answers
from recsys.shared.lifecycle import cancel_and_wait
from recsys.shared.logs import log_event
from recsys.shared.metrics_endpoint import MetricsEndpoint
from recsys.shared.store import VectorStore
from recsys.shared.stream_retention import STREAM_CAPPED_EVENT
from recsys.shared.streams import ConsumerPolicy, StreamSubscriptions
from recsys_client.api import monitor_pb2, monitor_pb2_grpc

_log = logging.getLogger(__name__)

DEFAULT_ANOMALY_LIMIT = 100
MAX_ANOMALY_LIMIT = 1000
ALERT_EVENTS = ("drift.detected", "anomaly.detected", STREAM_CAPPED_EVENT)
SERVICE_NAME = monitor_pb2.DESCRIPTOR.services_by_name["MonitorService"].full_name


class MonitorService:
    """Implements recsys.shared.lifecycle.Service; `ready` is set once gRPC is up and the store answers."""

    name = "monitor"

    def __init__(self, settings: MonitorSettings, store: VectorStore, redis: Redis) -> None:
        self.settings = settings
        self.store = store
        self.redis = redis
        self.ready = asyncio.Event()
        self._watches = {
            space.name: SpaceWatch(space.name, _watch_policy(settings, space), seed=settings.drift_seed)
            for space in SPACES
        }
        self._traffic = TrafficWatch(_traffic_policy(settings))
        self._anomalies = AnomalyLog(settings.anomaly_capacity)
        self._alerts = AlertPolicy(settings.alert_cooldown_s)
        self._history = DriftHistory(settings.report_history_size)
        # Held from "is an alert due" to "it was sent", so concurrent callers never publish one twice.
        self._alert_lock = asyncio.Lock()
        self._reports: dict[str, DriftReport] = {}
        # The last notice version applied per (space, subject, change), to drop copies (bounded).
        self._notice_versions: OrderedDict[tuple[str, str, str], int] = OrderedDict()
        self._report_versions: dict[str, int] = {}
        self._report_locks = {space.name: asyncio.Lock() for space in SPACES}
        # Bumped by every change the state document holds (reports, anomalies, alerts), so saves skip idle periods.
        self._changes = 0
        self._persistence = MonitorPersistence(
            StateStore(settings.state_dir),
            self._watches,
            self._traffic,
            self._history,
            self._anomalies,
            self._alerts,
            {
                "reference_mode": settings.reference_mode.value,
                "alpha": settings.alpha,
                "permutations": settings.permutations,
            },
        )
        self._closing = asyncio.Event()
        self._feed = AlertFeed(redis, settings.streams.alerts, self._closing, settings.max_alert_watchers)
        self._source = VectorSource(
            store.client, max_batch=settings.fetch_batch_size, max_wait_s=settings.fetch_batch_wait_ms / 1000
        )
        self._grpc: GrpcServer | None = None
        self._subscriptions: StreamSubscriptions | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._health: HealthReporter | None = None
        self._port = 0
        self.metrics = MonitorMetrics()
        self._metrics_endpoint = MetricsEndpoint(self.metrics.registry)

    @property
    def port(self) -> int:
        """The bound gRPC port (after start)."""
        return self._port

    @property
    def metrics_port(self) -> int:
        """The bound Prometheus port (0 before start or when metrics are off)."""
        return self._metrics_endpoint.port

    async def start(self) -> None:
        try:
            await self._start()
        except BaseException:
            # Whatever did start (gRPC, the broker, the tasks) must not outlive a failed start.
            await self.stop()
            raise
        log_event(_log, "monitor_started", port=self.port, spaces=list(self._watches), store=self.store.location)

    async def _start(self) -> None:
        self._closing.clear()
        await asyncio.to_thread(self._persistence.restore)
        self._grpc = GrpcServer.from_settings(
            self.settings.monitor_host,
            self.settings.monitor_port,
            self.settings.monitor_health_port,
            [SERVICE_NAME],
            self.settings,
            self.metrics.registry,
        )
        monitor_pb2_grpc.add_MonitorServiceServicer_to_server(MonitorServicer(self), self._grpc.server)
        self._port = await self._grpc.start()
        if self.settings.metrics_port >= 0:
            self._metrics_endpoint.serve(self.settings.monitor_host, self.settings.metrics_port)
        self._source.start()
        self._feed.start()
        self._subscriptions = StreamSubscriptions.from_settings(self.settings, self.redis, self.metrics.registry)
        policy = ConsumerPolicy.from_settings(self.settings)
        self._subscriptions.consume(
            stream=self.settings.streams.embeddings,
            group=self.settings.monitor_group,
            consumer=self.settings.consumer_name,
            handler=self.handle_notice,
            policy=policy,
            checkpointed=True,
        )
        # Its own group: the encoder's group keeps its entries, and bots and spikes are read from the same events.
        self._subscriptions.consume_all(
            streams=self.settings.streams.interaction_streams,
            group=self.settings.monitor_interactions_group,
            consumer=self.settings.consumer_name,
            handler=self.handle_interaction,
            policy=policy,
            checkpointed=True,
            # The encoder's group dead-letters what cannot be processed; one dead letter per entry.
            dead_letters=False,
        )
        await self._subscriptions.start()
        self._tasks = [
            asyncio.create_task(self._evaluate_periodically(), name="monitor-evaluator"),
            asyncio.create_task(self._save_periodically(), name="monitor-state"),
        ]
        subscriptions, tasks = self._subscriptions, list(self._tasks)
        # Qdrant down makes the monitor unready, never dead: restarting it would not bring Qdrant back.
        self._health = HealthReporter(
            self._grpc,
            [SERVICE_NAME],
            liveness={
                "stream consumers": lambda: subscriptions.healthy,
                "evaluator and state saver": lambda: not any(task.done() for task in tasks),
            },
            readiness={"redis": redis_answers(self.redis), "qdrant": store_answers(self.store)},
            interval_s=self.settings.health_interval_s,
            ready_event=self.ready,
        )
        await self._health.start()

    def reload_credentials(self) -> None:
        """Re-reads the gRPC certificate and token files at their next use (SIGHUP)."""
        if self._grpc is not None:
            self._grpc.reload_credentials()

    async def stop(self) -> None:
        self.ready.clear()
        self._closing.set()  # open WatchAlerts streams end instead of holding the shutdown for the grace period
        await self._feed.stop()
        if self._health is not None:
            await self._health.stop()
            self._health = None
        if self._grpc is not None:
            await self._grpc.set_serving(False)
        tasks, self._tasks = self._tasks, []
        await cancel_and_wait(*tasks)
        subscriptions = self._subscriptions
        if subscriptions is not None:
            # Handlers in flight finish, or leave their entry pending for a claimer.
            await subscriptions.stop()
        await self._source.stop()
        if self._port:
            try:
                await self.save_state()  # and acks what it made durable
            except Exception as exc:  # a failed snapshot must not keep the rest from stopping
                log_event(_log, "state_save_failed", logging.ERROR, error=repr(exc))
        if subscriptions is not None:
            await subscriptions.flush_acks()
            self._subscriptions = None
        if self._grpc is not None:
            await self._grpc.stop(self.settings.grpc_grace_s)
            self._grpc = None
        self._metrics_endpoint.close()

    async def handle_notice(self, fields: dict[str, str], entry_id: str) -> None:
        """One `recsys:embeddings` entry: a stored vector changed or was deleted."""
        notice = EmbeddingNotice.from_fields(fields)  # MalformedEvent: dead-lettered
        space = space_of(notice.collection, notice.vector)
        if space is None:
            return  # a vector the monitor does not watch
        if notice.version is not None:
            # A notice published again (at least once): the first copy was applied already.
            key = (space.name, notice.subject_id, notice.change)
            if self._notice_versions.get(key) == notice.version:
                return
            self._notice_versions[key] = notice.version
            self._notice_versions.move_to_end(key)
            if len(self._notice_versions) > self.settings.traffic_tracked:
                self._notice_versions.popitem(last=False)
        watch = self._watches[space.name]
        if notice.change == "deleted":
            watch.forget(notice.subject_id)
            return
        stored = await self._source.fetch(space, notice.subject_id)
        if stored is None:
            # Deleted (or never written) since the notice was sent; its deletion notice follows.
            return
        for anomaly in watch.observe(notice.subject_id, stored.values, now=notice.ts, version=stored.version):
            await self._report_anomaly(anomaly)

    async def handle_interaction(self, fields: dict[str, str], entry_id: str) -> None:
        """One `recsys:interactions` entry, read for bot-like users and popularity spikes."""
        try:
            event = parse_interaction(fields, entry_id, max_future_s=self.settings.event_max_future_s)
        except MalformedEvent:
            return  # the encoder's consumer dead-letters it; one dead letter per entry is enough
        for anomaly in self._traffic.observe(event, now=time.time()):
            await self._report_anomaly(anomaly)

    async def drift_report(self, space: str) -> DriftReport:
        """The space's report: cached while its windows are unchanged, else computed afresh (off the event loop)."""
        space_named(space)
        watch = self._watches[space]
        async with self._report_locks[space]:
            now = time.time()
            watch.windows.expire(now)
            cached = self._reports.get(space)
            if cached is not None and self._report_versions.get(space) == watch.windows.version:
                return cached
            snapshot = watch.snapshot()
            context = {"reference_mode": self.settings.reference_mode.value, "version": watch.basis_version}
            pending = watch.windows.reference_pending(now)
            if pending:
                sizes = len(snapshot.reference), len(snapshot.current)
                report = insufficient_report(space, *sizes, pending, self._drift_test(), now=now, **context)
            else:
                report = await asyncio.to_thread(
                    compare_windows, space, snapshot.reference, snapshot.current, self._drift_test(), **context
                )
            self._reports[space] = report
            self._report_versions[space] = snapshot.version
            self._alerts.observe_report(report, time.time())
            self._history.record(report)
            self._changes += 1
            self.metrics.record_report(report)
        if report.sufficient:
            log_event(
                _log,
                "drift_evaluated",
                space=space,
                drifted=report.drifted,
                p_value=report.p_value,
                mmd2=report.mmd2,
                classifier_auc=report.classifier_auc,
                reference_size=report.reference_size,
                current_size=report.current_size,
            )
        await self._send_drift_alert(space)
        return report

    async def reset_reference(self, space: str) -> DriftReport:
        """The space's current window becomes its reference (the change is accepted); returns the fresh report."""
        space_named(space)
        watch = self._watches[space]
        async with self._report_locks[space]:
            if watch.windows.current_count == 0:
                raise InvalidRequest(f"the current window of {space!r} is empty: nothing to make the reference")
            watch.windows.reset_reference()
        log_event(_log, "reference_reset", space=space, reference_size=watch.windows.reference_count)
        return await self.drift_report(space)

    def anomalies(self, kind: str = "", limit: int = 0, space: str = "") -> list[Anomaly]:
        """Recent anomalies, newest first; kind "" means all kinds, limit 0 means 100, space "" every space."""
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
        return self._anomalies.recent(wanted, limit or DEFAULT_ANOMALY_LIMIT, space)

    def watch_alerts(self, after_id: str = "", event: str = "", space: str = "") -> AsyncIterator[AlertRecord]:
        """Alerts published after after_id ("" from now on), as they come, optionally of one event type or space.

        Validates at once (InvalidRequest), before the first alert is awaited.
        """
        if event and event not in ALERT_EVENTS:
            known = ", ".join(f'"{e}"' for e in ALERT_EVENTS)
            raise InvalidRequest(f"unknown alert event {event!r}; known events: {known}")
        if space:
            known_spaces = [*self._watches, "interactions", "streams"]
            if space not in known_spaces:
                raise InvalidRequest(f"unknown space {space!r}; known: {', '.join(map(repr, known_spaces))}")
        start_position(after_id)
        return self._filtered_alerts(after_id, event, space)

    async def _filtered_alerts(self, after_id: str, event: str, space: str) -> AsyncIterator[AlertRecord]:
        last = after_id
        async for record in self._feed.follow(after_id):
            last = record.entry_id
            if (not event or record.event == event) and (not space or record.space == space):
                yield record
        # The feed ends only when the service stops: tell the client to come back (UNAVAILABLE is retryable).
        raise Unavailable(f"the monitor is stopping; watch again with after_id={last or 'the last alert id'!r}")

    @property
    def alert_watchers(self) -> int:
        """WatchAlerts streams open now."""
        return self._feed.watchers

    def history(self, space: str) -> list[dict[str, Any]]:
        return self._history.of(space)

    async def evaluate(self) -> dict[str, DriftReport]:
        """One pass of the periodic work: every space's report (and its alert, if due)."""
        return {space.name: await self.drift_report(space.name) for space in SPACES}

    async def save_state(self) -> None:
        """Writes what changed since the last save under data_dir/monitor, then acks the entries it made durable.

        Notices and interactions are acknowledged only here: a monitor killed between two saves
        gets them again from Redis, so what it learned is never lost with its memory.
        """
        consumers = self._subscriptions.consumers if self._subscriptions is not None else []
        handled = [(consumer, consumer.take_handled()) for consumer in consumers]
        try:
            await self._persistence.save(self._reports, self._changes)
        except BaseException:
            for consumer, entry_ids in handled:
                consumer.hold_again(entry_ids)
            raise
        for consumer, entry_ids in handled:
            consumer.acknowledge(entry_ids)

    def _drift_test(self) -> DriftTest:
        return DriftTest(
            min_window=self.settings.min_window,
            permutations=self.settings.permutations,
            alpha=self.settings.alpha,
            seed=self.settings.drift_seed,
            classifier_folds=self.settings.classifier_folds,
        )

    async def _evaluate_periodically(self) -> None:
        while True:
            await asyncio.sleep(self.settings.evaluate_interval_s)
            try:
                await self.evaluate()
            except Exception as exc:  # the next pass tries again; the loop must outlive a bad pass
                log_event(_log, "evaluation_failed", logging.ERROR, error=repr(exc))

    async def _save_periodically(self) -> None:
        while True:
            await asyncio.sleep(self.settings.state_interval_s)
            try:
                await self.save_state()
            except Exception as exc:  # a full disk must not stop the monitor; the next pass retries
                log_event(_log, "state_save_failed", logging.ERROR, error=repr(exc))

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
        self._changes += 1
        async with self._alert_lock:
            alert = self._alerts.anomaly_alert_due(anomaly, time.time())
            if alert is not None:
                # A failed publish raises: the entry is retried and the anomaly is found and alerted again.
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
        self._changes += 1
        self.metrics.record_alert(alert.event)


def _watch_policy(settings: MonitorSettings, space: Space) -> WatchPolicy:
    return WatchPolicy(
        windows=WindowPolicy(
            reference_size=settings.reference_size,
            current_size=settings.current_size,
            reference_mode=settings.reference_mode,
            pinned_at=settings.reference_pinned_at,
            current_window_s=settings.current_window_s,
        ),
        min_window=settings.min_window,
        near_duplicate_cosine=settings.near_duplicate_cosine if space.near_duplicates_checked else None,
        degenerate_norm_ratio=settings.degenerate_norm_ratio,
        outlier_neighbours=settings.outlier_neighbors if space.outliers_checked else None,
        outlier_quantile=settings.outlier_quantile,
    )


def _traffic_policy(settings: MonitorSettings) -> TrafficPolicy:
    return TrafficPolicy(
        burst_events=settings.bot_burst_events,
        burst_window_s=settings.bot_burst_window_s,
        regular_events=settings.bot_regular_events,
        regular_cv=settings.bot_regular_cv,
        spike_window_s=settings.spike_window_s,
        spike_baseline_s=settings.spike_baseline_s,
        spike_ratio=settings.spike_ratio,
        spike_min_events=settings.spike_min_events,
        tracked_subjects=settings.traffic_tracked,
    )
