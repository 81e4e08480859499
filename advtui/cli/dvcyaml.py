"""`advtui dvc-yaml`: write dvc.yaml from the stage catalogue (advtui/catalog/stages.py), or check it."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from advtui.catalog.stages import DVC_YAML, render_dvc_yaml
from advtui.cli.errors import guarded
from advtui.files import write_text


@guarded
def dvc_yaml(
    check: bool = typer.Option(False, "--check", help="Only check that dvc.yaml is up to date (exit 1 if not)."),
    path: Path = typer.Option(DVC_YAML, "--path", help="The dvc.yaml to write or check."),
) -> None:
    """Regenerate dvc.yaml after changing stages, names, paths or the code a stage imports."""
    text = render_dvc_yaml()
    current = path.read_text() if path.exists() else None
    if check:
        if current != text:
            Console(stderr=True).print(f"[bold red]{path} is out of date[/]: run `advtui dvc-yaml` and commit it")
            raise SystemExit(1)  # not a user error to be reworded: the one line above says it
        Console().print(f"{path} is up to date")
        return
    if current == text:
        Console().print(f"{path} is up to date")
        return
    write_text(path, text)
    Console().print(f"wrote {path}; `dvc status` shows which stages the change reruns")
