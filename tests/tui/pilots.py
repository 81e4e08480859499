"""Helpers for driving the app and its runs in tests, on a machine of any speed.

Tests wait for conditions, never for a time: :func:`until` (in the app) and :func:`wait_for` (outside it)
poll a condition and give up only after ``HANG_GUARD_S``, a bound no healthy run comes near on any machine,
however loaded; it exists so that a hung test fails instead of blocking the suite. Stages that must be
caught mid-way are held there (``fake_stage.py``'s hold files, :func:`hold`), not raced.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

from textual.worker import WorkerCancelled, WorkerFailed

#: Seconds after which a wait is taken for a hang. Only a guard: no test relies on anything being this quick.
HANG_GUARD_S = 600.0


async def settle(pilot, rounds: int = 2) -> None:
    """Let the running workers finish (an exclusive worker may be cancelled by its successor) and redraw."""
    for _ in range(rounds):
        await pilot.pause()
        try:
            await pilot.app.workers.wait_for_complete()
        except (WorkerCancelled, WorkerFailed):
            pass
    await pilot.pause()


async def until(pilot, predicate: Callable[[], bool], what: str = "condition") -> None:
    """Pump the app until ``predicate()`` holds (AssertionError naming ``what`` if it hangs)."""
    deadline = time.monotonic() + HANG_GUARD_S
    while not predicate():
        assert time.monotonic() < deadline, f"hung waiting for {what}"
        await asyncio.sleep(0.05)
        await pilot.pause()


async def until_exits(app) -> None:
    """Wait until ``app`` exits by itself (AssertionError if it hangs). The app is not pumped: it is closing."""
    deadline = time.monotonic() + HANG_GUARD_S
    while app.return_code is None:
        assert time.monotonic() < deadline, "hung waiting for the app to exit"
        await asyncio.sleep(0.05)


def wait_for(predicate: Callable[[], bool], what: str = "condition") -> None:
    """Block until ``predicate()`` holds (AssertionError naming ``what`` if it hangs)."""
    deadline = time.monotonic() + HANG_GUARD_S
    while not predicate():
        assert time.monotonic() < deadline, f"hung waiting for {what}"
        time.sleep(0.05)


def hold(root: Path, name: str, point: str) -> Path:
    """Make the stand-in stage ``retrain@NAME`` of ``root`` wait at ``point`` ("train": after half its steps;
    "attack": in its attack phase) until the returned file is deleted."""
    path = root / "holds" / f"{name}-{point}"
    path.parent.mkdir(exist_ok=True)
    path.touch()
    return path
