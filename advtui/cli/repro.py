"""`advtui repro [TARGETS] --jobs N`: `dvc repro`, with up to N stage commands running at once."""

from __future__ import annotations

from pathlib import Path

import typer

from advtui.catalog.params import load_params
from advtui.catalog.paths import PARAMS_FILE
from advtui.cli.errors import fail, guarded


@guarded
def repro(
    targets: list[str] = typer.Argument(None, help="Stages or stage groups, as `dvc repro` takes them (default: all)."),
    jobs: int = typer.Option(0, "--jobs", "-j", help="Stage commands running at once (default: params.yaml's jobs)."),
    threads: int = typer.Option(0, "--threads", help="Torch threads per stage (default: the cores over --jobs)."),
    keep_going: bool = typer.Option(False, "--keep-going", "-k", help="After a failure, still run what does not "
                                                                       "depend on it."),
    root: Path = typer.Option(Path("."), "--root", help="Project folder (holding dvc.yaml)."),
    cold: bool = typer.Option(False, "--cold", help="Start every stage command as a new process, as dvc repro does "
                                                    "(by default advtui commands are forked from one that has "
                                                    "imported torch: seconds saved per stage)."),
) -> None:
    """Reproduce the pipeline like `dvc repro`, several stages at a time (dvc.lock records them the same way).

    On a CPU box two stages with one thread each finish sooner than one stage with two (the smoke profile's
    jobs: 2); on a single GPU the profiles keep jobs: 1.
    """
    if not (root / "dvc.yaml").is_file():
        raise FileNotFoundError(f"repro: no dvc.yaml in {root.resolve()}; run it in an advtui project folder")
    from dvc.exceptions import DvcException

    from advtui.pipeline.parallel import repro as run

    jobs = jobs or load_params(root / PARAMS_FILE).jobs
    try:
        code = run(root, targets or (), jobs=jobs, threads=threads or None, keep_going=keep_going, warm=not cold)
    except DvcException as err:  # a broken dvc.yaml, a dep no stage makes, an unknown target: DVC's own words
        raise fail(f"repro: {err}") from None
    if code:
        raise typer.Exit(code)
