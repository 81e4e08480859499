"""The Results screen's data, torch-free: the report's tables with sort keys and a mark for every missing row.

The rows come from :func:`advtui.report.tables.collect` (metrics JSON files only) and each table is laid out
by :mod:`advtui.report.layout`, exactly as the report prints it. On top of that the app adds what only it
knows: for a row whose stage has not run, the stage that makes it, found among ``dvc.yaml``'s metrics outs
as :func:`advtui.appcore.dvcstate.load_stages` expands them (so the mark names the exact ``dvc repro``
target), shown in a last "note" column.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from advtui.appcore.dvcstate import load_stages
from advtui.report.export import Grid, export_file
from advtui.report.layout import Column, cells, report_tables, row_name
from advtui.report.tables import collect, missing_metrics

#: The pipeline's data folder under the project root (``dvc.yaml`` writes every metrics file below it).
DATA_DIR = Path("data")
NOTE = "_note"  # key of the added note column (no row has it)
#: Where the app writes the tables and figures a reader exports (under the project root; git-ignored).
EXPORT_DIR = Path(".advtui") / "exports"


def sort_value(value: Any) -> float | str | None:
    """What a cell sorts by: numbers by value, attack settings by their radius, a clean/robust pair of
    published figures by its first, anything else as text; None when there is nothing to sort by."""
    if isinstance(value, (tuple, list)):
        value = next((v for v in value if v is not None), None)
    if value is None:
        return None
    if isinstance(value, dict):
        return float(value.get("eps") or 0.0)
    if isinstance(value, (int, float)):
        return float(value)
    return str(value)


def sort_rows(rows: list[dict[str, Any]], column: Column, reverse: bool = False) -> list[dict[str, Any]]:
    """``rows`` ordered by ``column``'s values (ties keep their order); rows without one (not run) stay last
    either way."""
    keyed = [(sort_value(column.get(r)), r) for r in rows]
    have = [(k, r) for k, r in keyed if k is not None]
    lack = [r for k, r in keyed if k is None]
    mixed = len({type(k) for k, _ in have}) > 1
    have.sort(key=lambda kr: str(kr[0]) if mixed else kr[0], reverse=reverse)
    return [r for _, r in have] + lack


def metrics_stages(root: Path) -> dict[str, str]:
    """Map each metrics file path of ``root/dvc.yaml`` (relative, as written) to the stage that writes it."""
    try:
        stages = load_stages(root)
    except (OSError, ValueError):
        return {}  # rows are then marked "not run" without a stage; the Pipeline screen says what is wrong
    return {path: stage.name for stage in stages for path in stage.metrics}


def missing_mark(experiment: str, row: dict[str, Any], stages: dict[str, str]) -> str:
    """The mark of a row whose stage (or, for a row over several paradigms, some of whose stages) has not run:
    what to run to get it; first, the metrics files it skipped as unusable and why (the report's ``invalid``)."""
    files = [str(DATA_DIR / "metrics" / name) for name in missing_metrics(experiment, row)]
    targets = [stages[f] for f in files if f in stages]
    unusable = "".join(f"unusable {DATA_DIR / 'metrics' / name} ({problem}); "
                       for name, problem in row.get("invalid", {}).items())
    return unusable + (f"not run: dvc repro {' '.join(targets)}" if targets else "not run")


@dataclass
class ExperimentTable:
    """One table as the app shows it: its columns and rows, and the mark of each row that has not run."""

    id: str  # E1, E4, E5, E6a, E6b (the widgets' ids); "exp" for `dvc exp show`
    title: str
    legend: str
    columns: list[Column]
    rows: list[dict[str, Any]]
    marks: dict[str, str]  # row name -> missing mark

    @property
    def shown_columns(self) -> list[Column]:
        """The columns, plus a last "note" column naming the stage to run when some row has not run."""
        return self.columns + ([Column(NOTE, "note", "text")] if self.n_missing else [])

    def cells(self, row: dict[str, Any]) -> list[str]:
        """The row's cells as the report prints them, and its note when some row has not run."""
        note = [self.marks.get(row_name(row), "")] if self.n_missing else []
        return cells(self.columns, row) + note

    @property
    def n_missing(self) -> int:
        """How many rows have not run (wholly, or for some paradigm)."""
        return len(self.marks)

    def grid(self, rows: list[dict[str, Any]] | None = None) -> Grid:
        """The table as shown, to export: ``rows`` in the order given (default: all, unsorted), every shown column."""
        columns = self.shown_columns
        return Grid(id=self.id, title=self.title, caption=self.legend, headers=[c.header for c in columns],
                    align=["l" if c.kind == "text" else "r" for c in columns],
                    rows=[self.cells(row) for row in (self.rows if rows is None else rows)])


def export_table(root: Path, grid: Grid, fmt: str) -> Path:
    """Write ``grid`` as a ``fmt`` file (csv, md, tex) under ``root/.advtui/exports``; the path written."""
    return export_file(grid, fmt, root / EXPORT_DIR)


def load_tables(root: Path) -> list[ExperimentTable]:
    """Every table of the report under ``root/data``, in the report's order."""
    stages = metrics_stages(root)
    tables = []
    for laid in report_tables(collect(root / DATA_DIR)):
        tables.append(ExperimentTable(
            id=laid.spec.id, title=laid.spec.title, legend=laid.caption, columns=laid.columns, rows=laid.rows,
            marks={row_name(r): missing_mark(laid.spec.experiment, r, stages) for r in laid.rows if r.get("missing")},
        ))
    return tables


def metrics_signature(root: Path) -> tuple:
    """A cheap fingerprint of every metrics file (path, size, mtime): it changes when a stage writes one."""
    folder = root / DATA_DIR / "metrics"
    if not folder.is_dir():
        return ()
    out = []
    for path in sorted(folder.rglob("*.json")):
        try:
            st = path.stat()
        except OSError:
            continue
        out.append((str(path), st.st_size, st.st_mtime_ns))
    return tuple(out)
