"""A report table that sorts by any column (missing values stay last) and keeps its sort across reloads."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import DataTable

from advtui.appcore.resultsdata import ExperimentTable, sort_rows
from advtui.report.layout import MISSING, NOT_RUN, row_name


class ResultsTable(DataTable):
    """One experiment's rows; ``sort_by`` orders them by a column and a second call reverses the order."""

    def __init__(self, table: ExperimentTable, **kwargs) -> None:
        super().__init__(zebra_stripes=True, cursor_type="cell", **kwargs)
        self.table = table
        self.sort_key: str | None = None
        self.reverse = False

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
            self.add_column(column.header, key=column.key)

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

    def _fill(self) -> None:
        cursor = self.cursor_coordinate
        by = next((c for c in self.table.shown_columns if c.key == self.sort_key), None)
        rows = self.table.rows if by is None else sort_rows(self.table.rows, by, self.reverse)
        self.clear()
        for column in self.table.shown_columns:
            arrow = ""
            if column.key == self.sort_key:
                arrow = " ▼" if self.reverse else " ▲"
            self.columns[column.key].label = Text(column.header + arrow)
        for row in rows:
            cells = [Text(cell, style="dim" if cell.startswith((MISSING, NOT_RUN)) else "",
                          justify="left" if column.kind == "text" else "right")
                     for column, cell in zip(self.table.shown_columns, self.table.cells(row))]
            self.add_row(*cells, key=row_name(row))
        if self.row_count:
            self.cursor_coordinate = cursor if cursor.row < self.row_count else cursor._replace(row=0)

    @property
    def row_order(self) -> list[str]:
        """Row names top to bottom (what a reader sees)."""
        return [str(self.coordinate_to_cell_key((i, 0)).row_key.value) for i in range(self.row_count)]
