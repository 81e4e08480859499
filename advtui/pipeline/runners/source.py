"""E1: train source model ``name`` and measure its clean and robust test accuracy."""

from __future__ import annotations

from dataclasses import asdict

from advtui.catalog.params import Params
from advtui.catalog.paths import live_dir, metrics_path, model_path
from advtui.catalog.stages import stage_name
from advtui.experiments.common import natural_split
from advtui.experiments.evaluation import evaluate_classifier
from advtui.experiments.source_models import train_source
from advtui.files import write_json
from advtui import distributed
from advtui.pipeline.progress import StageProgress
from advtui.pipeline.stagelock import attack_state_dir, checkpoint_file
from advtui.runtime import pick_device


def run(params: Params, name: str) -> dict:
    """Train source model ``name`` (``sources.<name>``), evaluate it under ``attack``, write its E1 row."""
    stage = stage_name("source", name)
    progress = StageProgress(stage)
    model, fit = train_source(
        name, sources=params.sources, data=params.data, model=params.model, seed=params.seed, device=params.device,
        out=model_path(name), checkpoint=checkpoint_file(stage), live_dir=live_dir("E1", name),
        on_progress=progress.update,
    )
    if not distributed.is_main():  # a torchrun rank that trained with rank 0, which evaluates and writes
        return fit
    test = natural_split(params.data, "test", params.seed)
    row = evaluate_classifier(
        model, test, params.attack.threats(), batch_size=params.attack.batch_size, device=pick_device(params.device),
        seed=params.seed, on_progress=progress.update, state_dir=attack_state_dir(stage), speed=params.attack.speed,
    )
    row.update(model=name, adversarial=asdict(params.sources.model(name).adversarial), train_acc=fit.get("train_acc"))
    write_json(metrics_path("E1", name), row)
    progress.finish(clean_acc=row["clean_acc"])
    return row
