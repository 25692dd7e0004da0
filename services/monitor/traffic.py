"""Anomalies in the interaction traffic: bot-like users (bursts, machine-regular timing) and popularity spikes.

Times are the events' own `ts` (when it happened), so a replayed backlog is judged by when its
events took place, not by when the monitor read them.
"""

from __future__ import annotations

import bisect
import math
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np

from recsys.monitor.anomalies import Anomaly, AnomalyKind
from recsys.shared.events import Interaction

# Anomalies found in the interactions stream, not in a vector space.
TRAFFIC_SPACE = "interactions"

_Value = TypeVar("_Value")


@dataclass(frozen=True)
class TrafficPolicy:
    """Thresholds of the traffic checks."""

    # Bursts: this many events of one user within burst_window_s.
    burst_events: int = 30
    burst_window_s: float = 60.0
    # Regular timing: the last regular_events events of a user spaced with a coefficient of
    # variation (std/mean of the intervals) at or below regular_cv. People click in bursts and
    # pauses (CV around 1 or more); a script on a timer does not.
    regular_events: int = 20
    regular_cv: float = 0.1
    # Spikes: an item's event rate over about spike_window_s, against its rate over about
    # spike_baseline_s, at least spike_ratio times higher (relative to the same ratio of all
    # traffic, so a busy hour everywhere is no spike), with at least spike_min_events recent events.
    spike_window_s: float = 300.0
    spike_baseline_s: float = 86_400.0
    spike_ratio: float = 10.0
    spike_min_events: int = 20
    # Users and items followed at once; the least recently active are forgotten beyond it.
    tracked_subjects: int = 100_000


class _DecayedCount:
    """An exponentially decayed event count with time constant tau: about the events of the last tau seconds."""

    __slots__ = ("tau", "ts", "value")

    def __init__(self, tau: float) -> None:
        self.tau = tau
        self.value = 0.0
        self.ts = -math.inf

    def add(self, ts: float) -> None:
        if ts >= self.ts:
            self.value = self.value * math.exp(-(ts - self.ts) / self.tau) + 1.0 if self.value else 1.0
            self.ts = ts
        else:  # a late event counts as already decayed
            self.value += math.exp(-(self.ts - ts) / self.tau)

    def rate(self) -> float:
        """Events per second (for a steady rate r the count settles at r·tau)."""
        return self.value / self.tau


class _Popularity:
    __slots__ = ("baseline", "recent")

    def __init__(self, policy: TrafficPolicy) -> None:
        self.recent = _DecayedCount(policy.spike_window_s)
        self.baseline = _DecayedCount(policy.spike_baseline_s)

    def add(self, ts: float) -> None:
        self.recent.add(ts)
        self.baseline.add(ts)

    def ratio(self) -> float:
        baseline = self.baseline.rate()
        return self.recent.rate() / baseline if baseline > 0 else 0.0


