"""E18: the frequency control (Hendrycks and Gilmer): a classifier trained on high-passed natural images only."""

from __future__ import annotations

from advtui.catalog.params import Params
from advtui.catalog.paths import metrics_path
from advtui.catalog.stages import stage_name
from advtui.experiments.frequency import frequency_control
from advtui.files import write_json
from advtui.pipeline.progress import StageProgress
from advtui.pipeline.stagelock import checkpoint_file


def run(params: Params, name: str) -> dict:
    """Train on high-passed images under ``e18``, test on natural data; write the E18 metrics."""
    stage = stage_name("frequency", name)
    progress = StageProgress(stage)
    result = frequency_control(
        params=params.e18, construct=params.construct, data=params.data, model=params.model, seed=params.seed,
        device=params.device, checkpoint=checkpoint_file(stage), on_progress=progress.update,
    )
    write_json(metrics_path("E18", name), result)
    progress.finish(clean_acc=result["sets"]["natural"]["clean_acc"])
    return result
