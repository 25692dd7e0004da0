"""The protocol's split: per user with enough positives, the last positives by time are held out.

Protocol, for any mix of interaction types:

- A *positive* is an interaction whose service weight (EventWeights, the encoder's settings) is
  > 0, except `rate`, which is positive at a rating ≥ POSITIVE_RATING (4, the usual convention),
  whatever its weight. Purchases, clicks, views, likes, add-to-carts are positives with no rating
  at all; dislikes and low ratings never are.
- Per user with at least HELD_OUT + 1 (6) positives, the last HELD_OUT (5) positives by time
  (ties: by item row) are held out; their distinct items are the user's targets, and the time of
  the first of them is the user's request time (cutoff). Everything of that user strictly before
  the cutoff is training, of every type, negatives included; nothing at or after it ever is.
  Users with fewer positives are training only.
- A target the user already had in training (a re-buy, a re-watch) stays a target: whether it can
  be recommended again is the ranking's question (seen_items), not the split's.
- Ranking is over the catalog minus what the user has *seen* in training, as the service's ForYou
  excludes it: every item the user touched in training, except items touched only through
  repeatable types (RECSYS_REPEATABLE_INTERACTION_TYPES), which the service does not mark seen.
  The seen list's bound (RECSYS_SEEN_SIZE) is not applied.

With ratings only this is the protocol the README's MovieLens figures were measured with.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

import numpy as np

from recsys.shared.events import InteractionType
from recsys.tools.evaluation.dataset import TYPE_CODE, Interactions

POSITIVE_RATING = 4.0
HELD_OUT = 5


@dataclass(frozen=True)
class Split:
    """Training rows, and per evaluated user the held-out items and the time of the first of them."""

    train: np.ndarray  # row indices into the interactions
    targets: dict[int, np.ndarray]  # user row -> distinct held-out item rows
    cutoff: dict[int, float]  # user row -> time of the first held-out positive (the request time)

    @property
    def users(self) -> list[int]:
        return sorted(self.targets)


def positives(interactions: Interactions, positive: float = POSITIVE_RATING) -> np.ndarray:
    """Which rows are positives: weight > 0, or for `rate` a rating ≥ `positive`."""
    rate = interactions.type == TYPE_CODE[InteractionType.RATE]
    with np.errstate(invalid="ignore"):
        rated_high = interactions.value >= positive
    return np.where(rate, rated_high, interactions.weight > 0)


def holdout_split(interactions: Interactions, held_out: int = HELD_OUT, positive: float = POSITIVE_RATING) -> Split:
    """For each user with at least held_out+1 positives, the last `held_out` positives (by time, then item)
    are the targets; everything of that user strictly before the first of them is training. Users
    with fewer positives are training only. Nothing at or after a user's cutoff is ever trained on.
    """
    order = np.lexsort((interactions.item, interactions.ts, interactions.user))
    is_positive = positives(interactions, positive)
    keep = np.ones(len(interactions), dtype=bool)
    targets: dict[int, np.ndarray] = {}
    cutoff: dict[int, float] = {}
    boundaries = np.flatnonzero(np.diff(interactions.user[order])) + 1
    for rows in np.split(order, boundaries):
        if len(rows) == 0:
            continue
        user_positives = rows[is_positive[rows]]
        if len(user_positives) < held_out + 1:
            continue
        held = user_positives[-held_out:]
        user = int(interactions.user[rows[0]])
        first = float(interactions.ts[held[0]])
        keep[rows[interactions.ts[rows] >= first]] = False
        items = interactions.item[held]
        targets[user] = items[np.sort(np.unique(items, return_index=True)[1])]
        cutoff[user] = first
    return Split(np.flatnonzero(keep), targets, cutoff)


def sample_users(split: Split, count: int | None, seed: int = 0) -> Split:
    """The split restricted to `count` evaluated users drawn at random (all when None); training is unchanged."""
    if count is None or count >= len(split.targets):
        return split
    chosen = np.random.default_rng(seed).choice(split.users, size=count, replace=False)
    keep = {int(user) for user in chosen}
    return Split(
        split.train,
        {u: t for u, t in split.targets.items() if u in keep},
        {u: c for u, c in split.cutoff.items() if u in keep},
    )


def seen_items(
    interactions: Interactions, rows: np.ndarray, repeatable: Collection[InteractionType] = ()
) -> dict[int, np.ndarray]:
    """Per user, the items the service would exclude from ForYou after these rows: every item touched through
    a type that is not repeatable."""
    rows = rows[~interactions.is_type(repeatable)[rows]] if repeatable else rows
    if len(rows) == 0:
        return {}
    order = rows[np.argsort(interactions.user[rows], kind="stable")]
    users, starts = np.unique(interactions.user[order], return_index=True)
    return {
        int(u): np.unique(interactions.item[part]) for u, part in zip(users, np.split(order, starts[1:]), strict=True)
    }


def repeated_targets(split: Split, interactions: Interactions) -> int:
    """How many held-out targets the user already had in training (any type): re-consumption."""
    trained = seen_items(interactions, split.train)
    return sum(int(np.isin(items, trained.get(user, [])).sum()) for user, items in split.targets.items())


def has_repeated_positives(interactions: Interactions, positive: float = POSITIVE_RATING) -> bool:
    """Whether any user has more than one positive with the same item (a re-buy, a re-watch)."""
    rows = np.flatnonzero(positives(interactions, positive))
    pairs = interactions.user[rows] * len(interactions.item_ids) + interactions.item[rows]
    return len(np.unique(pairs)) < len(pairs)
