"""Options and progress output shared by several commands."""

from __future__ import annotations

import sys
import time

import typer

from advtui.catalog.params import PARAMS_FILE

ParamsOption = typer.Option(PARAMS_FILE, "--params", "-p", help="Params file to read (see `advtui profile --help`).")


def progress_printer(label: str):
    """A progress callback that redraws one status line on stderr: images done, robust accuracy, rate."""
    started = time.perf_counter()

    def show(done: int, total: int, robust: float) -> None:
        rate = done / max(time.perf_counter() - started, 1e-9)
        left = (total - done) / rate if rate > 0 else 0.0
        end = "\n" if done >= total else "\r"
        print(f"{label}: {done}/{total} robust {robust:.3f} {rate:.0f} img/s {left:.0f}s left", end=end, file=sys.stderr,
              flush=True)

    return show
