"""`recsys bench roles`: what each encoder role costs to run: time from start to SERVING and resident memory.

Each round runs the roles as a deployment would, one process each, one after the other on the same
embedded Qdrant folder (embedded Qdrant admits one process at a time): the text role starts, ingests
a catalog and stops; then the interactions role starts on the collections the text role made and
applies interactions. Both figures are read against the text role's in the same round.
"""

from __future__ import annotations

import json
import random
import statistics
import tempfile
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from redis.asyncio import Redis

from recsys.encoder.settings import EncoderSettings
from recsys.tools.encoder_bench.scenarios import publish_items, wait_drained
from recsys.tools.service_process import ServiceProcess

_MB = 1024 * 1024


@dataclass(frozen=True)
class RoleFigures:
    """One role's run: seconds from the process start to health SERVING; resident memory in bytes."""

    serving_s: float
    rss_serving: int
    rss_after_work: int
    rss_peak: int
    work: str


@dataclass
class RoleBenchReport:
    rounds: list[dict[str, RoleFigures]] = field(default_factory=list)

    def median(self, role: str, figure: str) -> float:
        return statistics.median(getattr(run[role], figure) for run in self.rounds)

    def render(self) -> str:
        work = {role: self.rounds[0][role].work for role in self.rounds[0]}
        lines = [
            f"recsys bench roles: {len(self.rounds)} round(s), medians; ratios: interactions / text of the same round",
            "",
            "| role | work | start → SERVING s | RSS at SERVING MB | RSS after the work MB | peak RSS MB |",
            "| --- | --- | ---: | ---: | ---: | ---: |",
        ]
        for role in ("text", "interactions"):
            lines.append(
                f"| {role} | {work[role]} | {self.median(role, 'serving_s'):.2f} |"
                f" {self.median(role, 'rss_serving') / _MB:.0f} | {self.median(role, 'rss_after_work') / _MB:.0f} |"
                f" {self.median(role, 'rss_peak') / _MB:.0f} |"
            )
        ratios = {
            figure: statistics.median(
                getattr(run["interactions"], figure) / getattr(run["text"], figure) for run in self.rounds
            )
            for figure in ("serving_s", "rss_after_work", "rss_peak")
        }
        lines += [
            "",
            f"interactions / text: start {ratios['serving_s']:.2f}x,"
            f" RSS after the work {ratios['rss_after_work']:.2f}x, peak RSS {ratios['rss_peak']:.2f}x",
            f"interactions role: start → SERVING {self.median('interactions', 'serving_s'):.2f} s (aim < 1 s),"
            f" peak RSS {self.median('interactions', 'rss_peak') / _MB:.0f} MB (aim < 200 MB)",
            "each round: " + "; ".join(f"{role} {run_line(self.rounds, role)}" for role in ("text", "interactions")),
        ]
        return "\n".join(lines)


def run_line(rounds: Sequence[dict[str, RoleFigures]], role: str) -> str:
    return ", ".join(f"{run[role].serving_s:.2f} s/{run[role].rss_peak / _MB:.0f} MB" for run in rounds)


def _interactions(item_ids: Sequence[str], count: int, users: int, seed: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    kinds = ["view", "click", "add_to_cart", "purchase", "like"]
    start = time.time() - 3600
    return [
        {
            "event_id": f"bench-{seed}-{n}",
            "user_id": f"user-{rng.randrange(users)}",
            "item_id": rng.choice(item_ids),
            "type": rng.choice(kinds),
            "ts": start + n * 0.1,
        }
        for n in range(count)
    ]


async def _one_round(
    redis_url: str, items: Sequence[dict[str, Any]], interactions: int, users: int, seed: int
) -> dict[str, RoleFigures]:
    settings = EncoderSettings()
    prefix = f"roles-{uuid.uuid4().hex[:8]}"
    redis = Redis.from_url(redis_url)
    figures: dict[str, RoleFigures] = {}
    with tempfile.TemporaryDirectory(prefix="recsys-roles-") as folder:
        data_dir = Path(folder)
        text = ServiceProcess(redis_url, prefix, role="text", data_dir=data_dir)
        try:
            await text.start()
            rss_serving, _ = text.memory()
            await publish_items(redis, f"{prefix}:items", items)
            await wait_drained(redis, f"{prefix}:items", settings.item_ingest_group, 600)
            rss_after, peak = text.memory()
            figures["text"] = RoleFigures(text.serving_after_s, rss_serving, rss_after, peak, f"{len(items)} items")
        finally:
            text.close()

        # Its behavior refresh stays out of the figures: it runs on its own schedule (minutes).
        quiet_refresh = {"RECSYS_BEHAVIOR_REFRESH_INTERACTIONS": "0", "RECSYS_BEHAVIOR_REFRESH_INTERVAL_S": "86400"}
        role = ServiceProcess(redis_url, prefix, quiet_refresh, role="interactions", data_dir=data_dir)
        try:
            await role.start()
            rss_serving, _ = role.memory()
            stream = f"{prefix}:interactions"
            events = _interactions([str(item["item_id"]) for item in items], interactions, users, seed)
            for start in range(0, len(events), 500):
                async with redis.pipeline(transaction=False) as pipe:
                    for event in events[start : start + 500]:
                        pipe.xadd(stream, {"event": "interaction", "data": json.dumps(event)})
                    await pipe.execute()
            await wait_drained(redis, stream, settings.interaction_ingest_group, 600)
            rss_after, peak = role.memory()
            figures["interactions"] = RoleFigures(
                role.serving_after_s, rss_serving, rss_after, peak, f"{interactions} interactions of {users} users"
            )
        finally:
            role.close()
    keys = [key async for key in redis.scan_iter(match=f"{prefix}:*")]
    if keys:
        await redis.delete(*keys)
    await redis.aclose()
    return figures


async def run_role_bench(
    redis_url: str, items: Sequence[dict[str, Any]], interactions: int, users: int, rounds: int
) -> RoleBenchReport:
    report = RoleBenchReport()
    for seed in range(rounds):
        report.rounds.append(await _one_round(redis_url, items, interactions, users, seed))
    return report
