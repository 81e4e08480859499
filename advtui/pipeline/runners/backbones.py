"""E8: the extra supervised backbones of the transfer matrix (``e8.backbones``), each pretrained with the SL paradigm's
recipe on the natural images and given a linear probe, as every paradigm's natural-image run is."""

from __future__ import annotations

from dataclasses import replace

from advtui.catalog.names import backbone_name
from advtui.catalog.params import Params
from advtui.catalog.paths import backbone_encoder_path, backbone_probe_path, live_dir, metrics_path
from advtui.catalog.stages import stage_name
from advtui.experiments.common import natural_split
from advtui.experiments.construct import training_set
from advtui.experiments.paradigm_runs import pretrain, probe
from advtui.files import write_json
from advtui.pipeline.progress import StageProgress
from advtui.pipeline.stagelock import checkpoint_file


def run(params: Params, name: str) -> dict:
    """Pretrain and probe every ``e8.backbones`` architecture; write their rows (by backbone name) to one file."""
    stage = stage_name("backbones", name)
    progress = StageProgress(stage)
    train = training_set("natural", dataset_path=None, construct=params.construct, data=params.data, seed=params.seed)
    test = natural_split(params.data, "test", params.seed)
    sl = params.paradigms.SL
    rows = {}
    for index, arch in enumerate(params.e8.backbones):
        backbone = backbone_name(arch)
        encoder = backbone_encoder_path(backbone)
        # each backbone keeps its own checkpoints, so a rerun after a kill retrains none that finished
        row = pretrain("SL", replace(sl, config=replace(sl.config, arch=arch)), train, out=encoder,
                       checkpoint=checkpoint_file(stage, 2 * index), live_dir=live_dir("E8", backbone),
                       device=params.device, seed=params.seed, sources=[], on_progress=progress.update)
        row.update(probe(encoder, train, test, params.probe, out=backbone_probe_path(backbone),
                         checkpoint=checkpoint_file(stage, 2 * index + 1), live_dir=None, device=params.device,
                         seed=params.seed, on_progress=progress.update))
        rows[backbone] = {**row, "arch": arch}
    write_json(metrics_path("E8", "backbones"), rows)
    progress.finish()
    return {"backbones": len(rows)}
