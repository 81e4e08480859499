"""The Pipeline screen: every stage of dvc.yaml by experiment, its state, and run / stop / profile / log.

State comes from files and from ``dvc status`` (run in a thread worker: it takes a second or two, and
it waits for DVC's lock while a run holds it, so it is skipped until the run ends).
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import yaml
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static
from textual.worker import Worker

from advtui.appcore import dvcstate, live, runs
from advtui.appcore.dvcstate import PipelineState, Stage
from advtui.catalog.names import PROFILES
from advtui.catalog.paths import PARAMS_FILE
from advtui.schema import ParamsError
from advtui.tui.screens.dialogs import ChoiceDialog, LogScreen
from advtui.tui.threads import deliver
from advtui.tui.widgets.modebar import ModeBar
from advtui.yamltext import load_yaml

STATE_STYLE = {
    dvcstate.UP_TO_DATE: "green", dvcstate.CHANGED: "yellow", dvcstate.NEVER_RUN: "dim",
    dvcstate.RUNNING: "bold cyan", dvcstate.FAILED: "bold red", dvcstate.STOPPED: "magenta", dvcstate.DIED: "bold red",
    dvcstate.UNKNOWN: "dim",
}
NO_RUN_HINT = "No run yet · enter: run the highlighted or marked (space) stages · a: run all"
#: Seconds between checks of dvc.yaml, dvc.lock, params.yaml and the run records for changes.
WATCH_S = 1.0


def active_profile(root: Path) -> str | None:
    """The ``profile`` key of params.yaml."""
    try:
        return (load_yaml((root / PARAMS_FILE).read_text()) or {}).get("profile")
    except (OSError, yaml.YAMLError):
        return None


def _duration(seconds: float | None) -> str:
    return "—" if seconds is None else live.format_eta(seconds)


class PipelineScreen(Screen):
    """Stages grouped by experiment, with state, last duration and changed params; run and stop them."""

    BINDINGS = [
        Binding("enter", "run_selected", "Run", priority=True),  # over the table's own (hidden) enter: shown
        Binding("space", "toggle_mark", "Mark"),
        Binding("a", "run_all", "Run all"),
        Binding("s", "stop", "Stop run"),
        Binding("l", "log", "Log"),
        Binding("u", "profile", "Profile"),
        Binding("f5", "refresh", "Refresh"),
    ]

    def __init__(self, root: Path, **kwargs) -> None:
        super().__init__(**kwargs)
        self.root = root
        self.state = PipelineState()
        self.history: dict[str, runs.StageHistory] = {}
        self.marked: set[str] = set()
        self.error: str | None = None
        self._signature: tuple | None = None
        self._gatherer: Worker | None = None
        self._stale = False
        self._running_by_progress: set[str] = set()  # rows drawn "running" from a progress file's live pid

    def compose(self) -> ComposeResult:
        yield ModeBar("pipeline")
        yield Static(NO_RUN_HINT, id="run-status")
        table = DataTable(id="stages", cursor_type="row", zebra_stripes=False)
        table.add_columns(" ", "stage")
        # as wide as the longest state from the start: the states arrive in two steps (dvc status later), and a
        # column sized by the first ones would cut "up to date" depending on which step a redraw came from
        table.add_column("state", width=max(map(len, STATE_STYLE)))
        table.add_columns("last run", "params")
        yield table
        yield Static("", id="stage-detail")
        yield Footer()

    def on_mount(self) -> None:
        self.title = "advtui pipeline"
        self.sub_title = f"profile {active_profile(self.root) or '?'}"
        self.refresh_state()
        self.set_interval(WATCH_S, self._watch)

    # -- gathering state (thread workers) ---------------------------------------------------------

    def _files_signature(self) -> tuple:
        run = self.app.current_run
        run_key = (run.id, run.ended, len(run.stages)) if run else None
        return (live.mtime(self.root / "dvc.yaml"), live.mtime(self.root / "dvc.lock"),
                live.mtime(self.root / "params.yaml"), live.mtime(self.root / runs.RUNS_DIR), run_key)

    def _watch(self) -> None:
        self._update_run_status()
        self._redraw_ended()
        signature = self._files_signature()
        if signature != self._signature:
            self.refresh_state()

    def refresh_state(self) -> None:
        """Gather the state again in a worker; one at a time (a request meanwhile reruns it once after)."""
        if self._gatherer is not None:
            self._stale = True
            return
        self._stale = False
        self._gatherer = self._gather()

    def _gathered(self) -> None:
        self._gatherer = None
        if self._stale:
            self.refresh_state()

    @work(thread=True, group="pipeline-state")
    def _gather(self) -> None:
        try:
            self._gather_state()
        finally:
            deliver(self.app, self._gathered)

    def _gather_state(self) -> None:
        """Read the stages, lock, params diff and run history; then ``dvc status`` unless a run holds DVC."""
        self._signature = self._files_signature()
        try:
            stages = dvcstate.load_stages(self.root)
        except (FileNotFoundError, ValueError) as err:
            deliver(self.app, self._show_error, str(err))
            return
        state = PipelineState(stages=stages, status=self.state.status, locked=dvcstate.locked_stages(self.root),
                              changes=dvcstate.params_diff(self.root),
                              progress=dvcstate.progress_records(self.root, stages))
        history = runs.stage_history(self.root)
        deliver(self.app, self._apply, state, history)
        if runs.live_run(self.root) is not None:
            return  # dvc status would wait for the run's repo lock
        try:
            state.status, state.status_error = dvcstate.dvc_status(self.root), None
        except (RuntimeError, OSError, subprocess.TimeoutExpired) as err:
            state.status, state.status_error = None, str(err)
        deliver(self.app, self._apply, state, history)

    def action_refresh(self) -> None:
        """Read everything again, ``dvc status`` included (after editing code, which is not watched)."""
        self.refresh_state()

    # -- showing it ---------------------------------------------------------------------------------

    def _show_error(self, message: str) -> None:
        self.error = message
        self.query_one("#run-status", Static).update(Text(message, style="bold red"))

    def _state_of(self, stage: Stage) -> str:
        run = self.app.current_run
        live_stages = set(run.running_stages) if run is not None and runs.is_alive(run) else set()
        last = self.history.get(stage.name)
        if last is not None and run is not None and last.run_id == run.id and last.state == "done":
            return dvcstate.UP_TO_DATE  # finished in the live run: committed (its dvc.lock entry may come later, batched)
        progress = dvcstate.progress_liveness(self.state.progress.get(stage.name))
        return dvcstate.stage_state(stage.name, self.state.status, self.state.locked, self.history, live_stages,
                                    progress)

    def _redraw_row(self, name: str) -> None:
        """Draw stage ``name``'s row again (its state or elapsed time changed)."""
        table = self.query_one("#stages", DataTable)
        stage = self._stage(name)
        if stage is not None and name in table.rows:
            for column, value in zip(table.columns, self._cells(stage)):
                table.update_cell(name, column, value)

    def _redraw_ended(self) -> None:
        """Redraw the rows shown running from their progress file whose process has since gone (a stage run
        outside the app, killed or finished: its pid is checked every tick, its file read only on a refresh)."""
        for name in list(self._running_by_progress):
            if dvcstate.progress_liveness(self.state.progress.get(name)) != dvcstate.RUNNING:
                self._running_by_progress.discard(name)
                self._redraw_row(name)

    def _apply(self, state: PipelineState, history: dict[str, runs.StageHistory]) -> None:
        self.state, self.history = state, history
        table = self.query_one("#stages", DataTable)
        cursor_key = self._cursor_key()
        table.clear()
        self._running_by_progress = {name for name, record in state.progress.items()
                                     if dvcstate.progress_liveness(record) == dvcstate.RUNNING}
        for label, members in dvcstate.grouped(state.stages):
            table.add_row("", Text(label, style="bold"), "", "", "", key=f"group:{label}")
            for stage in members:
                table.add_row(*self._cells(stage), key=stage.name)
        if cursor_key is not None and cursor_key in table.rows:
            table.move_cursor(row=table.get_row_index(cursor_key))
        elif state.stages:
            table.move_cursor(row=1)  # the first stage, below its group's title
        self._update_run_status()
        self._update_detail()

    def _cells(self, stage: Stage) -> list:
        state = self._state_of(stage)
        last = self.history.get(stage.name)
        started = (self.state.progress.get(stage.name) or {}).get("started")
        if state == dvcstate.RUNNING and stage.name in self._running_by_progress and isinstance(started, (int, float)):
            when = _duration(time.time() - started)  # run outside the app: its progress file says since when
        elif state == dvcstate.RUNNING and last is not None:
            when = _duration(time.time() - last.started)
        else:
            when = _duration(last.duration) if last else "—"
        changed = dvcstate.stage_param_changes(stage, self.state.changes)
        return ["●" if stage.name in self.marked else " ", f"  {stage.name}", Text(state, style=STATE_STYLE[state]),
                when, f"{len(changed)} changed" if changed else ""]

    def _cursor_key(self) -> str | None:
        table = self.query_one("#stages", DataTable)
        if table.row_count == 0:
            return None
        return table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value

    def _stage(self, name: str | None) -> Stage | None:
        return next((s for s in self.state.stages if s.name == name), None)

    def _update_run_status(self) -> None:
        if self.error:
            return
        run = self.app.current_run
        status = self.query_one("#run-status", Static)
        if run is not None and runs.is_alive(run):
            what = " ".join(run.targets) or "whole pipeline"
            status.update(Text.assemble(("● running ", "bold cyan"), f"dvc repro {what}: ",
                                        (run.current_stage or "starting", "bold"), f" · {_duration(run.duration)}",
                                        " · s: stop · m: watch"))
            if run.current_stage:  # the running row's elapsed time
                self._redraw_row(run.current_stage)
        elif run is not None:
            status.update(f"Last run: dvc repro {' '.join(run.targets) or '(all)'}: {runs.outcome(run)} after "
                          f"{_duration(run.duration)} · l: its log")
        elif self.state.status_error:
            status.update(Text(f"{self.state.status_error}. Stage states may be stale.", style="yellow"))
        else:
            status.update(NO_RUN_HINT)

    def _update_detail(self) -> None:
        detail = self.query_one("#stage-detail", Static)
        key = self._cursor_key()
        stage = self._stage(key)
        if stage is None:
            if key and key.startswith("group:"):
                detail.update(f"{key[6:]}: enter runs every stage of this group, space marks them all")
            else:
                detail.update("No stages: dvc.yaml declares none." if not self.state.stages else "")
            return
        lines = [Text.assemble(("cmd ", "dim"), stage.cmd)]
        if stage.outs:
            lines.append(Text.assemble(("outs ", "dim"), ", ".join(stage.outs)))
        for change in dvcstate.stage_param_changes(stage, self.state.changes):
            lines.append(Text.assemble(("param ", "dim"), f"{change.key}: {change.old!r} → {change.new!r}",
                                       (" (differs from HEAD)", "yellow")))
        detail.update(Text("\n").join(lines))

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._update_detail()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        self.action_run_selected()

    # -- actions ------------------------------------------------------------------------------------

    def _targets_at_cursor(self) -> list[str]:
        key = self._cursor_key()
        if key is None:
            return []
        if key.startswith("group:"):
            return [s.name for s in self.state.stages if s.group == key[6:]]
        return [key]

    def action_toggle_mark(self) -> None:
        """Mark (or unmark) the highlighted stage, or every stage of the highlighted group."""
        targets = self._targets_at_cursor()
        if all(t in self.marked for t in targets):
            self.marked.difference_update(targets)
        else:
            self.marked.update(targets)
        table = self.query_one("#stages", DataTable)
        for name in targets:
            table.update_cell(name, table.ordered_columns[0].key, "●" if name in self.marked else " ")

    def action_run_selected(self) -> None:
        """Run the marked stages, else the highlighted stage (or group), through ``dvc repro``."""
        ordered = [s.name for s in self.state.stages]
        targets = [name for name in ordered if name in self.marked] or self._targets_at_cursor()
        if targets:
            self.app.start_run(targets)
            self.marked.clear()
            self.refresh_state()

    def action_run_all(self) -> None:
        """Run the whole pipeline: ``dvc repro`` (only what is out of date runs)."""
        self.app.start_run([])
        self.refresh_state()

    def action_stop(self) -> None:
        """Stop the live run cleanly."""
        run = self.app.current_run
        if run is None or not runs.is_alive(run):
            self.notify("No run is live", severity="warning")
            return
        self.app.stop_run()

    def action_log(self) -> None:
        """The log of the highlighted stage's last run (or of the live run)."""
        last = self.history.get(self._cursor_key() or "")
        run_id = last.run_id if last else (self.app.current_run.id if self.app.current_run else None)
        if run_id is None:
            self.notify("No log: this stage has not run from advtui yet", severity="warning")
            return
        try:
            record = runs.RunRecord.load(runs.record_path(self.root, run_id))
        except (OSError, ValueError) as err:
            self.notify(str(err), severity="error")
            return
        stage = self._cursor_key() if last else None
        title = f"{stage}: its lines of the run" if stage else f"advtui repro {' '.join(record.targets) or '(all)'}"
        self.app.push_screen(LogScreen(self.root / record.log, title, stage=stage))

    def action_profile(self) -> None:
        """Switch params.yaml to another profile (``advtui profile use NAME``)."""
        active = active_profile(self.root)
        choices = [(name, f"{name}{'  (active)' if name == active else ''}") for name in PROFILES]

        def chosen(name: str | None) -> None:
            if name and name != active:
                self._use_profile(name)

        self.app.push_screen(ChoiceDialog("Switch params.yaml to profile:", choices, active), chosen)

    @work(thread=True, group="profile")
    def _use_profile(self, name: str) -> None:
        from advtui.catalog.params import use_profile  # not before the first frame

        try:
            use_profile(name, self.root / PARAMS_FILE)
        except (OSError, ParamsError) as err:
            deliver(self.app, self.notify, f"advtui profile use {name}: {err}", severity="error")
        else:
            deliver(self.app, self.notify, f"params.yaml now holds profile {name}")
            deliver(self.app, setattr, self, "sub_title", f"profile {name}")
        deliver(self.app, self.refresh_state)