class TrafficWatch:
    """Follows users' event times and items' event rates; each event may reveal anomalies."""

    def __init__(self, policy: TrafficPolicy) -> None:
        self.policy = policy
        self._users: OrderedDict[str, list[float]] = OrderedDict()
        self._items: OrderedDict[str, _Popularity] = OrderedDict()
        self._everything = _Popularity(policy)
        # Event ids seen lately: a redelivered entry must not count twice and fake a burst.
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._keep = max(policy.burst_events, policy.regular_events)
        # Bumped by every event taken into account, so a snapshot is written only after a change.
        self.version = 0

    def observe(self, event: Interaction, now: float) -> list[Anomaly]:
        """The anomalies this event reveals (none for an event already seen)."""
        if event.event_id in self._seen:
            return []
        self.version += 1
        self._remember(self._seen, event.event_id, None)
        ts = float(event.ts if event.ts is not None else now)
        found = self._user_anomalies(event.user_id, ts, now)
        spike = self._item_spike(event.item_id, ts, now)
        if spike is not None:
            found.append(spike)
        return found

    def _user_anomalies(self, user_id: str, ts: float, now: float) -> list[Anomaly]:
        times = self._users.get(user_id)
        if times is None:
            times = []
        self._remember(self._users, user_id, times)
        bisect.insort(times, ts)
        del times[: -self._keep]
        policy = self.policy
        found = []
        in_burst = len(times) - bisect.bisect_left(times, ts - policy.burst_window_s)
        if times[-1] == ts and in_burst >= policy.burst_events:
            found.append(
                Anomaly(
                    AnomalyKind.BOT_LIKE_USER,
                    TRAFFIC_SPACE,
                    user_id,
                    float(in_burst),
                    float(policy.burst_events),
                    now,
                    f"{in_burst} events within {policy.burst_window_s:g} s "
                    f"(threshold {policy.burst_events}): an event-rate burst",
                )
            )
        elif len(times) >= policy.regular_events:
            intervals = np.diff(times[-policy.regular_events :])
            mean = float(intervals.mean())
            variation = float(intervals.std()) / mean if mean > 0 else math.inf
            if variation <= policy.regular_cv:
                found.append(
                    Anomaly(
                        AnomalyKind.BOT_LIKE_USER,
                        TRAFFIC_SPACE,
                        user_id,
                        variation,
                        policy.regular_cv,
                        now,
                        f"{policy.regular_events} events every {mean:.3g} s with coefficient of variation "
                        f"{variation:.3g} (threshold {policy.regular_cv:g}): machine-regular timing",
                    )
                )
        return found

    def _item_spike(self, item_id: str, ts: float, now: float) -> Anomaly | None:
        popularity = self._items.get(item_id)
        if popularity is None:
            popularity = _Popularity(self.policy)
        self._remember(self._items, item_id, popularity)
        popularity.add(ts)
        self._everything.add(ts)
        policy = self.policy
        if popularity.recent.value < policy.spike_min_events:
            return None
        overall = max(self._everything.ratio(), 1.0)
        score = popularity.ratio() / overall
        if score < policy.spike_ratio:
            return None
        return Anomaly(
            AnomalyKind.POPULARITY_SPIKE,
            TRAFFIC_SPACE,
            item_id,
            score,
            policy.spike_ratio,
            now,
            f"about {popularity.recent.value:.0f} events in the last {policy.spike_window_s:g} s: "
            f"{score:.1f}× its usual rate relative to all traffic (threshold {policy.spike_ratio:g}×)",
        )

    def export(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Everything the checks remember, as arrays (least recently active first) for a snapshot."""
        users = list(self._users.items())
        times = np.full((len(users), self._keep), np.nan)
        for row, (_, stamps) in enumerate(users):
            times[row, : len(stamps)] = stamps
        items = list(self._items.items())
        counts = np.array(
            [[p.recent.value, p.recent.ts, p.baseline.value, p.baseline.ts] for _, p in items], dtype=np.float64
        ).reshape(len(items), 4)
        everything = self._everything
        arrays = {
            "user_ids": np.array([user for user, _ in users], dtype=str),
            "user_times": times,
            "item_ids": np.array([item for item, _ in items], dtype=str),
            "item_counts": counts,
            "all_counts": np.array(
                [everything.recent.value, everything.recent.ts, everything.baseline.value, everything.baseline.ts]
            ),
            "seen_event_ids": np.array(list(self._seen), dtype=str),
        }
        return arrays, {"format": 1, "version": self.version}

    def restore(self, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
        """Takes back what export() gave; the policy in force now applies from here on."""
        self._users = OrderedDict(
            (str(user), [float(t) for t in row if not math.isnan(t)][-self._keep :])
            for user, row in zip(arrays["user_ids"], arrays["user_times"], strict=True)
        )
        self._items = OrderedDict(
            (str(item), self._popularity_from(row))
            for item, row in zip(arrays["item_ids"], arrays["item_counts"], strict=True)
        )
        self._everything = self._popularity_from(arrays["all_counts"])
        self._seen = OrderedDict.fromkeys(str(event_id) for event_id in arrays["seen_event_ids"])
        self.version = int(meta.get("version", 0))

    def _popularity_from(self, row: np.ndarray) -> _Popularity:
        popularity = _Popularity(self.policy)
        popularity.recent.value, popularity.recent.ts = float(row[0]), float(row[1])
        popularity.baseline.value, popularity.baseline.ts = float(row[2]), float(row[3])
        return popularity

    def _remember(self, table: OrderedDict[str, _Value], key: str, value: _Value) -> None:
        table[key] = value
        table.move_to_end(key)
        while len(table) > self.policy.tracked_subjects:
            table.popitem(last=False)
