"""E1: train the standard and adversarially trained source models, and measure them."""

from __future__ import annotations

import dataclasses
from dataclasses import asdict, dataclass, field
from pathlib import Path

from advtui.experiments.common import DataParams, ModelParams, image_size, natural_split, save_classifier
from advtui.models.registry import Classifier, create_model
from advtui.paradigms.supervised import AdversarialConfig, train_classifier
from advtui.paradigms.trainer import TrainConfig
from advtui.progress import ProgressFn
from advtui.runtime import pick_device, seed_everything


@dataclass(frozen=True)
class SourceModel:
    """One E1 source model: its adversarial training (eps 0 = standard) and its Gaussian input noise.

    ``noise_std`` overrides ``sources.train.augment.noise_std``: DESIGN section 7 measured that a little
    noise (0.03) while training the *standard* model is what makes D_det generalise.
    """

    adversarial: AdversarialConfig = field(default_factory=AdversarialConfig)
    noise_std: float = 0.0

    def __post_init__(self) -> None:
        if self.noise_std < 0:
            raise ValueError(f"noise_std: must be >= 0, got {self.noise_std}; use 0 for no noise")


SOURCE_MODELS = ("standard", "robust_l2", "robust_linf")


@dataclass(frozen=True)
class SourceModels:
    """E1: the standard and the adversarially trained source models, all with the ``train`` recipe."""

    train: TrainConfig = field(default_factory=TrainConfig)
    standard: SourceModel = field(default_factory=lambda: SourceModel(noise_std=0.03))
    robust_l2: SourceModel = field(
        default_factory=lambda: SourceModel(AdversarialConfig(norm="l2", eps=1.0, steps=7, step_size=0.25))
    )
    robust_linf: SourceModel = field(
        default_factory=lambda: SourceModel(AdversarialConfig(norm="linf", eps=8 / 255, steps=7, step_size=2 / 255))
    )

    def model(self, name: str) -> SourceModel:
        """The source model called ``name`` (one of ``SOURCE_MODELS``)."""
        if name not in SOURCE_MODELS:
            raise ValueError(f"source model: unknown name {name!r}; use one of {', '.join(SOURCE_MODELS)}")
        return getattr(self, name)


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
    live_dir: Path | None = None,
    progress: bool = True,
    on_progress: ProgressFn | None = None,
) -> tuple[Classifier, dict]:
    """Train source model ``name`` (standard, robust_l2, robust_linf) and store it at ``out``.

    Resumes from ``out``'s checkpoint (``<out>.ckpt``) when an earlier run was interrupted; the
    checkpoint is removed once the weights are stored. ``on_progress`` gets the epochs (phase "train").
    Returns the model and its training metrics.
    """
    source = sources.model(name)
    seed_everything(seed)
    train = natural_split(data, "train", seed)
    test = natural_split(data, "test", seed)
    net = create_model(model.arch, num_classes=train.num_classes, img_size=image_size(train))
    recipe = source_recipe(sources.train, source)
    checkpoint = Path(out).with_suffix(".ckpt")
    metrics = train_classifier(
        net, train, recipe, source.adversarial,
        checkpoint=checkpoint, live_dir=live_dir, device=pick_device(device), seed=seed, eval_data=test,
        progress=progress, on_progress=on_progress,
    )
    paradigm = "adversarial" if source.adversarial.enabled else "supervised"
    used = {"seed": seed, "data": asdict(data), "model": asdict(model), "train": asdict(recipe),
            "adversarial": asdict(source.adversarial)}
    save_classifier(net, out, paradigm=paradigm, params=used, extra={"source_model": name, "metrics": metrics})
    checkpoint.unlink(missing_ok=True)
    return net.eval(), metrics
