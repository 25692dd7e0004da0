"""`recsys bench soak`: the whole system under a steady mix of events for a long while, one line of figures a minute.

`recsys run all` runs in a process of its own (embedded Qdrant). A producer publishes item upserts
(a fixed catalog, updated over and over) and interactions (a fixed user population) at a steady
rate; probes measure how long an interaction takes to show in ForYou: a new user's first
interaction with the first item of its feed, until ForYou leaves that item out (it is seen). Each
minute: events published, Redis used memory, the process's RSS, stream lengths, lag and pending
per group, and the minute's probe latencies. At the end, the spread of memory and RSS after the
warm-up (at least until the behavior log first reached its cap), against their median, says
whether they stayed flat while far more events than any stream keeps went through.
"""

from __future__ import annotations

import asyncio
import json
import random
import statistics
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import grpc
from redis.asyncio import Redis

from recsys.tools.service_process import ServiceProcess
from recsys_client.api import recommender_pb2, recommender_pb2_grpc


@dataclass(frozen=True)
class SoakOptions:
    minutes: float = 30.0
    rate: float = 50.0  # events per second, all kinds together
    items: int = 2000  # the catalog, updated over and over
    users: int = 5000
    item_share: float = 0.05  # of the events, item upserts; the rest interactions
    probes_per_minute: int = 12
    warm_up_minutes: float = 5.0
    # Kept small so that far more events than any capped stream holds go through a run.
    behavior_log_size: int = 20_000
    notices_maxlen: int = 10_000


@dataclass
class Minute:
    minute: int
    published: int
    redis_memory: int
    rss: int
    lengths: dict[str, int]
    groups: dict[str, tuple[int, int]]
    latencies: list[float] = field(default_factory=list)


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))]


@dataclass
class SoakReport:
    options: SoakOptions
    minutes: list[Minute] = field(default_factory=list)

    def line(self, m: Minute) -> str:
        lengths = " ".join(f"{name}={length}" for name, length in m.lengths.items())
        groups = " ".join(f"{name}:lag={lag},pending={pending}" for name, (lag, pending) in m.groups.items())
        return (
            f"min {m.minute:3d} | published {m.published:7d} | redis {m.redis_memory / 2**20:7.1f} MiB | "
            f"rss {m.rss / 2**20:7.1f} MiB | ForYou after XADD p50 {_percentile(m.latencies, 50) * 1000:6.0f} ms "
            f"p99 {_percentile(m.latencies, 99) * 1000:6.0f} ms ({len(m.latencies)} probes) | {lengths} | {groups}"
        )

    def warm_up_minutes(self) -> int:
        """Minutes left out of the memory verdict: --warm-up, or longer until the behavior log (the largest
        capped stream) first reached its cap. Before that Redis memory grows by design; after it, it must not.
        Latency is judged after --warm-up alone."""
        cap = 0.95 * self.options.behavior_log_size  # trimmed approximately (XADD MAXLEN ~)
        filled = next((m.minute for m in self.minutes if m.lengths.get("behavior-log", 0) >= cap), None)
        return max(int(self.options.warm_up_minutes), filled if filled is not None else len(self.minutes))

    def summary(self) -> str:
        warm_up = self.warm_up_minutes()
        steady = [m for m in self.minutes if m.minute > warm_up]
        if not steady:
            return "no minute after the warm-up (the behavior log never filled?): run longer than --warm-up"
        lines = [f"memory once the capped streams are full (after minute {warm_up}, {len(steady)} minutes):"]
        for name, values in (("Redis used memory", [m.redis_memory for m in steady]), ("RSS", [m.rss for m in steady])):
            median = statistics.median(values)
            low, high = min(values) / median - 1, max(values) / median - 1
            verdict = "flat (within ±10%)" if max(abs(low), abs(high)) <= 0.10 else "NOT flat"
            lines.append(f"  {name}: median {median / 2**20:.1f} MiB, {low:+.1%} .. {high:+.1%}: {verdict}")
        warm = [m for m in self.minutes if m.minute > self.options.warm_up_minutes]
        latencies = [value for m in warm for value in m.latencies]
        p99 = _percentile(latencies, 99)
        lines.append(
            f"  ForYou after XADD over {len(latencies)} probes after minute {self.options.warm_up_minutes:g}: "
            f"p50 {_percentile(latencies, 50) * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms "
            f"({'under' if p99 < 1.0 else 'NOT under'} 1 s); slowest {max(latencies, default=0) * 1000:.0f} ms"
        )
        published = self.minutes[-1].published
        lines.append(
            f"  events published: {published} at {self.options.rate:g}/s; the behavior log keeps "
            f"{self.options.behavior_log_size}, the notice stream {self.options.notices_maxlen}"
        )
        return "\n".join(lines)


