"""E2/E3: build constructed dataset ``name`` from its source model."""

from __future__ import annotations

from advtui.catalog.names import recipe
from advtui.catalog.params import Params
from advtui.catalog.paths import dataset_path, metrics_path, model_path
from advtui.catalog.stages import stage_name
from advtui.experiments.construct import construct_dataset
from advtui.files import write_json
from advtui import distributed, shards
from advtui.pipeline.inputs import require
from advtui.pipeline.progress import StageProgress


def run(params: Params, name: str) -> dict:
    """Construct set ``name`` by its recipe (``construct.<settings>``) and write its metrics. Under several
    ranks (``advtui.shards``) every rank builds its share of the chunks and rank 0 alone writes the
    set, its metrics and its progress; the other ranks return an empty row."""
    rec = recipe(name)
    source = require(model_path(rec.model))
    progress = StageProgress(stage_name("construct", name))
    with shards.split():
        metrics = construct_dataset(
            name, cfg=params.construct, data=params.data, seed=params.seed, device=params.device,
            model_path=source, out=dataset_path(name), on_progress=progress.update if distributed.is_main() else None,
            speed=params.attack.speed,
        )
    if metrics is None:
        return {}
    write_json(metrics_path("construct", name), metrics)
    progress.finish(n=metrics["n"])
    return metrics
