"""E8: the transfer matrix (Li Fig. 3): APGD-CE on every natural-image classifier of every paradigm and SL backbone,
and every classifier's accuracy on each one's adversarial images."""

from __future__ import annotations

from advtui.catalog.names import BACKBONE_PREFIX, PARADIGMS, run_name, transfer_models
from advtui.catalog.params import Params
from advtui.catalog.paths import backbone_probe_path, metrics_path, probe_path
from advtui.catalog.stages import stage_name
from advtui.experiments.common import natural_split
from advtui.experiments.linear_probe import load_probe
from advtui.experiments.transfer import transfer_matrix
from advtui.files import write_json
from advtui.pipeline.inputs import require
from advtui.pipeline.progress import StageProgress
from advtui.pipeline.stagelock import attack_state_dir
from advtui.runtime import pick_device, seed_everything


def run(params: Params, name: str) -> dict:
    """Attack every E8 classifier and cross-evaluate; write the matrix."""
    stage = stage_name("transfer", name)
    progress = StageProgress(stage)
    device = pick_device(params.device)
    seed_everything(params.seed)
    models = {}
    for model in transfer_models(params.e8.backbones):
        head = probe_path(run_name(model, "natural")) if model in PARADIGMS else backbone_probe_path(model)
        models[model] = load_probe(require(head), device=device)
    row = transfer_matrix(models, natural_split(params.data, "test", params.seed), params.e8, device=device,
                          seed=params.seed, state_dir=attack_state_dir(stage), on_progress=progress.update,
                          synthetic=params.data.synthetic if params.data.source == "synthetic" else None)
    row["backbones"] = [m.removeprefix(BACKBONE_PREFIX) for m in row["models"] if m not in PARADIGMS]
    write_json(metrics_path("E8", name), row)
    progress.finish()
    return {"models": len(models)}
