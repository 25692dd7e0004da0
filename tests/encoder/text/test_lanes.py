"""What the batcher remembers about lane traffic: the bulk share, live activity, texts joining others."""

from __future__ import annotations

import pytest

from recsys.encoder.text.lanes import LIVE_ACTIVE_S, SHARE_WINDOW_S, Lane, LaneTraffic


def test_bulk_is_owed_a_turn_only_while_live_used_the_model_and_bulk_is_below_its_share() -> None:
    traffic = LaneTraffic(bulk_share=0.25, now=0.0)
    assert not traffic.bulk_owed(0.0)  # nobody ran yet: live goes first

    traffic.ran(Lane.LIVE, 0.9, now=1.0)
    traffic.ran(Lane.BULK, 0.1, now=1.0)
    assert traffic.bulk_owed(1.0)  # 10 % < 25 %

    traffic.ran(Lane.BULK, 0.3, now=1.0)
    assert not traffic.bulk_owed(1.0)  # 31 % >= 25 %


def test_old_model_time_fades_so_a_lane_cannot_bank_a_share() -> None:
    traffic = LaneTraffic(bulk_share=0.5, now=0.0)
    traffic.ran(Lane.BULK, 10.0, now=0.0)
    traffic.ran(Lane.LIVE, 1.0, now=20 * SHARE_WINDOW_S)

    assert traffic.bulk_owed(20 * SHARE_WINDOW_S)


def test_live_traffic_stays_active_for_a_while_after_its_last_text() -> None:
    traffic = LaneTraffic(bulk_share=0.2, now=0.0)
    assert not traffic.live_active(0.0)
    traffic.arrived(Lane.LIVE, 1, now=5.0, joined_others=False)
    traffic.arrived(Lane.BULK, 1, now=9.0, joined_others=False)

    assert traffic.live_active(5.0 + LIVE_ACTIVE_S / 2)
    assert not traffic.live_active(5.0 + LIVE_ACTIVE_S * 2)


def test_only_texts_that_joined_others_count_towards_the_joining_rate() -> None:
    traffic = LaneTraffic(bulk_share=0.2, now=0.0)
    for n in range(50):
        traffic.arrived(Lane.LIVE, 1, now=n * 0.01, joined_others=False)
        traffic.arrived(Lane.BULK, 2, now=n * 0.01, joined_others=True)

    assert traffic.joining_rate(Lane.LIVE, 0.5) == 0
    assert traffic.joining_rate(Lane.BULK, 0.5) == 100
    assert traffic.joining_rate(Lane.BULK, 5.0) == 0  # all of it long ago


def test_bulk_is_held_back_only_shortly_after_a_live_pass() -> None:
    traffic = LaneTraffic(bulk_share=0.2, now=0.0)
    traffic.ran(Lane.LIVE, 0.01, now=1.0)

    assert traffic.live_grace_left(1.001, grace_s=0.002) == pytest.approx(0.001)
    assert traffic.live_grace_left(1.01, grace_s=0.002) == 0
    traffic.ran(Lane.BULK, 0.01, now=1.0005)
    assert traffic.live_grace_left(1.001, grace_s=0.002) == 0  # the last pass was bulk
