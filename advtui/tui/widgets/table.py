"""A report table that sorts by any column (missing values stay last) and keeps its sort across reloads.

Its first column (the row's name) stays put while the others scroll sideways under the cursor, so a table
wider than the terminal (E4, Li's tables with the paper's figure beside ours) stays readable at 80 columns.
The up and down keys leave the table at its first and last row (:class:`ResultsTable.Edge`), so a screen of
stacked tables is walked with the arrow keys alone.
"""

from __future__ import annotations

from rich.console import JustifyMethod
from rich.text import Text
from textual.message import Message
from textual.widgets import DataTable

from advtui.appcore.resultsdata import ExperimentTable, sort_rows
from advtui.report.layout import MISSING, NOT_RUN, Column, row_name


def _justify(column: Column) -> JustifyMethod:
    return "left" if column.kind == "text" else "right"


class ResultsTable(DataTable):
    """One experiment's rows; ``sort_by`` orders them by a column and a second call reverses the order."""

    class Edge(Message):
        """The cursor was pushed past the table's first (``step`` -1) or last (``step`` 1) row."""

        def __init__(self, table: ResultsTable, step: int) -> None:
            super().__init__()
            self.table = table
            self.step = step

    def __init__(self, table: ExperimentTable, **kwargs) -> None:
        super().__init__(zebra_stripes=True, cursor_type="cell", fixed_columns=1, **kwargs)
        self.table = table
        self.sort_key: str | None = None
        self.reverse = False

    def action_cursor_up(self) -> None:
        """Up a row; from the first row, to the table above (the screen decides)."""
        if self.cursor_row <= 0:
            self.post_message(self.Edge(self, -1))
        else:
            super().action_cursor_up()

    def action_cursor_down(self) -> None:
        """Down a row; from the last row, to the table below (the screen decides)."""
        if self.cursor_row >= self.row_count - 1:
            self.post_message(self.Edge(self, 1))
        else:
            super().action_cursor_down()

    def on_mount(self) -> None:
        self._add_columns()
        self._fill()

    def show(self, table: ExperimentTable) -> None:
        """Show new rows (and columns, when they changed), keeping the cursor and the sort order."""
        changed = [c.key for c in table.shown_columns] != [c.key for c in self.table.shown_columns]
        self.table = table
        if changed:
            self.clear(columns=True)
            self._add_columns()
        self._fill()

    def _add_columns(self) -> None:
        for column in self.table.shown_columns:
            self.add_column(Text(column.header, justify=_justify(column)), key=column.key)

    def sort_by(self, key: str) -> None:
        """Sort by column ``key``: ascending first, and reversed when it is already the sort column."""
        self.reverse = not self.reverse if key == self.sort_key else False
        self.sort_key = key
        self._fill()

    def sort_by_cursor(self) -> None:
        """Sort by the column under the cursor."""
        self.sort_by(self.table.shown_columns[self.cursor_column].key)

    def on_data_table_header_selected(self, event: DataTable.HeaderSelected) -> None:
        event.stop()
        self.sort_by(str(event.column_key.value))

    @property
    def shown_rows(self) -> list[dict]:
        """The table's rows in the order shown (sorted by the sort column, if any)."""
        by = next((c for c in self.table.shown_columns if c.key == self.sort_key), None)
        return self.table.rows if by is None else sort_rows(self.table.rows, by, self.reverse)

    def _fill(self) -> None:
        cursor = self.cursor_coordinate
        rows = self.shown_rows
        self.clear()
        for column in self.table.shown_columns:
            arrow = ""
            if column.key == self.sort_key:
                arrow = " ▼" if self.reverse else " ▲"
            # headers line up with their cells: numbers right, names left
            self.columns[column.key].label = Text(column.header + arrow, justify=_justify(column))
        for row in rows:
            cells = [Text(cell, style="dim" if cell.startswith((MISSING, NOT_RUN)) else "", justify=_justify(column))
                     for column, cell in zip(self.table.shown_columns, self.table.cells(row))]
            self.add_row(*cells, key=row_name(row))
        if self.row_count:
            self.cursor_coordinate = cursor if cursor.row < self.row_count else cursor._replace(row=0)

    @property
    def row_order(self) -> list[str]:
        """Row names top to bottom (what a reader sees)."""
        return [str(self.coordinate_to_cell_key((i, 0)).row_key.value) for i in range(self.row_count)]
