"""E7: the SL or CL encoder + probe (natural images) under APGD on each attack objective (Li Fig. 2, Table 7)."""

from __future__ import annotations

from advtui.catalog.names import run_name
from advtui.catalog.params import Params
from advtui.catalog.paths import live_dir, metrics_path, probe_path
from advtui.catalog.stages import stage_name
from advtui.experiments.common import natural_split
from advtui.experiments.construct import training_set
from advtui.experiments.linear_probe import load_probe
from advtui.experiments.transfer import log_curves, objective_transfer, train_projector
from advtui.files import write_json
from advtui.pipeline.inputs import require
from advtui.pipeline.progress import StageProgress
from advtui.pipeline.stagelock import attack_state_dir, checkpoint_file
from advtui.runtime import pick_device, seed_everything


def run(params: Params, name: str) -> dict:
    """Attack paradigm ``name``'s natural-image classifier with every E7 objective; write its E7 row and curves."""
    stage = stage_name("objectives", name)
    progress = StageProgress(stage)
    device = pick_device(params.device)
    seed_everything(params.seed)
    classifier = load_probe(require(probe_path(run_name(name, "natural"))), device=device)
    cl = params.paradigms.CL.config
    if name == "CL":  # SimCLR's own projection head
        projector = classifier.encoder.model.projector
    else:  # Li: "appending a re-trained projection head on top of the fixed encoder"
        train = training_set("natural", dataset_path=None, construct=params.construct, data=params.data,
                             seed=params.seed)
        projector = train_projector(classifier.encoder, train, cl, params.e7, checkpoint=checkpoint_file(stage),
                                    device=device, seed=params.seed).projector
    row = objective_transfer(
        classifier, projector, natural_split(params.data, "test", params.seed), cl, params.e7, device=device,
        seed=params.seed, state_dir=attack_state_dir(stage), on_progress=progress.update,
    )
    row.update(paradigm=name)
    log_curves(live_dir("E7", name), row["curves"])
    write_json(metrics_path("E7", name), row)
    progress.finish(clean_acc=row["clean_acc"])
    return row
