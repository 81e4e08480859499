"""The DVC stages: where each stage reads and writes, and the function that runs it from params.

``dvc.yaml`` calls ``advtui stage <family> <name>``; each family below maps to one experiment function.
Paths are fixed here so that dvc.yaml, the report and the TUI agree on them.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

from torch import nn

from advtui.data.imageset import ImageSet
from advtui.files import write_json
from advtui.experiments.common import natural_split
from advtui.experiments.construct import RECIPES, construct_dataset, recipe, source_images
from advtui.experiments.evaluation import evaluate_classifier
from advtui.experiments.gallery import GALLERY_MODELS, GALLERY_SETS, build_gallery
from advtui.experiments.paradigm_runs import (
    PARADIGM_SETS, PARADIGMS, ROBUST_CL, attack, attacked_runs, paradigm_run, parse_run_name, pretrain, probe,
    run_name, training_set,
)
from advtui.experiments.retrain import TRAINING_SETS, retrain
from advtui.experiments.sources import SOURCE_MODELS, train_source
from advtui.paradigms.trainer import EpochHook
from advtui.pipeline.params import Params
from advtui.pipeline.progress import StageProgress
from advtui.runtime import pick_device

DATA = Path("data")


def model_path(name: str) -> Path:
    """Weights of E1 source model ``name``."""
    return DATA / "models" / f"{name}.safetensors"


def dataset_path(name: str) -> Path:
    """A constructed dataset (E2, E3)."""
    return DATA / "datasets" / f"{name}.safetensors"


def retrained_path(name: str) -> Path:
    """Weights of the E4 classifier trained on training set ``name``."""
    return DATA / "retrained" / f"{name}.safetensors"


def gallery_path() -> Path:
    """The gallery the terminal app draws (advtui.appcore.galleryfile reads it at the same place)."""
    return DATA / "gallery" / "gallery.safetensors"


def metrics_path(experiment: str, name: str) -> Path:
    """Metrics JSON of one stage (``experiment``: E1, construct, E4)."""
    return DATA / "metrics" / experiment / f"{name}.json"


def live_dir(experiment: str, name: str) -> Path:
    """DVCLive folder of a training stage."""
    return DATA / "live" / experiment / name


def encoder_path(name: str) -> Path:
    """A pretrained paradigm module of E5/E6 (``name``: paradigm-set, e.g. 'CL-D_R')."""
    return DATA / "encoders" / f"{name}.safetensors"


def probe_path(name: str) -> Path:
    """The linear head of E5/E6 run ``name`` (it names its encoder)."""
    return DATA / "probes" / f"{name}.safetensors"


def _require(path: Path, stage: str) -> Path:
    if not path.exists():
        raise FileNotFoundError(f"{path}: missing upstream artifact; run `dvc repro {stage}` (or `advtui stage {stage.replace('@', ' ')}`)")
    return path


def run_source(params: Params, name: str) -> dict:
    """E1: train source model ``name`` and measure its clean and robust test accuracy."""
    if name not in SOURCE_MODELS:
        raise ValueError(f"source: unknown source model {name!r}; use one of {', '.join(SOURCE_MODELS)}")
    progress = StageProgress(f"source@{name}")
    progress.update("train", 0, params.sources.train.epochs, force=True)
    model, fit = train_source(
        name, sources=params.sources, data=params.data, model=params.model, seed=params.seed, device=params.device,
        out=model_path(name), live_dir=live_dir("E1", name),
    )
    test = natural_split(params.data, "test", params.seed)
    row = evaluate_classifier(
        model, test, params.attack.threats(), batch_size=params.attack.batch_size, device=pick_device(params.device),
        seed=params.seed, on_progress=lambda t, d, n, r: progress.update(f"attack {t}", d, n, robust_acc=r),
    )
    row.update(model=name, adversarial=asdict(params.sources.model(name).adversarial), train_acc=fit.get("train_acc"))
    write_json(metrics_path("E1", name), row)
    progress.finish(clean_acc=row["clean_acc"])
    return row


def run_construct(params: Params, name: str) -> dict:
    """E2/E3: build constructed dataset ``name`` from its source model."""
    rec = recipe(name)
    source = _require(model_path(rec.model), f"source@{rec.model}")
    progress = StageProgress(f"construct@{name}")
    metrics = construct_dataset(
        name, cfg=params.construct, data=params.data, seed=params.seed, device=params.device,
        model_path=source, out=dataset_path(name),
        on_progress=lambda d, n, info: progress.update("construct", d, n, force=True, **info),
    )
    write_json(metrics_path("construct", name), metrics)
    progress.finish(n=metrics["n"])
    return metrics


def run_retrain(params: Params, name: str) -> dict:
    """E4: train a fresh classifier on training set ``name`` and measure it on natural test data."""
    if name not in TRAINING_SETS:
        raise ValueError(f"retrain: unknown training set {name!r}; use one of {', '.join(TRAINING_SETS)}")
    path = None if name == "natural" else _require(dataset_path(name), f"construct@{name}")
    progress = StageProgress(f"retrain@{name}")
    row = retrain(
        name, dataset_path=path, retrain_params=params.retrain, construct=params.construct, data=params.data,
        model=params.model, attack=params.attack, seed=params.seed, device=params.device,
        out=retrained_path(name), live_dir=live_dir("E4", name),
        on_progress=lambda t, d, n, r: progress.update(f"attack {t}", d, n, robust_acc=r),
    )
    write_json(metrics_path("E4", name), row)
    progress.finish(clean_acc=row["clean_acc"])
    return row


def run_gallery(params: Params, name: str) -> dict:
    """The gallery: ``gallery.n`` natural images beside their constructed versions, with predictions."""
    if name != "main":
        raise ValueError(f"gallery: unknown name {name!r}; use main")
    datasets = {s: _require(dataset_path(s), f"construct@{s}") for s in GALLERY_SETS}
    models = {m: _require(retrained_path(m), "retrain@natural") if m == "natural" else _require(model_path(m), f"source@{m}")
              for m in GALLERY_MODELS}
    natural = source_images(params.construct.size, params.data, params.seed)
    return build_gallery(n=params.gallery.n, natural=natural, datasets=datasets, models=models, out=gallery_path(),
                         device=params.device)
def _paradigm_training_set(params: Params, dataset: str) -> ImageSet:
    path = None if dataset == "natural" else _require(dataset_path(dataset), f"construct@{dataset}")
    return training_set(dataset, dataset_path=path, construct=params.construct, data=params.data, seed=params.seed)


def _epochs(progress: StageProgress, phase: str, epochs: int) -> EpochHook:
    """A trainer epoch hook that reports epochs done to the stage's progress file (and logs nothing)."""

    def hook(module: nn.Module, epoch: int) -> None:
        progress.update(phase, epoch, epochs, force=True)

    return hook


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
    progress.update("pretrain", 0, run.train.epochs, force=True)
    sources = [] if dataset == "natural" else [str(dataset_path(dataset))]
    row = pretrain(paradigm, run, train, out=out, live_dir=logs, device=params.device, seed=params.seed,
                   sources=sources, on_epoch=_epochs(progress, "pretrain", run.train.epochs))
    row.update(dataset=dataset, run=name)
    write_json(metrics_path("pretrain", name), row)
    progress.finish(train_loss=row.get("train_loss"))
    return row


