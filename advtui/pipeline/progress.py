"""Live progress of a running stage: a small JSON file the TUI tails, and a status line on a terminal.

The file (``data/progress/<stage>.json``) holds ``stage``, ``phase``, ``done``, ``total``, ``rate`` (items/s),
``eta_s``, ``updated`` (UNIX time) and whatever else the phase reports (e.g. ``robust_acc``). It is
rewritten atomically, at most a few times a second, so a reader never sees half a file.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

from advtui.files import write_json

PROGRESS_DIR = Path("data/progress")


def progress_path(stage: str, folder: Path = PROGRESS_DIR) -> Path:
    """The progress file of ``stage`` (e.g. ``construct@D_R`` -> ``data/progress/construct-D_R.json``)."""
    return folder / f"{stage.replace('@', '-')}.json"


class StageProgress:
    """Reports one stage's progress to its JSON file and, on a terminal, to a status line."""

    def __init__(self, stage: str, folder: Path = PROGRESS_DIR, min_interval: float = 0.25) -> None:
        self.stage = stage
        self.path = progress_path(stage, folder)
        self.min_interval = min_interval
        self._last = 0.0
        self._phase_start = time.time()
        self._phase = ""
        self._tty = sys.stderr.isatty()

    def update(self, phase: str, done: int, total: int, force: bool = False, **info: Any) -> None:
        """Record that ``done`` of ``total`` items of ``phase`` are finished."""
        now = time.time()
        if phase != self._phase:
            self._phase, self._phase_start = phase, now
        if not force and done < total and now - self._last < self.min_interval:
            return
        self._last = now
        elapsed = max(now - self._phase_start, 1e-9)
        rate = done / elapsed
        eta = (total - done) / rate if rate > 0 else None
        record = {"stage": self.stage, "phase": phase, "done": done, "total": total, "rate": rate, "eta_s": eta,
                  "updated": now, "state": "running", **info}
        write_json(self.path, record)
        if self._tty:
            extra = " ".join(f"{k} {v:.3f}" for k, v in info.items() if isinstance(v, float))
            end = "\n" if done >= total else "\r"
            print(f"{self.stage} {phase}: {done}/{total} {rate:.0f}/s {extra}", end=end, file=sys.stderr, flush=True)

    def finish(self, **info: Any) -> None:
        """Mark the stage finished."""
        write_json(self.path, {"stage": self.stage, "state": "done", "updated": time.time(), **info})
