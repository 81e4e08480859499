"""E1: train the standard and adversarially trained source models, and measure them."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from advtui.experiments.common import image_size, natural_split, save_classifier
from advtui.models.registry import Classifier, create_model
from advtui.paradigms.supervised import train_classifier
from advtui.paradigms.trainer import TrainConfig
from advtui.pipeline.params import Params, SourceModel, params_dict
from advtui.runtime import pick_device, seed_everything


def source_recipe(train: TrainConfig, source: SourceModel) -> TrainConfig:
    """The training recipe of one source model: the shared recipe with the model's input noise."""
    return dataclasses.replace(train, augment=dataclasses.replace(train.augment, noise_std=source.noise_std))


def train_source(
    params: Params,
    name: str,
    *,
    out: Path,
    live_dir: Path | None = None,
    progress: bool = True,
) -> tuple[Classifier, dict]:
    """Train source model ``name`` (standard, robust_l2, robust_linf) and store it at ``out``.

    Resumes from ``out``'s checkpoint (``<out>.ckpt``) when an earlier run was interrupted; the
    checkpoint is removed once the weights are stored. Returns the model and its training metrics.
    """
    source = params.sources.model(name)
    device = pick_device(params.device)
    seed_everything(params.seed)
    train = natural_split(params.data, "train", params.seed)
    test = natural_split(params.data, "test", params.seed)
    model = create_model(params.model.arch, num_classes=train.num_classes, img_size=image_size(train))
    recipe = source_recipe(params.sources.train, source)
    checkpoint = Path(out).with_suffix(".ckpt")
    metrics = train_classifier(
        model, train, recipe, source.adversarial,
        checkpoint=checkpoint, live_dir=live_dir, device=device, seed=params.seed, eval_data=test,
        progress=progress,
    )
    paradigm = "adversarial" if source.adversarial.enabled else "supervised"
    used = {
        "seed": params.seed, "data": params_dict(params.data), "model": params_dict(params.model),
        "train": params_dict(recipe), "adversarial": params_dict(source.adversarial),
    }
    save_classifier(model, out, paradigm=paradigm, params=used, extra={"source_model": name, "metrics": metrics})
    checkpoint.unlink(missing_ok=True)
    return model.eval(), metrics
