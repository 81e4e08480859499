"""`advtui stage RUNNER NAME`: run one pipeline stage from params.yaml (what dvc.yaml calls)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from advtui.catalog.stages import runner_help, stage_name
from advtui.cli.errors import guarded
from advtui.cli.options import ParamsOption
from advtui.catalog.params import load_params


@guarded
def stage(
    family: str = typer.Argument(..., help="; ".join(f"{k}: {v}" for k, v in runner_help().items())),
    name: str = typer.Argument(..., help="Which one of the family (see above)."),
    params_file: Path = ParamsOption,
) -> None:
    """Run one stage of dvc.yaml by hand. Prefer `dvc repro <stage>`, which also records it in dvc.lock."""
    stage_name(family, name)  # a wrong family or name fails here, before params.yaml is read
    from advtui.pipeline.runners import run_stage

    result = run_stage(family, load_params(params_file), name)
    shown = {k: v for k, v in result.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    Console().print(f"[green]{family} {name} done[/] " + ", ".join(f"{k} {v:.4g}" for k, v in shown.items()))
