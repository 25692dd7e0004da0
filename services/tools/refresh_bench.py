"""`recsys bench refresh`: how the behavior refresh grows with the log: factorization, fold-in, writes, peak memory.

Each size runs in a subprocess of its own, so its peak resident memory (getrusage of that process)
is its own. A synthetic log: every user about `per_user` interactions, items drawn with power-law
popularity, weights of the interaction types, times over half a year. Factorization is the
matrix build from the log's columns plus the truncated SVD (the refresh's in-process fit);
fold-in is the users' decayed history matrix times the item directions (behavior_fold.py); the
write is the refresh's own batched writer into embedded Qdrant (items, then users re-folded a
page at a time), measured only up to `write_up_to` users because embedded Qdrant is a test store,
not a server. Reading the log out of Redis is not part of the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import math
import resource
import subprocess
import sys
import time
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, cast

import numpy as np

_DAY_S = 86_400.0
_MB = 1024 * 1024
# Interaction types' weights (view, click, cart, purchase, like, dislike) and how often each occurs.
_WEIGHTS = np.array([0.5, 1.0, 2.0, 4.0, 3.0, -3.0])
_SHARES = np.array([0.55, 0.25, 0.08, 0.04, 0.06, 0.02])
_ZIPF_EXPONENT = 1.0


@dataclass(frozen=True)
class RefreshFigures:
    """One size: the log, the seconds of each part, and the subprocess's peak resident memory."""

    users: int
    items: int
    interactions: int  # events in the log
    cells: int  # distinct (user, item) pairs: the matrix's non-zeros
    factorize_s: float
    fold_in_s: float
    write_s: float | None  # None: not measured at this size
    written_users: int
    peak_rss: int


