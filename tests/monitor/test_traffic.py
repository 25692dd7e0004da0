"""Traffic anomalies: bursts and machine-regular users, popularity spikes, and what is not one."""

from __future__ import annotations

import numpy as np

from recsys.monitor.anomalies import AnomalyKind
from recsys.monitor.traffic import TRAFFIC_SPACE, TrafficPolicy, TrafficWatch
from recsys.shared.events import Interaction, InteractionType

POLICY = TrafficPolicy(
    burst_events=10,
    burst_window_s=60,
    regular_events=8,
    regular_cv=0.1,
    spike_window_s=300,
    spike_baseline_s=86_400,
    spike_ratio=10,
    spike_min_events=15,
)


def event(n: int, user: str, item: str, ts: float) -> Interaction:
    return Interaction(event_id=f"e{n}-{user}-{item}", user_id=user, item_id=item, type=InteractionType.VIEW, ts=ts)


def kinds(found: list) -> list[tuple[AnomalyKind, str]]:  # type: ignore[type-arg]
    return [(a.kind, a.subject) for a in found]


def test_a_burst_of_events_makes_a_user_bot_like() -> None:
    watch = TrafficWatch(POLICY)
    found = []
    for n in range(10):
        found = watch.observe(event(n, "fast", f"i{n % 3}", 1000.0 + n * 2.5 + (n % 2)), now=0.0)

    assert kinds(found) == [(AnomalyKind.BOT_LIKE_USER, "fast")]
    assert found[0].score == 10 and found[0].threshold == 10
    assert found[0].space == TRAFFIC_SPACE
    assert "burst" in found[0].detail


def test_machine_regular_timing_makes_a_user_bot_like_even_when_slow() -> None:
    watch = TrafficWatch(POLICY)
    found = []
    for n in range(8):
        found = watch.observe(event(n, "metronome", f"i{n}", 1000.0 + n * 30.0), now=0.0)

    assert kinds(found) == [(AnomalyKind.BOT_LIKE_USER, "metronome")]
    assert found[0].score < 0.01
    assert "machine-regular" in found[0].detail


def test_a_person_clicking_in_bursts_and_pauses_is_no_bot() -> None:
    rng = np.random.default_rng(0)
    watch = TrafficWatch(POLICY)
    ts = 1000.0
    found = []
    for n in range(60):
        ts += float(rng.exponential(40.0))  # Poisson-like: intervals vary as much as their mean
        found += watch.observe(event(n, "person", f"i{n}", ts), now=0.0)

    assert [a for a in found if a.kind == AnomalyKind.BOT_LIKE_USER] == []


def test_a_replayed_event_counts_once() -> None:
    watch = TrafficWatch(POLICY)
    for _ in range(20):
        found = watch.observe(event(1, "u", "i", 1000.0), now=0.0)

    assert found == []


def test_an_item_suddenly_far_more_popular_than_usual_is_a_spike() -> None:
    watch = TrafficWatch(POLICY)
    rng = np.random.default_rng(1)
    ts, n = 0.0, 0
    # A day of steady traffic: many items, each a few events an hour.
    while ts < 86_400:
        ts += float(rng.exponential(20.0))
        watch.observe(event(n, f"u{n % 500}", f"i{rng.integers(100)}", ts), now=0.0)
        n += 1
    spikes = []
    for k in range(40):  # then item "i7" gets 40 events in two minutes
        spikes += watch.observe(event(n + k, f"v{k}", "i7", ts + 3 * k), now=0.0)

    assert (AnomalyKind.POPULARITY_SPIKE, "i7") in kinds(spikes)
    spike = next(a for a in spikes if a.kind == AnomalyKind.POPULARITY_SPIKE)
    assert spike.score >= spike.threshold == 10


def test_steady_traffic_has_no_spikes() -> None:
    watch = TrafficWatch(POLICY)
    rng = np.random.default_rng(2)
    ts, found = 0.0, []
    for n in range(6000):
        ts += float(rng.exponential(5.0))
        found += watch.observe(event(n, f"u{n % 700}", f"i{rng.integers(3)}", ts), now=0.0)

    # Each item gets about 20 events per 300 s, above spike_min_events: only the rate ratio keeps it quiet.
    assert [a for a in found if a.kind == AnomalyKind.POPULARITY_SPIKE] == []


def test_only_the_most_recent_subjects_are_followed() -> None:
    watch = TrafficWatch(TrafficPolicy(tracked_subjects=100, burst_events=3, burst_window_s=60))
    watch.observe(event(0, "early", "i", 0.0), now=0.0)
    watch.observe(event(1, "early", "i", 1.0), now=0.0)
    for n in range(200):
        watch.observe(event(10 + n, f"other{n}", f"j{n}", 2.0), now=0.0)

    # "early" was forgotten: its third event starts a new history instead of completing a burst.
    assert watch.observe(event(2, "early", "i", 3.0), now=0.0) == []
