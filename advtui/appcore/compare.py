"""Comparing runs: filter any table's rows and columns, plot a metric against a param across experiments,
and overlay the DVCLive curves of several experiments (``dvc plots diff --json``).

Headless (no textual, no matplotlib): the Experiments screen draws what these return, and
:mod:`advtui.report.figures` writes the same series as figure files.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from advtui.appcore import runs
from advtui.appcore.expshow import ExpRun
from advtui.appcore.resultsdata import ExperimentTable
from advtui.report.layout import row_name

#: (label, xs, ys) of one line: what the plot widget and the figure files draw.
Series = tuple[str, list[float], list[float]]


def filter_table(table: ExperimentTable, query: str) -> ExperimentTable:
    """``table`` narrowed by ``query``: each plain word keeps the rows some cell of which contains it, ``-word``
    drops the rows that contain it, and ``c:word`` keeps the columns whose header or key contains it (any of
    them; the first column, the row's name, always stays). Case-insensitive; an empty query keeps everything."""
    words = query.lower().split()
    columns = [w[2:] for w in words if w.startswith("c:") and len(w) > 2]
    keep = [w for w in words if not w.startswith(("c:", "-"))]
    drop = [w[1:] for w in words if w.startswith("-") and len(w) > 1]
    shown = table.columns
    if columns:
        shown = shown[:1] + [c for c in shown[1:] if any(w in c.header.lower() or w in c.key.lower() for w in columns)]

    def matches(row: dict[str, Any]) -> bool:
        text = " ".join(table.cells(row)).lower()
        return all(w in text for w in keep) and not any(w in text for w in drop)

    rows = [row for row in table.rows if matches(row)]
    names = {row_name(row) for row in rows}
    return replace(table, columns=shown, rows=rows, marks={k: v for k, v in table.marks.items() if k in names})


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def metric_vs_param(runs_: list[ExpRun], param: str, metrics: list[str]) -> list[Series]:
    """Each metric against params key ``param`` across ``runs_``: one line per metric, a point per run that has
    both as numbers (sorted by the param; runs with the same param value each keep their point)."""
    series = []
    for metric in metrics:
        points = sorted((x, y) for run in runs_
                        if (x := _number(run.params.get(param))) is not None
                        and (y := _number(run.metrics.get(metric))) is not None)
        if points:
            series.append((metric, [x for x, _ in points], [y for _, y in points]))
    return series


@dataclass
class PlotData:
    """One plot of ``dvc plots diff``: its title, its x field, and a line per (experiment, file)."""

    title: str
    x: str
    series: list[Series]


def parse_plots_diff(payload: dict[str, Any]) -> list[PlotData]:
    """The plots of a ``dvc plots diff --json`` payload (DVC 3: vega specs with their data inline); a plot
    that no revision has data for is left out."""
    if not isinstance(payload, dict) or "data" not in payload:
        raise ValueError("dvc plots diff --json: expected an object with 'data'; upgrade DVC to 3.x")
    plots = []
    for title, entries in payload["data"].items():
        for entry in entries or []:
            content = entry.get("content") or {}
            values = (content.get("data") or {}).get("values") or []
            x = ((content.get("encoding") or {}).get("x") or {}).get("field", "step")
            lines: dict[str, tuple[list[float], list[float]]] = {}
            for datum in values:
                y = next((k for k in datum if k not in (x, "rev", "filename", "field")), None)
                try:
                    point = float(datum[x]), float(datum[y])
                except (KeyError, TypeError, ValueError):
                    continue
                # the file's folder names the model (robust_l2/plots/...): keep it short in the legend
                label = f"{datum.get('rev')} {str(datum.get('filename', '')).split('/plots/')[0]}".strip()
                xs, ys = lines.setdefault(label, ([], []))
                xs.append(point[0])
                ys.append(point[1])
            if lines:
                plots.append(PlotData(title=title, x=x, series=[(k, xs, ys) for k, (xs, ys) in lines.items()]))
    return plots


def run_plots_diff(root: Path, revs: list[str], cancelled: Callable[[], bool] = lambda: False) -> list[PlotData]:
    """``dvc plots diff --json REVS`` in ``root`` (revisions or experiment names; "workspace" is the folder
    as it is), parsed; a failure raises RuntimeError with DVC's last line. DVC is killed when ``cancelled``."""
    proc = subprocess.Popen([runs.dvc_executable(), "plots", "diff", "--json", *revs], cwd=root,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
    try:
        while True:
            if cancelled():
                raise RuntimeError("dvc plots diff was stopped")
            try:
                out, err = proc.communicate(timeout=0.2)
                break
            except subprocess.TimeoutExpired:
                continue
    finally:
        if proc.returncode is None:
            proc.kill()
            proc.communicate()
    try:
        return parse_plots_diff(json.loads(out or "{}"))
    except json.JSONDecodeError:
        last = (err.strip().splitlines() or ["(no output)"])[-1]
        raise RuntimeError(f"dvc plots diff failed: {last}") from None
