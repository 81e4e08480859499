"""The Results screen: the report's tables (every experiment), sortable, beside the papers' figures.

Reads the metrics files through :mod:`advtui.appcore.resultsdata` (no torch) and polls them in a thread
worker, so a stage that finishes while the screen is open shows up without a key press.

Only the tables take focus (the scroll around them does not): tab / shift+tab go to the next / previous
table, and the arrow keys walk off a table's first or last row into its neighbour; ``s`` sorts the focused
table by the column under its cursor, ``x`` exports it (CSV, Markdown, LaTeX) as shown. The focused table's
title is highlighted.
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
from advtui.tui.screens.dialogs import export_view
from advtui.tui.threads import deliver
from advtui.tui.widgets.table import ResultsTable
from advtui.tui.widgets.modebar import ModeBar

LOADING_HINT = "Reading the metrics files ..."
EMPTY_HINT = ("No results yet: run the pipeline (Pipeline screen, or `dvc repro` in a shell); "
              "each row's note names the stage that fills it.")


class ResultsScreen(Screen):
    """Every experiment's table; rows that have not run are marked with the stage to run."""

    CSS_PATH = "results.tcss"
    BINDINGS = [
        Binding("s", "sort", "Sort (again: reverse)"),
        Binding("x", "export", "Export"),
        Binding("tab", "next_table(1)", "Next table"),
        Binding("shift+tab", "next_table(-1)", "Previous table", show=False),
        Binding("ctrl+r", "reload", "Reload", key_display="^r"),
    ]

    def __init__(self, root: Path, poll_s: float = 2.0, **kwargs) -> None:
        super().__init__(**kwargs)
        self.root = Path(root)
        self.poll_s = poll_s
        self._signature: tuple | None = None  # of the metrics files shown
        self._reading = False  # one read at a time
        self._reread = False  # ^r while a read was going: read again once it ends

    def compose(self) -> ComposeResult:
        yield ModeBar("results")
        yield Static(LOADING_HINT, id="results-hint")
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
        """Read the metrics files again and show them (in a worker: the screen answers keys meanwhile)."""
        if self._reading:
            self._reread = True
        else:
            self._read(known=None)

    def action_sort(self) -> None:
        """Sort the focused table by the column under its cursor (again: reverse)."""
        table = self.focused if isinstance(self.focused, ResultsTable) else self.query(ResultsTable).first(None)
        if table is not None:
            table.sort_by_cursor()

    def action_export(self) -> None:
        """Write the focused table, as shown (sorted), to a CSV, Markdown or LaTeX file."""
        table = self.focused if isinstance(self.focused, ResultsTable) else self.query(ResultsTable).first(None)
        if table is None:
            self.notify("No table to export yet", severity="warning")
            return
        export_view(self, self.root, table.table.grid(table.shown_rows))

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

    def on_descendant_focus(self) -> None:
        # a class rather than :focus-within, whose change Textual does not restyle the title (a sibling) for
        for block in self.query(".results-block"):
            block.set_class(self.focused is not None and self.focused.parent is block, "-focused")

    def focus_table(self, table: ResultsTable) -> None:
        """Focus ``table`` and scroll its title, rows and legend into view."""
        table.focus(scroll_visible=False)
        table.parent.scroll_visible()

    def show(self, tables: list[ExperimentTable]) -> None:
        """Show ``tables``: update the existing table of each experiment (keeping its sort), add new ones."""
        body = self.query_one("#results-body", VerticalScroll)
        ran = any(len(t.rows) > t.n_missing for t in tables)
        hint = self.query_one("#results-hint", Static)
        hint.update(EMPTY_HINT)
        hint.display = not ran
        for table in tables:
            existing = body.query(f"#table-{table.id}")
            if existing:
                existing.first(ResultsTable).show(table)
                body.query_one(f"#legend-{table.id}", Static).update(self._legend(table))
                continue
            # one block per table, so the focused table's title can be highlighted
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
        if not self._reading:
            self._read(known=self._signature)

    def _read(self, known: tuple | None) -> None:
        self._reading = True
        self._check_metrics(known)

    @work(thread=True, group="results-read")
    def _check_metrics(self, known: tuple | None) -> None:
        """Read the tables unless the metrics files still have the ``known`` signature; hand over either way."""
        signature = metrics_signature(self.root)
        tables = load_tables(self.root) if signature != known else None
        deliver(self.app, self._read_done, signature, tables)

    def _read_done(self, signature: tuple, tables: list[ExperimentTable] | None) -> None:
        self._reading = False
        if tables is not None:
            self._signature = signature
            self.show(tables)
        if self._reread:
            self._reread = False
            self._read(known=None)
