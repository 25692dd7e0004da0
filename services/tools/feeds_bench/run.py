"""Runs the feeds benchmark: per catalog size, a catalog built in embedded Qdrant, the recommender on it over gRPC.

For each size the catalog is written in batches into embedded Qdrant on disk (qdrant-client local
mode in a temporary folder, as `recsys run` uses it), the recommender service starts in this
process on that store, and SimilarItems and ForYou are called one after the other (after a
warm-up) until `calls` calls or `budget_s` seconds per feed. Then the feeds' query shapes run
directly on the engines: local mode, and where qdrant-edge-py is installed the same points in a
qdrant-edge shard, exact and by HNSW, with how often their results agree.
"""

from __future__ import annotations

import asyncio
import shutil
import statistics
import tempfile
import time
import warnings
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from qdrant_client import models

from recsys.recommender.app import RecommenderService
from recsys.recommender.filters import ItemFilter
from recsys.recommender.qdrant_filters import to_qdrant_filter
from recsys.recommender.settings import RecommenderSettings
from recsys.shared.points import CONTENT, ITEMS, TASTE, USERS, ItemField, UserField, collection_vectors
from recsys.shared.store import VectorStore
from recsys.tools.feeds_bench import edge
from recsys.tools.feeds_bench.catalog import BEHAVIOR_DIMS, CONTENT_DIMS, CatalogShape, SyntheticCatalog, item_id
from recsys.tools.feeds_bench.catalog import user_id as synthetic_user_id
from recsys_client.aio import RecommenderClient

FEED_LIMIT = 10
_WARMUP_CALLS = 3
NEAREST = "nearest + ForYou filter"
POPULAR = "popularity order + filter"


@dataclass(frozen=True)
class Latency:
    """Milliseconds of a run of sequential calls."""

    p50_ms: float
    p99_ms: float
    calls: int

    @classmethod
    def of(cls, seconds: Sequence[float]) -> Latency:
        ms = np.asarray(seconds) * 1000.0
        return cls(float(np.percentile(ms, 50)), float(np.percentile(ms, 99)), len(ms))


@dataclass
class SizeFigures:
    items: int
    build_s: float
    feeds: dict[str, Latency] = field(default_factory=dict)
    # (engine, query shape) → latency; engines: "local", "edge exact", "edge hnsw".
    engines: dict[tuple[str, str], Latency] = field(default_factory=dict)
    edge_build_s: float | None = None
    edge_index_s: float | None = None
    # Share of nearest queries whose ids (in order) local mode and edge give alike; HNSW recall@pool.
    edge_exact_agreement: float | None = None
    edge_hnsw_recall: float | None = None


@dataclass
class FeedsBenchReport:
    sizes: list[SizeFigures] = field(default_factory=list)

    def render(self) -> str:
        base = self.sizes[0]
        lines = [
            "recsys bench feeds: embedded Qdrant (qdrant-client local mode, on disk; '... on edge': the same"
            " points in qdrant-edge shards), the recommender in-process over gRPC, sequential calls of"
            f" {FEED_LIMIT} items; ratios against {base.items:,} items of this run",
            "",
            "| items | build s | feed | calls | p50 ms | p99 ms | p50 × | p99 × |",
            "| ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: |",
        ]
        for size in self.sizes:
            for feed, latency in size.feeds.items():
                ref = base.feeds[feed]
                lines.append(
                    f"| {size.items:,} | {size.build_s:.1f} | {feed} | {latency.calls} | {latency.p50_ms:.1f} |"
                    f" {latency.p99_ms:.1f} | {latency.p50_ms / ref.p50_ms:.1f} | {latency.p99_ms / ref.p99_ms:.1f} |"
                )
        if any(size.engines for size in self.sizes):
            lines += [
                "",
                f"The feeds' query shapes on each engine (limit = the candidate pool of a {FEED_LIMIT}-item feed,"
                " payload and vectors read as the feeds read them):",
                "",
                "| items | engine | query | calls | p50 ms | p99 ms | p50 × | p99 × |",
                "| ---: | --- | --- | ---: | ---: | ---: | ---: | ---: |",
            ]
            for size in self.sizes:
                for (engine, shape), latency in size.engines.items():
                    first = base.engines.get((engine, shape))
                    ratio = (
                        f"{latency.p50_ms / first.p50_ms:.1f} | {latency.p99_ms / first.p99_ms:.1f}" if first else " | "
                    )
                    lines.append(
                        f"| {size.items:,} | {engine} | {shape} | {latency.calls} | {latency.p50_ms:.2f} |"
                        f" {latency.p99_ms:.2f} | {ratio} |"
                    )
            for size in self.sizes:
                if size.edge_build_s is None:
                    continue
                lines.append(
                    f"edge at {size.items:,} items: upsert {size.edge_build_s:.1f} s, index (optimize)"
                    f" {size.edge_index_s:.1f} s; same ids in the same order as local mode, exact:"
                    f" {size.edge_exact_agreement:.0%} of queries; HNSW recall against exact"
                    f" {size.edge_hnsw_recall:.3f}"
                )
        return "\n".join(lines)


