"""How a batch becomes forward passes: a learned cost of one pass, and the split of a batch that costs least."""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class PassEstimate:
    """Seconds of one forward pass ≈ fixed + per_token × padded tokens.

    The fixed part stands for what a pass costs whatever its size: kernel launches on a GPU, small
    and inefficient matrix products on a CPU (about the cost of 70 tokens there).
    """

    fixed_s: float
    per_token_s: float

    def seconds(self, texts: int, longest: int) -> float:
        return self.fixed_s + self.per_token_s * texts * longest


class PassCostModel:
    """The pass estimate the batcher plans with: a measured shape, scaled to how fast passes run now.

    The shape (fixed cost against cost per token) is measured once, on passes of chosen sizes while
    nothing else runs. Passes in service come in a narrow range of sizes and run while the event
    loop competes for the cores, so fitting both parameters to them would be ill-posed; instead they
    only scale the measured shape (an exponentially weighted ratio, `memory` passes long).
    """

    def __init__(
        self, fixed_s: float = 0.005, per_token_s: float = 50e-6, memory: float = 200.0, *, adapts: bool = True
    ) -> None:
        if fixed_s < 0 or per_token_s <= 0 or memory < 1:
            raise ValueError("cost model needs fixed_s >= 0, per_token_s > 0, memory >= 1")
        self.shape = PassEstimate(fixed_s, per_token_s)
        self.adapts = adapts  # False keeps the shape as it is (tests with fake models)
        self._keep = 1.0 - 1.0 / memory
        self._measured = self._expected = 0.0
        self.estimate = self.shape

    @property
    def scale(self) -> float:
        """How much slower (above 1) or faster than the measured shape passes run lately."""
        return self._measured / self._expected if self._expected > 0 else 1.0

    def observe(self, padded_tokens: int, seconds: float) -> None:
        """Takes one measured pass into the scale."""
        if not self.adapts or padded_tokens <= 0 or not math.isfinite(seconds) or seconds <= 0:
            return
        self._measured = self._measured * self._keep + seconds
        self._expected = self._expected * self._keep + self.shape.seconds(1, padded_tokens)
        scale = self.scale
        self.estimate = PassEstimate(self.shape.fixed_s * scale, self.shape.per_token_s * scale)


# A measured fixed cost is kept between these many tokens' worth: a pass timed while the machine was
# busy elsewhere must not make the planner split every batch, or never split one.
_FIXED_IN_TOKENS = (8.0, 512.0)


def measured_shape(passes: Sequence[tuple[int, float]]) -> PassEstimate:
    """The least-squares line through measured passes, (padded tokens, seconds) each, kept physical.

    The per-token cost is positive, and the fixed cost lies between 8 and 512 tokens' worth of it.
    """
    if len({tokens for tokens, _ in passes}) < 2:
        raise ValueError("a shape needs passes of at least two sizes")
    x = np.array([tokens for tokens, _ in passes], dtype=np.float64)
    y = np.array([seconds for _, seconds in passes], dtype=np.float64)
    slope, intercept = np.polyfit(x, y, 1)
    if slope <= 0:
        slope = max(float(np.max(y / x)), 1e-9)
    low, high = _FIXED_IN_TOKENS
    fixed = min(max(float(intercept), low * slope), high * slope)
    return PassEstimate(fixed, float(slope))


def plan_passes(
    tokens: Sequence[int],
    estimate: PassEstimate,
    max_padded: int,
    max_pass_s: float | None = None,
    max_texts: int | None = None,
    *,
    padding_free: bool = False,
) -> list[tuple[int, int]]:
    """Splits texts sorted by ascending token count into consecutive passes of least estimated total time.

    Each pass pads to its own longest text, so splitting trades the padding it saves against one
    more pass's fixed cost. A pass never holds more than `max_texts` texts or `max_padded` padded
    tokens and, when `max_pass_s` is given, is never estimated to run longer than that (a lone text
    always may). With `padding_free` (a model that runs texts packed) a pass costs its real tokens
    and counts them against `max_padded`: passes are then as full as the limits allow. Returns
    (start, end) index pairs covering all texts in order.
    """
    count = len(tokens)
    if count == 0:
        return []
    if any(a > b for a, b in itertools.pairwise(tokens)):
        raise ValueError("tokens must be sorted in ascending order")
    most = count if max_texts is None else max(1, max_texts)
    total_tokens = sum(tokens)
    computed = total_tokens if padding_free else count * tokens[-1]
    one_pass = (
        count <= most and computed <= max_padded and (max_pass_s is None or estimate.seconds(1, computed) <= max_pass_s)
    )
    # Splitting saves at most the whole padding and costs at least one more fixed part.
    if one_pass and estimate.per_token_s * (computed - total_tokens) <= estimate.fixed_s:
        return [(0, count)]
    lengths = np.asarray(tokens, dtype=np.float64)
    before = np.concatenate([[0.0], np.cumsum(lengths)])  # tokens of the texts before each index
    # best[i]: least estimated time for texts i.. ; end_of[i]: where the pass starting at i ends.
    best = np.zeros(count + 1)
    end_of = np.zeros(count + 1, dtype=np.int64)
    for start in range(count - 1, -1, -1):
        ends = np.arange(start + 1, min(count, start + most) + 1)
        padded = before[ends] - before[start] if padding_free else (ends - start) * lengths[ends - 1]
        seconds = estimate.fixed_s + estimate.per_token_s * padded
        feasible = padded <= max_padded
        if max_pass_s is not None:
            feasible &= seconds <= max_pass_s
        feasible[0] = True  # a text alone always runs
        total = np.where(feasible, seconds + best[ends], np.inf)
        # Ties go to the latest end: the earlier passes, which hold the older texts, run fuller.
        chosen = len(total) - 1 - int(np.argmin(total[::-1]))
        best[start], end_of[start] = total[chosen], ends[chosen]
    passes = []
    start = 0
    while start < count:
        end = int(end_of[start])
        passes.append((start, end))
        start = end
    return passes
