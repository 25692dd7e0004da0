"""Compare-and-set on a point's `revision`: the Qdrant filters, and the retry loop around a read-modify-write.

Qdrant has no transactions, so two processes updating one user or item could each read the same
state and the second write would silently drop the first one's update. Every write here is made
conditional on the revision it read (an upsert with update_filter inserts a missing point and
updates an existing one only while the filter holds), and read back: when the event id is not in
the stored point, someone else won and the update is recomputed from the new state.
"""

from __future__ import annotations

import asyncio
import functools
import random
from collections.abc import Awaitable, Callable

from qdrant_client import models

from recsys.shared.errors import RetryLater
from recsys.shared.points import REVISION

MAX_ATTEMPTS = 50


class WriteConflict(RetryLater):
    """Another writer kept winning; the stream entry stays pending and is retried later."""


_REVISION = REVISION.key


# Shared, never changed by its users: built once per revision, as every guarded write asks for one.
@functools.lru_cache(maxsize=4096)
def revision_is(revision: int) -> models.Filter:
    """Points whose stored revision is `revision`; points written before revisions existed count as 0."""
    conditions: list[models.Condition] = [models.FieldCondition(key=_REVISION, match=models.MatchValue(value=revision))]
    if revision == 0:
        conditions.append(models.IsEmptyCondition(is_empty=models.PayloadField(key=_REVISION)))
    return models.Filter(should=conditions)


async def with_retries(attempt: Callable[[], Awaitable[bool]], what: str) -> None:
    """Runs `attempt` (read, compute, conditional write, verify) until it reports that its write landed."""
    for tries in range(MAX_ATTEMPTS):
        if await attempt():
            return
        # A short random pause lets the competing writer finish, so the retry reads its result.
        await asyncio.sleep(random.uniform(0, 0.002 * (tries + 1)))
    raise WriteConflict(f"{what}: still conflicting after {MAX_ATTEMPTS} attempts")
