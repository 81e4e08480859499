"""E9/E10 (Springer et al. 2021): robustified test sets through each eps-robust source of ``e9.eps`` (training the
ones E1 lacks), the standard, robust, zero- and negative-robust classifiers on each, with and without the leak
control; each source's clean accuracy."""

from __future__ import annotations

from advtui.catalog.params import Params
from advtui.catalog.paths import CURVES, metrics_path, model_path, retrained_path, sweep_model_path
from advtui.catalog.stages import stage_name
from advtui.experiments.common import load_classifier
from advtui.experiments.robustified import plan_sweep, robustified_experiment, train_sweep_source
from advtui.files import write_json, write_text
from advtui.pipeline.inputs import require
from advtui.pipeline.progress import StageProgress
from advtui.pipeline.stagelock import attack_state_dir, checkpoint_file
from advtui.runtime import pick_device


def run(params: Params, name: str) -> dict:
    """Train the missing sweep sources, robustify the test set through each, evaluate; write E9's metrics (E10 reads
    them too) and E10's curves for ``dvc plots``."""
    stage = stage_name("robustified", name)
    progress = StageProgress(stage)
    device = pick_device(params.device)
    e1 = {m: require(model_path(m)) for m in ("standard", "robust_l2")}
    sweep = plan_sweep(params.e9.eps, params.sources.robust_l2.adversarial.eps, e1, sweep_model_path)
    for k, src in enumerate(s for s in sweep if s.origin == "trained"):
        train_sweep_source(src.eps, sources=params.sources, data=params.data, model=params.model, seed=params.seed,
                           device=device, out=src.path, checkpoint=checkpoint_file(stage, k),
                           on_progress=lambda phase, done, total, **info: progress.update(
                               f"train {src.name}", done, total, **info))
    seeds = range(params.retrain.seeds)
    classifiers = {
        "standard": [require(retrained_path("natural", k)) for k in seeds],
        "robust": [e1["robust_l2"]],
        "zero_robust": [require(retrained_path("zero_robust", k)) for k in seeds],
        "neg_robust": [require(retrained_path("neg_robust", k)) for k in seeds],
    }
    result = robustified_experiment(
        sweep=sweep, classifiers=classifiers, params=params.e9, data=params.data, seed=params.seed, device=device,
        load=lambda path: load_classifier(path, device), on_progress=progress.update,
        state_dir=attack_state_dir(stage),
    )
    result["robust_eps"] = params.sources.robust_l2.adversarial.eps
    write_json(metrics_path("E9", name), result)
    # E10's curves (dvc plots): the standard classifiers' mean accuracy on R_eps, each source's clean accuracy
    rows = ["eps\tacc"] + [f"{e:g}\t{result['cells']['standard']['R'][n]['acc']:.6f}"
                           for e, n in zip(result["sweep_eps"], result["names"])]
    write_text(CURVES / "E10" / "standard_on_R.tsv", "\n".join(rows) + "\n")
    rows = ["eps\tacc"] + [f"{e:g}\t{result['sources'][n]['clean_acc']:.6f}" for e, n in zip(result["sweep_eps"], result["names"])]
    write_text(CURVES / "E10" / "source_clean.tsv", "\n".join(rows) + "\n")
    progress.finish()
    return {"sources": len(sweep)}
