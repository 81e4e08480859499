"""See the Gallery as a real graphics terminal draws it: screenshots of ``advtui tui`` in xterm (Sixel, as a
VT340) or kitty, on a virtual X screen.

Tests run the app headless, where textual-image cannot draw, so only a real terminal shows whether Sixel or
Kitty graphics reach the screen (this found the Gallery's first row blank in xterm, and kitty 0.26's boxes).
For each terminal the script starts it on its own Xvfb display, running first ``graphics.detect()`` (the
protocol the app will use, and the terminal's XTVERSION answer), then the app on ``PROJECT``; it presses
``g`` (Gallery), then ``enter`` and ``right`` (the zoom on D_R), and saves a PNG of each view under ``--out``.
It prints, per view, the protocol and the number of distinct colours on screen: a few dozen means text only
(images blank); thousands, images. Look at the PNGs.

    .venv/bin/python bench/terminal_graphics.py /path/to/project          # a project whose gallery stage ran
    .venv/bin/python bench/terminal_graphics.py . --terminals xterm --size 120x40

Needs Debian's xvfb, xterm, kitty (any you ask for), xdotool, x11-apps (xwd) and imagemagick (convert); kitty
also needs OpenGL (libgl1-mesa-dri: software rendering). Timings are waits, not measurements: on a busy
machine raise ``--wait``.
"""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
#: Run in the terminal before the app: which protocol it gets, and what the terminal says it is, to argv[1]
DETECT = ("import sys; from pathlib import Path; from advtui.tui import graphics; "
          "Path(sys.argv[1]).write_text(f'{graphics.detect()} {graphics.terminal_version()}')")


def terminal_command(terminal: str, cols: int, rows: int, script: str) -> list[str]:
    """The command that opens ``terminal`` at ``cols`` x ``rows`` running the shell ``script``."""
    if terminal == "xterm":  # Sixel needs the VT340 personality and its colour registers
        return ["xterm", "-ti", "vt340", "-xrm", "XTerm*numColorRegisters: 256", "-geometry", f"{cols}x{rows}",
                "-fa", "Monospace", "-fs", "10", "-e", "bash", "-c", script]
    if terminal == "kitty":
        return ["kitty", "-o", f"initial_window_width={cols}c", "-o", f"initial_window_height={rows}c",
                "-o", "font_size=10", "-o", "remember_window_size=no", "bash", "-c", script]
    raise SystemExit(f"unknown terminal {terminal!r}: use xterm or kitty")


def screenshot(display: str, path: Path) -> int:
    """Save the screen as a PNG; the number of distinct colours on it."""
    xwd = subprocess.run(["xwd", "-root", "-silent", "-display", display], capture_output=True, check=True).stdout
    subprocess.run(["convert", "xwd:-", str(path)], input=xwd, check=True)
    colours = Image.open(path).convert("RGB").getcolors(maxcolors=1 << 24)
    return len(colours or [])


def run_terminal(terminal: str, project: Path, out: Path, cols: int, rows: int, wait: float, display: str) -> None:
    """One terminal on its own virtual screen: detect, open the Gallery and the zoom, save and print each view."""
    xvfb = subprocess.Popen(["Xvfb", display, "-screen", "0", "1600x1000x24"], stderr=subprocess.DEVNULL)
    detected = out / f"{terminal}-detect.txt"
    env = {**os.environ, "DISPLAY": display, "LIBGL_ALWAYS_SOFTWARE": "1", "ADVTUI_GRAPHICS": "ask",
           "PYTHONPATH": str(ROOT), "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    # Textual draws on stderr: leave it on the terminal
    script = (f"cd {shlex.quote(str(project))} && {shlex.quote(sys.executable)} -P -c {shlex.quote(DETECT)} "
              f"{shlex.quote(str(detected))}; advtui tui {shlex.quote(str(project))}")
    term = None
    try:
        time.sleep(1)
        term = subprocess.Popen(terminal_command(terminal, cols, rows, script), env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(wait)
        # xdotool types into the window under the pointer (there is no window manager to focus one)
        subprocess.run(["xdotool", "mousemove", "200", "200"], env=env, check=True)
        for view, presses in (("gallery", [["type", "g"]]), ("zoom", [["key", "Return"], ["key", "Right"]])):
            for press in presses:
                subprocess.run(["xdotool", *press], env=env, check=True)
                time.sleep(wait / 3)
            path = out / f"{terminal}-{view}.png"
            colours = screenshot(display, path)
            said = detected.read_text().strip() if detected.exists() else "(no answer)"
            print(f"{terminal:6s} {view:8s} protocol+version: {said:28s} colours {colours:6d}  {path}")
    finally:
        if term is not None:
            term.terminate()
        xvfb.terminate()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("project", type=Path, help="project folder whose data/gallery/gallery.safetensors exists")
    parser.add_argument("--terminals", nargs="+", default=["xterm", "kitty"])
    parser.add_argument("--size", default="80x24", help="columns x rows")
    parser.add_argument("--wait", type=float, default=15.0, help="seconds for the app to start (and /3 per key)")
    parser.add_argument("--out", type=Path, default=Path(tempfile.gettempdir()) / "advtui-graphics")
    args = parser.parse_args()
    project = args.project.resolve()
    if not (project / "data" / "gallery" / "gallery.safetensors").exists():
        raise SystemExit(f"{project}: no data/gallery/gallery.safetensors; run `dvc repro gallery` there first")
    cols, rows = (int(n) for n in args.size.split("x"))
    args.out.mkdir(parents=True, exist_ok=True)
    for k, terminal in enumerate(args.terminals):
        run_terminal(terminal, project, args.out, cols, rows, args.wait, f":{151 + k}")


if __name__ == "__main__":
    main()
