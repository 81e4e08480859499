"""`advtui stage RUNNER NAME`: run one pipeline stage from params.yaml (what dvc.yaml calls).

With ``launcher: torchrun`` a training stage re-executes itself as ``nproc`` torchrun ranks
(:mod:`advtui.pipeline.launch`); inside torchrun it runs as its rank, rank 0 printing the result.
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from advtui.catalog.stages import runner_help, stage_name
from advtui.cli.errors import guarded
from advtui.cli.options import ParamsOption
from advtui.catalog.params import Params, load_params


@guarded
def stage(
    family: str = typer.Argument(..., help="; ".join(f"{k}: {v}" for k, v in runner_help().items())),
    name: str = typer.Argument(..., help="Which one of the family (see above)."),
    params_file: Path = ParamsOption,
) -> None:
    """Run one stage of dvc.yaml by hand. Prefer `dvc repro <stage>`, which also records it in dvc.lock."""
    stage_name(family, name)  # a wrong family or name fails here, before params.yaml is read
    from advtui import distributed
    from advtui.pipeline.runners import run_stage

    params = load_params(params_file)
    if distributed.under_torchrun():
        result = _run_as_rank(family, name, params)
        if not distributed.is_main():
            return
    else:
        from advtui.pipeline.launch import distributed_here, relaunch

        if distributed_here(params, family):
            code = relaunch(params, family, name, params_file)
            if code:
                raise typer.Exit(code)
            return
        result = run_stage(family, params, name)
    shown = {k: v for k, v in result.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    Console().print(f"[green]{family} {name} done[/] " + ", ".join(f"{k} {v:.4g}" for k, v in shown.items()))


def _run_as_rank(family: str, name: str, params: Params) -> dict:
    """Run the stage as this torchrun rank, in the process group; rank 0's metrics row (others: theirs, unused)."""
    from advtui.catalog.launch import DISTRIBUTED_RUNNERS
    from advtui import distributed
    from advtui.pipeline.runners import run_stage
    from advtui.runtime import pick_device

    if family not in DISTRIBUTED_RUNNERS and distributed.world_size() > 1:
        raise ValueError(f"stage {family}: cannot run under torchrun; run it as a plain command "
                         f"(torchrun runs the stages {', '.join(DISTRIBUTED_RUNNERS)})")
    with distributed.init(pick_device(params.device)):
        return run_stage(family, params, name)
