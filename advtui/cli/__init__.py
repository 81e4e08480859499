"""The `advtui` command line: one Typer module per command group; `advtui` alone opens the app."""