async def run_feeds_bench(
    sizes: Sequence[int],
    calls: int,
    budget_s: float,
    users: int,
    with_edge: bool,
    progress: Callable[[str], None] = lambda line: None,
) -> FeedsBenchReport:
    report = FeedsBenchReport()
    for items in sizes:
        folder = Path(tempfile.mkdtemp(prefix="recsys-feeds-bench-"))
        try:
            report.sizes.append(
                await _one_size(CatalogShape(items, users), folder, calls, budget_s, with_edge, progress)
            )
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        progress(f"{items:,} items done")
    return report


async def _one_size(
    shape: CatalogShape,
    folder: Path,
    calls: int,
    budget_s: float,
    with_edge: bool,
    progress: Callable[[str], None],
) -> SizeFigures:
    catalog = SyntheticCatalog(shape)
    store = VectorStore.connect("", folder)
    try:
        started = time.perf_counter()
        with warnings.catch_warnings():
            # Local mode warns above 20,000 points: that is what is being measured.
            warnings.simplefilter("ignore")
            await store.ensure_collections(CONTENT_DIMS, BEHAVIOR_DIMS)
            for batch in catalog.item_batches():
                await store.client.upsert(ITEMS, batch)
            await store.client.upsert(USERS, catalog.users())
        figures = SizeFigures(shape.items, time.perf_counter() - started)
        progress(f"{shape.items:,} items: built in {figures.build_s:.1f} s")
        settings = _settings()
        figures.feeds = await _feeds(store, settings, shape, calls, budget_s)
        progress(f"{shape.items:,} items: feeds {figures.feeds}")
        await _engines(store, settings, catalog, folder, calls, budget_s, with_edge, figures)
        progress(f"{shape.items:,} items: engines done")
        return figures
    finally:
        await store.close()


def _settings() -> RecommenderSettings:
    return RecommenderSettings(
        recommender_host="127.0.0.1",
        recommender_port=0,
        recommender_metrics_port=0,
        # SimilarItems and ForYou never call the encoder; nothing needs to listen here.
        encoder_address="127.0.0.1:9",
        health_interval_s=0.05,
        grpc_grace_s=0.5,
    )


async def _feeds(
    store: VectorStore, settings: RecommenderSettings, shape: CatalogShape, calls: int, budget_s: float
) -> dict[str, Latency]:
    service = RecommenderService(settings, store)
    await service.start()
    client = RecommenderClient(f"127.0.0.1:{service.port}")
    rng = np.random.default_rng(shape.seed)
    try:
        await asyncio.wait_for(service.ready.wait(), 30)
        feeds: dict[str, Callable[[], Awaitable[object]]] = {
            "SimilarItems": lambda: client.similar_items(item_id(int(rng.integers(shape.items))), FEED_LIMIT),
            "ForYou": lambda: client.for_you(synthetic_user_id(int(rng.integers(shape.users))), FEED_LIMIT),
        }
        return {name: await _timed(call, calls, budget_s) for name, call in feeds.items()}
    finally:
        await client.close()
        await service.stop()


async def _timed(call: Callable[[], Awaitable[object]], calls: int, budget_s: float) -> Latency:
    for _ in range(_WARMUP_CALLS):
        await call()
    seconds: list[float] = []
    deadline = time.perf_counter() + budget_s
    while len(seconds) < calls and time.perf_counter() < deadline:
        started = time.perf_counter()
        await call()
        seconds.append(time.perf_counter() - started)
    return Latency.of(seconds)


