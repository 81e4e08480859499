"""E4: train a fresh classifier on each constructed set (and on natural data) and measure it on natural data.

The question of Ilyas et al.: do the features a constructed set keeps *generalise* to the natural
test set (clean accuracy), and are they robust (PGD accuracy of the model trained on them)?
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

from advtui.data.ground_truth import probe_agreement
from advtui.experiments.common import image_size, natural_split, save_classifier
from advtui.catalog.data import DataParams, ModelParams
from advtui.catalog.names import TRAINING_SETS
from advtui.experiments.construct import load_constructed, planned_sources, source_images
from advtui.catalog.params import ConstructParams
from advtui.experiments.evaluation import evaluate_classifier
from advtui.catalog.params import AttackParams
from advtui.models.registry import create_model
from advtui.paradigms.supervised import train_classifier
from advtui.progress import ProgressFn
from advtui.runtime import pick_device, seed_everything
from advtui.catalog.params import RetrainParams

def retrain(
    dataset: str,
    *,
    dataset_path: Path | None,
    retrain_params: RetrainParams,
    construct: ConstructParams,
    data: DataParams,
    model: ModelParams,
    attack: AttackParams,
    seed: int,
    device: str,
    out: Path,
    checkpoint: Path,
    state_dir: Path | None = None,
    live_dir: Path | None = None,
    on_progress: ProgressFn | None = None,
    progress: bool = True,
) -> dict:
    """Train a classifier on ``dataset`` (a constructed artifact, or the natural subset the constructions
    start from) and return its E4 row: clean accuracy and robust accuracy on the natural test set, the
    attack settings, and on synthetic data the ground-truth probe agreement of natural data. Progress goes
    to ``on_progress``: the training epochs (phase "train"), then the attacks ("attack <threat>").

    Training resumes from ``checkpoint`` and the attacks from their files in ``state_dir`` (if given);
    the caller removes both once its last output is written, so a kill during the attacks keeps the
    finished training. A constructed set must be the one these params make (see ``construct.load_constructed``)."""
    if dataset not in TRAINING_SETS:
        raise ValueError(f"dataset: unknown training set {dataset!r}; use one of {', '.join(TRAINING_SETS)}")
    dev = pick_device(device)
    seed_everything(seed)
    if dataset == "natural":
        train = source_images(construct.size, data, seed)
    else:
        if dataset_path is None or not Path(dataset_path).exists():
            raise FileNotFoundError(
                f"{dataset_path}: constructed dataset missing; run `dvc repro construct@{dataset}` first"
            )
        train = load_constructed(dataset, dataset_path, sources=planned_sources(dataset, construct, data))
    test = natural_split(data, "test", seed)
    net = create_model(model.arch, num_classes=test.num_classes, img_size=image_size(test))
    recipe = retrain_params.recipe(dataset)
    fit_metrics = train_classifier(
        net, train, recipe, None, checkpoint=checkpoint, live_dir=live_dir, device=dev,
        seed=seed, eval_data=test, progress=progress, on_progress=on_progress,
    )
    row = evaluate_classifier(
        net, test, attack.threats(), batch_size=attack.batch_size, device=dev, seed=seed, on_progress=on_progress,
        state_dir=state_dir, speed=attack.speed,
    )
    row.update(dataset=dataset, n_train=len(train), train_acc=fit_metrics.get("train_acc"), recipe=asdict(recipe))
    if dataset == "natural" and data.source == "synthetic":
        row.update(probe_agreement(train.float_images(), train.labels, data.synthetic))
    save_classifier(
        net, out, paradigm="supervised", sources=[str(dataset_path)] if dataset_path else [],
        params={"seed": seed, "train": asdict(recipe), "model": asdict(model), "dataset": dataset},
        extra={"trained_on": dataset},
    )
    return row
