"""The ForYou weights the last behavior refresh tuned, read from the model record and cached for a few seconds."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Awaitable, Callable, Mapping

from recsys.shared.behavior_models import current_blend_weights
from recsys.shared.blending import ForYouWeights
from recsys.shared.logs import log_event
from recsys.shared.store import VectorStore

_log = logging.getLogger(__name__)

_FIELDS = ("behavior", "taste", "session", "popularity", "evidence_k")
# Signals added after the first records: a record without one leaves that signal off.
_LATER_FIELDS = ("sequence", "fresh_gate")

WeightsLoader = Callable[[], Awaitable[Mapping[str, float] | None]]


async def tuned_blend_weights(store: VectorStore) -> Mapping[str, float] | None:
    """The blend weights of the current behavior model record (None before a refresh tuned any)."""
    return await current_blend_weights(store)


def weights_from_record(values: Mapping[str, float] | None) -> ForYouWeights | None:
    """ForYouWeights from a record's blend weights; None when absent or not a complete, valid set."""
    if not values or any(name not in values for name in _FIELDS):
        return None
    numbers = {name: float(values[name]) for name in _FIELDS}
    numbers.update({name: float(values.get(name, 0.0)) for name in _LATER_FIELDS})
    if any(not math.isfinite(v) or v < 0 for v in numbers.values()) or numbers["evidence_k"] <= 0:
        return None
    if numbers["fresh_gate"] > 1:
        return None
    return ForYouWeights(**numbers)


class TunedWeights:
    """What ForYou ranks with: the tuned weights of the current model, else the configured defaults.

    The record is re-read at most every `ttl_s`, so a refresh reaches every replica within that
    time without a store read per request. A failed read keeps the weights last known: ranking
    must not change because the store hiccuped.
    """

    def __init__(
        self,
        load: WeightsLoader,
        defaults: ForYouWeights,
        enabled: bool = True,
        ttl_s: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._load = load
        self._defaults = defaults
        self._enabled = enabled
        self._ttl_s = ttl_s
        self._clock = clock
        self._current = defaults
        self._read_at = -math.inf

    async def current(self) -> ForYouWeights:
        if not self._enabled:
            return self._defaults
        now = self._clock()
        if now - self._read_at < self._ttl_s:
            return self._current
        self._read_at = now
        try:
            tuned = weights_from_record(await self._load())
        except Exception as exc:  # the store is down or the record unreadable: rank as before
            log_event(_log, "tuned_blend_unreadable", logging.WARNING, error=repr(exc))
            return self._current
        self._current = tuned or self._defaults
        return self._current
