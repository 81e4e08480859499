"""The Monitor screen: the running stage's loss and accuracy curves, its progress and its log, live.

It follows the live (else the last) run's current stage; ``c`` picks any stage with files to replay (a finished run's
curves and last progress). Files are polled in a thread worker, which reads only what was appended; the
screen redraws only what changed, and polls nothing while it is not shown. The poll follows the files: every
``poll_s`` (15 times a second) while each poll finds something new, so a stage logging 20 rows a second is drawn
at about that rate, and half as often after each poll that finds nothing, down to every ``idle_s``, so a quiet
screen costs less than a fixed 4 Hz poll did.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.screen import Screen
from textual.widgets import Footer, Log, Static
from textual.timer import Timer
from textual.worker import Worker

from advtui.appcore import dvcstate, live, runs
from advtui.appcore.resultsdata import EXPORT_DIR
from advtui.report.export import series_grid, slug
from advtui.tui.screens.dialogs import ChoiceDialog, LogScreen, export_view
from advtui.tui.threads import deliver
from advtui.tui.widgets.curves import CurvePlot, Series
from advtui.tui.widgets.progress import ProgressPanel
from advtui.tui.widgets.modebar import ModeBar

#: Seconds between polls while the files keep changing, and the longest wait once they stop.
FAST_POLL_S = 1 / 15
IDLE_POLL_S = 0.5
IDLE_HINT = "No stage is running · c: replay a stage from its files · p: start one"
LOG_LINES = 200


def next_poll(interval: float, changed: bool, fast: float = FAST_POLL_S, idle: float = IDLE_POLL_S) -> float:
    """Seconds until the next poll, after one that waited ``interval`` and found something new (``changed``) or
    not: back to ``fast`` on news, else twice as long, up to ``idle``."""
    return fast if changed else min(max(interval, fast) * 2, idle)


@dataclass
class Reading:
    """What one poll found; None fields are unchanged since the last poll."""

    stage: str | None
    title: str
    loss: list[Series] | None = None
    acc: list[Series] | None = None
    progress: dict[str, Any] | None = None
    progress_changed: bool = False
    log: list[str] | None = None
    log_restarted: bool = False
    no_curves: str = "no rows yet"


@dataclass
class _Watch:
    """The files of the stage being watched, and what was last read from them."""

    stage: dvcstate.Stage | None
    curves: live.LiveCurves | None
    log: live.LogTail | None
    progress_mtime: float | None = None
    first: bool = True


class MonitorScreen(Screen):
    """Live curves, progress and log of the running stage (or a replay of a finished one)."""

    BINDINGS = [
        Binding("c", "choose", "Choose stage"),
        Binding("f", "follow", "Follow run"),
        Binding("l", "log", "Full log"),
        Binding("x", "export", "Export"),
    ]

    def __init__(self, root: Path, poll_s: float = FAST_POLL_S, stage: str | None = None,
                 idle_s: float = IDLE_POLL_S, **kwargs) -> None:
        super().__init__(**kwargs)
        self.root = root
        self.poll_s = poll_s
        self.idle_s = max(idle_s, poll_s)
        self.interval = poll_s  # until the next poll; see next_poll
        self._timer: Timer | None = None
        self.following = stage is None
        self.requested = stage
        self.frames = 0  # polls that redrew something (measured by bench/tui.py)
        self._watch: _Watch | None = None
        self._reader: Worker | None = None
        self._stages: list[dvcstate.Stage] = []

    def compose(self) -> ComposeResult:
        yield ModeBar("monitor")
        yield Static(IDLE_HINT, id="monitor-title")
        with Horizontal(id="plots"):
            yield CurvePlot("loss", id="loss-plot")
            yield CurvePlot("accuracy", ylim=(0.0, 1.0), id="acc-plot")
        yield ProgressPanel(id="progress")
        yield Log(max_lines=LOG_LINES, id="monitor-log")
        yield Footer()

    def on_mount(self) -> None:
        self.title = "advtui monitor"
        self._tick()

    def on_screen_resume(self) -> None:
        self._tick()

    def _tick(self) -> None:
        # One read at a time: a cancelled thread worker runs on, and two would share the incremental readers.
        # A read that is still going schedules the next tick when it is drawn (_apply); a screen not shown
        # polls nothing until it is resumed.
        if self.is_current and (self._reader is None or self._reader.is_finished):
            self._reader = self._read()

    def _schedule(self, changed: bool) -> None:
        """The next tick: soon after news, later and later while nothing changes (one timer at a time)."""
        self.interval = next_poll(self.interval, changed, self.poll_s, self.idle_s)
        if self._timer is not None:
            self._timer.stop()
        self._timer = self.set_timer(self.interval, self._tick)

    # -- reading (thread worker) ---------------------------------------------------------------------

    def _stage_named(self, name: str) -> dvcstate.Stage | None:
        if not any(s.name == name for s in self._stages):
            try:
                self._stages = dvcstate.load_stages(self.root)
            except (FileNotFoundError, ValueError):
                self._stages = []
        return next((s for s in self._stages if s.name == name), None)

    def _log_of(self, name: str, run: runs.RunRecord | None) -> live.LogTail | None:
        if run is not None and run.current_stage == name:
            return live.LogTail(self.root / run.log, LOG_LINES)
        last = runs.stage_history(self.root).get(name)
        if last is None:
            return None
        try:
            record = runs.RunRecord.load(runs.record_path(self.root, last.run_id))
        except (OSError, ValueError):
            return None
        return live.LogTail(self.root / record.log, LOG_LINES)

    @work(thread=True, group="monitor-read")
    def _read(self) -> None:
        run = self.app.current_run
        alive = run is not None and runs.is_alive(run)
        # following: the live run's stage, and once the run ends its last stage stays on view
        name = (run.current_stage if run is not None else None) if self.following else self.requested
        watch = self._watch
        if watch is None or (watch.stage.name if watch.stage else None) != name:
            stage = self._stage_named(name) if name else None
            folder = self.root / stage.live_dir if stage and stage.live_dir else None
            curves = live.LiveCurves(folder) if folder else None
            watch = _Watch(stage, curves, self._log_of(name, run) if name else None)
            self._watch = watch
        reading = Reading(name, self._title(watch.stage, run, alive))
        if watch.stage is None:
            if watch.first:
                reading.loss, reading.acc, reading.progress_changed = [], [], True
                reading.log, reading.log_restarted = [], True
        else:
            if watch.curves is None:
                if watch.first:
                    reading.loss, reading.acc = [], []
                    reading.no_curves = "this stage logs no curves"
            elif watch.curves.poll() or watch.first:
                reading.loss = [(label, list(s.steps), list(s.values)) for label, s in watch.curves.loss]
                reading.acc = [(label, list(s.steps), list(s.values)) for label, s in watch.curves.acc]
            progress_file = self.root / watch.stage.progress_file
            stamp = live.mtime(progress_file)
            if stamp != watch.progress_mtime or watch.first:
                watch.progress_mtime = stamp
                reading.progress, reading.progress_changed = live.read_progress(progress_file), True
            if watch.log is None and name is not None and alive and name in run.running_stages:
                watch.log = live.LogTail(self.root / run.log, LOG_LINES)
            if watch.log is not None:
                restarted, lines = watch.log.poll()
                lines = live.stage_lines(lines, name)
                if restarted or lines or watch.first:
                    reading.log, reading.log_restarted = lines, restarted or watch.first
            elif watch.first:
                reading.log, reading.log_restarted = [
                    "no log: this stage has not run from advtui (its curves and progress come from its files)"], True
        watch.first = False
        deliver(self.app, self._apply, reading)

    def _title(self, stage: dvcstate.Stage | None, run: runs.RunRecord | None, alive: bool) -> str:
        if stage is None:
            return IDLE_HINT if self.requested is None else f"{self.requested}: no such stage in dvc.yaml"
        if alive and run is not None and stage.name in run.running_stages:
            started = [s.started for s in run.stages if s.stage == stage.name]
            elapsed = live.format_eta(time.time() - started[-1]) if started else "—"
            return f"● {stage.name} · running for {elapsed} · c: another stage"
        if self.following and run is not None and run.current_stage == stage.name:
            return f"{stage.name} · last run {runs.outcome(run)} · c: another stage"
        return f"{stage.name} · replay from its files · c: another · f: follow the run"

    # -- showing (UI thread) ---------------------------------------------------------------------------

    def _apply(self, reading: Reading) -> None:
        self.query_one("#monitor-title", Static).update(reading.title)
        drew = False
        if reading.loss is not None:
            self.query_one("#loss-plot", CurvePlot).show(reading.loss, reading.no_curves)
            drew = True
        if reading.acc is not None:
            self.query_one("#acc-plot", CurvePlot).show(reading.acc, reading.no_curves)
            drew = True
        if reading.progress_changed:
            self.query_one("#progress", ProgressPanel).show(reading.progress if reading.stage else None)
            drew = True
        if reading.log is not None:
            view = self.query_one("#monitor-log", Log)
            if reading.log_restarted:
                view.clear()
            view.write_lines(reading.log)  # only the new lines: the log is not redrawn from scratch
            drew = True
        self.frames += drew
        self._schedule(drew)

    # -- actions -------------------------------------------------------------------------------------

    def watch_stage(self, name: str | None) -> None:
        """Replay ``name`` (None: follow the live run)."""
        self.following = name is None
        self.requested = name
        self._watch = None  # the running read (if any) finishes with the old stage; the next tick switches
        self.interval = self.poll_s
        self._tick()

    def action_choose(self) -> None:
        """Pick a stage with files to replay (curves, progress)."""
        try:
            stages = dvcstate.load_stages(self.root)
        except (FileNotFoundError, ValueError) as err:
            self.notify(str(err), severity="error")
            return
        choices = [(s.name, s.name) for s in stages
                   if (s.live_dir and (self.root / s.live_dir).exists()) or (self.root / s.progress_file).exists()]
        if not choices:
            self.notify("No stage has written curves or progress yet: run one from the Pipeline screen (p)",
                        severity="warning")
            return
        self.app.push_screen(ChoiceDialog("Replay the files of stage:", choices, self.requested), self._chosen)

    def _chosen(self, name: str | None) -> None:
        if name:
            self.watch_stage(name)

    def action_follow(self) -> None:
        """Follow the live run's current stage again."""
        self.watch_stage(None)

    def action_log(self) -> None:
        """The whole log of the watched stage's run."""
        if self._watch is None or self._watch.log is None:
            self.notify("No log for this stage", severity="warning")
            return
        stage = self._watch.stage.name if self._watch.stage else None
        self.app.push_screen(LogScreen(self._watch.log.path, stage or "log", stage=stage))

    def action_export(self) -> None:
        """Write the curves shown as a table (CSV, Markdown, LaTeX: a row per point) or as figure files (PNG, SVG:
        one per plot)."""
        stage = self._watch.stage.name if self._watch is not None and self._watch.stage is not None else None
        plots = [(plot.title, plot.series) for plot in self.query(CurvePlot) if plot.series]
        if stage is None or not plots:
            self.notify("No curves to export: pick a stage with c", severity="warning")
            return
        name = slug(f"monitor_{stage}")

        def figure(fmt: str) -> list[Path]:
            from advtui.report.figures import write_line_figure  # matplotlib: only when a figure is asked for

            return [write_line_figure(self.root / EXPORT_DIR / f"{name}_{slug(title)}.{fmt}", series,
                                      f"{stage}: {title}", "step", title) for title, series in plots]

        export_view(self, self.root, series_grid(name, f"{stage} curves", plots), figure)
