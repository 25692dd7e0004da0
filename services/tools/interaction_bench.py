"""`recsys bench interactions`: interactions per second through one interactions-role process, and its cost per event.

Each mode (one at a time: RECSYS_INTERACTION_BATCH_SIZE=1, the path before batching, as the
baseline; then the batched path) gets a fresh embedded Qdrant folder holding a catalog with random
content vectors (no model needed) and one `recsys run encoder --role interactions` process on the
bench's Redis. Then:

- throughput: a backlog of interactions XADDed as fast as Redis takes them, timed from the first
  XADD until the role reports them all applied (`recsys_interactions_applied_total`);
- CPU time per event over that backlog: the role process's own user + system time (/proc), which
  other work on the machine inflates far less than wall time; 1000 / (CPU ms per event) is what
  one process could apply on a core of its own;
- calls per event over that backlog: the process's Qdrant requests (`recsys_store_calls_total`) and
  every Redis command (`INFO commandstats` deltas, less the bench's own XADDs and INFO calls);
- latency at steady rates: interactions XADDed at a fixed rate, every tenth from a new probe user;
  a probe is visible when the taste notice of its user arrives, which the role publishes only after
  the user's point was written and read back: from then on any reader of the store (ForYou included)
  sees the event. ForYou itself would add the recommender's query time, which is not measured here.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import shutil
import statistics
import subprocess
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from qdrant_client import models
from redis.asyncio import Redis

from recsys.encoder.text.catalog import new_item_payload
from recsys.shared.events import Interaction, InteractionType, ItemUpserted, to_fields
from recsys.shared.ids import point_id
from recsys.shared.points import BEHAVIOR, CONTENT, ITEMS, ItemField
from recsys.shared.store import VectorStore
from recsys.tools.service_process import ServiceProcess, free_port, sample

_PUBLISH_CHUNK = 500
# The behavior space's default dimensions (RECSYS_BEHAVIOR_DIMS), which the role reads from its settings.
BEHAVIOR_DIMS = 64
_PROBE_EVERY = 10


@dataclass
class RateFigures:
    offered_per_s: float
    applied_per_s: float
    probes: int
    p50_ms: float
    p99_ms: float
    backlog_left: int
    cpu_ms_per_applied: float = float("nan")  # the role's CPU time over the rate's window, per interaction applied


@dataclass
class ModeFigures:
    batch_size: int
    events: int
    seconds: float
    store_calls: dict[str, float]
    redis_calls: dict[str, float]
    rates: list[RateFigures] = field(default_factory=list)
    cpu_s: float = 0.0  # the role process's CPU time over the backlog

    round_no: int = 1

    @property
    def per_s(self) -> float:
        return self.events / self.seconds

    @property
    def cpu_ms_per_event(self) -> float:
        return self.cpu_s * 1000 / self.events

    @property
    def store_per_event(self) -> float:
        return sum(self.store_calls.values()) / self.events

    @property
    def redis_per_event(self) -> float:
        return sum(self.redis_calls.values()) / self.events


@dataclass
class InteractionBenchReport:
    modes: list[ModeFigures]

    def render(self) -> str:
        lines = [
            "| round | mode | interactions/s | × baseline | role CPU ms/event | × baseline | Qdrant calls/event"
            " | Redis commands/event |",
            "| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
        ]
        for mode in self.modes:
            base = next(m for m in self.modes if m.round_no == mode.round_no)
            name = "baseline: one at a time (batch 1)" if mode.batch_size == 1 else f"batched (up to {mode.batch_size})"
            lines.append(
                f"| {mode.round_no} | {name} | {mode.per_s:,.0f} | {mode.per_s / base.per_s:.2f}"
                f" | {mode.cpu_ms_per_event:.2f} | {mode.cpu_ms_per_event / base.cpu_ms_per_event:.2f}"
                f" | {mode.store_per_event:.2f} ({mode.store_per_event / base.store_per_event:.2f}×)"
                f" | {mode.redis_per_event:.2f} ({mode.redis_per_event / base.redis_per_event:.2f}×) |"
            )
        lines += ["", "Per event, by operation:"]
        for mode in self.modes:
            store = ", ".join(f"{op} {n / mode.events:.2f}" for op, n in sorted(mode.store_calls.items()) if n)
            redis = ", ".join(
                f"{op} {n / mode.events:.2f}"
                for op, n in sorted(mode.redis_calls.items(), key=lambda kv: -kv[1])
                if n / mode.events >= 0.01
            )
            lines.append(f"- round {mode.round_no}, batch {mode.batch_size}: Qdrant {store}; Redis {redis}")
        lines += [
            "",
            "| round | mode | offered/s | applied/s | probes | XADD → visible p50 ms | p99 ms | backlog left"
            " | role CPU ms/applied |",
            "| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        ]
        for mode in self.modes:
            for rate in mode.rates:
                lines.append(
                    f"| {mode.round_no} | batch {mode.batch_size} | {rate.offered_per_s:,.0f}"
                    f" | {rate.applied_per_s:,.0f} | {rate.probes} | {rate.p50_ms:.0f} | {rate.p99_ms:.0f}"
                    f" | {rate.backlog_left} | {rate.cpu_ms_per_applied:.2f} |"
                )
        return "\n".join(lines)


@contextlib.asynccontextmanager
async def redis_for_bench(redis_url: str | None) -> AsyncIterator[str]:
    """The given Redis, or a redis-server of the bench's own (no persistence) on a free port."""
    if redis_url:
        yield redis_url
        return
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError("redis-server is not installed: give --redis-url")
    port = free_port()
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    try:
        client = Redis.from_url(url)
        for _ in range(100):
            with contextlib.suppress(Exception):
                await client.ping()
                break
            await asyncio.sleep(0.05)
        await client.aclose()
        yield url
    finally:
        process.terminate()
        process.wait(10)


