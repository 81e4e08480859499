"""The Experiments screen: `dvc exp show` as one sortable table, to compare runs with different params.

`dvc exp show --json` takes seconds, so it runs in a thread worker; the table keeps its sort across
refreshes.
"""

from __future__ import annotations

import time
from pathlib import Path

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Static
from textual.worker import get_current_worker

from advtui.appcore.expshow import HINT, ExpRun, comparison, run_exp_show
from advtui.tui.threads import deliver
from advtui.tui.widgets.table import ResultsTable
from advtui.tui.widgets.modebar import ModeBar


#: Coming back to the screen re-reads `dvc exp show` when the last read is older than this (it costs seconds).
STALE_S = 60.0


class ExperimentsScreen(Screen):
    """Runs of the pipeline with their changed params and metrics, side by side."""

    CSS_PATH = "experiments.tcss"
    BINDINGS = [
        Binding("s", "sort", "Sort column"),
        Binding("a", "toggle_all", "All columns"),
        Binding("ctrl+r", "reload", "Refresh", key_display="^r"),
    ]

    def __init__(self, root: Path, **kwargs) -> None:
        super().__init__(**kwargs)
        self.root = Path(root)
        self.runs: list[ExpRun] = []
        self.all_columns = False
        self._fetched = 0.0

    def compose(self) -> ComposeResult:
        yield ModeBar("experiments")
        yield Static("Reading `dvc exp show` ...", id="exp-status")
        yield VerticalScroll(id="exp-body")
        yield Footer()

    def on_mount(self) -> None:
        self.title = "advtui experiments"
        self.action_reload()

    def on_screen_resume(self) -> None:
        if self._fetched and time.monotonic() - self._fetched > STALE_S:
            self.action_reload()

    def action_reload(self) -> None:
        """Run `dvc exp show --json` again (in a worker)."""
        self._fetched = time.monotonic()
        status = self.query_one("#exp-status", Static)
        status.update("Reading `dvc exp show` ...")
        status.display = True
        self._fetch()

    @work(thread=True, exclusive=True, group="exp-show")
    def _fetch(self) -> None:
        worker = get_current_worker()
        try:
            runs, problem = run_exp_show(self.root, cancelled=lambda: worker.is_cancelled), None
        except RuntimeError as err:
            runs, problem = [], str(err)
        if not worker.is_cancelled:
            deliver(self.app, self.show_runs, runs, problem)

    def show_runs(self, runs: list[ExpRun], problem: str | None = None) -> None:
        """Show ``runs`` (``problem``: why DVC gave none)."""
        self.runs = runs
        has_exps = any(r.baseline is not None for r in runs)
        status = self.query_one("#exp-status", Static)
        status.update(HINT if problem is None else f"{problem}\n{HINT}")
        status.display = not has_exps
        self._render_table()

    def _render_table(self) -> None:
        body = self.query_one("#exp-body", VerticalScroll)
        if not self.runs:
            body.remove_children()
            return
        table = comparison(self.runs, self.all_columns)
        existing = body.query(ResultsTable)
        if existing:
            existing.first().show(table)
            body.query_one("#exp-legend", Static).update(table.legend)
            return
        body.mount(ResultsTable(table, id="exp-table"))
        body.mount(Static(table.legend, id="exp-legend"))
        self.call_after_refresh(lambda: self.set_focus(body.query_one(ResultsTable)))

    def action_sort(self) -> None:
        """Sort by the column under the cursor (again: reverse)."""
        for table in self.query(ResultsTable):
            table.sort_by_cursor()

    def action_toggle_all(self) -> None:
        """Show every param and metric, or only the changed params and headline metrics."""
        self.all_columns = not self.all_columns
        self._render_table()
