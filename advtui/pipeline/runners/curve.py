"""Robust accuracy against eps of every classifier of one experiment (``name`` E1 or E4): one metrics file
holding each model's curves, and one ``dvc plots`` TSV per model and norm."""

from __future__ import annotations

from advtui.catalog.names import CURVE_MODELS
from advtui.catalog.params import Params
from advtui.catalog.stages import stage_name
from advtui.catalog.paths import curve_tsv, metrics_path, model_of
from advtui.experiments.common import load_classifier, natural_split
from advtui.experiments.curves import NORMS, robustness_curves
from advtui.files import write_json, write_text
from advtui.pipeline.inputs import require
from advtui.pipeline.progress import StageProgress
from advtui.pipeline.stagelock import attack_state_dir
from advtui.runtime import pick_device, seed_everything


def run(params: Params, name: str) -> dict:
    """Sweep ``curves``' radii on each of experiment ``name``'s classifiers; returns the mean clean accuracy."""
    models = {m: require(model_of(name, m)) for m in CURVE_MODELS[name]}
    device = pick_device(params.device)
    test = natural_split(params.data, "test", params.seed)
    stage = stage_name("curve", name)
    progress = StageProgress(stage)
    rows = {}
    for model, path in models.items():
        seed_everything(params.seed)  # each curve as if run alone: same starts whatever the model order
        row = robustness_curves(load_classifier(path, device), test, params.curves, params.data, device=device,
                                seed=params.seed, on_progress=progress.update,
                                state_dir=attack_state_dir(stage) / model, speed=params.attack.speed)
        for norm in NORMS:
            write_text(curve_tsv(name, model, norm),
                       "eps\trobust_acc\n" + "".join(f"{e:g}\t{a:.6f}\n" for e, a in row[norm]))
        rows[model] = {**row, "experiment": name, "model": model}
    write_json(metrics_path("curves", name), rows)
    mean_clean = sum(r["clean_acc"] for r in rows.values()) / len(rows)
    progress.finish(clean_acc=mean_clean)
    return {"models": len(rows), "mean_clean_acc": mean_clean}
