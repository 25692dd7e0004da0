"""Per-key locks: the same key runs one at a time, different keys run together, idle locks are dropped."""

from __future__ import annotations

import asyncio

from recsys.encoder.keyed_locks import KeyedLocks


async def test_work_on_the_same_key_never_overlaps_and_locks_are_dropped_when_idle() -> None:
    locks = KeyedLocks()
    inside: dict[str, int] = {"a": 0, "b": 0}
    most_inside: dict[str, int] = {"a": 0, "b": 0}
    overlap_across_keys = False

    async def work(key: str) -> None:
        nonlocal overlap_across_keys
        async with locks.hold(key):
            inside[key] += 1
            most_inside[key] = max(most_inside[key], inside[key])
            overlap_across_keys |= inside["a"] > 0 and inside["b"] > 0
            await asyncio.sleep(0.005)
            inside[key] -= 1

    await asyncio.gather(*(work(key) for key in "abababab"))

    assert most_inside == {"a": 1, "b": 1}
    assert overlap_across_keys
    assert len(locks) == 0