def run_probe(params: Params, name: str) -> dict:
    """E5: a linear probe on run ``name``'s encoder, trained on its training set: U on the natural test set."""
    paradigm, dataset = parse_run_name(name)
    encoder = _require(encoder_path(name), f"pretrain@{name}")
    progress = StageProgress(f"probe@{name}")
    progress.update("probe", 0, params.probe.train.epochs, force=True)
    row = probe(
        encoder, _paradigm_training_set(params, dataset), natural_split(params.data, "test", params.seed),
        params.probe, out=probe_path(name), live_dir=live_dir("E5-probe", name), device=params.device,
        seed=params.seed, on_epoch=_epochs(progress, "probe", params.probe.train.epochs),
    )
    row.update(paradigm=paradigm, dataset=dataset)
    write_json(metrics_path("E5", name), row)
    progress.finish(clean_acc=row["clean_acc"])
    return row


def run_attack(params: Params, name: str) -> dict:
    """E6: PGD and AutoAttack on run ``name``'s encoder + probe: R on the natural test set."""
    paradigm, dataset = parse_run_name(name)
    head = _require(probe_path(name), f"probe@{name}")
    progress = StageProgress(f"attack@{name}")
    row = attack(
        paradigm, head, natural_split(params.data, "test", params.seed), params.e6, device=params.device,
        seed=params.seed, on_progress=lambda t, d, n, r: progress.update(f"attack {t}", d, n, robust_acc=r),
    )
    row.update(paradigm=paradigm, dataset=dataset)
    write_json(metrics_path("E6", name), row)
    progress.finish(clean_acc=row["clean_acc"])
    return row


STAGES = {
    "source": (run_source, SOURCE_MODELS),
    "construct": (run_construct, tuple(RECIPES)),
    "retrain": (run_retrain, TRAINING_SETS),
    "gallery": (run_gallery, ("main",)),
    "pretrain": (run_pretrain, (*(run_name(p, d) for p in PARADIGMS for d in PARADIGM_SETS), ROBUST_CL)),
    "probe": (run_probe, tuple(run_name(p, d) for p in PARADIGMS for d in PARADIGM_SETS)),
    "attack": (run_attack, tuple(attacked_runs())),
}
