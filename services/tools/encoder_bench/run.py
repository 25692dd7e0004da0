"""Runs every measurement of `recsys bench encoder` in one go and builds the report."""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import grpc
import numpy as np
from redis.asyncio import Redis

from recsys.encoder.settings import EncoderSettings
from recsys.encoder.text.embedder import Embedder
from recsys.shared.points import ITEMS
from recsys.shared.store import VectorStore
from recsys.tools.encoder_bench.corpus import item_texts, repeat_to
from recsys.tools.encoder_bench.report import Reference, Report, Row, Target
from recsys.tools.encoder_bench.scenarios import (
    Latencies,
    Rate,
    embed_calls,
    embed_stream,
    encode_in_process,
    encode_one_by_one,
    live_calls,
    passes_in_process,
    publish_items,
    wait_drained,
)
from recsys.tools.service_process import ServiceProcess, sample
from recsys_client.api import encoder_pb2, encoder_pb2_grpc


@dataclass(frozen=True)
class BenchSizes:
    """How much each measurement does; small values give a quick run."""

    texts: int = 2000  # texts for the baseline, the concurrent callers and EmbedStream
    one_by_one: int = 300  # texts for naive encode and for the service at concurrency 1
    # Live calls measured with nothing else running: the p99 of 300 rests on the 3 slowest calls and
    # moved between 10.7 and 15.0 ms from run to run; 1,000 put 10 calls above it.
    latency_calls: int = 1000
    bulk_items: int = 5000  # items ingested while the live caller is measured again
    ingest_items: int = 2000  # items ingested alone, for items/s
    batch_sizes: tuple[int, ...] = (16, 32, 64, 128)
    concurrencies: tuple[int, ...] = (1, 8, 64)
    texts_per_call: int = 32  # for the many-texts-per-call row (how a GPU is best fed)
    # Texts per pass tried for the ceiling row, with RECSYS_BATCH_MAX_SIZE added and none above it.
    pass_sizes: tuple[int, ...] = (16, 32, 64)


class _References:
    """The in-process rates each service row is read against: measured again after every row.

    A row gets the average of the rates measured just before and just after it. The best batch size
    is chosen once, from a sweep; its rate is then measured afresh (the best of several noisy
    rates is the luckiest of them, not the baseline's).
    """

    def __init__(self, measure: Callable[[], Reference]) -> None:
        self._measure = measure
        self._last = measure()

    def around_last_row(self) -> Reference:
        after = self._measure()
        reference, self._last = Reference.around(self._last, after), after
        return reference


def _ms(latencies: Latencies, q: float) -> float:
    return latencies.percentile(q) * 1000


def _stage_seconds(metrics: str) -> dict[str, float]:
    return {
        "model": sample(metrics, "recsys_encoder_pass_seconds_sum", lane="bulk"),
        "texts": sample(metrics, "recsys_encoder_texts_total", lane="bulk"),
        "tokens": sample(metrics, "recsys_encoder_tokens_total", lane="bulk"),
        "padded": sample(metrics, "recsys_encoder_padded_tokens_total", lane="bulk"),
        "passes": sample(metrics, "recsys_encoder_pass_texts_count", lane="bulk"),
        **{
            stage: sample(metrics, "recsys_encoder_item_stage_seconds_sum", stage=stage)
            for stage in ("embed", "store", "notice")
        },
    }


def _where_time_went(before: dict[str, float], after: dict[str, float], items: int, wall_s: float) -> str:
    delta = {key: after[key] - before[key] for key in after}
    passes = max(delta["passes"], 1.0)
    waste = 1 - delta["tokens"] / delta["padded"] if delta["padded"] else 0.0
    per_item = {stage: delta[stage] / items * 1000 for stage in ("embed", "store", "notice")}
    return (
        f"    where the time went: model busy {delta['model']:.1f} s of {wall_s:.1f} s wall"
        f" ({delta['model'] / wall_s:.0%}), {delta['texts'] / passes:.1f} texts per pass, padding {waste:.0%};"
        f" per item (concurrent, so these overlap): embed {per_item['embed']:.1f} ms (queue + model),"
        f" Qdrant {per_item['store']:.1f} ms, notice {per_item['notice']:.1f} ms"
    )


