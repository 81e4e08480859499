"""E1: train the standard and adversarially trained source models, and measure them."""

from __future__ import annotations

import dataclasses
from dataclasses import asdict
from pathlib import Path

from advtui.experiments.common import image_size, monitor_split, natural_split, save_classifier
from advtui.catalog.data import DataParams, ModelParams
from advtui.models.registry import Classifier, create_model
from advtui.paradigms.supervised import train_classifier
from advtui.paradigms.trainer import input_precision
from advtui import distributed
from advtui.catalog.training import TrainConfig
from advtui.progress import ProgressFn
from advtui.runtime import pick_device, seed_everything
from advtui.catalog.params import SourceModel
from advtui.catalog.params import SourceModels


def source_recipe(train: TrainConfig, source: SourceModel) -> TrainConfig:
    """The training recipe of one source model: the shared recipe with the model's input noise."""
    return dataclasses.replace(train, augment=dataclasses.replace(train.augment, noise_std=source.noise_std))


def train_source(
    name: str,
    *,
    sources: SourceModels,
    data: DataParams,
    model: ModelParams,
    seed: int,
    device: str,
    out: Path,
    checkpoint: Path,
    live_dir: Path | None = None,
    progress: bool = True,
    on_progress: ProgressFn | None = None,
) -> tuple[Classifier, dict]:
    """Train source model ``name`` (standard, robust_l2, robust_linf) and store it at ``out``.

    Resumes from ``checkpoint`` when an earlier run was interrupted (see ``fit``); the caller removes it
    once its last output is written. ``on_progress`` gets the epochs (phase "train"). Returns the model
    and its training metrics. Under torchrun every rank trains it, and rank 0 alone stores it.
    """
    source = sources.model(name)
    seed_everything(seed)
    train = natural_split(data, "train", seed)
    test = natural_split(data, "test", seed)
    net = create_model(model.arch, num_classes=train.num_classes, img_size=image_size(train))
    dev = pick_device(device)
    # what runs, recorded as such: adversarial training's attacks never run in bf16
    recipe = input_precision(source_recipe(sources.train, source), train, attacks_inputs=source.adversarial.enabled,
                             device=dev)
    metrics = train_classifier(
        net, train, recipe, source.adversarial,
        checkpoint=checkpoint, live_dir=live_dir, device=dev, seed=seed, eval_data=monitor_split(test, seed),
        progress=progress, on_progress=on_progress,
    )
    paradigm = "adversarial" if source.adversarial.enabled else "supervised"
    used = {"seed": seed, "data": asdict(data), "model": asdict(model), "train": asdict(recipe),
            "adversarial": asdict(source.adversarial)}
    if distributed.is_main():  # under torchrun the ranks trained together; rank 0 writes
        save_classifier(net, out, paradigm=paradigm, params=used, extra={"source_model": name, "metrics": metrics})
    return net.eval(), metrics