async def _engines(
    store: VectorStore,
    settings: RecommenderSettings,
    catalog: SyntheticCatalog,
    folder: Path,
    calls: int,
    budget_s: float,
    with_edge: bool,
    figures: SizeFigures,
) -> None:
    """The same ForYou-shaped queries on local mode and, where installed, on qdrant-edge."""
    pool = settings.pool_size(FEED_LIMIT)
    queries = []
    for user in catalog.users()[: min(calls, catalog.shape.users)]:
        vectors = user.vector
        assert isinstance(vectors, dict)
        queries.append((list(vectors[TASTE]), to_qdrant_filter(ItemFilter(), UserField.SEEN.read(user.payload))))

    local_ids: list[list[str]] = []

    async def local_nearest(n: int) -> None:
        vector, query_filter = queries[n % len(queries)]
        response = await store.client.query_points(
            ITEMS,
            query=vector,
            using=CONTENT,
            query_filter=query_filter,
            limit=pool,
            with_payload=True,
            with_vectors=True,
        )
        if len(local_ids) < len(queries):
            local_ids.append([str(p.id) for p in response.points])

    async def local_popular(n: int) -> None:
        order = models.OrderBy(key=ItemField.POPULARITY.key, direction=models.Direction.DESC)
        await store.client.query_points(
            ITEMS,
            query=models.OrderByQuery(order_by=order),
            query_filter=queries[n % len(queries)][1],
            limit=pool,
            with_payload=True,
            with_vectors=True,
        )

    figures.engines[("local", NEAREST)] = await _timed_indexed(local_nearest, calls, budget_s)
    figures.engines[("local", POPULAR)] = await _timed_indexed(local_popular, calls, budget_s)
    if not with_edge or not edge.available():
        return
    started = time.perf_counter()
    users = None
    shard = edge.EdgeItems(folder / "edge", {CONTENT: CONTENT_DIMS, "behavior": BEHAVIOR_DIMS})
    try:
        for batch in catalog.item_batches():
            shard.upsert(batch)
        figures.edge_build_s = time.perf_counter() - started
        started = time.perf_counter()
        shard.build_index()
        figures.edge_index_s = time.perf_counter() - started
        exact_ids: list[list[str]] = []
        hnsw_ids: list[list[str]] = []

        def edge_nearest(exact: bool, found: list[list[str]]) -> Callable[[int], Awaitable[None]]:
            async def query(n: int) -> None:
                vector, query_filter = queries[n % len(queries)]
                ids = [point for point, _ in shard.nearest(CONTENT, vector, pool, query_filter, exact=exact)]
                if len(found) < len(queries):
                    found.append(ids)

            return query

        async def edge_popular(n: int) -> None:
            shard.most_popular(pool, queries[n % len(queries)][1])

        figures.engines[("edge exact", NEAREST)] = await _timed_indexed(edge_nearest(True, exact_ids), calls, budget_s)
        figures.engines[("edge hnsw", NEAREST)] = await _timed_indexed(edge_nearest(False, hnsw_ids), calls, budget_s)
        figures.engines[("edge", POPULAR)] = await _timed_indexed(edge_popular, calls, budget_s)
        users = edge.create_shard(folder / "edge-users", collection_vectors(CONTENT_DIMS, BEHAVIOR_DIMS)[USERS])
        edge.upsert(users, catalog.users())
        edge_store = VectorStore(edge.EdgeFeedsClient({ITEMS: shard.shard, USERS: users}), "edge")  # type: ignore[arg-type]
        for feed, latency in (await _feeds(edge_store, settings, catalog.shape, calls, budget_s)).items():
            figures.feeds[f"{feed} on edge"] = latency
        compared = min(len(local_ids), len(exact_ids))
        figures.edge_exact_agreement = sum(local_ids[n] == exact_ids[n] for n in range(compared)) / compared
        figures.edge_hnsw_recall = statistics.fmean(
            len(set(hnsw) & set(exact)) / len(exact) for hnsw, exact in zip(hnsw_ids, exact_ids, strict=False)
        )
    finally:
        shard.close()
        if users is not None:
            users.close()


async def _timed_indexed(query: Callable[[int], Awaitable[None]], calls: int, budget_s: float) -> Latency:
    counter = iter(range(1 << 62))
    return await _timed(lambda: query(next(counter)), calls, budget_s)
