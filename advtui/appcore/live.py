"""Reading what a stage writes while it runs: DVCLive ``.tsv`` series, its progress JSON, its log's tail.

Readers are incremental and cheap (a poll reads only the bytes appended since the last one), because the
monitor polls several times a second. DVCLive may rewrite a file (on resume it drops rows logged after the
checkpoint); a file that shrank or was replaced is read again from the start. No textual import.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from advtui.pipeline.progress import DIED, liveness

#: The curves the monitor draws: (title, [(series label, tsv path under the DVCLive folder)]).
LOSS_SERIES = (("train loss", "plots/metrics/train/loss.tsv"),
               ("epoch train loss", "plots/metrics/epoch/train_loss.tsv"),
               # E7: both losses at each APGD iterate (one run per objective; the last written, CE's, is shown)
               ("CE loss", "plots/metrics/loss/ce.tsv"), ("InfoNCE loss", "plots/metrics/loss/infonce.tsv"))
_TAIL_BYTES = 256 * 1024  # how far back from the end a (re)started tail begins
ACC_SERIES = (("train acc", "plots/metrics/train/acc.tsv"), ("test acc", "plots/metrics/epoch/test_acc.tsv"))


@dataclass
class TsvSeries:
    """One DVCLive ``step<TAB>value`` file, read incrementally."""

    path: Path
    steps: list[float] = field(default_factory=list)
    values: list[float] = field(default_factory=list)
    _offset: int = 0
    _inode: int | None = None

    def poll(self) -> bool:
        """Read rows appended since the last poll; True when the series changed."""
        try:
            stat = self.path.stat()
        except OSError:
            changed = bool(self.steps)
            self._reset()
            return changed
        changed = False
        if stat.st_ino != self._inode or stat.st_size < self._offset:
            changed = bool(self.steps)
            self._reset()
            self._inode = stat.st_ino
        if stat.st_size == self._offset:
            return changed
        with open(self.path, "rb") as handle:
            handle.seek(self._offset)
            chunk = handle.read(stat.st_size - self._offset)
        end = chunk.rfind(b"\n") + 1  # a half-written last row waits for the next poll
        self._offset += end
        for line in chunk[:end].decode(errors="replace").splitlines():
            parts = line.split("\t")
            try:
                # DVCLive writes "step\t<name>" (older versions put a timestamp first): value last, step before it
                step, value = float(parts[-2]), float(parts[-1])
            except (ValueError, IndexError):
                continue  # the header
            self.steps.append(step)
            self.values.append(value)
            changed = True
        return changed

    def _reset(self) -> None:
        self.steps, self.values, self._offset, self._inode = [], [], 0, None


def newest_run(folder: Path) -> Path:
    """The DVCLive folder to show for a stage's live folder: the folder itself, or, for a stage that logs one run
    per sub-folder (E4: one classifier per seed), the sub-folder whose loss was written last."""
    if (folder / "plots").is_dir() or not folder.is_dir():
        return folder
    written = {}
    for run in folder.iterdir():
        stamps = [stamp for _, rel in LOSS_SERIES if (stamp := mtime(run / rel)) is not None]
        if stamps:
            written[run] = max(stamps)
    return max(written, key=lambda run: (written[run], run.name)) if written else folder


@dataclass
class LiveCurves:
    """The loss and accuracy series of one DVCLive folder (of a folder of runs, the newest run's: :func:`newest_run`,
    looked up again at every poll, so the curves move on to the next seed when it starts)."""

    folder: Path
    loss: list[tuple[str, TsvSeries]] = field(default_factory=list)
    acc: list[tuple[str, TsvSeries]] = field(default_factory=list)
    shown: Path | None = None

    def __post_init__(self) -> None:
        self._show(newest_run(self.folder))

    def _show(self, run: Path) -> None:
        self.shown = run
        self.loss = [(label, TsvSeries(run / rel)) for label, rel in LOSS_SERIES]
        self.acc = [(label, TsvSeries(run / rel)) for label, rel in ACC_SERIES]

    def poll(self) -> bool:
        """Poll every series; True when any changed (or the run shown changed)."""
        run = newest_run(self.folder)
        switched = run != self.shown
        if switched:
            self._show(run)
        return any([series.poll() for _, series in (*self.loss, *self.acc)]) or switched

    @property
    def empty(self) -> bool:
        """No row in any series yet."""
        return not any(series.steps for _, series in (*self.loss, *self.acc))


@dataclass
class LogTail:
    """A growing log file, read incrementally: each poll returns only the complete lines appended."""

    path: Path
    keep: int = 200
    _offset: int = 0
    _inode: int | None = None

    def poll(self) -> tuple[bool, list[str]]:
        """(restarted, lines): ``restarted`` when the file is new, replaced or shorter (show ``lines`` alone)."""
        try:
            stat = self.path.stat()
        except OSError:
            restarted = self._inode is not None
            self._offset, self._inode = 0, None
            return restarted, []
        restarted = stat.st_ino != self._inode or stat.st_size < self._offset
        if restarted:
            self._inode = stat.st_ino
            self._offset = max(0, stat.st_size - _TAIL_BYTES)
        if stat.st_size == self._offset:
            return restarted, []
        with open(self.path, "rb") as handle:
            handle.seek(self._offset)
            chunk = handle.read(stat.st_size - self._offset)
        end = chunk.rfind(b"\n") + 1
        start = 0
        if restarted and self._offset > 0:
            start = chunk.find(b"\n") + 1  # began mid-file: drop the partial first line
        self._offset += end
        lines = chunk[start:end].decode(errors="replace").replace("\r", "\n").splitlines()
        return restarted, lines[-self.keep:]


def read_progress(path: Path) -> dict[str, Any] | None:
    """A stage's progress record (``advtui.pipeline.progress``), or None when absent or unreadable.

    A killed stage's file still says "running": when the process it names is gone from this host, the
    record's ``state`` reads ``died`` (see ``advtui.pipeline.progress.liveness``).
    """
    try:
        record = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    if not isinstance(record, dict):
        return None
    if liveness(record) == DIED:
        record["state"] = DIED
    return record


def tail(path: Path, lines: int = 200, max_bytes: int = 256 * 1024) -> list[str]:
    """The last ``lines`` lines of a text file (reads at most ``max_bytes`` from its end)."""
    try:
        size = path.stat().st_size
        with open(path, "rb") as handle:
            handle.seek(max(0, size - max_bytes))
            data = handle.read()
    except OSError:
        return []
    text = data.decode(errors="replace").replace("\r", "\n")
    return text.splitlines()[-lines:]


_STAGE_PREFIX = re.compile(r"^\[([^\]\s]+)\] ")


def stage_lines(lines: list[str], stage: str | None) -> list[str]:
    """The lines of a run's log that concern ``stage``: under ``advtui repro`` each stage's output is prefixed with
    ``[stage] `` (stages overlap), so other stages' lines are dropped and its own prefix removed; the run's own
    announcements stay. A ``dvc repro`` log (no prefixes: one stage at a time) passes whole; so does any log
    when ``stage`` is None."""
    if stage is None:
        return lines
    kept = []
    for line in lines:
        match = _STAGE_PREFIX.match(line)
        if match is None:
            kept.append(line)
        elif match.group(1) == stage:
            kept.append(line[match.end():])
    return kept


def mtime(path: Path) -> float | None:
    """Modification time, None when absent (the pollers' cheap change test)."""
    try:
        return os.stat(path).st_mtime
    except OSError:
        return None


def format_eta(seconds: float | None) -> str:
    """``1h02m``, ``3m05s``, ``42s``, or ``—``."""
    if seconds is None or seconds != seconds or seconds < 0:
        return "—"
    seconds = int(round(seconds))
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    if seconds >= 60:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds}s"