async def write_catalog(data_dir: Path, items: int, seed: int = 0) -> None:
    """What the text role and a behavior refresh leave behind: the collections, and items with (here random)
    content vectors and behavior vectors of model version 1, so that every interaction folds its user's behavior
    vector from the items of their history, as it does in production."""
    store = VectorStore.connect("", data_dir)
    try:
        await store.ensure_collections(384, BEHAVIOR_DIMS)
        rng = np.random.default_rng(seed)
        now = time.time()
        for start in range(0, items, 500):
            points = []
            for n in range(start, min(items, start + 500)):
                content, behavior = rng.standard_normal(384), rng.standard_normal(BEHAVIOR_DIMS)
                item_id = f"item-{n}"
                payload = new_item_payload(ItemUpserted(item_id=item_id, title=item_id, version=1), now)
                payload[ItemField.BEHAVIOR_VERSION.key] = 1
                points.append(
                    models.PointStruct(
                        id=point_id(item_id),
                        vector={
                            CONTENT: (content / np.linalg.norm(content)).tolist(),
                            BEHAVIOR: (behavior / np.linalg.norm(behavior)).tolist(),
                        },
                        payload=payload,
                    )
                )
            await store.client.upsert(ITEMS, points)
    finally:
        await store.close()


def _event(n: int, user_id: str, items: int, rng: random.Random) -> dict[str, str]:
    return to_fields(
        Interaction(
            event_id=f"ev-{n}",
            user_id=user_id,
            item_id=f"item-{rng.randrange(items)}",
            type=InteractionType.CLICK,
            ts=time.time(),
        )
    )


async def _commandstats(redis: Redis) -> dict[str, float]:
    stats = await redis.info("commandstats")
    return {name.removeprefix("cmdstat_"): float(value["calls"]) for name, value in stats.items()}


async def _applied(service: ServiceProcess) -> float:
    text = await asyncio.to_thread(service.metrics)
    return sample(text, "recsys_interactions_applied_total")


async def _store_calls(service: ServiceProcess) -> dict[str, float]:
    text = await asyncio.to_thread(service.metrics)
    calls: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("recsys_store_calls_total{"):
            op = line.split('op="', 1)[1].split('"', 1)[0]
            calls[op] = float(line.rsplit(" ", 1)[1])
    return calls


async def _wait_applied(service: ServiceProcess, target: float, timeout_s: float) -> float:
    deadline = time.monotonic() + timeout_s
    while True:
        applied = await _applied(service)
        if applied >= target or time.monotonic() > deadline:
            return applied
        await asyncio.sleep(0.2)  # a scrape costs the service a little CPU


async def _throughput(
    redis: Redis, service: ServiceProcess, stream: str, mode: ModeFigures, first: int, items: int, users: int
) -> None:
    rng = random.Random(first)
    entries = [_event(first + n, f"user-{rng.randrange(users)}", items, rng) for n in range(mode.events)]
    store_before, redis_before = await _store_calls(service), await _commandstats(redis)
    applied_before = await _applied(service)
    cpu_before = service.cpu_seconds()
    started = time.monotonic()
    for chunk in range(0, len(entries), _PUBLISH_CHUNK):
        async with redis.pipeline(transaction=False) as pipe:
            for fields in entries[chunk : chunk + _PUBLISH_CHUNK]:
                pipe.xadd(stream, fields)  # type: ignore[arg-type]
            await pipe.execute()
    applied = await _wait_applied(service, applied_before + mode.events, timeout_s=600)
    mode.seconds = time.monotonic() - started
    mode.cpu_s = service.cpu_seconds() - cpu_before
    if applied < applied_before + mode.events:
        raise RuntimeError(f"only {applied - applied_before:.0f} of {mode.events} interactions applied in 600 s")
    store_after, redis_after = await _store_calls(service), await _commandstats(redis)
    mode.store_calls = {op: n - store_before.get(op, 0.0) for op, n in store_after.items()}
    redis_calls = {op: n - redis_before.get(op, 0.0) for op, n in redis_after.items()}
    redis_calls["xadd"] = redis_calls.get("xadd", 0.0) - mode.events  # the bench's own
    redis_calls.pop("info", None)
    mode.redis_calls = {op: n for op, n in redis_calls.items() if n > 0}


