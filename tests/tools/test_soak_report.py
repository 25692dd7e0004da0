"""The soak benchmark's verdict: memory judged only once the capped streams have filled."""

from __future__ import annotations

from recsys.tools.soak_bench import Minute, SoakOptions, SoakReport

MIB = 2**20


def _minute(number: int, log_length: int, redis_mib: float) -> Minute:
    return Minute(number, number * 1000, int(redis_mib * MIB), 800 * MIB, {"behavior-log": log_length}, {}, [0.2])


def test_the_warm_up_lasts_until_the_behavior_log_reaches_its_cap() -> None:
    options = SoakOptions(behavior_log_size=10_000, warm_up_minutes=2)
    # Redis grows while the log fills (minutes 1-5), then holds.
    minutes = [_minute(n, min(n * 2000, 10_000), 1.0 + 0.4 * min(n, 5)) for n in range(1, 11)]
    report = SoakReport(options, minutes)
    assert report.warm_up_minutes() == 5
    assert "Redis used memory: median 3.0 MiB, +0.0% .. +0.0%: flat" in report.summary()


def test_memory_growing_after_the_log_filled_is_not_flat() -> None:
    options = SoakOptions(behavior_log_size=10_000, warm_up_minutes=2)
    minutes = [_minute(n, 10_000, 1.0 + 0.3 * n) for n in range(1, 11)]
    report = SoakReport(options, minutes)
    assert report.warm_up_minutes() == 2
    assert "Redis used memory" in report.summary() and "NOT flat" in report.summary()
