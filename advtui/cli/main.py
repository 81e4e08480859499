"""The `advtui` command: every stage and report by hand (`advtui --help`); no arguments opens the app (the console
script, :mod:`advtui.cli.entry`, does that before this module is imported)."""

from __future__ import annotations

from pathlib import Path

import typer

from advtui import __version__
from advtui.cli.entry import open_app


class _Advtui(typer.Typer):
    """The command group, with its commands registered on first use.

    The command modules import the pipeline and so torch (seconds); bare ``advtui`` opens the terminal
    app, which must start in about a second, so it never imports them.
    """

    _loading = False

    @property
    def registered_commands(self) -> list:
        self._load()
        return self._commands

    @registered_commands.setter
    def registered_commands(self, value: list) -> None:
        self._commands = value

    @property
    def registered_groups(self) -> list:
        self._load()
        return self._groups

    @registered_groups.setter
    def registered_groups(self, value: list) -> None:
        self._groups = value

    def _load(self) -> None:
        if self._loading or not hasattr(self, "_groups") or not hasattr(self, "_commands"):
            return
        self._loading = True
        from advtui.cli import dataset, profile
        from advtui.cli.attack import attack
        from advtui.cli.dvcyaml import dvc_yaml
        from advtui.cli.invert import invert
        from advtui.cli.report import report
        from advtui.cli.repro import repro
        from advtui.cli.stage import stage
        from advtui.cli.train import train

        for command in (models, train, attack, invert, stage, repro, report, tui):
            self.command()(command)
        self.command("dvc-yaml")(dvc_yaml)
        self.add_typer(dataset.app, name="dataset")
        self.add_typer(profile.app, name="profile")


app = _Advtui(
    name="advtui",
    help="Robust and non-robust features of neural networks: build datasets, train, attack, report. "
         "No arguments: the terminal app.",
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


def models() -> None:
    """List the registered model architectures."""
    from advtui.models.registry import list_models

    for name in list_models():
        print(name)


def tui(root: Path = typer.Argument(Path("."), help="Project folder (holding dvc.yaml).")) -> None:
    """Open the terminal app (the same as `advtui` with no arguments)."""
    open_app(root)
