"""The `advtui` command: every stage and report by hand (`advtui --help`)."""

from __future__ import annotations

import typer

from advtui import __version__
from advtui.cli import dataset, profile
from advtui.cli.attack import attack
from advtui.cli.invert import invert
from advtui.cli.report import report
from advtui.cli.stage import stage
from advtui.cli.train import train

app = typer.Typer(
    name="advtui",
    help="Robust and non-robust features of neural networks: build datasets, train, attack, report.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _version(value: bool) -> None:
    if value:
        print(f"advtui {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version and exit."),
) -> None:
    """advtui: robust and non-robust features, reproducibly."""


@app.command()
def models() -> None:
    """List the registered model architectures."""
    from advtui.models.registry import list_models

    for name in list_models():
        print(name)


app.command()(train)
app.command()(attack)
app.command()(invert)
app.command()(stage)
app.command()(report)
app.add_typer(dataset.app, name="dataset")
app.add_typer(profile.app, name="profile")
