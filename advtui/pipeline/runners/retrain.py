"""E4: train a fresh classifier on training set ``name`` and measure it on natural test data."""

from __future__ import annotations

from advtui.catalog.params import Params
from advtui.catalog.paths import live_dir, metrics_path, retrained_path
from advtui.catalog.stages import stage_name
from advtui.experiments.retrain import retrain
from advtui.files import write_json
from advtui.pipeline.inputs import constructed_input
from advtui.pipeline.progress import StageProgress
from advtui.pipeline.stagelock import attack_state_dir, checkpoint_file


def run(params: Params, name: str) -> dict:
    """Retrain on ``name`` (``retrain.<recipe>``), evaluate under ``attack``, write its E4 row."""
    path = constructed_input(name)
    stage = stage_name("retrain", name)
    progress = StageProgress(stage)
    row = retrain(
        name, dataset_path=path, retrain_params=params.retrain, construct=params.construct, data=params.data,
        model=params.model, attack=params.attack, seed=params.seed, device=params.device,
        out=retrained_path(name), checkpoint=checkpoint_file(stage), state_dir=attack_state_dir(stage),
        live_dir=live_dir("E4", name), on_progress=progress.update,
    )
    write_json(metrics_path("E4", name), row)
    progress.finish(clean_acc=row["clean_acc"])
    return row