class _Soak:
    def __init__(self, options: SoakOptions, redis_url: str) -> None:
        self.options = options
        self.prefix = f"soak-{uuid.uuid4().hex[:6]}"
        self.redis = Redis.from_url(redis_url)
        self.system = ServiceProcess(
            redis_url,
            self.prefix,
            {
                "RECSYS_BEHAVIOR_LOG_SIZE": str(options.behavior_log_size),
                "RECSYS_EMBEDDINGS_STREAM_MAXLEN": str(options.notices_maxlen),
                "RECSYS_STREAM_RETENTION_INTERVAL_S": "10",
            },
            service="all",
        )
        self.published = 0
        self.rng = random.Random(0)
        self.latencies: list[float] = []

    async def produce(self, until: float) -> None:
        options = self.options
        interval = 1.0 / options.rate
        next_at = time.monotonic()
        versions = [0] * options.items
        n = 0
        while time.monotonic() < until:
            if self.rng.random() < options.item_share:
                index = self.rng.randrange(options.items)
                versions[index] += 1
                data = {
                    "item_id": f"soak-item-{index}",
                    "title": f"soak item {index}, edition {versions[index]}",
                    "text": " ".join(self.rng.choice(_WORDS) for _ in range(12)),
                    "version": versions[index],
                }
                await self.redis.xadd(f"{self.prefix}:items", {"event": "item.upserted", "data": json.dumps(data)})
            else:
                data = {
                    "event_id": f"soak-{n}",
                    "user_id": f"soak-user-{self.rng.randrange(options.users)}",
                    "item_id": f"soak-item-{self.rng.randrange(options.items)}",
                    "type": self.rng.choice(["view", "click", "purchase", "like"]),
                }
                await self.redis.xadd(f"{self.prefix}:interactions", {"event": "interaction", "data": json.dumps(data)})
            n += 1
            self.published += 1
            next_at += interval
            delay = next_at - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)

    async def probe(self, stub: recommender_pb2_grpc.RecommenderServiceStub, user: str) -> None:
        before = await stub.ForYou(recommender_pb2.ForYouRequest(user_id=user, limit=10), timeout=10)
        if not before.items:
            return
        item = before.items[0].item_id
        data = {"event_id": f"probe-{user}", "user_id": user, "item_id": item, "type": "purchase"}
        sent = time.monotonic()
        await self.redis.xadd(f"{self.prefix}:interactions", {"event": "interaction", "data": json.dumps(data)})
        while time.monotonic() - sent < 60:
            after = await stub.ForYou(recommender_pb2.ForYouRequest(user_id=user, limit=10), timeout=10)
            if item not in [i.item_id for i in after.items]:
                self.latencies.append(time.monotonic() - sent)
                return
            # Every 100 ms: each ForYou scans the catalog in embedded Qdrant, and a tighter poll slowed ingestion.
            await asyncio.sleep(0.1)

    async def measure(self, minute: int) -> Minute:
        info: Any = await self.redis.info("memory")
        rss, _ = self.system.memory()
        lengths, groups = {}, {}
        for name in (
            "items",
            "interactions",
            "embeddings",
            "behavior-log",
            "items:dead-letter",
            "interactions:dead-letter",
        ):
            lengths[name] = int(await self.redis.xlen(f"{self.prefix}:{name}"))
        for stream in ("items", "interactions", "embeddings"):
            try:
                for group in await self.redis.xinfo_groups(f"{self.prefix}:{stream}"):
                    name = group["name"].decode() if isinstance(group["name"], bytes) else group["name"]
                    groups[name] = (int(group.get("lag") or 0), int(group["pending"]))
            except Exception:  # not created yet
                continue
        taken, self.latencies = self.latencies, []
        return Minute(minute, self.published, int(info["used_memory"]), rss, lengths, groups, taken)

    async def run(self, report: SoakReport, on_minute: Any) -> None:
        options = self.options
        await self.system.start()
        try:
            # The catalog first, so that every interaction finds its item.
            for index in range(options.items):
                data = {"item_id": f"soak-item-{index}", "title": f"soak item {index}", "version": 0}
                await self.redis.xadd(f"{self.prefix}:items", {"event": "item.upserted", "data": json.dumps(data)})
            until = time.monotonic() + options.minutes * 60
            producer = asyncio.create_task(self.produce(until))
            async with grpc.aio.insecure_channel(f"127.0.0.1:{self.system.ports['recommender']}") as channel:
                stub = recommender_pb2_grpc.RecommenderServiceStub(channel)
                minute = 0
                probe_gap = 60.0 / options.probes_per_minute
                next_minute = time.monotonic() + 60
                while time.monotonic() < until:
                    try:
                        await self.probe(stub, f"probe-{uuid.uuid4().hex[:8]}")
                    except grpc.aio.AioRpcError as exc:  # the recommender not ready yet, or busy: no figure
                        on_minute(f"probe failed: {exc.code().name} {exc.details()}")
                    await asyncio.sleep(probe_gap)
                    if time.monotonic() >= next_minute:
                        minute += 1
                        next_minute += 60
                        measured = await self.measure(minute)
                        report.minutes.append(measured)
                        on_minute(report.line(measured))
            await producer
        finally:
            self.system.close()
            keys = [key async for key in self.redis.scan_iter(match=f"{self.prefix}:*")]
            if keys:
                await self.redis.delete(*keys)
            await self.redis.aclose()


_WORDS = [
    *("red", "blue", "trail", "kettle", "novel", "jacket", "lamp", "guitar"),
    *("camera", "teapot", "quiet", "heavy", "folding", "smart", "tiny"),
]


async def run_soak(options: SoakOptions, redis_url: str, on_minute: Any = print) -> SoakReport:
    report = SoakReport(options)
    await _Soak(options, redis_url).run(report, on_minute)
    return report