def _ceiling(model: Embedder, texts: Sequence[str], pass_sizes: Sequence[int], max_size: int) -> tuple[int, Rate]:
    """The service's own passes run back to back in-process, at the best of a few pass sizes up to its maximum."""
    tokenized = model.tokenize(texts)
    sizes = sorted({size for size in (*pass_sizes, max_size) if size <= max_size})
    model.forward(tokenized[:max_size])  # warm-up, not timed
    rates = {size: passes_in_process(model.forward, tokenized, size) for size in sizes}
    return max(rates.items(), key=lambda pair: pair[1].per_second)


async def _count_points(data_dir: Any) -> int:
    store = VectorStore.connect("", data_dir)
    try:
        return (await store.client.count(ITEMS, exact=True)).count
    finally:
        await store.close()


async def run_bench(items: Sequence[dict[str, Any]], source: str, sizes: BenchSizes, redis_url: str) -> Report:
    """Every measurement against one encoder process, in an order that keeps them from disturbing each other."""
    settings = EncoderSettings()
    rng = random.Random(0)
    pool = list(items)
    chosen = rng.sample(pool, sizes.texts) if len(pool) >= sizes.texts else repeat_to(pool, sizes.texts, "text")
    texts = item_texts(chosen)
    one_by_one = texts[: sizes.one_by_one]

    model = Embedder.load(
        settings.model,
        settings.device,
        settings.max_tokens,
        cuda_dtype=settings.cuda_dtype,
        torch_threads=settings.torch_threads,
    )
    counts = np.minimum(model.count_tokens(texts), model.max_tokens)
    prefix = f"bench-{uuid.uuid4().hex[:8]}"
    redis = Redis.from_url(redis_url)
    service = ServiceProcess(redis_url, prefix)
    try:
        await service.start()

        # In the model's own thread, as the service runs its passes: the baseline at its best too.
        def encode(*args: Any, **kwargs: Any) -> Any:
            return model.thread.call(model.model.encode, *args, **kwargs)

        encode(texts[:64], batch_size=64, show_progress_bar=False)  # warm-up, not timed
        baseline = {size: encode_in_process(encode, texts, size) for size in sizes.batch_sizes}
        best_size, best = max(baseline.items(), key=lambda pair: pair[1].per_second)
        naive = encode_one_by_one(encode, one_by_one)
        title = (
            f"recsys bench encoder: {len(texts)} texts from {source}, tokens mean {counts.mean():.1f}"
            f" / p50 {np.percentile(counts, 50):.0f} / p99 {np.percentile(counts, 99):.0f} / max {counts.max()};"
            f" model {model.name} on {model.device} ({model.dtype})"
        )
        report = Report(title, best.per_second, naive.per_second)
        tried = ", ".join(f"{size}: {rate.per_second:.0f}/s" for size, rate in baseline.items())
        report.rows.append(Row(f"baseline: in-process encode, batch {best_size}", best.per_second, note=tried))
        report.rows.append(Row("naive: in-process encode, one text per call", naive.per_second))
        ceiling_size, ceiling = _ceiling(model, texts, sizes.pass_sizes, settings.batch_max_size)
        report.rows.append(
            Row(
                f"ceiling: the service's passes in-process, {ceiling_size} per pass",
                ceiling.per_second,
                note="no gRPC, queue or event loop: the most the service can give here",
            )
        )
        references = _References(
            lambda: Reference(
                encode_in_process(encode, texts, best_size).per_second,
                encode_one_by_one(encode, one_by_one).per_second,
            )
        )

        def service_row(name: str, rate: Rate) -> Reference:
            reference = references.around_last_row()
            report.rows.append(Row(name, rate.per_second, reference=reference))
            return reference

        async with grpc.aio.insecure_channel(service.address) as channel:
            stub = encoder_pb2_grpc.EncoderServiceStub(channel)
            await stub.Embed(encoder_pb2.EmbedRequest(texts=texts[:8]), timeout=60)
            rates: dict[int, tuple[Rate, Reference]] = {}
            for concurrency in sizes.concurrencies:
                share = one_by_one if concurrency == 1 else texts
                rate = await embed_calls(stub, share, concurrency)
                rates[concurrency] = (
                    rate,
                    service_row(f"service: Embed, 1 text per call, concurrency {concurrency}", rate),
                )
            streamed = await embed_stream(stub, texts)
            streamed_reference = service_row("service: EmbedStream, 1 text per message", streamed)
            many = await embed_calls(stub, texts, 8, sizes.texts_per_call)
            many_reference = service_row(f"service: Embed, {sizes.texts_per_call} texts per call, concurrency 8", many)

            ingest = repeat_to(pool, sizes.ingest_items, "ingest")
            items_stream, group = f"{prefix}:items", settings.item_ingest_group
            before = _stage_seconds(service.metrics())
            started = time.perf_counter()
            await publish_items(redis, items_stream, ingest)
            await wait_drained(redis, items_stream, group, timeout_s=3600)
            ingest_s = time.perf_counter() - started
            after = _stage_seconds(service.metrics())
            ingested = Rate(len(ingest), ingest_s)
            ingest_reference = service_row(
                f"ingestion: {len(ingest)} items XADDed -> all in Qdrant (items/s)", ingested
            )
            report.notes.append(_where_time_went(before, after, len(ingest), ingest_s))

            # Alone: half the calls before the ingest and half after, so that drift weighs on both sides.
            first_half = sizes.latency_calls // 2
            alone_before = await live_calls(stub, texts, count=first_half)
            bulk = repeat_to(pool, sizes.bulk_items, "bulk")
            done = asyncio.Event()

            async def ingest_bulk() -> float:
                began = time.perf_counter()
                await publish_items(redis, items_stream, bulk)
                await wait_drained(redis, items_stream, group, timeout_s=3600)
                done.set()
                return time.perf_counter() - began

            bulk_task = asyncio.create_task(ingest_bulk())
            during = await live_calls(stub, texts, until=done)
            bulk_s = await bulk_task
            alone_after = await live_calls(stub, texts, count=sizes.latency_calls - first_half)
            alone = Latencies(alone_before.seconds + alone_after.seconds)
            report.rows.append(
                Row(
                    "live: Embed 1 text, one caller, nothing else",
                    None,
                    _ms(alone, 50),
                    _ms(alone, 99),
                    f"{len(alone.seconds)} calls, half before the ingest below, half after",
                )
            )
            report.rows.append(
                Row(
                    f"live: the same while {len(bulk)} items are ingested",
                    None,
                    _ms(during, 50),
                    _ms(during, 99),
                    f"{len(during.seconds)} calls; bulk meanwhile {len(bulk) / bulk_s:.0f} items/s",
                )
            )
        service.stop()
        stored = await _count_points(service.data_dir)
        expected = len(ingest) + len(bulk)
        if stored != expected:
            report.notes.append(f"    WARNING: Qdrant holds {stored} items, {expected} were published")
        else:
            report.notes.append(f"    checked: Qdrant holds all {stored} items published")

        report.notes.append(
            "    x base and x naive of each service row: against in-process rates measured again just before and"
            f" just after it (batch {best_size}), averaged"
        )
        top = max(sizes.concurrencies)
        top_rate, top_reference = rates[top]
        report.targets += [
            Target(
                f"Embed at concurrency {top} / baseline", top_rate.per_second / top_reference.baseline_per_second, 0.9
            ),
            Target(
                f"Embed at concurrency {top} / naive",
                top_rate.per_second / top_reference.naive_per_second,
                4.0,
                context=f"the ceiling row: {ceiling.per_second / naive.per_second:.2f}x naive",
            ),
            Target("live p99 during bulk / live p99 alone", _ms(during, 99) / _ms(alone, 99), 2.0, at_most=True),
            Target("ingestion / baseline", ingested.per_second / ingest_reference.baseline_per_second, 0.7),
        ]
        if model.device.startswith("cuda"):
            service_rates = [*rates.values(), (streamed, streamed_reference), (many, many_reference)]
            report.targets += [
                Target("GPU: fastest service rate, texts/s", max(rate.per_second for rate, _ in service_rates), 20_000),
                Target(
                    "GPU: fastest service rate / baseline",
                    max(rate.per_second / reference.baseline_per_second for rate, reference in service_rates),
                    0.8,
                ),
            ]
        return report
    finally:
        service.close()
        keys = [key async for key in redis.scan_iter(f"{prefix}:*")]
        if keys:
            await redis.delete(*keys)
        await redis.aclose()
