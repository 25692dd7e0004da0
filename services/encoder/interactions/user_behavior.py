"""A user's position in the collaborative behavior space, folded in from the items of their history.

Item behavior vectors come from the periodic factorization (behavior_model.py). A user's behavior
vector is the decayed, weighted sum of the current directions of the items in their history, so it
is recomputed on every event and after every refresh and always lives in the items' current basis.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np

from recsys.encoder.interactions.decay import DecayedSum


def user_behavior(
    history: Iterable[tuple[str, float, float]],
    item_behaviors: Mapping[str, np.ndarray],
    now: float,
    half_life_s: float,
) -> DecayedSum:
    """Decayed, weighted sum of the items' current behavior directions over (item_id, weight, ts) history.

    Items without a behavior vector (unknown, or not in the current model) contribute nothing.
    """
    total = DecayedSum.empty(now)
    for item_id, weight, ts in history:
        direction = item_behaviors.get(item_id)
        if direction is None or weight == 0:
            continue
        length = float(np.linalg.norm(direction))
        if length == 0:
            continue
        total = total.add(np.asarray(direction, dtype=np.float64) / length, weight, ts, half_life_s)
    return total


def newest_version(versions: Mapping[str, int]) -> int | None:
    """The newest behavior version among the items read; during a refresh some are still on the previous one."""
    return max(versions.values(), default=None)


def of_version(
    item_behaviors: Mapping[str, np.ndarray], versions: Mapping[str, int], version: int | None
) -> dict[str, np.ndarray]:
    """Only the vectors of one model version: vectors of two factorizations live in unrelated bases."""
    return {item_id: vector for item_id, vector in item_behaviors.items() if versions.get(item_id) == version}
