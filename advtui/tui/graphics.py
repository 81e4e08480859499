"""How the app draws images: the terminal's own graphics (Sixel, Kitty's graphics protocol) where it has them,
through textual-image, else half-block cells.

Half-blocks show a 32x32 image as 16 rows of coloured cells: at 80x24 a gallery tile is 10 cells wide and
barely recognisable, while Sixel or Kitty graphics draw the real pixels in the same cells. Which one the
terminal speaks can only be asked before Textual takes the terminal over, so ``advtui tui`` calls
:func:`detect` before the app starts; everything else (tests, the app shown by a test's host, a terminal
that answers neither query, a pipe) draws half-blocks, which are deterministic and what snapshot tests see.
``ADVTUI_GRAPHICS=halfblock`` forces half-blocks (e.g. a terminal that claims Sixel and draws it badly).
"""

from __future__ import annotations

import os
import sys

HALFBLOCK = "halfblock"
SIXEL = "sixel"
TGP = "tgp"
#: What ``ADVTUI_GRAPHICS`` may say.
CHOICES = ("auto", HALFBLOCK)

_protocol = HALFBLOCK


def protocol() -> str:
    """The way images are drawn in this process: ``sixel``, ``tgp`` (Kitty) or ``halfblock``."""
    return _protocol


def detect(choice: str | None = None, tty: bool | None = None) -> str:
    """Ask the terminal which graphics it draws (before the app starts; a few tenths of a second at most, the
    queries' timeouts) and use the best; ``choice`` (default: ``ADVTUI_GRAPHICS``, else "auto") may force
    half-blocks. Without a terminal on stdout, or without textual-image installed, half-blocks."""
    global _protocol
    choice = (choice if choice is not None else os.environ.get("ADVTUI_GRAPHICS", "auto")).strip().lower()
    if choice not in CHOICES:
        raise ValueError(f"ADVTUI_GRAPHICS: unknown value {choice!r}; use one of {', '.join(CHOICES)}")
    tty = sys.stdout.isatty() and sys.stdin.isatty() if tty is None else tty
    _protocol = HALFBLOCK
    if choice == HALFBLOCK or not tty:
        return _protocol
    try:
        # importing these queries the terminal (and caches its cell size in pixels): only possible before Textual
        from textual_image import renderable
        from textual_image import widget  # noqa: F401
    except ImportError:
        return _protocol
    _protocol = {renderable.SixelImage: SIXEL, renderable.TGPImage: TGP}.get(renderable.Image, HALFBLOCK)
    return _protocol
