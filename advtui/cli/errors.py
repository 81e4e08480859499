"""Turn the errors a user can fix into one red line and exit code 2, instead of a traceback.

Set ``ADVTUI_TRACEBACK=1`` to see the full traceback when reporting a bug.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from typing import TypeVar

import typer
from rich.console import Console

F = TypeVar("F", bound=Callable)
_err = Console(stderr=True)

#: Errors that mean "your input is wrong" rather than "advtui is broken".
USER_ERRORS: tuple[type[BaseException], ...] = (ValueError, FileNotFoundError, RuntimeError)


def fail(message: str) -> typer.Exit:
    """Print ``message`` as one error line and return the Exit to raise."""
    _err.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    return typer.Exit(code=2)


def warn(message: str) -> None:
    """Print ``message`` as one warning line (on stderr, so ``--json`` output stays parseable)."""
    _err.print(f"[bold yellow]warning:[/] {message}", highlight=False, soft_wrap=True)


def guarded(func: F) -> F:
    """Decorate a command so user errors end it with one line instead of a traceback."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except typer.Exit:  # a deliberate exit code (click's Exit is a RuntimeError): pass it on as it is
            raise
        except USER_ERRORS as err:
            if os.environ.get("ADVTUI_TRACEBACK"):
                raise
            raise fail(str(err).splitlines()[0] if str(err) else type(err).__name__) from None
        except KeyboardInterrupt:
            raise fail("interrupted; rerun the same command to resume from the last checkpoint") from None

    return wrapper  # type: ignore[return-value]
