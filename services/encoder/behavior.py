"""The collaborative behavior space: a random-projection sketch of the decayed user-item matrix.

Every user has a fixed pseudo-random unit code. An item's behavior vector is the decayed, weighted
sum of the codes of the users who engaged with it, so the cosine between two items approximates
the cosine between their columns of the user-item matrix (who engaged with both). A user's
behavior vector is the decayed, weighted sum of the current behavior vectors of the items in their
history, recomputed on every event so it always lives in the items' current basis.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping

import numpy as np

from recsys.encoder.decay import DecayedSum

# Part of the seed: changing it would move every user to a new code and scramble the space.
_CODE_PERSONALIZATION = b"recsys-user-v1"


def user_code(user_id: str, dims: int) -> np.ndarray:
    """The user's unit code vector: derived from a hash of the id, so it needs no storage and never changes."""
    digest = hashlib.blake2b(user_id.encode(), digest_size=16, person=_CODE_PERSONALIZATION).digest()
    code = np.random.default_rng(int.from_bytes(digest, "big")).standard_normal(dims)
    return code / np.linalg.norm(code)


def item_behavior_after(
    behavior: DecayedSum, user_id: str, weight: float, ts: float, half_life_s: float, dims: int
) -> DecayedSum:
    """An item's behavior sum after `user_id` engaged with it with `weight` at `ts`."""
    return behavior.add(user_code(user_id, dims), weight, ts, half_life_s)


def user_behavior(
    history: Iterable[tuple[str, float, float]],
    item_behaviors: Mapping[str, np.ndarray],
    now: float,
    half_life_s: float,
) -> DecayedSum:
    """Decayed, weighted sum of the items' current behavior directions over (item_id, weight, ts) history.

    Items without a behavior vector (unknown, or nobody's engagement left) contribute nothing.
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
