"""`advtui report`: the experiment tables from the metrics files, beside the papers' figures."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console

from advtui.cli.errors import guarded


@guarded
def report(
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object (keys: experiment ids) for scripts."),
    write: bool = typer.Option(False, "--write", help="Also write data/report/report.md and report.json."),
    data_dir: Path = typer.Option(Path("data"), help="Folder holding metrics/ (the pipeline's data folder)."),
) -> None:
    """Show the E1, E4, E5 and E6 tables; a row whose stage has not run is marked 'not run'."""
    from advtui.files import write_json, write_text
    from advtui.report.tables import collect, markdown, rich_tables

    result = collect(data_dir)
    if write:
        out = data_dir / "report"
        write_json(out / "report.json", result)
        write_text(out / "report.md", markdown(result))
    if as_json:
        print(json.dumps(result))
        return
    console = Console()
    for table in rich_tables(result):
        console.print(table)