def synthetic_log(users: int, items: int, per_user: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Columns of a log: user row, item column (power-law popularity), weight, ts."""
    rng = np.random.default_rng(seed)
    size = users * per_user
    popularity = 1.0 / np.power(np.arange(1, items + 1), _ZIPF_EXPONENT)
    cumulative = np.cumsum(popularity / popularity.sum())
    item = np.minimum(np.searchsorted(cumulative, rng.random(size)), items - 1)
    # Popularity rank and item id are unrelated, as in a real catalog.
    item = rng.permutation(items)[item]
    return {
        "user": rng.integers(0, users, size=size, dtype=np.int64),
        "item": item.astype(np.int64),
        "weight": _WEIGHTS[rng.choice(len(_WEIGHTS), size=size, p=_SHARES)],
        "ts": 1_700_000_000.0 + rng.uniform(0, 180 * _DAY_S, size=size),
    }


def measure(users: int, items: int, per_user: int, dims: int, write_up_to: int, batch: int) -> RefreshFigures:
    """One size, in this process (the child)."""
    from recsys.encoder.interactions.behavior_fold import ItemDirections, decayed_history_matrix, fold_in
    from recsys.encoder.interactions.behavior_model import EventColumns
    from recsys.encoder.interactions.factorizer import InProcessFactorizer
    from recsys.encoder.interactions.settings import InteractionSettings

    settings = InteractionSettings()
    log = synthetic_log(users, items, per_user)
    user_ids = [f"u{n}" for n in range(users)]
    item_ids = [f"i{n}" for n in range(items)]

    started = time.perf_counter()
    events = EventColumns(log["user"], log["item"], log["weight"], log["ts"], user_ids, item_ids)
    fitted = InProcessFactorizer("cpu").fit(events, settings.behavior_model_half_life_days * _DAY_S, dims)
    factors = fitted.factors
    factorized = time.perf_counter()

    # The users' histories are their log entries here (about per_user each, under history_size).
    directions = ItemDirections.of(factors.item_ids, factors.vectors)
    column_of_item = np.full(items, -1, dtype=np.int64)
    column_of_item[[int(item_id[1:]) for item_id in factors.item_ids]] = np.arange(len(factors.item_ids))
    columns = column_of_item[log["item"]]
    known = columns >= 0
    latest = np.full(users, -np.inf)
    np.maximum.at(latest, log["user"], log["ts"])
    history = decayed_history_matrix(
        log["user"][known],
        columns[known],
        log["weight"][known],
        log["ts"][known],
        latest,
        len(factors.item_ids),
        settings.behavior_half_life_days * _DAY_S,
    )
    folded = fold_in(history, directions.units)
    folded_at = time.perf_counter()
    del folded, history

    write_s: float | None = None
    written = 0
    if users <= write_up_to:
        write_s, written = asyncio.run(_write(log, user_ids, factors, dims, batch))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # kilobytes on Linux
    return RefreshFigures(
        users=users,
        items=items,
        interactions=len(log["user"]),
        cells=int(fitted.evidence.sum()),  # one cell per user of an item
        factorize_s=round(factorized - started, 2),
        fold_in_s=round(folded_at - factorized, 2),
        write_s=None if write_s is None else round(write_s, 2),
        written_users=written,
        peak_rss=peak,
    )


async def _write(
    log: dict[str, np.ndarray], user_ids: list[str], factors: Any, dims: int, batch: int
) -> tuple[float, int]:
    """The refresh's writer into embedded Qdrant, on points seeded beforehand (seeding not timed)."""
    from qdrant_client import models

    from recsys.encoder.interactions.behavior_refresh import BehaviorRefresh, RefreshPolicy
    from recsys.encoder.interactions.rules import InteractionRules
    from recsys.encoder.interactions.settings import InteractionSettings
    from recsys.encoder.interactions.user_profile import HistoryEntry, UserProfile
    from recsys.shared.ids import point_id
    from recsys.shared.points import ITEMS, USERS
    from recsys.shared.store import VectorStore

    store = VectorStore.in_memory()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Payload indexes have no effect")
        await store.ensure_collections(8, dims)
    for start in range(0, len(factors.item_ids), 1000):
        points = [
            models.PointStruct(id=point_id(i), vector={}, payload={}) for i in factors.item_ids[start : start + 1000]
        ]
        await store.client.upsert(ITEMS, points)
    order = np.argsort(log["user"], kind="stable")
    bounds = np.searchsorted(log["user"][order], np.arange(len(user_ids) + 1))
    for start in range(0, len(user_ids), 1000):
        points = []
        for user in range(start, min(start + 1000, len(user_ids))):
            rows = order[bounds[user] : bounds[user + 1]]
            history = sorted(
                HistoryEntry(f"i{log['item'][r]}", float(log["weight"][r]), float(log["ts"][r])) for r in rows
            )
            profile = UserProfile(
                user_ids[user], history=history, last_event_ts=max((h.ts for h in history), default=0.0)
            )
            points.append(models.PointStruct(id=point_id(user_ids[user]), vector={}, payload=profile.payload()))
        await store.client.upsert(USERS, points)

    settings = InteractionSettings(behavior_refresh_batch=batch)
    refresh = BehaviorRefresh(
        store,
        cast(Any, None),
        cast(Any, None),
        cast(Any, _NoNotices()),
        InteractionRules.from_settings(settings),
        RefreshPolicy(0, 60.0, 0.0, dims, batch, "cpu", "bench:lock"),
    )
    started = time.perf_counter()
    await refresh._write_items(factors, 1)
    written = await refresh._refold_users(factors, 1)
    elapsed = time.perf_counter() - started
    await store.close()
    return elapsed, written


class _NoNotices:
    async def publish(self, notices: Sequence[Any]) -> None:
        pass


def run_sizes(
    sizes: Sequence[int], items: int, per_user: int, dims: int, write_up_to: int, batch: int
) -> list[RefreshFigures]:
    """Each size in a fresh subprocess (so each peak memory is that size's own)."""
    figures = []
    for users in sizes:
        command = [
            sys.executable,
            "-m",
            "recsys.tools.refresh_bench",
            json.dumps(
                {
                    "users": users,
                    "items": items,
                    "per_user": per_user,
                    "dims": dims,
                    "write_up_to": write_up_to,
                    "batch": batch,
                }
            ),
        ]
        done = subprocess.run(command, check=True, capture_output=True, text=True)
        figures.append(RefreshFigures(**json.loads(done.stdout.strip().splitlines()[-1])))
        print(render([figures[-1]], header=len(figures) == 1), file=sys.stderr, flush=True)
    return figures


def render(figures: Sequence[RefreshFigures], header: bool = True) -> str:
    """A table of the sizes and, between consecutive sizes, how much the log, the time and the memory grew."""
    lines = []
    if header:
        lines.append(
            "| users | items | interactions | matrix cells | factorize s | fold-in s | factorize + fold-in s | write s"
            " | peak RSS MB |"
        )
        lines.append("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for f in figures:
        write = "not measured" if f.write_s is None else f"{f.write_s:.1f} ({f.written_users:,} users)"
        lines.append(
            f"| {f.users:,} | {f.items:,} | {f.interactions:,} | {f.cells:,} | {f.factorize_s:.1f}"
            f" | {f.fold_in_s:.1f} | {f.factorize_s + f.fold_in_s:.1f} | {write} | {f.peak_rss / _MB:,.0f} |"
        )
    growth = [
        f"{a.users:,} → {b.users:,} users: log ×{b.interactions / a.interactions:.1f}, factorize + fold-in"
        f" ×{_ratio(b.factorize_s + b.fold_in_s, a.factorize_s + a.fold_in_s)},"
        f" peak RSS ×{_ratio(b.peak_rss, a.peak_rss)}"
        for a, b in itertools.pairwise(figures)
    ]
    return "\n".join(lines + (["", *growth] if growth else []))


def _ratio(after: float, before: float) -> str:
    return f"{after / before:.1f}" if before > 0 and math.isfinite(after / before) else "–"


def _child(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(description="one size of `recsys bench refresh` (run by it)")
    parser.add_argument("spec", help="JSON: users, items, per_user, dims, write_up_to, batch")
    spec = json.loads(parser.parse_args(argv).spec)
    print(json.dumps(asdict(measure(**spec))))
    return 0


if __name__ == "__main__":
    sys.exit(_child(sys.argv[1:]))
