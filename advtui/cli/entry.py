"""The ``advtui`` console script. Bare ``advtui`` opens the terminal app without importing the command line's
Typer and Click (about 80 ms of a start-up of about a second); with any argument the command group
(:mod:`advtui.cli.main`) takes over."""

from __future__ import annotations

import sys
from pathlib import Path


def main() -> None:
    """``advtui [ARGS]``: the app when there are no arguments, else the command group."""
    if len(sys.argv) == 1:
        open_app(Path.cwd())
        return
    from advtui.cli.main import app

    app()


def open_app(root: Path) -> None:
    """Run the terminal app on project folder ``root``, drawing images with the terminal's graphics if it has any
    (asked before the app takes the terminal over). A bad ``ADVTUI_GRAPHICS`` is one error line, exit code 2."""
    from advtui.tui import graphics
    from advtui.tui.app import AdvtuiApp

    try:
        graphics.detect()
    except ValueError as err:
        from advtui.cli.errors import fail

        raise SystemExit(fail(str(err)).exit_code) from None
    AdvtuiApp(root).run()
