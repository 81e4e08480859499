"""`advtui report`: the experiment tables from the metrics files, beside the papers' figures."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console

from advtui.cli.errors import guarded, warn


@guarded
def report(
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object (keys: experiment ids) for scripts."),
    write: bool = typer.Option(False, "--write", help="Also write data/report/report.md and report.json."),
    data_dir: Path = typer.Option(Path("data"), help="Folder holding metrics/ (the pipeline's data folder)."),
    fmt: str = typer.Option("", "--format", help="Print the tables as csv, md (Markdown) or tex (LaTeX) instead."),
    out: Path = typer.Option(None, "--out", help="With --format: write one file per table, <out>/<table id>.<format>."),
) -> None:
    """Show the E1, E4, E5 and E6 tables; a row whose stage has not run is marked 'not run'.

    --format csv|md|tex prints them in that format (--out DIR: one file per table, the same files the app's
    export key writes).

    A metrics file that cannot be used is skipped with a warning line naming it, and the exit code is 1.
    """
    from advtui.files import write_json, write_text
    from advtui.report.export import check_format, export_file, laid_out_grid, render_all
    from advtui.report.layout import report_tables
    from advtui.report.tables import collect, invalid_metrics, markdown, rich_tables

    if fmt:
        check_format(fmt)
    if out is not None and not fmt:
        raise ValueError("--out: needs --format csv, md or tex (which format to write)")
    if fmt and as_json:
        raise ValueError("--format and --json: pick one")

    if not data_dir.is_dir():
        raise FileNotFoundError(
            f"{data_dir}: no such folder; run `advtui report` in the project folder (the one holding dvc.yaml) "
            "or pass --data-dir <project>/data"
        )
    metrics = data_dir / "metrics"
    if not any(metrics.rglob("*.json")):
        warn(f"{metrics}: no metrics files yet, every row is 'not run'; run `dvc repro` to make them")
    result = collect(data_dir)
    if write:
        out = data_dir / "report"
        write_json(out / "report.json", result)
        write_text(out / "report.md", markdown(result))
    if as_json:
        print(json.dumps(result))
    elif fmt:
        grids = [laid_out_grid(laid) for laid in report_tables(result)]
        if out is None:
            print(render_all(grids, fmt), end="")
        else:
            for grid in grids:
                print(export_file(grid, fmt, out))
    else:
        console = Console()
        for table in rich_tables(result):
            console.print(table)
    skipped = invalid_metrics(result, data_dir)
    for line in skipped:
        warn(line)
    if skipped:
        raise typer.Exit(code=1)
