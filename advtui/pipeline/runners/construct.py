"""E2/E3: build constructed dataset ``name`` from its source model."""

from __future__ import annotations

from advtui.catalog.names import recipe
from advtui.catalog.params import Params
from advtui.catalog.paths import dataset_path, metrics_path, model_path
from advtui.catalog.stages import stage_name
from advtui.experiments.construct import construct_dataset
from advtui.files import write_json
from advtui.pipeline.inputs import require
from advtui.pipeline.progress import StageProgress


def run(params: Params, name: str) -> dict:
    """Construct set ``name`` by its recipe (``construct.<settings>``) and write its metrics."""
    rec = recipe(name)
    source = require(model_path(rec.model))
    progress = StageProgress(stage_name("construct", name))
    metrics = construct_dataset(
        name, cfg=params.construct, data=params.data, seed=params.seed, device=params.device,
        model_path=source, out=dataset_path(name), on_progress=progress.update, speed=params.attack.speed,
    )
    write_json(metrics_path("construct", name), metrics)
    progress.finish(n=metrics["n"])
    return metrics
