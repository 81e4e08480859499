"""Live progress of a running stage: a small JSON file the TUI tails, and a status line on a terminal.

The file (``data/progress/<stage>.json``) holds ``stage``, ``phase``, ``done``, ``total``, ``rate`` (items/s),
``eta_s``, ``updated`` (UNIX time), ``state``, the writing process (``pid``, ``host``, ``started``) and
whatever else the phase reports (e.g. ``robust_acc``). It is rewritten atomically, so a reader never sees
half a file.

A killed stage cannot mark its file, so "running" alone says nothing: :func:`liveness` judges a record
against its process, and a running record whose pid is gone on this host reads ``died``.

``StageProgress.update`` is the one progress protocol (``advtui.progress.ProgressFn``), so the loops that
report (attacks, construction, training epochs) are handed ``progress.update`` itself.
"""

from __future__ import annotations

import os
import socket
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TextIO

from advtui.catalog.paths import PROGRESS as PROGRESS_DIR, progress_path
from advtui.files import write_json

#: A progress record's states: written by the stage (running, done), or judged by a reader (died).
RUNNING, DONE, DIED = "running", "done", "died"


def this_process() -> dict[str, Any]:
    """Who is running: ``pid`` and ``host``, as progress and lock files record them."""
    return {"pid": os.getpid(), "host": socket.gethostname()}


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` exists on this host (one of another user counts: it exists)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def liveness(record: Mapping[str, Any]) -> str | None:
    """A progress record's state as it stands now: ``done``; ``running`` when its process is alive on this
    host; ``died`` when that process is gone (killed, crashed, interrupted) without finishing; None when
    it cannot be told (a record from another host, or one written before records named their process)."""
    if record.get("state") == DONE:
        return DONE
    pid = record.get("pid")
    if not isinstance(pid, int) or record.get("host") != socket.gethostname():
        return None
    return RUNNING if pid_alive(pid) else DIED


def status_line(label: str, record: Mapping[str, Any]) -> str:
    """One terminal line about a progress record: ``label phase: done/total rate/s time left``, then its
    float info (``robust_acc 0.412``)."""
    eta = record.get("eta_s")
    left = f" {eta:.0f}s left" if eta is not None else ""
    skip = {"rate", "eta_s", "updated", "started"}
    extra = "".join(f" {k} {v:.3f}" for k, v in record.items() if isinstance(v, float) and k not in skip)
    return f"{label} {record['phase']}: {record['done']}/{record['total']} {record['rate']:.0f}/s{left}{extra}"


class StageProgress:
    """Reports progress to a stage's JSON file and, on a terminal, to a status line.

    Writes are rate-limited: an update is recorded when its phase begins or ends, when it moves the
    count by another whole percent of the total, or when ``min_interval`` seconds have passed since
    the last one; so a fast loop writes a few hundred times per phase at most, and a slow one (an epoch,
    a chunk of images) is never held back.
    """

    def __init__(
        self, stage: str, folder: Path | None = PROGRESS_DIR, min_interval: float = 0.25, stream: TextIO | None = None
    ) -> None:
        """``stage``: its name (``construct@D_R``), also the status line's label; ``folder``: where its file
        goes (None: no file, the terminal line only, for commands run by hand); ``stream``: the terminal
        (default stderr; the line is drawn only if it is a terminal)."""
        self.stage = stage
        self.path = progress_path(stage, folder) if folder is not None else None
        self.min_interval = min_interval
        self.stream = stream if stream is not None else sys.stderr
        self._tty = self.stream.isatty()
        self._last = 0.0
        self._phase: str | None = None
        self._phase_start = time.time()
        self._percent = -1
        self._process = {**this_process(), "started": self._phase_start}

    def update(self, phase: str, done: int, total: int, **info: Any) -> None:
        """Record that ``done`` of ``total`` items of ``phase`` are finished (the one progress protocol)."""
        now = time.time()
        new_phase = phase != self._phase
        if new_phase:
            self._phase, self._phase_start = phase, now
        percent = 100 * done // total if total > 0 else 100
        if not (new_phase or done >= total or percent != self._percent or now - self._last >= self.min_interval):
            return
        self._last, self._percent = now, percent
        rate = done / max(now - self._phase_start, 1e-9)
        eta = (total - done) / rate if rate > 0 else None
        record = {"stage": self.stage, "phase": phase, "done": done, "total": total, "rate": rate, "eta_s": eta,
                  "updated": now, "state": RUNNING, **self._process, **info}
        if self.path is not None:
            write_json(self.path, record)
        if self._tty:
            end = "\n" if done >= total else "\r"
            print(status_line(self.stage, record), end=end, file=self.stream, flush=True)

    def finish(self, **info: Any) -> None:
        """Mark the stage finished."""
        if self.path is not None:
            write_json(self.path, {"stage": self.stage, "state": DONE, "updated": time.time(), **info})
