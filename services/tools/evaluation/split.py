"""The protocol's split: per user with enough positives, the last positives by time are held out."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from recsys.tools.evaluation.dataset import Ratings, Tag

POSITIVE_RATING = 4.0
HELD_OUT = 5


@dataclass(frozen=True)
class Split:
    """Training rows, and per evaluated user the held-out items and the time of the first of them."""

    train: np.ndarray  # row indices into the ratings
    targets: dict[int, np.ndarray]  # user row -> held-out item rows
    cutoff: dict[int, float]  # user row -> time of the first held-out positive (the request time)

    @property
    def users(self) -> list[int]:
        return sorted(self.targets)


def holdout_split(ratings: Ratings, held_out: int = HELD_OUT, positive: float = POSITIVE_RATING) -> Split:
    """For each user with at least held_out+1 positives, the last `held_out` positives (by time, then item)
    are the targets; everything of that user strictly before the first of them is training. Users
    with fewer positives are training only. Nothing at or after a user's cutoff is ever trained on.
    """
    order = np.lexsort((ratings.item, ratings.ts, ratings.user))
    keep = np.ones(len(ratings), dtype=bool)
    targets: dict[int, np.ndarray] = {}
    cutoff: dict[int, float] = {}
    boundaries = np.flatnonzero(np.diff(ratings.user[order])) + 1
    for rows in np.split(order, boundaries):
        if len(rows) == 0:
            continue
        positives = rows[ratings.rating[rows] >= positive]
        if len(positives) < held_out + 1:
            continue
        held = positives[-held_out:]
        user = int(ratings.user[rows[0]])
        first = float(ratings.ts[held[0]])
        keep[rows[ratings.ts[rows] >= first]] = False
        targets[user] = ratings.item[held]
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


def tags_without_held_out(tags: list[Tag], ratings: Ratings, split: Split) -> list[Tag]:
    """Tags minus those a user gave to one of their own held-out items, which would hint at the answer."""
    held = {
        (ratings.user_ids[user], ratings.item_ids[int(item)]) for user, items in split.targets.items() for item in items
    }
    return [tag for tag in tags if (tag.user_id, tag.item_id) not in held]
