"""The Results screen's data, torch-free: report rows as table columns, cells, sort keys and missing marks.

The rows come from :func:`advtui.report.tables.collect` (metrics JSON files only). Known experiments
have a column spec; any other experiment (later branches add E5, E6, ...) gets columns derived from its
rows, so a new experiment shows up without a change here. A key ``published_<k>`` is placed right after
``<k>`` as the papers' figure beside ours. A row with ``missing: true`` is marked with the stage that makes
it, found among ``dvc.yaml``'s metrics outs as :func:`advtui.appcore.dvcstate.load_stages` expands them (so the
mark names the exact ``dvc repro`` target).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from advtui.appcore.dvcstate import load_stages
from advtui.report.tables import collect

Kind = Literal["text", "pct", "paper", "num", "threat"]


@dataclass(frozen=True)
class Column:
    """One table column: the row key it shows, its header and how its values are formatted."""

    key: str
    header: str
    kind: Kind = "num"
    optional: bool = False  # shown only when some row has it (e.g. probe agreements exist on synthetic data only)


#: Column specs of the experiments whose rows we know; others are derived from their rows.
SPECS: dict[str, tuple[Column, ...]] = {
    "E1": (
        Column("model", "model", "text"), Column("adversarial", "adv. training", "threat"),
        Column("clean_acc", "clean %", "pct"), Column("robust_acc", "L2 %", "pct"),
        Column("robust_acc_linf", "Linf %", "pct"),
    ),
    "E4": (
        Column("dataset", "set", "text"), Column("clean_acc", "clean %", "pct"),
        Column("published_clean_acc", "paper", "paper"), Column("robust_acc", "L2 %", "pct"),
        Column("published_robust_acc", "paper", "paper"), Column("robust_acc_linf", "Linf %", "pct"),
        Column("robust_agreement", "shape", "pct", True), Column("colour_agreement", "colour", "pct", True),
        Column("nonrobust_agreement", "pattern", "pct", True), Column("target_hit_rate", "hit %", "pct", True),
        Column("mean_l2_change", "ΔL2", "num", True),
    ),
}

TITLES: dict[str, str] = {
    "E1": "E1 source models (natural test set)",
    "E4": "E4 train on constructed sets, test on natural data",
}

LEGENDS: dict[str, str] = {
    "E1": "clean / L2 / Linf: accuracy (%) on the natural test set, clean and under PGD.",
    "E4": "clean / L2 / Linf: accuracy (%) on natural test data, clean and under PGD; paper: the published "
          "figure beside ours; shape, colour, pattern: ground-truth probe agreement (%) with the set's labels.",
}

NAME_KEYS = ("dataset", "model", "name", "set", "run")
MISSING = "—"
NOTE = "_note"  # key of the added note column (no row has it)


def _is_scalar(value: Any) -> bool:
    return value is None or isinstance(value, (str, int, float, bool))


def _guess_kind(key: str, values: list[Any]) -> Kind:
    numbers = [v for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)]
    if key.startswith("published_"):
        return "paper"
    if not numbers and any(isinstance(v, str) for v in values):
        return "text"
    fraction = all(isinstance(v, float) and 0.0 <= v <= 1.0 for v in numbers)
    if numbers and fraction and re.search(r"(acc|agreement|rate)", key):
        return "pct"
    return "num"


def columns_for(experiment: str, rows: list[dict[str, Any]]) -> list[Column]:
    """The columns of ``experiment``: its spec (only columns some row has), else derived from the rows."""
    if experiment in SPECS:
        spec = SPECS[experiment]
        present = {k for row in rows for k in row}
        return [c for c in spec if not c.optional or c.key in present]
    keys: list[str] = []
    for row in rows:
        for key, value in row.items():
            if key not in keys and key != "missing" and key != "published_source" and _is_scalar(value):
                keys.append(key)
    name = next((k for k in NAME_KEYS if k in keys), None)
    ordered = [name] if name else []
    for key in keys:
        if key == name or key.startswith("published_"):
            continue
        ordered.append(key)
        if f"published_{key}" in keys:
            ordered.append(f"published_{key}")
    ordered += [k for k in keys if k.startswith("published_") and k not in ordered]
    return [Column(k, k.removesuffix("_acc").replace("_", " "), _guess_kind(k, [r.get(k) for r in rows]))
            for k in ordered]


def row_name(row: dict[str, Any]) -> str:
    """The name a row goes by (its dataset, model, ...), prefixed by its sub-table where an experiment has
    several (E6's 2a and 2b both have a D_R_linf row)."""
    name = next((str(row[k]) for k in NAME_KEYS if k in row), "?")
    return f"{row['table']} {name}" if "table" in row else name


def format_cell(column: Column, value: Any) -> str:
    """The text of one cell (fractions as percentages with one decimal, published figures as printed)."""
    if value is None:
        return MISSING
    if column.kind == "pct" and isinstance(value, (int, float)):
        return f"{100 * value:.1f}"
    if column.kind == "paper" and isinstance(value, (int, float)):
        return f"{value:g}"
    if column.kind == "threat":
        if not isinstance(value, dict) or not value.get("eps"):
            return "none"
        if value.get("norm") == "linf":  # Linf radii are read in 1/255 steps of the pixel range
            return f"linf eps {value['eps'] * 255:.3g}/255"
        return f"{value.get('norm')} eps {value['eps']:g}"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def sort_value(value: Any) -> float | str:
    """What a cell sorts by: numbers by value, attack settings by their radius, anything else as text."""
    if isinstance(value, dict):
        return float(value.get("eps") or 0.0)
    if isinstance(value, (int, float)):
        return float(value)
    return str(value)


def sort_rows(rows: list[dict[str, Any]], key: str, reverse: bool = False) -> list[dict[str, Any]]:
    """``rows`` ordered by ``key`` (ties keep their order); rows without a value (not run) stay last either way."""
    have = [r for r in rows if r.get(key) is not None]
    lack = [r for r in rows if r.get(key) is None]
    mixed = len({type(sort_value(r[key])) for r in have}) > 1
    return sorted(have, key=lambda r: str(sort_value(r[key])) if mixed else sort_value(r[key]), reverse=reverse) + lack


def metrics_stages(root: Path) -> dict[str, str]:
    """Map each metrics file path of ``root/dvc.yaml`` (relative, as written) to the stage that writes it."""
    try:
        stages = load_stages(root)
    except (OSError, ValueError):
        return {}  # rows are then marked "not run" without a stage; the Pipeline screen says what is wrong
    return {path: stage.name for stage in stages for path in stage.metrics}


def missing_mark(experiment: str, row: dict[str, Any], stages: dict[str, str]) -> str:
    """The mark of a row whose stage has not run: what to run to get it."""
    stage = stages.get(f"data/metrics/{experiment}/{row_name(row)}.json")
    return f"not run: dvc repro {stage}" if stage else "not run"


@dataclass
class ExperimentTable:
    """One experiment's rows and how to show them."""

    experiment: str
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
        """The row's cells. A row that has not run keeps its name and published figures, says "not run"
        in its first result column, "—" in the others, and the stage to run in its note."""
        if not row.get("missing"):
            return [format_cell(c, row.get(c.key)) for c in self.columns] + ([""] if self.n_missing else [])
        cells, marked = [], False
        for i, column in enumerate(self.columns):
            if i == 0:
                cells.append(row_name(row))
            elif column.kind == "paper":
                cells.append(format_cell(column, row.get(column.key)))
            elif not marked and column.kind != "text":
                cells.append(f"{MISSING} not run")
                marked = True
            else:
                cells.append(MISSING)
        return cells + [self.marks.get(row_name(row), "not run")]

    @property
    def n_missing(self) -> int:
        """How many rows have not run."""
        return sum(1 for r in self.rows if r.get("missing"))


def _sources(rows: list[dict[str, Any]]) -> str:
    names = sorted({r["published_source"] for r in rows if r.get("published_source")})
    return f" Published: {'; '.join(names)}." if names else ""


def load_tables(root: Path) -> list[ExperimentTable]:
    """Every experiment of the report under ``root/data``, known ones first, in their report order."""
    report = collect(root / "data")
    stages = metrics_stages(root)
    tables = []
    for experiment in sorted(report, key=lambda e: (e not in SPECS, e)):
        rows = report[experiment]
        tables.append(ExperimentTable(
            experiment=experiment, title=TITLES.get(experiment, experiment),
            legend=LEGENDS.get(experiment, "") + _sources(rows), columns=columns_for(experiment, rows), rows=rows,
            marks={row_name(r): missing_mark(experiment, r, stages) for r in rows if r.get("missing")},
        ))
    return tables


def metrics_signature(root: Path) -> tuple:
    """A cheap fingerprint of every metrics file (path, size, mtime): it changes when a stage writes one."""
    folder = root / "data" / "metrics"
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
