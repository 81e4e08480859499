"""E15 (Nakkiran): bugs-only examples, targeted on the standard source while E4's natural classifiers keep the true
label, and a fresh classifier trained on them relabelled."""

from __future__ import annotations

from advtui.catalog.params import Params
from advtui.catalog.paths import curve_tsv, metrics_path, model_path, retrained_path
from advtui.catalog.stages import stage_name
from advtui.experiments.bugs_only import bugs_only_experiment
from advtui.experiments.common import load_classifier, natural_split
from advtui.experiments.construct import source_images
from advtui.files import write_json, write_text
from advtui.pipeline.inputs import require
from advtui.pipeline.progress import StageProgress
from advtui.pipeline.stagelock import checkpoint_file
from advtui.runtime import pick_device


def run(params: Params, name: str) -> dict:
    """Attack, train and test under ``e15``; write the E15 metrics."""
    e15, seeds = params.e15, params.retrain.seeds
    if e15.references > seeds:
        raise ValueError(f"e15.references: {e15.references} reference models but E4 trains {seeds} natural "
                         f"classifiers (retrain.seeds); set e15.references <= {seeds}")
    stage = stage_name("bugs_only", name)
    progress = StageProgress(stage)
    device = pick_device(params.device)
    load = lambda path: load_classifier(require(path), device)  # noqa: E731
    references = [load(retrained_path("natural", k)) for k in range(e15.references)]
    held_out = load(retrained_path("natural", e15.references)) if e15.references < seeds else None
    # e15.size class-balanced images of those D_det starts from (the references were trained on them too)
    start = source_images(params.construct.size, params.data, params.seed)
    start = start.select(min(e15.size, len(start)), params.seed, key="e15.size")
    result = bugs_only_experiment(
        source=load(model_path("standard")), references=references, held_out=held_out, start=start,
        test=natural_split(params.data, "test", params.seed), params=e15, data=params.data, model=params.model,
        seed=params.seed, device=device, checkpoint=checkpoint_file(stage), on_progress=progress.update,
    )
    # E15's point on E12's `dvc plots` scatter (no held-out model: no transfer to plot, the point is left out)
    lines = ["arch\ttransfer_success\tdet_acc"]
    if result["transfer_success"] is not None:
        lines.append(f"bugs_only\t{result['transfer_success']:.6g}\t{result['clean_acc']:.6g}")
    write_text(curve_tsv("E15", name, "l2"), "\n".join(lines) + "\n")
    write_json(metrics_path("E15", name), result)
    progress.finish(clean_acc=result["clean_acc"])
    return result
