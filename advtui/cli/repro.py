"""`advtui repro [TARGETS] --jobs N`: `dvc repro`, with up to N stage commands running at once."""

from __future__ import annotations

from pathlib import Path

import typer

from advtui.cli.errors import guarded


@guarded
def repro(
    targets: list[str] = typer.Argument(None, help="Stages or stage groups, as `dvc repro` takes them (default: all)."),
    jobs: int = typer.Option(2, "--jobs", "-j", help="Stage commands running at once."),
    threads: int = typer.Option(0, "--threads", help="Torch threads per stage (default: the cores over --jobs)."),
    keep_going: bool = typer.Option(False, "--keep-going", "-k", help="After a failure, still run what does not "
                                                                       "depend on it."),
    root: Path = typer.Option(Path("."), "--root", help="Project folder (holding dvc.yaml)."),
) -> None:
    """Reproduce the pipeline like `dvc repro`, several stages at a time (dvc.lock records them the same way).

    On a CPU box two stages with one thread each finish sooner than one stage with two; on a single GPU keep
    --jobs 1 unless the stages are small.
    """
    if not (root / "dvc.yaml").is_file():
        raise FileNotFoundError(f"repro: no dvc.yaml in {root.resolve()}; run it in an advtui project folder")
    from advtui.pipeline.parallel import repro as run

    code = run(root, targets or (), jobs=jobs, threads=threads or None, keep_going=keep_going)
    if code:
        raise typer.Exit(code)