async def _at_rate(
    redis: Redis,
    service: ServiceProcess,
    streams: tuple[str, str],
    rate: float,
    seconds: float,
    first: int,
    items: int,
    users: int,
) -> RateFigures:
    stream, notices = streams
    rng = random.Random(first)
    sent: dict[str, float] = {}
    seen: dict[str, float] = {}
    last_notice = (await redis.xinfo_stream(notices))["last-generated-id"] if await redis.exists(notices) else "0-0"
    stop = asyncio.Event()

    async def watch() -> None:
        cursor = last_notice
        reader = Redis.from_url(service.redis_url)
        try:
            while not stop.is_set() or len(seen) < len(sent):
                answer: Any = await reader.xread({notices: cursor}, count=1000, block=200)
                now = time.monotonic()
                for _, entries in answer or []:
                    for entry_id, fields in entries:
                        cursor = entry_id
                        subject = json.loads(fields[b"data"])["subject_id"]
                        if subject in sent and subject not in seen:
                            seen[subject] = now
                if stop.is_set() and time.monotonic() > stop_at + 10:
                    return
        finally:
            await reader.aclose()

    stop_at = float("inf")
    watcher = asyncio.create_task(watch())
    applied_before = await _applied(service)
    cpu_before = service.cpu_seconds()
    total = int(rate * seconds)
    tick = 0.01
    started = time.monotonic()
    n = 0
    while n < total:
        due = min(total, int((time.monotonic() - started) * rate) + 1)
        async with redis.pipeline(transaction=False) as pipe:
            for k in range(n, due):
                probe = k % _PROBE_EVERY == 0
                user = f"probe-{first + k}" if probe else f"user-{rng.randrange(users)}"
                pipe.xadd(stream, _event(first + k, user, items, rng))  # type: ignore[arg-type]
                if probe:
                    sent[user] = time.monotonic()  # the moment the XADD leaves
            await pipe.execute()
        n = due
        await asyncio.sleep(max(0.0, started + n / rate - time.monotonic(), tick / 10))
    elapsed = time.monotonic() - started
    applied = await _applied(service) - applied_before
    cpu_s = service.cpu_seconds() - cpu_before
    stop_at = time.monotonic()
    stop.set()
    await _wait_applied(service, applied_before + total, timeout_s=120)
    await watcher
    latencies = sorted((seen[user] - sent[user]) * 1000 for user in seen)
    backlog = total - int(applied)
    return RateFigures(
        offered_per_s=total / elapsed,
        applied_per_s=applied / elapsed,
        probes=len(latencies),
        p50_ms=statistics.median(latencies) if latencies else float("nan"),
        p99_ms=latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] if latencies else float("nan"),
        backlog_left=max(0, backlog),
        cpu_ms_per_applied=cpu_s * 1000 / applied if applied else float("nan"),
    )


async def run_interaction_bench(
    redis_url: str | None,
    batch_sizes: Sequence[int],
    events: int,
    rates: Sequence[float],
    rate_seconds: float,
    items: int,
    users: int,
    rounds: int,
) -> InteractionBenchReport:
    """Each round runs every mode once, the baseline first; ratios are against the same round's baseline."""
    modes: list[ModeFigures] = []
    async with redis_for_bench(redis_url) as url:
        redis = Redis.from_url(url)
        try:
            for round_no in range(1, rounds + 1):
                for batch_size in batch_sizes:
                    mode = ModeFigures(batch_size, events, 0.0, {}, {}, round_no=round_no)
                    await _run_mode(redis, url, mode, rates, rate_seconds, items, users)
                    modes.append(mode)
        finally:
            await redis.aclose()
    return InteractionBenchReport(modes)


async def _run_mode(
    redis: Redis,
    url: str,
    mode: ModeFigures,
    rates: Sequence[float],
    rate_seconds: float,
    items: int,
    users: int,
) -> None:
    prefix = f"bench-{uuid.uuid4().hex[:6]}"
    data_dir = Path(tempfile.mkdtemp(prefix="recsys-interactions-bench-"))
    try:
        await write_catalog(data_dir, items)
        env = {"RECSYS_INTERACTION_BATCH_SIZE": str(mode.batch_size), "RECSYS_BEHAVIOR_REFRESH_INTERACTIONS": "0"}
        async with ServiceProcess(url, prefix, env, role="interactions", data_dir=data_dir) as service:
            stream, notices = f"{prefix}:interactions", f"{prefix}:embeddings"
            # A warm-up, so the first batch's start-up work is not timed.
            warm_up = ModeFigures(mode.batch_size, 200, 0.0, {}, {})
            await _throughput(redis, service, stream, warm_up, 10**8, items, users)
            await _throughput(redis, service, stream, mode, 0, items, users)
            # Half of what it just sustained, and the asked rates it might sustain.
            wanted = [mode.per_s * 0.5, *(rate for rate in rates if rate <= mode.per_s * 1.2)]
            for k, rate in enumerate(sorted({round(rate) for rate in wanted})):
                first = 10**7 * (k + 1)
                figures = await _at_rate(redis, service, (stream, notices), rate, rate_seconds, first, items, users)
                mode.rates.append(figures)
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
