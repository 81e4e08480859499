"""E12 (Ilyas Fig. 3): each ``e12.archs`` architecture trained on D_det, and the transfer success of the standard
source's targeted examples to a naturally trained model of it; E4's and E8's classifiers are reused where they exist."""

from __future__ import annotations

from advtui.catalog.names import backbone_name
from advtui.catalog.params import Params
from advtui.catalog.paths import (
    backbone_probe_path, curve_tsv, dataset_path, metrics_path, model_path, retrained_path,
)
from advtui.catalog.stages import stage_name
from advtui.experiments.common import load_classifier
from advtui.experiments.construct import training_set
from advtui.experiments.learnability import learnability_transfer, train_arch
from advtui.experiments.linear_probe import load_probe
from advtui.files import write_json, write_text
from advtui.pipeline.inputs import require
from advtui.pipeline.progress import StageProgress
from advtui.pipeline.stagelock import checkpoint_file
from advtui.runtime import pick_device


def run(params: Params, name: str) -> dict:
    """Gather or train each architecture's D_det and natural classifiers; write the E12 metrics."""
    stage = stage_name("learnability", name)
    progress = StageProgress(stage)
    device = pick_device(params.device)
    load = lambda path: load_classifier(require(path), device)  # noqa: E731
    sets = {}

    def images(which: str):
        if which not in sets:
            path = dataset_path(which) if which != "natural" else None
            sets[which] = training_set(which, dataset_path=path, construct=params.construct, data=params.data,
                                       seed=params.seed)
        return sets[which]

    det_models, natural_models, origins = {}, {}, {}
    for index, arch in enumerate(params.e12.archs):
        def train(which: str, k: int, arch: str = arch, index: int = index) -> list:
            # each arch and set keeps its own checkpoint, so a rerun after a kill retrains none that finished
            return [train_arch(arch, images(which), params.e12.train, checkpoint=checkpoint_file(stage, 2 * index + k),
                               device=device, seed=params.seed, on_progress=progress.update)]

        if arch == params.model.arch:  # E4's classifiers, every seed
            seeds = range(params.retrain.seeds)
            det_models[arch] = [load(retrained_path("D_det", k)) for k in seeds]
            natural_models[arch] = [load(retrained_path("natural", k)) for k in seeds]
            origins[arch] = {"det_from": "E4 retrain@D_det", "natural_from": "E4 retrain@natural"}
            continue
        det_models[arch] = train("D_det", 0)
        if arch in params.e8.backbones:
            natural_models[arch] = [load_probe(require(backbone_probe_path(backbone_name(arch))), device=device)]
            origins[arch] = {"det_from": "trained here", "natural_from": "E8 backbones"}
        else:
            natural_models[arch] = train("natural", 1)
            origins[arch] = {"det_from": "trained here", "natural_from": "trained here"}
    result = learnability_transfer(
        source=load(model_path("standard")), det_models=det_models, natural_models=natural_models, origins=origins,
        data=params.data, relabel=params.construct.relabel, test_size=params.e12.test_size, seed=params.seed,
        device=device,
    )
    # Fig. 3 for `dvc plots` (a scatter: one point per architecture; the attack is L2, hence the file name)
    lines = ["arch\ttransfer_success\tdet_acc"] + [f"{a}\t{r['transfer_success']:.6g}\t{r['det_acc']:.6g}"
                                                     for a, r in result["archs"].items()]
    write_text(curve_tsv("E12", "archs", "l2"), "\n".join(lines) + "\n")
    write_json(metrics_path("E12", name), result)
    progress.finish()
    return result
