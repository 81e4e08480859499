"""Robust accuracy against eps of every classifier of one experiment (``name`` E1 or E4): one metrics file
holding each model's curves, and one ``dvc plots`` TSV per model and norm. An E4 training set's curves are the
mean over its seeds' classifiers (``retrain.seeds``), with their 95% intervals."""

from __future__ import annotations

from pathlib import Path

from advtui.catalog.names import CURVE_MODELS, SYNTHETIC_ONLY
from advtui.catalog.params import Params
from advtui.catalog.paths import curve_tsv, metrics_path, model_path, retrained_path, seed_dir
from advtui.catalog.stages import stage_name
from advtui.experiments.common import load_classifier, natural_split
from advtui.experiments.curves import NORMS, mean_curves, robustness_curves
from advtui.files import write_json, write_text
from advtui.pipeline.inputs import require
from advtui.pipeline.progress import StageProgress
from advtui.pipeline.stagelock import attack_state_dir
from advtui.runtime import pick_device, seed_everything


TSV_HEADER = "eps\trobust_acc\n"


def _classifiers(params: Params, experiment: str, model: str) -> list[Path]:
    """The weights a curve row measures: an E1 source model, or every seed's classifier of an E4 set."""
    if experiment == "E1":
        return [require(model_path(model))]
    return [require(retrained_path(model, k)) for k in range(params.retrain.seeds)]


def run(params: Params, name: str) -> dict:
    """Sweep ``curves``' radii on each of experiment ``name``'s classifiers; returns the mean clean accuracy."""
    models = {m: _classifiers(params, name, m) for m in CURVE_MODELS[name]
              if not (m in SYNTHETIC_ONLY and params.data.source != "synthetic")}
    device = pick_device(params.device)
    test = natural_split(params.data, "test", params.seed)
    stage = stage_name("curve", name)
    progress = StageProgress(stage)
    rows = {}
    for model in CURVE_MODELS[name]:
        if model not in models:  # a set the data cannot have (E4's pattern-free control off synthetic data)
            rows[model] = {"experiment": name, "model": model, "not_applicable": SYNTHETIC_ONLY[model]}
            for norm in NORMS:  # no points, but the file `dvc plots` is told to read
                write_text(curve_tsv(name, model, norm), TSV_HEADER)
            continue
        runs = []
        for k, path in enumerate(models[model]):
            seed_everything(params.seed)  # each curve as if run alone: same starts whatever the model order
            state = attack_state_dir(stage) / model
            runs.append(robustness_curves(load_classifier(path, device), test, params.curves, params.data,
                                          device=device, seed=params.seed, on_progress=progress.update,
                                          state_dir=state if name == "E1" else seed_dir(state, k),
                                          speed=params.attack.speed))
        row = runs[0] if name == "E1" else mean_curves(runs, params.retrain.seed_list(params.seed))
        for norm in NORMS:
            write_text(curve_tsv(name, model, norm),
                       TSV_HEADER + "".join(f"{e:g}\t{a:.6f}\n" for e, a in row[norm]))
        rows[model] = {**row, "experiment": name, "model": model}
    write_json(metrics_path("curves", name), rows)
    measured = [r["clean_acc"] for r in rows.values() if "clean_acc" in r]
    mean_clean = sum(measured) / len(measured)
    progress.finish(clean_acc=mean_clean)
    return {"models": len(measured), "mean_clean_acc": mean_clean}
