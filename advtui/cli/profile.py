"""`advtui profile`: switch params.yaml between the profiles (`advtui profile list`: smoke, cifar-mini, cpu, paper, gpu-fast)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from advtui.cli.errors import guarded
from advtui.catalog.names import PROFILES
from advtui.catalog.params import load_params, profile_path, use_profile
from advtui.catalog.paths import PARAMS_FILE

app = typer.Typer(help=f"Params profiles ({', '.join(PROFILES)}): one command switches params.yaml.", no_args_is_help=True)


@app.command()
@guarded
def use(
    name: str = typer.Argument(..., help=f"One of {', '.join(PROFILES)}."),
    params_file: Path = typer.Option(PARAMS_FILE, "--params", "-p", help="Params file to write."),
) -> None:
    """Write profile NAME over params.yaml (DVC then reruns exactly the stages whose params changed)."""
    use_profile(name, params_file)
    Console().print(f"params.yaml now holds profile [bold]{name}[/] (from {profile_path(name)})")


@app.command("list")
def list_profiles() -> None:
    """List the profiles and mark the active one."""
    active = None
    if PARAMS_FILE.exists():
        try:
            active = load_params(PARAMS_FILE).profile
        except ValueError:
            active = None
    for name in PROFILES:
        Console().print(f"{'*' if name == active else ' '} {name}  {profile_path(name)}")
