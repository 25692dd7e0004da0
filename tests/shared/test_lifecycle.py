"""Stopping background tasks: every one ends, even one that swallowed its first cancellation."""

from __future__ import annotations

import asyncio

import pytest

from recsys.shared.lifecycle import cancel_and_wait


async def test_a_task_that_swallows_its_cancellation_is_cancelled_again_until_it_ends() -> None:
    swallowed = 0

    async def stubborn_loop() -> None:
        # What a client library retrying the TimeoutError that asyncio.timeout made of a cancel looks like.
        nonlocal swallowed
        while True:
            try:
                await asyncio.sleep(0.01)
            except asyncio.CancelledError:
                if swallowed:
                    raise
                swallowed += 1
                asyncio.current_task().uncancel()  # type: ignore[union-attr]

    task = asyncio.create_task(stubborn_loop(), name="stubborn")
    await asyncio.sleep(0.02)
    await asyncio.wait_for(cancel_and_wait(task, recancel_s=0.05), timeout=10)
    assert task.cancelled() and swallowed == 1


async def test_a_task_that_had_failed_is_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    async def fails() -> None:
        raise RuntimeError("broken")

    task = asyncio.create_task(fails(), name="fails")
    await asyncio.sleep(0)
    await cancel_and_wait(task, None)
    assert "background task fails had failed" in caplog.text
