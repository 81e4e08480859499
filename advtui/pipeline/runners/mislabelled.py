"""E16: learning from mislabelled data (Wallace): a fresh model trained on a weak model's errors alone, and the
noise control."""

from __future__ import annotations

from advtui.catalog.params import Params
from advtui.catalog.paths import metrics_path
from advtui.catalog.stages import stage_name
from advtui.experiments.mislabelled import E16_SETS, mislabelled_experiment
from advtui.files import write_json
from advtui.pipeline.progress import StageProgress
from advtui.pipeline.stagelock import checkpoint_file


def run(params: Params, name: str) -> dict:
    """Train the weak model and the fresh ones under ``e16``; write the E16 metrics."""
    stage = stage_name("mislabelled", name)
    progress = StageProgress(stage)
    result = mislabelled_experiment(
        params=params.e16, data=params.data, model=params.model, seed=params.seed, device=params.device,
        checkpoints=[checkpoint_file(stage, k) for k in range(1 + len(E16_SETS))], on_progress=progress.update,
    )
    write_json(metrics_path("E16", name), result)
    progress.finish(clean_acc=result["sets"]["errors"]["clean_acc"])
    return result
