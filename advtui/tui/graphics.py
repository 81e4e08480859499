"""How the app draws images: the terminal's own graphics (Sixel, Kitty's graphics protocol) where it has them,
through textual-image, else half-block cells.

Half-blocks show a 32x32 image as 16 rows of coloured cells: at 80x24 a gallery tile is 10 cells wide and
barely recognisable, while Sixel or Kitty graphics draw the real pixels in the same cells. Which one the
terminal speaks can only be asked before Textual takes the terminal over, so ``advtui tui`` calls
:func:`detect` before the app starts; everything else (tests, the app shown by a test's host, a terminal
that answers neither query, a pipe) draws half-blocks, which are deterministic and what snapshot tests see.

Asking costs: importing textual-image sends its queries and waits up to 0.1 s for each answer, about 0.4 s on
a terminal that has no graphics (measured in tmux), against a first frame of about 1 s. So by default
(``ADVTUI_GRAPHICS=auto``) only a terminal whose environment names one that draws graphics (Kitty, WezTerm,
iTerm2, Konsole, foot, mlterm, Windows Terminal, ...; never inside tmux or screen, which do not pass them on)
is asked; ``ADVTUI_GRAPHICS=ask`` asks any terminal (an xterm started with Sixel, say) and
``ADVTUI_GRAPHICS=halfblock`` never asks (a terminal that claims Sixel and draws it badly).

textual-image draws Kitty graphics through Unicode placeholders, which kitty draws from 0.28 on; older kittys
(Debian 12 ships 0.26.5, Ubuntu 22.04 0.21.2) answer the graphics query yet show rows of boxes (seen in kitty
0.26.5). So a terminal that names itself (XTVERSION) as a kitty older than 0.28 gets half-blocks.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Mapping

HALFBLOCK = "halfblock"
SIXEL = "sixel"
TGP = "tgp"
#: What ``ADVTUI_GRAPHICS`` may say.
CHOICES = ("auto", "ask", HALFBLOCK)
#: Environment variables (name -> values; empty: any value) set by terminals that draw Sixel or Kitty graphics.
GRAPHICS_TERMINALS = {
    "TERM": ("xterm-kitty", "foot", "foot-extra", "mlterm", "contour", "wezterm", "xterm-ghostty"),
    "TERM_PROGRAM": ("WezTerm", "iTerm.app", "ghostty", "mlterm"),
    "KITTY_WINDOW_ID": (), "KONSOLE_VERSION": (), "WEZTERM_EXECUTABLE": (), "WT_SESSION": (),
}
#: The first kitty that draws textual-image's Unicode placeholders.
KITTY_PLACEHOLDERS = (0, 28)
#: Set inside terminal multiplexers, which do not pass graphics on to the terminal around them.
MULTIPLEXERS = ("TMUX", "STY", "ZELLIJ")

_protocol = HALFBLOCK


def protocol() -> str:
    """The way images are drawn in this process: ``sixel``, ``tgp`` (Kitty) or ``halfblock``."""
    return _protocol


def may_draw_graphics(environ: Mapping[str, str]) -> bool:
    """Whether ``environ`` names a terminal that draws Sixel or Kitty graphics, outside any multiplexer: the
    terminals worth the time it takes to ask."""
    if any(environ.get(name) for name in MULTIPLEXERS):
        return False
    return any(name in environ and (not values or environ[name] in values)
               for name, values in GRAPHICS_TERMINALS.items())


def detect(choice: str | None = None, tty: bool | None = None, environ: Mapping[str, str] | None = None) -> str:
    """Ask the terminal which graphics it draws (before the app starts; a few tenths of a second at most, the
    queries' timeouts) and use the best. ``choice`` (default: ``ADVTUI_GRAPHICS``, else "auto"): "auto" asks
    only a terminal whose environment says it may draw graphics, "ask" any terminal, "halfblock" none.
    Without a terminal on stdout, or without textual-image installed, half-blocks."""
    global _protocol
    environ = os.environ if environ is None else environ
    choice = (choice if choice is not None else environ.get("ADVTUI_GRAPHICS", "auto")).strip().lower()
    if choice not in CHOICES:
        raise ValueError(f"ADVTUI_GRAPHICS: unknown value {choice!r}; use one of {', '.join(CHOICES)}")
    tty = sys.stdout.isatty() and sys.stdin.isatty() if tty is None else tty
    _protocol = HALFBLOCK
    if choice == HALFBLOCK or not tty or (choice == "auto" and not may_draw_graphics(environ)):
        return _protocol
    try:
        # importing these queries the terminal (and caches its cell size in pixels): only possible before Textual
        from textual_image import renderable
        from textual_image import widget  # noqa: F401
    except ImportError:
        return _protocol
    _protocol = {renderable.SixelImage: SIXEL, renderable.TGPImage: TGP}.get(renderable.Image, HALFBLOCK)
    if _protocol == TGP and not draws_placeholders(terminal_version()):
        _protocol = HALFBLOCK
    return _protocol


def draws_placeholders(version: str | None) -> bool:
    """Whether a terminal that answers XTVERSION with ``version`` (e.g. "kitty(0.26.5)"; None: no answer) draws
    Kitty graphics through Unicode placeholders: every terminal but a kitty older than 0.28."""
    match = re.match(r"kitty\((\d+)\.(\d+)", version or "")
    return not match or (int(match[1]), int(match[2])) >= KITTY_PLACEHOLDERS


def terminal_version() -> str | None:
    """The terminal's name and version as it answers XTVERSION (CSI > q), or None where it does not answer within
    0.1 s. Only before Textual takes the terminal over (it then reads every answer)."""
    try:
        from textual_image._terminal import capture_terminal_response
    except ImportError:  # its internals moved: keep what the terminal answered to the graphics query
        return None
    try:
        with capture_terminal_response("\x1bP>|", "\x1b\\", timeout=0.1) as response:
            sys.__stdout__.write("\x1b[>q")
            sys.__stdout__.flush()
    except Exception:  # no answer in time, another answer, a closed stream (each its own error class there)
        return None
    return response.sequence[len("\x1bP>|"):-len("\x1b\\")]
