"""Stream consumption with FastStream: consumer groups, a reader and a claimer per consumer, dead letters.

Delivery is at least once: an entry is acked only when its handler returned (or, for a checkpointed
consumer, once what the handler learned is durable). A handler raises MalformedEvent for an entry
that can never succeed (dead-lettered at once); a failure about the world (a dependency down or busy,
see stream_failures.is_transient) leaves the entry pending without counting against it; any other
failure counts, and after max_attempts failed attempts the entry is dead-lettered with the last error.
Nothing stops the consumer, and nothing but failing sends an entry to the dead-letter stream:

- entries are decoded here (stream_entries), so bytes that are not UTF-8 or an oversized entry are
  poison caught before FastStream or a handler could choke on them;
- an entry in flight keeps its claim (its idle time is reset every claim_idle_ms / 3), so no
  claimer takes a slow entry from a live consumer, and redeliveries are not failures;
- a subscriber that stops (its group or the whole stream vanished when Redis restarted empty, say)
  is restarted with the group re-created from 0; while one cannot run, `healthy` is False, which
  the service's liveness reports, so the orchestrator restarts the process;
- retention (stream_retention) trims what every group acknowledged and removes idle consumers.

New entries arrive in batches (one XREADGROUP each) and each entry runs in a task of its own, up to
the policy's concurrency; finished entries are acked together. FastStream's per-message dispatch
and one XACK per entry took about 40% of the event loop's time during a backlog, time the model
then lacked on a machine whose cores it shares.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from faststream import AckPolicy
from faststream.message import StreamMessage
from faststream.redis import RedisBroker, RedisClusterBroker, StreamSub
from prometheus_client import CollectorRegistry
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from recsys.shared import redis_connection
from recsys.shared.events import MalformedEvent
from recsys.shared.lifecycle import cancel_and_wait
from recsys.shared.logs import log_event
from recsys.shared.settings import ConnectionSettings, StreamNames
from recsys.shared.stream_acks import AckBatcher
from recsys.shared.stream_backlog import measure_backlog
from recsys.shared.stream_entries import StreamEntry, read_entry
from recsys.shared.stream_failures import FailureLedger, is_transient
from recsys.shared.stream_metrics import StreamMetrics
from recsys.shared.stream_retention import CapHandler, RetentionPolicy, alert_on_cap, enforce_retention

# A handler gets the entry's fields (decoded) and its stream entry id.
EntryHandler = Callable[[dict[str, str], str], Awaitable[None]]

_log = logging.getLogger(__name__)
# FastStream's own lines ("Received", "Processed", task callbacks) go here; INFO is noise per entry.
BROKER_LOGGER = "recsys.broker"
# A subscriber down this long despite restarts makes the process unhealthy (liveness fails).
_UNHEALTHY_AFTER_S = 5.0


@dataclass(frozen=True)
class ConsumerPolicy:
    """How one consumer reads, retries and gives up."""

    max_records: int = 16
    claim_idle_ms: int = 30_000
    # Failed attempts (errors about the entry itself) before it is dead-lettered.
    max_attempts: int = 5
    # Deliveries that never finished (each consumer holding it died) before it is dead-lettered:
    # only an entry that kills whoever takes it gets there.
    max_deliveries: int = 20
    concurrency: int = 16
    polling_interval_ms: int = 100
    dead_letter_maxlen: int = 100_000

    @classmethod
    def from_settings(cls, settings: ConnectionSettings) -> ConsumerPolicy:
        return cls(
            max_records=settings.consumer_max_records,
            claim_idle_ms=settings.consumer_claim_idle_ms,
            max_attempts=settings.consumer_max_attempts,
            max_deliveries=settings.consumer_max_deliveries,
            concurrency=settings.consumer_concurrency,
            dead_letter_maxlen=settings.dead_letter_maxlen,
        )


def new_broker(
    redis_url: str,
    graceful_timeout: float | None = None,
    max_connections: int = 1024,
    redis_options: Mapping[str, Any] | None = None,
    cluster: bool = False,
) -> RedisBroker:
    """A FastStream broker that logs through this project's handlers, its per-entry lines at DEBUG.

    graceful_timeout: on stop, a claimed entry's handler gets this long to finish (and ack) before it is
    cancelled; new entries in flight get theirs from StreamConsumer.stop.
    max_connections: its Redis pool's limit. redis-py's default of 100 failed commands under a backlog
    (MaxConnectionsError) when every handler in flight held a connection of its own.
    redis_options: TLS files and the like (recsys.shared.redis_connection.redis_options).
    cluster: a Redis Cluster (RedisClusterBroker): each stream is read from the node holding its slot.
    """
    broker_class = RedisClusterBroker if cluster else RedisBroker
    return broker_class(
        redis_url,
        logger=logging.getLogger(BROKER_LOGGER),
        log_level=logging.DEBUG,
        graceful_timeout=graceful_timeout,
        max_connections=max_connections,
        **dict(redis_options or {}),
    )


async def ensure_group(redis: Redis, stream: str, group: str) -> None:
    """Creates the group at the start of the stream, so a backlog published before the first start is read.

    A group lost with its stream (Redis restarted empty) is re-created from 0 too: whatever producers
    wrote since is read, and a replay of anything older is harmless (versions and event ids).
    """
    try:
        await redis.xgroup_create(stream, group, id="0", mkstream=True)
    except ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise


async def _raw(msg: Any) -> StreamMessage[Any]:
    """Hands FastStream's message on untouched: its own parser decodes bodies as UTF-8 JSON and fails a
    whole batch (which then waited for the claimer) on one entry that is not; entries are decoded here."""
    ids = msg.get("message_ids") or [b""]
    first = ids[0].decode() if isinstance(ids[0], bytes) else str(ids[0])
    return StreamMessage(raw_message=msg, body=b"", message_id=first, correlation_id=first)


async def _as_entry(msg: StreamMessage[Any]) -> StreamEntry:
    raw = msg.raw_message
    return read_entry(raw["message_ids"][0], raw["data"])


async def _as_entries(msg: StreamMessage[Any]) -> list[StreamEntry]:
    """The entries of one batch read, in stream order (decoded inline: FastStream resolving a `msg`
    parameter ran a synchronous dependency in a worker thread, one hop per message)."""
    raw = msg.raw_message
    return [read_entry(entry_id, data) for entry_id, data in zip(raw["message_ids"], raw["data"], strict=True)]


class StreamConsumer:
    """One consumer in one group of one stream: a reader for new entries and a claimer for abandoned ones.

    checkpointed: handled entries are not acked when their handler returns but held until the owner
    says what they changed is durable (`take_handled`, then `acknowledge`); held entries keep their
    claim meanwhile. For a consumer whose state lives in memory and is saved now and then.

    dead_letters: False for a group that only observes a stream another group owns (the monitor on
    the interactions): it skips entries that cannot be processed, which the owner dead-letters once.
    """

    def __init__(
        self,
        broker: RedisBroker,
        redis: Redis,
        *,
        stream: str,
        group: str,
        consumer: str,
        handler: EntryHandler,
        policy: ConsumerPolicy,
        checkpointed: bool = False,
        dead_letters: bool = True,
        metrics: StreamMetrics | None = None,
    ) -> None:
        self.stream = stream
        self._writes_dead_letters = dead_letters
        self._metrics = metrics or StreamMetrics(CollectorRegistry())
        self._metrics.start_counting(stream, group)
        self.group = group
        self.consumer = consumer
        self.dead_letter_stream = StreamNames.dead_letter(stream)
        self.checkpointed = checkpointed
        self._redis = redis
        self._handler = handler
        self._policy = policy
        self._acks = AckBatcher(redis, stream, group)
        self.failures = FailureLedger(redis, stream, group)
        self._slots = asyncio.Semaphore(policy.concurrency)
        self._in_flight: set[asyncio.Task[None]] = set()
        # Entries this consumer holds (in flight, or handled and held for a checkpoint) and since when.
        self._claimed: dict[str, float] = {}
        self._handled: list[str] = []
        # Acks are this class's own (AckBatcher), for both subscribers: MANUAL keeps FastStream's off.
        self.reader = broker.subscriber(
            stream=StreamSub(
                stream,
                group=group,
                consumer=consumer,
                max_records=policy.max_records,
                polling_interval=policy.polling_interval_ms,
                batch=True,
            ),
            ack_policy=AckPolicy.MANUAL,
            parser=_raw,
            decoder=_as_entries,
        )
        # XAUTOCLAIM only: it never reads new entries, hence a second subscriber.
        self.claimer = broker.subscriber(
            stream=StreamSub(
                stream,
                group=group,
                consumer=consumer,
                max_records=policy.max_records,
                polling_interval=max(policy.polling_interval_ms, 500),
                min_idle_time=policy.claim_idle_ms,
            ),
            max_workers=policy.concurrency,
            ack_policy=AckPolicy.MANUAL,
            parser=_raw,
            decoder=_as_entry,
        )
        self.reader(self._on_new_entries)
        self.claimer(self._on_claimed_entry)

    @property
    def claim_idle_ms(self) -> int:
        return self._policy.claim_idle_ms

    async def prepare(self) -> None:
        """Creates the group; call before the broker starts."""
        await ensure_group(self._redis, self.stream, self.group)

    async def stop(self, grace_s: float) -> None:
        """Call once the broker stopped: entries in flight get grace_s to finish and be acked; the rest stay pending.

        A consumer left with nothing pending leaves its group, so groups do not collect dead consumers.
        """
        if self._in_flight:
            _, unfinished = await asyncio.wait(set(self._in_flight), timeout=grace_s)
            await cancel_and_wait(*unfinished)
        await self._acks.flush()
        with contextlib.suppress(Exception):  # Redis gone: the retention of another process removes it later
            mine = [c for c in await self._redis.xinfo_consumers(self.stream, self.group) if _name(c) == self.consumer]
            if mine and int(mine[0]["pending"]) == 0:
                await self._redis.xgroup_delconsumer(self.stream, self.group, self.consumer)

    async def keep_claims(self) -> None:
        """Resets the idle time of the entries this consumer holds longer than a third of the claim time."""
        threshold = time.monotonic() - self._policy.claim_idle_ms / 3000.0
        held: list[Any] = [entry_id for entry_id, since in self._claimed.items() if since <= threshold]
        for start in range(0, len(held), 500):
            # JUSTID: takes the entries back without counting a delivery.
            await self._redis.xclaim(self.stream, self.group, self.consumer, 0, held[start : start + 500], justid=True)
        for entry_id in held:
            if entry_id in self._claimed:
                self._claimed[entry_id] = time.monotonic()

    def take_handled(self) -> list[str]:
        """Entries handled since the last call (checkpointed consumers): ack them once their effect is durable."""
        handled, self._handled = self._handled, []
        return handled

    def acknowledge(self, entry_ids: list[str]) -> None:
        """Acks entries taken with take_handled; give back ones whose checkpoint failed with `hold_again`."""
        for entry_id in entry_ids:
            self._claimed.pop(entry_id, None)
            self._acks.ack(entry_id)

    def hold_again(self, entry_ids: list[str]) -> None:
        self._handled = [*entry_ids, *self._handled]

    async def flush_acks(self) -> None:
        await self._acks.flush()

    async def _on_new_entries(self, entries: list[StreamEntry]) -> None:
        # Returns once every entry of the read has a task: a full house holds back the next read.
        for entry in entries:
            await self._slots.acquire()
            self._claimed[entry.entry_id] = time.monotonic()
            task = asyncio.create_task(self._settle(entry, first_delivery=True))
            self._in_flight.add(task)
            task.add_done_callback(self._entry_done)

    def _entry_done(self, task: asyncio.Task[None]) -> None:
        self._in_flight.discard(task)
        self._slots.release()

    async def _on_claimed_entry(self, entry: StreamEntry) -> None:
        if entry.entry_id in self._claimed:
            # Ours already (in flight, or handled and held for a checkpoint): its claim lapsed on a busy
            # machine and the claimer took it back; handling it twice would count it twice.
            self._claimed[entry.entry_id] = time.monotonic()
            return
        self._claimed[entry.entry_id] = time.monotonic()
        await self._settle(entry, first_delivery=False)

    async def _settle(self, entry: StreamEntry, first_delivery: bool) -> None:
        """Handles one entry to the end: acked (or held), dead-lettered, or left pending for a retry."""
        try:
            done = await self._attempt(entry, first_delivery)
        except Exception as exc:  # Redis failed around the handler (ledger, dead letter): retry later
            log_event(
                _log,
                "entry_left_pending",
                logging.WARNING,
                stream=self.stream,
                entry_id=entry.entry_id,
                error=repr(exc),
            )
            done = False
        if not done:
            self._claimed.pop(entry.entry_id, None)  # a claimer takes it after claim_idle_ms
            return
        self._metrics.processed.labels(self.stream, self.group).inc()
        if self.checkpointed:
            self._handled.append(entry.entry_id)
        else:
            self._claimed.pop(entry.entry_id, None)
            self._acks.ack(entry.entry_id)

    async def _attempt(self, entry: StreamEntry, first_delivery: bool) -> bool:
        """True when the entry is done with (applied or dead-lettered); False leaves it pending."""
        entry_id = entry.entry_id
        if entry.poison is not None:
            await self._dead_letter(entry, entry.poison)
            return True
        failures, last_error = (0, "") if first_delivery else await self.failures.failures(entry_id)
        if failures >= self._policy.max_attempts:
            await self._dead_letter(entry, f"failed {failures} attempts, last error: {last_error}")
            return True
        if not first_delivery:
            deliveries = await self._delivery_count(entry_id)
            if deliveries > self._policy.max_deliveries:
                await self._dead_letter(
                    entry,
                    f"delivered {deliveries - 1} times without finishing: every consumer holding it stopped",
                )
                return True
        try:
            await self._handler(entry.fields, entry_id)
        except MalformedEvent as exc:
            await self._dead_letter(entry, str(exc))
            return True
        except Exception as exc:
            if is_transient(exc):
                self._metrics.failed.labels(self.stream, self.group, "transient").inc()
                log_event(
                    _log, "entry_retry_later", logging.WARNING, stream=self.stream, entry_id=entry_id, error=repr(exc)
                )
                return False
            self._metrics.failed.labels(self.stream, self.group, "entry").inc()
            failures = await self.failures.record(entry_id, repr(exc))
            if failures >= self._policy.max_attempts:
                await self._dead_letter(entry, f"failed {failures} attempts, last error: {exc!r}")
                return True
            log_event(
                _log,
                "entry_failed",
                logging.WARNING,
                stream=self.stream,
                entry_id=entry_id,
                failures=failures,
                error=repr(exc),
            )
            return False
        if failures:
            await self.failures.forget(entry_id)
        return True

    async def _delivery_count(self, entry_id: str) -> int:
        pending = await self._redis.xpending_range(self.stream, self.group, min=entry_id, max=entry_id, count=1)
        return int(pending[0]["times_delivered"]) if pending else 1

    async def _dead_letter(self, entry: StreamEntry, reason: str) -> None:
        if not self._writes_dead_letters:
            await self.failures.forget(entry.entry_id)
            log_event(_log, "entry_skipped", logging.DEBUG, stream=self.stream, group=self.group, reason=reason[:300])
            return
        record: dict[bytes, bytes] = {
            **entry.raw,
            b"dead_letter_reason": reason.encode(),
            b"dead_letter_source_stream": self.stream.encode(),
            b"dead_letter_source_id": entry.entry_id.encode(),
            b"dead_letter_at": f"{time.time():.3f}".encode(),
        }
        # The dead letter and the ack in one transaction: a consumer killed in between would otherwise
        # leave the entry pending, and its next delivery would dead-letter it a second time.
        # (<stream>:dead-letter shares any hash tag of <stream>, so on a cluster both keys share a slot.)
        # WATCH of a key nothing writes: redis-py retries a plain transaction whose reply a cut connection
        # lost, and when the first EXEC had run that wrote a second dead letter; while watching it raises
        # instead. The entry then stays pending: acked already if the EXEC ran, dead-lettered on its next
        # delivery if not. (The key shares the stream's hash tag, and the encoder's and monitor's Redis
        # users may WATCH it.)
        async with self._redis.pipeline(transaction=True) as transaction:
            await transaction.watch(f"{self.stream}:guard:dead-letter")
            transaction.multi()
            transaction.xadd(
                self.dead_letter_stream,
                record,  # type: ignore[arg-type]
                maxlen=self._policy.dead_letter_maxlen,
                approximate=True,
            )
            transaction.xack(self.stream, self.group, entry.entry_id)
            await transaction.execute()
        await self.failures.forget(entry.entry_id)
        self._metrics.dead_lettered.labels(self.stream, self.group).inc()
        log_event(
            _log,
            "entry_dead_lettered",
            logging.WARNING,
            stream=self.stream,
            entry_id=entry.entry_id,
            reason=reason[:300],
        )


async def _once_redis_answers(step: Callable[[], Awaitable[None]], what: str) -> None:
    """Runs a start-up step, waiting out a Redis that does not answer yet (restarting, loading its AOF,
    cut off): a process that exited instead would leave its work to its supervisor's next restart.
    Health stays NOT_SERVING meanwhile."""
    delay = 0.2
    while True:
        try:
            await step()
            return
        except (RedisConnectionError, RedisTimeoutError) as exc:
            log_event(_log, "redis_unavailable_at_start", logging.WARNING, waiting_for=what, error=repr(exc))
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)


def _name(consumer: dict[Any, Any]) -> str:
    name = consumer["name"]
    return name.decode() if isinstance(name, bytes) else str(name)


class StreamSubscriptions:
    """A broker and the consumers it reads for: they start together, are kept running, and stop together.

    Around the consumers it runs the housekeeping of the streams they read: claims kept while
    entries are in flight, stopped subscribers restarted, retention (trimming and idle consumers).
    """

    def __init__(
        self,
        redis_url: str,
        redis: Redis,
        *,
        grace_s: float,
        max_connections: int = 1024,
        retention: RetentionPolicy | None = None,
        retention_interval_s: float = 30.0,
        backlog_interval_s: float = 15.0,
        supervise_interval_s: float = 1.0,
        on_cap: CapHandler | None = None,
        registry: CollectorRegistry | None = None,
        redis_options: Mapping[str, Any] | None = None,
        cluster: bool = False,
    ) -> None:
        self.metrics = StreamMetrics(registry or CollectorRegistry())
        self.broker = new_broker(
            redis_url,
            graceful_timeout=grace_s,
            max_connections=max_connections,
            redis_options=redis_options,
            cluster=cluster,
        )
        self._redis = redis
        self._grace_s = grace_s
        self._retention = retention or RetentionPolicy()
        self._retention_interval_s = retention_interval_s
        self._backlog_interval_s = backlog_interval_s
        self._supervise_interval_s = supervise_interval_s
        self._on_cap = on_cap
        self.consumers: list[StreamConsumer] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = False
        # Since when a subscriber has been found stopped (and could not be restarted), by subscriber.
        self._down_since: dict[int, float] = {}

    @classmethod
    def from_settings(
        cls, settings: ConnectionSettings, redis: Redis, registry: CollectorRegistry | None = None
    ) -> StreamSubscriptions:
        """Wired as every service runs it: the hard cap alerts on the alerts stream, metrics in `registry`.

        On stop, handlers in flight get the same grace as gRPC calls; unfinished entries stay pending.
        """
        return cls(
            settings.redis_url,
            redis,
            grace_s=settings.grpc_grace_s,
            max_connections=settings.redis_max_connections,
            retention=RetentionPolicy.from_settings(settings),
            retention_interval_s=settings.stream_retention_interval_s,
            backlog_interval_s=settings.stream_metrics_interval_s,
            on_cap=alert_on_cap(redis, settings.streams.alerts),
            registry=registry,
            redis_options=redis_connection.redis_options(settings),
            cluster=settings.redis_cluster,
        )

    def consume(
        self,
        *,
        stream: str,
        group: str,
        consumer: str,
        handler: EntryHandler,
        policy: ConsumerPolicy,
        checkpointed: bool = False,
        dead_letters: bool = True,
    ) -> StreamConsumer:
        """One consumer of one stream (one partition of a partitioned input stream: see consume_all)."""
        made = StreamConsumer(
            self.broker,
            self._redis,
            stream=stream,
            group=group,
            consumer=consumer,
            handler=handler,
            policy=policy,
            checkpointed=checkpointed,
            dead_letters=dead_letters,
            metrics=self.metrics,
        )
        self.consumers.append(made)
        return made

    def consume_all(
        self,
        *,
        streams: list[str],
        group: str,
        consumer: str,
        handler: EntryHandler,
        policy: ConsumerPolicy,
        checkpointed: bool = False,
        dead_letters: bool = True,
    ) -> list[StreamConsumer]:
        """One consumer per partition of an input stream (StreamNames.item_streams, .interaction_streams), each
        in its partition's own group of the same name: a partition is read in its order, and on a cluster
        every command of one consumer stays in its partition's slot."""
        return [
            self.consume(
                stream=stream,
                group=group,
                consumer=consumer,
                handler=handler,
                policy=policy,
                checkpointed=checkpointed,
                dead_letters=dead_letters,
            )
            for stream in streams
        ]

    @property
    def healthy(self) -> bool:
        """False while some subscriber has been stopped for a while and could not be restarted."""
        now = time.monotonic()
        return all(now - since < _UNHEALTHY_AFTER_S for since in self._down_since.values())

    async def start(self) -> None:
        self._stopping = False
        for consumer in self.consumers:
            await _once_redis_answers(consumer.prepare, f"{consumer.stream} / {consumer.group}")
        await self.broker.start()
        self._tasks = [
            asyncio.create_task(self._supervise(), name="streams-supervisor"),
            asyncio.create_task(self._keep_claims(), name="streams-claims"),
            asyncio.create_task(self._enforce_retention(), name="streams-retention"),
            asyncio.create_task(self._measure_backlogs(), name="streams-backlog"),
        ]

    async def stop(self) -> None:
        """Stops reading, then gives the entries in flight the grace period; unfinished ones stay pending."""
        self._stopping = True
        await cancel_and_wait(*self._tasks)
        self._tasks = []
        # The subscribers first, so no read is cut off by the connections closing (a noisy fetch error).
        for consumer in self.consumers:
            for subscriber in (consumer.reader, consumer.claimer):
                with contextlib.suppress(Exception):
                    await subscriber.stop()
        await self.broker.stop()
        for consumer in self.consumers:
            await consumer.stop(self._grace_s)

    async def flush_acks(self) -> None:
        """Waits for every ack handed over so far (acknowledge() of a checkpointed consumer after stop)."""
        for consumer in self.consumers:
            await consumer.flush_acks()

    async def _supervise(self) -> None:
        """Restarts subscribers that stopped."""
        while True:
            await asyncio.sleep(self._supervise_interval_s)
            for consumer in self.consumers:
                await self._restart_stopped(consumer)

    async def _keep_claims(self) -> None:
        """Resets the idle time of held entries often enough that none reaches the claim time (half of it at most)."""
        shortest = min((c.claim_idle_ms for c in self.consumers), default=30_000)
        while True:
            await asyncio.sleep(shortest / 6000.0)
            for consumer in self.consumers:
                try:
                    await consumer.keep_claims()
                except Exception as exc:  # Redis away: claims are kept again on the next turn
                    log_event(_log, "claims_not_kept", logging.WARNING, stream=consumer.stream, error=repr(exc))

    async def _restart_stopped(self, consumer: StreamConsumer) -> None:
        """Re-creates a lost group and restarts stopped subscribers; stops them while the stream is unusable.

        FastStream stops a subscriber for good when its group is gone, and restarts a read that raises
        anything else at once, in a hot loop: a stream that cannot be read (replaced by another type,
        refused by an ACL) is stopped here instead, and reported through `healthy` until it can be.
        """
        subscribers = (consumer.reader, consumer.claimer)
        if self._stopping:
            return
        try:
            await ensure_group(self._redis, consumer.stream, consumer.group)
        except ResponseError as exc:
            for subscriber in subscribers:
                self._down_since.setdefault(id(subscriber), time.monotonic())
                if subscriber.running:
                    await subscriber.stop()
            log_event(
                _log, "stream_unusable", logging.ERROR, stream=consumer.stream, group=consumer.group, error=repr(exc)
            )
            return
        except Exception as exc:  # Redis unreachable: FastStream reconnects by itself; restarting would not help
            log_event(_log, "stream_check_failed", logging.WARNING, stream=consumer.stream, error=repr(exc))
            return
        for subscriber in subscribers:
            if subscriber.running:
                self._down_since.pop(id(subscriber), None)
                continue
            self._down_since.setdefault(id(subscriber), time.monotonic())
            try:
                await subscriber.start()
            except Exception as exc:
                log_event(
                    _log,
                    "stream_consumer_not_restarted",
                    logging.ERROR,
                    stream=consumer.stream,
                    group=consumer.group,
                    error=repr(exc),
                )
                continue
            log_event(_log, "stream_consumer_restarted", logging.WARNING, stream=consumer.stream, group=consumer.group)
            self._down_since.pop(id(subscriber), None)

    async def _enforce_retention(self) -> None:
        """Trims every stream read here below what all its groups acknowledged; removes idle consumers."""
        streams = {c.stream: [o.failures for o in self.consumers if o.stream == c.stream] for c in self.consumers}
        # Processes started together should not all trim at the same moment.
        await asyncio.sleep(random.uniform(0, self._retention_interval_s))
        while True:
            for stream, ledgers in streams.items():
                try:
                    report = await enforce_retention(self._redis, stream, self._retention, ledgers, self._on_cap)
                except Exception as exc:  # Redis away: the next pass catches up
                    log_event(_log, "stream_retention_failed", logging.WARNING, stream=stream, error=repr(exc))
                    continue
                self.metrics.dropped_unread.labels(stream).inc(report.dropped_unread)
            await asyncio.sleep(self._retention_interval_s)

    async def _measure_backlogs(self) -> None:
        """Sets the backlog gauges of every stream read here, from the first moment on and then every interval."""
        streams = {c.stream: c.dead_letter_stream for c in self.consumers}
        while True:
            for stream, dead_letter_stream in streams.items():
                try:
                    self.metrics.record_backlog(await measure_backlog(self._redis, stream, dead_letter_stream))
                except Exception as exc:  # Redis away: the gauges keep their last values; health says the rest
                    log_event(_log, "stream_backlog_not_measured", logging.WARNING, stream=stream, error=repr(exc))
            await asyncio.sleep(self._backlog_interval_s)
