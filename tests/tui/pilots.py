"""Helpers for driving the whole app in tests."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from textual.worker import WorkerCancelled, WorkerFailed


async def settle(pilot, rounds: int = 2) -> None:
    """Let the running workers finish (an exclusive worker may be cancelled by its successor) and redraw."""
    for _ in range(rounds):
        await pilot.pause()
        try:
            await pilot.app.workers.wait_for_complete()
        except (WorkerCancelled, WorkerFailed):
            pass
    await pilot.pause()


async def until(pilot, predicate: Callable[[], bool], timeout: float = 30.0, what: str = "condition") -> None:
    """Pump the app until ``predicate()`` holds (AssertionError naming ``what`` after ``timeout`` s)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)
        await pilot.pause()
