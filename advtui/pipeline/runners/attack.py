"""E6: PGD and AutoAttack on run ``name``'s encoder + probe: R on the natural test set."""

from __future__ import annotations

from advtui.catalog.names import parse_run_name
from advtui.catalog.params import Params
from advtui.catalog.paths import metrics_path, probe_path
from advtui.catalog.stages import stage_name
from advtui.experiments.common import natural_split
from advtui.experiments.paradigm_runs import attack
from advtui.files import write_json
from advtui import distributed, shards
from advtui.pipeline.inputs import require
from advtui.pipeline.progress import StageProgress
from advtui.pipeline.stagelock import attack_state_dir


def run(params: Params, name: str) -> dict:
    """Attack run ``name``'s encoder + probe by the ``e6`` params and write its E6 row. Under several ranks
    (``advtui.shards``) they share the attacks' batches and rank 0 alone writes the row and progress."""
    paradigm, dataset = parse_run_name(name)
    head = require(probe_path(name))
    stage = stage_name("attack", name)
    progress = StageProgress(stage)
    with shards.split():
        row = attack(
            paradigm, head, natural_split(params.data, "test", params.seed), params.e6, device=params.device,
            seed=params.seed, on_progress=progress.update, state_dir=attack_state_dir(stage), speed=params.attack.speed,
        )
    row.update(paradigm=paradigm, dataset=dataset)
    if not distributed.is_main():
        return row
    write_json(metrics_path("E6", name), row)
    progress.finish(clean_acc=row["clean_acc"])
    return row
