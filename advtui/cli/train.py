"""`advtui train`: train a standard or adversarially trained classifier from params."""

from __future__ import annotations

import dataclasses
from contextlib import nullcontext
from pathlib import Path

import typer
from rich.console import Console

from advtui.cli.errors import guarded
from advtui.cli.options import ParamsOption
from advtui.catalog.params import load_params
from advtui.catalog.names import SOURCE_MODELS
from advtui.catalog.paths import live_dir as paths_live_dir, model_path
from advtui.catalog.stages import stage_name
from advtui.pipeline.stagelock import stage_lock


@guarded
def train(
    kind: str = typer.Argument("standard", help=f"Which source model recipe: {', '.join(SOURCE_MODELS)}."),
    out: Path = typer.Option(None, "--out", "-o", help="Weights file (default: where the pipeline keeps KIND, data/models/<kind>.safetensors)."),
    epochs: int = typer.Option(None, help="Override sources.train.epochs."),
    arch: str = typer.Option(None, help="Override model.arch (see `advtui models`)."),
    live_dir: Path = typer.Option(None, help="DVCLive folder (default: the pipeline's, data/live/E1/<kind>)."),
    params_file: Path = ParamsOption,
) -> None:
    """Train a classifier on the natural training set of the params (resumes an interrupted run).

    The adversarial settings of KIND come from params.yaml (sources.<kind>); eps 0 is standard training.
    The checkpoint is OUT with suffix .ckpt until the weights are stored. Writing where the pipeline keeps
    KIND, it holds the lock of stage source@KIND (it fails at once while that stage runs).
    """
    from advtui.experiments.source_models import train_source

    params = load_params(params_file)
    if epochs is not None:
        train_cfg = dataclasses.replace(params.sources.train, epochs=epochs)
        params = dataclasses.replace(params, sources=dataclasses.replace(params.sources, train=train_cfg))
    if arch is not None:
        params = dataclasses.replace(params, model=dataclasses.replace(params.model, arch=arch))
    params.sources.model(kind)  # fail early on an unknown kind
    out = out or model_path(kind)
    live_dir = live_dir or paths_live_dir("E1", kind)
    checkpoint = out.with_suffix(".ckpt")
    pipelines = out.resolve() == model_path(kind).resolve()
    with stage_lock(stage_name("source", kind)) if pipelines else nullcontext():
        _, metrics = train_source(
            kind, sources=params.sources, data=params.data, model=params.model, seed=params.seed,
            device=params.device, out=out, checkpoint=checkpoint, live_dir=live_dir,
        )
        checkpoint.unlink(missing_ok=True)  # the weights, this command's last output, are stored
    Console().print(
        f"[green]saved[/] {out}: train acc {metrics.get('train_acc', float('nan')):.3f}, "
        f"test acc {metrics.get('test_acc', float('nan')):.3f}"
    )
