"""E5: a linear probe on run ``name``'s encoder, trained on its training set: U on the natural test set."""

from __future__ import annotations

from advtui.catalog.names import parse_run_name
from advtui.catalog.params import Params
from advtui.catalog.paths import encoder_path, live_dir, metrics_path, probe_path
from advtui.catalog.stages import stage_name
from advtui.experiments.common import natural_split
from advtui.experiments.construct import training_set
from advtui.experiments.paradigm_runs import probe
from advtui.files import write_json
from advtui.pipeline.inputs import constructed_input, require
from advtui.pipeline.progress import StageProgress
from advtui.pipeline.stagelock import checkpoint_file


def run(params: Params, name: str) -> dict:
    """Train run ``name``'s probe (``probe`` params), measure it on natural test data, write its E5 row."""
    paradigm, dataset = parse_run_name(name)
    encoder = require(encoder_path(name))
    train = training_set(dataset, dataset_path=constructed_input(dataset), construct=params.construct,
                         data=params.data, seed=params.seed)
    stage = stage_name("probe", name)
    progress = StageProgress(stage)
    row = probe(
        encoder, train, natural_split(params.data, "test", params.seed), params.probe, out=probe_path(name),
        checkpoint=checkpoint_file(stage), live_dir=live_dir("E5-probe", name), device=params.device,
        seed=params.seed, on_progress=progress.update, untrained_floor=dataset == "natural",
    )
    row.update(paradigm=paradigm, dataset=dataset)
    write_json(metrics_path("E5", name), row)
    progress.finish(clean_acc=row["clean_acc"])
    return row
