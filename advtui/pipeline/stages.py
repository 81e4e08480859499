"""The DVC stages: where each stage reads and writes, and the function that runs it from params.

``dvc.yaml`` calls ``advtui stage <family> <name>``; each family below maps to one experiment function.
Paths are fixed here so that dvc.yaml, the report and the TUI agree on them.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

from advtui.data.store import write_json
from advtui.experiments.common import natural_split
from advtui.experiments.construct import RECIPES, construct_dataset, recipe, source_images
from advtui.experiments.evaluation import evaluate_classifier
from advtui.experiments.gallery import GALLERY_MODELS, GALLERY_SETS, build_gallery
from advtui.experiments.retrain import TRAINING_SETS, retrain
from advtui.experiments.sources import SOURCE_MODELS, train_source
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
    """The gallery the terminal app draws (advtui.tui.galleryfile reads it at the same place)."""
    return DATA / "gallery" / "gallery.safetensors"


def metrics_path(experiment: str, name: str) -> Path:
    """Metrics JSON of one stage (``experiment``: E1, construct, E4)."""
    return DATA / "metrics" / experiment / f"{name}.json"


def live_dir(experiment: str, name: str) -> Path:
    """DVCLive folder of a training stage."""
    return DATA / "live" / experiment / name


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


STAGES = {
    "source": (run_source, SOURCE_MODELS),
    "construct": (run_construct, tuple(RECIPES)),
    "retrain": (run_retrain, TRAINING_SETS),
    "gallery": (run_gallery, ("main",)),
}
