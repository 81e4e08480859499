"""E5/E6: pretrain one paradigm on one training set (``name`` 'CL-D_R'), or the robust CL source ('robust_cl').

The robust CL source (adversarial SimCLR on natural images) is stored beside the E1 source models,
since D_R_CL is constructed from it as D_R is from robust_l2.
"""

from __future__ import annotations

from advtui.catalog.names import ROBUST_CL, parse_run_name
from advtui.catalog.params import Params, paradigm_run
from advtui.catalog.paths import dataset_path, encoder_path, live_dir, metrics_path, model_path
from advtui.catalog.stages import stage_name
from advtui.experiments.construct import training_set
from advtui.experiments.paradigm_runs import pretrain
from advtui.files import write_json
from advtui import distributed
from advtui.pipeline.inputs import constructed_input
from advtui.pipeline.progress import StageProgress
from advtui.pipeline.stagelock import checkpoint_file


def run(params: Params, name: str) -> dict:
    """Pretrain run ``name`` by its ``paradigms.<paradigm>`` params and write its metrics."""
    if name == ROBUST_CL:
        paradigm, dataset, out, logs = "CL", "natural", model_path(ROBUST_CL), live_dir("E6", ROBUST_CL)
    else:
        paradigm, dataset = parse_run_name(name)
        out, logs = encoder_path(name), live_dir("E5", name)
    run_params = paradigm_run(params.paradigms, name if name == ROBUST_CL else paradigm)
    train = training_set(dataset, dataset_path=constructed_input(dataset), construct=params.construct,
                         data=params.data, seed=params.seed)
    stage = stage_name("pretrain", name)
    progress = StageProgress(stage)
    sources = [] if dataset == "natural" else [str(dataset_path(dataset))]
    row = pretrain(paradigm, run_params, train, out=out, checkpoint=checkpoint_file(stage), live_dir=logs,
                   device=params.device, seed=params.seed, sources=sources, on_progress=progress.update)
    if not distributed.is_main():  # a torchrun rank that trained with rank 0, which writes
        return row
    row.update(dataset=dataset, run=name)
    write_json(metrics_path("pretrain", name), row)
    progress.finish(train_loss=row.get("train_loss"))
    return row
