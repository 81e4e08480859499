"""Handing a thread worker's result to the UI thread, safely while the app closes.

The screens read files and run ``dvc`` in thread workers and draw what they found on the UI thread. A read
that ends while the app is closing (quit, a test leaving ``run_test``) would draw into widgets already being
removed; the failed query then fails the worker and the app on its way out. How late a read ends depends on
the machine's load, so the result is dropped instead: nothing is left to show it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from textual.app import App


def deliver(app: App, callback: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
    """From a thread worker: run ``callback(*args, **kwargs)`` on ``app``'s UI thread, unless the app has begun
    closing by the time it gets there (it then does nothing)."""

    def unless_closing() -> None:
        # The app stops running before it removes any widget, on the UI thread that runs this too.
        if app.is_running:
            callback(*args, **kwargs)

    app.call_from_thread(unless_closing)
