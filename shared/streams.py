"""Stream consumption with FastStream: consumer groups, a reader and a claimer per consumer, dead letters.

Delivery is at least once: an entry is acked only when its handler returned. A handler raises
MalformedEvent for an entry that can never succeed (dead-lettered at once), any other exception
for a failure worth retrying (the entry stays pending; a claimer picks it up again after
claim_idle_ms, and after max_deliveries it is dead-lettered). Nothing stops the consumer.

New entries arrive in batches (one XREADGROUP each) and each entry runs in a task of its own, up to
the policy's concurrency; finished entries are acked together. FastStream's per-message dispatch
and one XACK per entry took about 40% of the event loop's time during a backlog, time the model
then lacked on a machine whose cores it shares.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from faststream import AckPolicy
from faststream.message import StreamMessage
from faststream.redis import RedisBroker, StreamSub
from redis.asyncio import Redis
from redis.exceptions import ResponseError

from recsys.shared.events import MalformedEvent
from recsys.shared.logs import log_event
from recsys.shared.settings import ConnectionSettings, StreamNames
from recsys.shared.stream_acks import AckBatcher

# A handler gets the entry's fields (decoded) and its stream entry id.
EntryHandler = Callable[[dict[str, str], str], Awaitable[None]]

_log = logging.getLogger(__name__)
# FastStream's own lines ("Received", "Processed", task callbacks) go here; INFO is noise per entry.
BROKER_LOGGER = "recsys.broker"


@dataclass(frozen=True)
class ConsumerPolicy:
    """How one consumer reads, retries and gives up."""

    max_records: int = 16
    claim_idle_ms: int = 30_000
    max_deliveries: int = 5
    concurrency: int = 16
    polling_interval_ms: int = 100

    @classmethod
    def from_settings(cls, settings: ConnectionSettings) -> ConsumerPolicy:
        return cls(
            max_records=settings.consumer_max_records,
            claim_idle_ms=settings.consumer_claim_idle_ms,
            max_deliveries=settings.consumer_max_deliveries,
            concurrency=settings.consumer_concurrency,
        )


def new_broker(redis_url: str, graceful_timeout: float | None = None, max_connections: int = 1024) -> RedisBroker:
    """A FastStream broker that logs through this project's handlers, its per-entry lines at DEBUG.

    graceful_timeout: on stop, a claimed entry's handler gets this long to finish (and ack) before it is
    cancelled; new entries in flight get theirs from StreamConsumer.stop.
    max_connections: its Redis pool's limit. redis-py's default of 100 failed commands under a backlog
    (MaxConnectionsError) when every handler in flight held a connection of its own.
    """
    return RedisBroker(
        redis_url,
        logger=logging.getLogger(BROKER_LOGGER),
        log_level=logging.DEBUG,
        graceful_timeout=graceful_timeout,
        max_connections=max_connections,
    )


async def ensure_group(redis: Redis, stream: str, group: str) -> None:
    """Creates the group at the start of the stream, so a backlog published before the first start is read."""
    try:
        await redis.xgroup_create(stream, group, id="0", mkstream=True)
    except ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise


@dataclass(frozen=True, slots=True)
class _Entry:
    entry_id: str
    fields: dict[str, str]


async def _as_entry(msg: StreamMessage[Any]) -> _Entry:
    """The entry a handler gets, decoded here rather than taken from the message in the handler's signature.

    FastStream resolves a `msg: RedisStreamMessage` parameter with a synchronous dependency that it runs
    in a worker thread, one hop per message: a fifth of the event loop's time during ingestion went there.
    An async decoder runs inline.
    """
    raw = msg.raw_message
    return _Entry(raw["message_ids"][0].decode(), _decode(raw["data"]))


async def _as_entries(msg: StreamMessage[Any]) -> list[_Entry]:
    """The entries of one batch read, in stream order."""
    raw = msg.raw_message
    pairs = zip(raw["message_ids"], raw["data"], strict=True)
    return [_Entry(entry_id.decode(), _decode(data)) for entry_id, data in pairs]


def _decode(raw: dict[bytes, bytes]) -> dict[str, str]:
    return {k.decode(errors="replace"): v.decode(errors="replace") for k, v in raw.items()}


class StreamConsumer:
    """One consumer in one group of one stream: a reader for new entries and a claimer for abandoned ones."""

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
    ) -> None:
        self.stream = stream
        self.group = group
        self.dead_letter_stream = StreamNames.dead_letter(stream)
        self._redis = redis
        self._handler = handler
        self._policy = policy
        self._acks = AckBatcher(redis, stream, group)
        self._slots = asyncio.Semaphore(policy.concurrency)
        self._in_flight: set[asyncio.Task[None]] = set()
        # Acks are this class's own (AckBatcher), for both subscribers: MANUAL keeps FastStream's off.
        reader = broker.subscriber(
            stream=StreamSub(
                stream,
                group=group,
                consumer=consumer,
                max_records=policy.max_records,
                polling_interval=policy.polling_interval_ms,
                batch=True,
            ),
            ack_policy=AckPolicy.MANUAL,
            decoder=_as_entries,
        )
        # XAUTOCLAIM only: it never reads new entries, hence a second subscriber.
        claimer = broker.subscriber(
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
            decoder=_as_entry,
        )
        reader(self._on_new_entries)
        claimer(self._on_claimed_entry)

    async def prepare(self) -> None:
        """Creates the group; call before the broker starts."""
        await ensure_group(self._redis, self.stream, self.group)

    async def stop(self, grace_s: float) -> None:
        """Call once the broker stopped: entries in flight get grace_s to finish and be acked; the rest stay pending."""
        if self._in_flight:
            _, unfinished = await asyncio.wait(set(self._in_flight), timeout=grace_s)
            for task in unfinished:
                task.cancel()
            await asyncio.gather(*unfinished, return_exceptions=True)
        await self._acks.flush()

    async def _on_new_entries(self, entries: Any) -> None:
        # Returns once every entry of the read has a task: a full house holds back the next read.
        for entry in entries:
            await self._slots.acquire()
            task = asyncio.create_task(self._settle_new_entry(entry))
            self._in_flight.add(task)
            task.add_done_callback(self._entry_done)

    def _entry_done(self, task: asyncio.Task[None]) -> None:
        self._in_flight.discard(task)
        self._slots.release()

    async def _settle_new_entry(self, entry: _Entry) -> None:
        try:
            # XREADGROUP ">" hands out only entries never delivered before: no need to ask Redis how often.
            await self._on_entry(entry, first_delivery=True)
        except Exception as exc:
            # A handler's failure was logged by _on_entry; this also catches a failed dead-letter XADD.
            log_event(
                _log,
                "entry_left_pending",
                logging.WARNING,
                stream=self.stream,
                entry_id=entry.entry_id,
                error=repr(exc),
            )
            return  # the claimer delivers it again
        self._acks.ack(entry.entry_id)

    async def _on_claimed_entry(self, entry: Any) -> None:
        await self._on_entry(entry, first_delivery=False)
        self._acks.ack(entry.entry_id)

    async def _on_entry(self, entry: _Entry, first_delivery: bool) -> None:
        """Returns when the entry is done with (applied or dead-lettered); raises to leave it pending."""
        entry_id, fields = entry.entry_id, entry.fields
        deliveries = 1 if first_delivery else await self._delivery_count(entry_id)
        if deliveries > self._policy.max_deliveries:
            await self._dead_letter(fields, entry_id, deliveries, f"gave up after {deliveries - 1} failed deliveries")
            return
        try:
            await self._handler(fields, entry_id)
        except MalformedEvent as exc:
            await self._dead_letter(fields, entry_id, deliveries, str(exc))
        except Exception as exc:
            if deliveries >= self._policy.max_deliveries:
                await self._dead_letter(
                    fields, entry_id, deliveries, f"failed {deliveries} deliveries, last error: {exc!r}"
                )
                return
            log_event(
                _log,
                "entry_failed",
                logging.WARNING,
                stream=self.stream,
                entry_id=entry_id,
                deliveries=deliveries,
                error=repr(exc),
            )
            raise  # stays pending; the claimer retries it after claim_idle_ms

    async def _delivery_count(self, entry_id: str) -> int:
        pending = await self._redis.xpending_range(self.stream, self.group, min=entry_id, max=entry_id, count=1)
        return int(pending[0]["times_delivered"]) if pending else 1

    async def _dead_letter(self, fields: dict[str, str], entry_id: str, deliveries: int, reason: str) -> None:
        record = {
            **fields,
            "dead_letter_reason": reason,
            "dead_letter_source_stream": self.stream,
            "dead_letter_source_id": entry_id,
            "dead_letter_deliveries": str(deliveries),
            "dead_letter_at": f"{time.time():.3f}",
        }
        await self._redis.xadd(self.dead_letter_stream, record)  # type: ignore[arg-type]
        log_event(
            _log, "entry_dead_lettered", logging.WARNING, stream=self.stream, entry_id=entry_id, reason=reason[:300]
        )


class StreamSubscriptions:
    """A broker and the consumers it reads for: they start together and stop together, in-flight entries first."""

    def __init__(self, redis_url: str, redis: Redis, *, grace_s: float, max_connections: int = 1024) -> None:
        self.broker = new_broker(redis_url, graceful_timeout=grace_s, max_connections=max_connections)
        self._redis = redis
        self._grace_s = grace_s
        self._consumers: list[StreamConsumer] = []

    def consume(self, *, stream: str, group: str, consumer: str, handler: EntryHandler, policy: ConsumerPolicy) -> None:
        self._consumers.append(
            StreamConsumer(
                self.broker, self._redis, stream=stream, group=group, consumer=consumer, handler=handler, policy=policy
            )
        )

    async def start(self) -> None:
        for consumer in self._consumers:
            await consumer.prepare()
        await self.broker.start()

    async def stop(self) -> None:
        """Stops reading, then gives the entries in flight the grace period; unfinished ones stay pending."""
        await self.broker.stop()
        for consumer in self._consumers:
            await consumer.stop(self._grace_s)
