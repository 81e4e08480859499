"""E14: robust feature leakage in D_rand and D_det (Goh): the shape probe on synthetic data, the linear lower bound
on any data."""

from __future__ import annotations

from advtui.catalog.params import Params
from advtui.catalog.paths import metrics_path
from advtui.catalog.stages import stage_name
from advtui.experiments.leakage import LEAKAGE_SETS, robust_feature_leakage
from advtui.files import write_json
from advtui.pipeline.inputs import constructed_input
from advtui.pipeline.progress import StageProgress
from advtui.pipeline.stagelock import checkpoint_file


def run(params: Params, name: str) -> dict:
    """Measure leakage in every set of ``LEAKAGE_SETS`` under ``e14``; write the E14 metrics."""
    stage = stage_name("leakage", name)
    sets = {s: constructed_input(s) for s in LEAKAGE_SETS}
    progress = StageProgress(stage)
    result = robust_feature_leakage(
        sets=sets, params=params.e14, construct=params.construct, data=params.data, seed=params.seed,
        device=params.device, checkpoints=[checkpoint_file(stage, k) for k in range(1 + len(sets))],
        on_progress=progress.update,
    )
    write_json(metrics_path("E14", name), result)
    progress.finish(linear_clean_acc=result["linear_clean_acc"])
    return result
