"""Options shared by several commands."""

from __future__ import annotations

import typer

from advtui.catalog.paths import PARAMS_FILE

ParamsOption = typer.Option(PARAMS_FILE, "--params", "-p", help="Params file to read (see `advtui profile --help`).")
