"""The Results screen: the report's tables (every experiment), sortable, beside the papers' figures.

Reads the metrics files through :mod:`advtui.appcore.resultsdata` (no torch) and polls them in a thread
worker, so a stage that finishes while the screen is open shows up without a key press.

Only the tables take focus (the scroll around them does not): tab / shift+tab go to the next / previous
table, and the arrow keys walk off a table's first or last row into its neighbour; ``s`` sorts the focused
table by the column under its cursor. The focused table's title is highlighted.
"""

from __future__ import annotations

from pathlib import Path

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Static

from advtui.appcore.resultsdata import ExperimentTable, load_tables, metrics_signature
from advtui.tui.threads import deliver
from advtui.tui.widgets.table import ResultsTable
from advtui.tui.widgets.modebar import ModeBar

EMPTY_HINT = ("No results yet: run the pipeline (Pipeline screen, or `dvc repro` in a shell); "
              "each row's note names the stage that fills it.")


class ResultsScreen(Screen):
    """Every experiment's table; rows that have not run are marked with the stage to run."""

    CSS_PATH = "results.tcss"
    BINDINGS = [
        Binding("s", "sort", "Sort (again: reverse)"),
        Binding("tab", "next_table(1)", "Next table"),
        Binding("shift+tab", "next_table(-1)", "Previous table", show=False),
        Binding("ctrl+r", "reload", "Reload", key_display="^r"),
    ]

    def __init__(self, root: Path, poll_s: float = 2.0, **kwargs) -> None:
        super().__init__(**kwargs)
        self.root = Path(root)
        self.poll_s = poll_s
        self._signature: tuple | None = None

    def compose(self) -> ComposeResult:
        yield ModeBar("results")
        yield Static(EMPTY_HINT, id="results-hint")
        body = VerticalScroll(id="results-body")
        body.can_focus = False  # the tables take focus; the body scrolls to the focused one
        yield body
        yield Footer()

    def on_mount(self) -> None:
        self.title = "advtui results"
        self.action_reload()
        if self.poll_s > 0:
            self.set_interval(self.poll_s, self._poll)

    def action_reload(self) -> None:
        """Read the metrics files again and show them."""
        self._signature = metrics_signature(self.root)
        self.show(load_tables(self.root))

    def action_sort(self) -> None:
        """Sort the focused table by the column under its cursor (again: reverse)."""
        table = self.focused if isinstance(self.focused, ResultsTable) else self.query(ResultsTable).first(None)
        if table is not None:
            table.sort_by_cursor()

    def action_next_table(self, step: int) -> None:
        """Focus the table ``step`` places after (before, when negative) the focused one, wrapping around."""
        tables = list(self.query(ResultsTable))
        if tables:
            at = tables.index(self.focused) if self.focused in tables else -1 if step > 0 else 0
            self.focus_table(tables[(at + step) % len(tables)])

    def on_results_table_edge(self, event: ResultsTable.Edge) -> None:
        """An arrow key past a table's edge: into the neighbouring table (none past the first or the last)."""
        tables = list(self.query(ResultsTable))
        at = tables.index(event.table) + event.step
        if 0 <= at < len(tables):
            target = tables[at]
            # entering from above starts at the top row, from below at the bottom row, in the same column
            row = 0 if event.step > 0 else max(target.row_count - 1, 0)
            column = min(event.table.cursor_column, len(target.columns) - 1)
            target.cursor_coordinate = target.cursor_coordinate._replace(row=row, column=max(column, 0))
            self.focus_table(target)

    def focus_table(self, table: ResultsTable) -> None:
        """Focus ``table`` and scroll its title, rows and legend into view."""
        table.focus(scroll_visible=False)
        table.parent.scroll_visible()

    def show(self, tables: list[ExperimentTable]) -> None:
        """Show ``tables``: update the existing table of each experiment (keeping its sort), add new ones."""
        body = self.query_one("#results-body", VerticalScroll)
        ran = any(len(t.rows) > t.n_missing for t in tables)
        self.query_one("#results-hint", Static).display = not ran
        for table in tables:
            existing = body.query(f"#table-{table.id}")
            if existing:
                existing.first(ResultsTable).show(table)
                body.query_one(f"#legend-{table.id}", Static).update(self._legend(table))
                continue
            # one block per table, so the focused table's title can be highlighted (:focus-within)
            body.mount(Vertical(
                Static(Text(table.title, style="bold"), classes="results-title"),
                ResultsTable(table, id=f"table-{table.id}"),
                Static(self._legend(table), id=f"legend-{table.id}", classes="results-legend"),
                id=f"block-{table.id}", classes="results-block"))
        if self.focused is None and tables:
            self.call_after_refresh(lambda: self.set_focus(body.query(ResultsTable).first()))

    @staticmethod
    def _legend(table: ExperimentTable) -> str:
        # several rows may come from one stage (every E4 curve from curve_E4): name each stage once
        todo = list(dict.fromkeys(mark.split("dvc repro ", 1)[1] for mark in table.marks.values() if "dvc repro " in mark))
        missing = f"[b]{table.n_missing} of {len(table.rows)} not run[/b]"
        if todo:
            missing += f": dvc repro {' '.join(todo)}"
        return (missing + ". " if table.n_missing else "") + table.legend

    def _poll(self) -> None:
        self._check_metrics()

    @work(thread=True, exclusive=True, group="results-poll")
    def _check_metrics(self) -> None:
        signature = metrics_signature(self.root)
        if signature != self._signature:
            tables = load_tables(self.root)
            deliver(self.app, self._apply, signature, tables)

    def _apply(self, signature: tuple, tables: list[ExperimentTable]) -> None:
        self._signature = signature
        self.show(tables)
