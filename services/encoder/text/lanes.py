"""The two priority lanes and what the batcher remembers about their traffic: model time used, activity, arrivals."""

from __future__ import annotations

import math
from collections import deque
from enum import IntEnum

# Live traffic counts as active this long after its last text: while it is, bulk passes are cut
# short, so that the next live text never waits long behind one.
LIVE_ACTIVE_S = 1.0
# Model time used by each lane is remembered with this time constant for the bulk share.
SHARE_WINDOW_S = 2.0
# The rate of texts arriving while others wait or run is counted over this trailing window.
ARRIVALS_WINDOW_S = 1.0


class Lane(IntEnum):
    """Priority of a caller's texts: lower values are taken first."""

    LIVE = 0  # gRPC callers waiting on an answer
    BULK = 1  # stream ingestion, which can wait a few milliseconds more


class LaneTraffic:
    """Recent traffic per lane, on the batcher's clock (seconds).

    - model time per lane, decaying with SHARE_WINDOW_S: whether bulk is owed its share;
    - the last live arrival: whether live traffic is active; the end of the last pass, if live:
      how long to hold bulk work back for the live caller's next text;
    - texts that arrived while others of their lane waited or ran: whether waiting for a batch to
      fill can gather anything (a lone caller's next text only comes after its last answer).
    """

    def __init__(self, bulk_share: float, now: float) -> None:
        if not 0.0 <= bulk_share <= 1.0:
            raise ValueError(f"bulk_share must lie in 0..1, got {bulk_share}")
        self.bulk_share = bulk_share
        self._usage = dict.fromkeys(Lane, 0.0)
        self._usage_at = now
        self._last_live = -math.inf
        self._live_pass_end = -math.inf
        self._joined: dict[Lane, deque[tuple[float, int]]] = {lane: deque() for lane in Lane}

    def arrived(self, lane: Lane, texts: int, now: float, *, joined_others: bool) -> None:
        """Texts arrived on a lane; `joined_others` when others of the lane were waiting or running."""
        if lane is Lane.LIVE:
            self._last_live = now
        if joined_others:
            self._joined[lane].append((now, texts))

    def joining_rate(self, lane: Lane, now: float) -> float:
        """Texts per second that joined others waiting or running on the lane, lately."""
        joined = self._joined[lane]
        while joined and joined[0][0] < now - ARRIVALS_WINDOW_S:
            joined.popleft()
        return sum(texts for _, texts in joined) / ARRIVALS_WINDOW_S

    def live_active(self, now: float) -> bool:
        return now - self._last_live < LIVE_ACTIVE_S

    def ran(self, lane: Lane, seconds: float, now: float) -> None:
        """Charges a pass that just ended to its lane."""
        self._usage = self._decayed(now)
        self._usage_at = now
        self._usage[lane] += seconds
        self._live_pass_end = now if lane is Lane.LIVE else -math.inf

    def live_grace_left(self, now: float, grace_s: float) -> float:
        """How much longer bulk work should wait for a live text, after a live pass that just ended.

        A live caller's next request usually follows its answer within a millisecond or two; a bulk
        pass started in that gap would make it wait a whole pass.
        """
        return max(0.0, self._live_pass_end + grace_s - now)

    def bulk_owed(self, now: float, running_bulk_s: float = 0.0) -> bool:
        """Whether bulk has had less than its share of recent model time while live used some.

        `running_bulk_s`: bulk model time of a pass still running, not charged yet.
        """
        usage = self._decayed(now)
        live, bulk = usage[Lane.LIVE], usage[Lane.BULK] + running_bulk_s
        return live > 0 and bulk < self.bulk_share * (live + bulk)

    def _decayed(self, now: float) -> dict[Lane, float]:
        keep = math.exp(-max(0.0, now - self._usage_at) / SHARE_WINDOW_S)
        return {lane: seconds * keep for lane, seconds in self._usage.items()}
