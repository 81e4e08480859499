"""A minimal app that shows one screen, so each screen is tested (and snapshotted) on its own."""

from __future__ import annotations

from collections.abc import Callable

from textual.app import App
from textual.screen import Screen


class ScreenHost(App):
    """Shows the screen ``make()`` returns."""

    def __init__(self, make: Callable[[], Screen]) -> None:
        super().__init__()
        self.make = make

    def on_mount(self) -> None:
        self.push_screen(self.make())


async def settle(pilot) -> None:
    """Let workers finish and the screen redraw."""
    await pilot.pause()
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()
