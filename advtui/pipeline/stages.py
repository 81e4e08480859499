"""The DVC stages: where each stage reads and writes, and the function that runs it from params.

``dvc.yaml`` calls ``advtui stage <family> <name>``; each family below maps to one experiment function.
Paths are fixed here so that dvc.yaml, the report and the TUI agree on them.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

from advtui.data.imageset import ImageSet
from advtui.files import write_json
from advtui.experiments.common import natural_split
from advtui.experiments.construct import construct_dataset, source_images
from advtui.catalog.names import recipe
from advtui.experiments.evaluation import evaluate_classifier
from advtui.experiments.gallery import build_gallery
from advtui.catalog.names import GALLERY_MODELS, GALLERY_SETS
from advtui.experiments.paradigm_runs import attack, pretrain, probe, training_set
from advtui.catalog.names import ROBUST_CL, parse_run_name
from advtui.catalog.params import paradigm_run
from advtui.experiments.retrain import retrain
from advtui.catalog.names import TRAINING_SETS
from advtui.experiments.source_models import train_source
from advtui.catalog.names import SOURCE_MODELS
from advtui.catalog.params import Params
from advtui.pipeline.progress import StageProgress
from advtui.runtime import pick_device
from advtui.catalog import paths
from advtui.catalog.paths import dataset_path, encoder_path, live_dir, metrics_path, model_path, probe_path, retrained_path
from advtui.catalog.stages import stage_of

def _require(path: Path) -> Path:
    """``path`` if it exists, else a one-line error naming the stage that makes it."""
    if not path.exists():
        stage = stage_of(path)
        how = f"run `dvc repro {stage}`" if stage else "build it first"
        raise FileNotFoundError(f"{path}: missing upstream artifact; {how}")
    return path


def run_source(params: Params, name: str) -> dict:
    """E1: train source model ``name`` and measure its clean and robust test accuracy."""
    if name not in SOURCE_MODELS:
        raise ValueError(f"source: unknown source model {name!r}; use one of {', '.join(SOURCE_MODELS)}")
    progress = StageProgress(f"source@{name}")
    model, fit = train_source(
        name, sources=params.sources, data=params.data, model=params.model, seed=params.seed, device=params.device,
        out=model_path(name), live_dir=live_dir("E1", name), on_progress=progress.update,
    )
    test = natural_split(params.data, "test", params.seed)
    row = evaluate_classifier(
        model, test, params.attack.threats(), batch_size=params.attack.batch_size, device=pick_device(params.device),
        seed=params.seed, on_progress=progress.update,
    )
    row.update(model=name, adversarial=asdict(params.sources.model(name).adversarial), train_acc=fit.get("train_acc"))
    write_json(metrics_path("E1", name), row)
    progress.finish(clean_acc=row["clean_acc"])
    return row


def run_construct(params: Params, name: str) -> dict:
    """E2/E3: build constructed dataset ``name`` from its source model."""
    rec = recipe(name)
    source = _require(model_path(rec.model))
    progress = StageProgress(f"construct@{name}")
    metrics = construct_dataset(
        name, cfg=params.construct, data=params.data, seed=params.seed, device=params.device,
        model_path=source, out=dataset_path(name),
        on_progress=progress.update,
    )
    write_json(metrics_path("construct", name), metrics)
    progress.finish(n=metrics["n"])
    return metrics


def run_retrain(params: Params, name: str) -> dict:
    """E4: train a fresh classifier on training set ``name`` and measure it on natural test data."""
    if name not in TRAINING_SETS:
        raise ValueError(f"retrain: unknown training set {name!r}; use one of {', '.join(TRAINING_SETS)}")
    path = None if name == "natural" else _require(dataset_path(name))
    progress = StageProgress(f"retrain@{name}")
    row = retrain(
        name, dataset_path=path, retrain_params=params.retrain, construct=params.construct, data=params.data,
        model=params.model, attack=params.attack, seed=params.seed, device=params.device,
        out=retrained_path(name), live_dir=live_dir("E4", name), on_progress=progress.update,
    )
    write_json(metrics_path("E4", name), row)
    progress.finish(clean_acc=row["clean_acc"])
    return row


def run_gallery(params: Params, name: str) -> dict:
    """The gallery: ``gallery.n`` natural images beside their constructed versions, with predictions."""
    if name != "main":
        raise ValueError(f"gallery: unknown name {name!r}; use main")
    datasets = {s: _require(dataset_path(s)) for s in GALLERY_SETS}
    models = {m: _require(retrained_path(m)) if m == "natural" else _require(model_path(m))
              for m in GALLERY_MODELS}
    natural = source_images(params.construct.size, params.data, params.seed)
    return build_gallery(n=params.gallery.n, natural=natural, datasets=datasets, models=models, out=paths.GALLERY,
                         device=params.device)
def _paradigm_training_set(params: Params, dataset: str) -> ImageSet:
    path = None if dataset == "natural" else _require(dataset_path(dataset))
    return training_set(dataset, dataset_path=path, construct=params.construct, data=params.data, seed=params.seed)


def run_pretrain(params: Params, name: str) -> dict:
    """E5/E6: pretrain one paradigm on one training set (``name`` 'CL-D_R'), or the robust CL source ('robust_cl').

    The robust CL source (adversarial SimCLR on natural images) is stored beside the E1 source models,
    since D_R_CL is constructed from it as D_R is from robust_l2.
    """
    if name == ROBUST_CL:
        paradigm, dataset, out, logs = "CL", "natural", model_path(ROBUST_CL), live_dir("E6", ROBUST_CL)
    else:
        paradigm, dataset = parse_run_name(name)
        out, logs = encoder_path(name), live_dir("E5", name)
    run = paradigm_run(params.paradigms, name if name == ROBUST_CL else paradigm)
    train = _paradigm_training_set(params, dataset)
    progress = StageProgress(f"pretrain@{name}")
    sources = [] if dataset == "natural" else [str(dataset_path(dataset))]
    row = pretrain(paradigm, run, train, out=out, live_dir=logs, device=params.device, seed=params.seed,
                   sources=sources, on_progress=progress.update)
    row.update(dataset=dataset, run=name)
    write_json(metrics_path("pretrain", name), row)
    progress.finish(train_loss=row.get("train_loss"))
    return row


def run_probe(params: Params, name: str) -> dict:
    """E5: a linear probe on run ``name``'s encoder, trained on its training set: U on the natural test set."""
    paradigm, dataset = parse_run_name(name)
    encoder = _require(encoder_path(name))
    progress = StageProgress(f"probe@{name}")
    row = probe(
        encoder, _paradigm_training_set(params, dataset), natural_split(params.data, "test", params.seed),
        params.probe, out=probe_path(name), live_dir=live_dir("E5-probe", name), device=params.device,
        seed=params.seed, on_progress=progress.update,
    )
    row.update(paradigm=paradigm, dataset=dataset)
    write_json(metrics_path("E5", name), row)
    progress.finish(clean_acc=row["clean_acc"])
    return row


def run_attack(params: Params, name: str) -> dict:
    """E6: PGD and AutoAttack on run ``name``'s encoder + probe: R on the natural test set."""
    paradigm, dataset = parse_run_name(name)
    head = _require(probe_path(name))
    progress = StageProgress(f"attack@{name}")
    row = attack(
        paradigm, head, natural_split(params.data, "test", params.seed), params.e6, device=params.device,
        seed=params.seed, on_progress=progress.update,
    )
    row.update(paradigm=paradigm, dataset=dataset)
    write_json(metrics_path("E6", name), row)
    progress.finish(clean_acc=row["clean_acc"])
    return row


#: The function behind each ``advtui stage RUNNER NAME``; the names each accepts are the catalogue's
#: (:func:`advtui.catalog.stages.runner_names`).
STAGES = {
    "source": run_source,
    "construct": run_construct,
    "retrain": run_retrain,
    "gallery": run_gallery,
    "pretrain": run_pretrain,
    "probe": run_probe,
    "attack": run_attack,
}
