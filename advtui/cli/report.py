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
) -> None:
    """Show the E1, E4, E5 and E6 tables; a row whose stage has not run is marked 'not run'.

    A metrics file that cannot be used is skipped with a warning line naming it, and the exit code is 1.
    """
    from advtui.files import write_json, write_text
    from advtui.report.tables import collect, invalid_metrics, markdown, rich_tables

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
    else:
        console = Console()
        for table in rich_tables(result):
            console.print(table)
    skipped = invalid_metrics(result, data_dir)
    for line in skipped:
        warn(line)
    if skipped:
        raise typer.Exit(code=1)
