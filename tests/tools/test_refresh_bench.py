"""`recsys bench refresh`: each size measured in a process of its own, the table and its growth ratios."""

from __future__ import annotations

import numpy as np

from recsys.tools.refresh_bench import render, run_sizes, synthetic_log


def test_the_synthetic_log_has_power_law_item_popularity() -> None:
    log = synthetic_log(users=2000, items=1000, per_user=20)
    counts = np.sort(np.bincount(log["item"], minlength=1000))[::-1]

    assert len(log["user"]) == 40_000
    # Zipf: the most popular item is seen about as often as the 10th, 100th... taken together tenfold.
    assert counts[0] > 5 * counts[9] > 25 * counts[99]


def test_each_size_runs_in_its_own_process_and_the_writes_stop_at_the_limit() -> None:
    figures = run_sizes([200, 400], items=300, per_user=5, dims=8, write_up_to=200, batch=64)

    assert [f.users for f in figures] == [200, 400]
    assert figures[0].write_s is not None and figures[0].written_users == 200
    assert figures[1].write_s is None
    assert all(f.peak_rss > 0 and f.cells <= f.interactions for f in figures)
    table = render(figures)
    assert "| 200 | 300 | 1,000 |" in table
    assert "200 → 400 users: log ×2.0" in table
