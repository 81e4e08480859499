"""Springer et al.'s Type B (entangled) against Type C (independent) non-robust features, as planted truth.

The entangled synthetic variant's non-robust part is a faint copy of the label's shape outline on the drawn shape;
the default variant's is a class tile over the whole image. A classifier trained on the non-robust part alone (no
shapes drawn) must read the classes of whole shapes (drawn without any planted part) on the entangled variant, since
what it learned is a component of them, and read them at chance on the default variant. This is what E9 measures
on R_eps: zero-robust classifiers above chance there mean Type B; the default variant must give chance once the leak
is controlled.

Shape colours are random (the generator's default), so colour carries no class: the model can only have learned
the outline. The pattern is made stronger than the pipeline's (2.0 instead of 0.5) so that a small CNN learns it
in a few seconds; its kind, not its norm, is what the test checks.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from advtui.catalog.data import SyntheticConfig
from advtui.catalog.training import TrainConfig
from advtui.data.imageset import ImageSet
from advtui.data.synthetic import make_synthetic
from advtui.models.registry import create_model
from advtui.paradigms.supervised import accuracy, train_classifier
from advtui.runtime import seed_everything


def _pattern_only_model(cfg: SyntheticConfig, n: int, epochs: int, checkpoint: Path):
    train = make_synthetic(replace(cfg, robust_amplitude=0.0, nonrobust_norm=2.0), n, seed=0)
    seed_everything(0)
    model = create_model("small_cnn")
    train_classifier(model, train, TrainConfig(epochs=epochs, batch_size=64, optimizer="adam", lr=2e-3, weight_decay=0.0),
                     checkpoint=checkpoint, progress=False)
    return model


def _shapes_only(cfg: SyntheticConfig) -> ImageSet:
    """Test images with no planted part, labelled by the shape they show."""
    shapes = make_synthetic(replace(cfg, nonrobust_norm=0.0), 300, seed=1, split="test")
    return ImageSet(shapes.images, shapes.extras["shape_class"], shapes.classes)


def test_a_model_of_the_entangled_pattern_alone_reads_shapes_and_of_the_tiles_does_not(tmp_path: Path) -> None:
    entangled = SyntheticConfig(variant="entangled", colour="random")
    model = _pattern_only_model(entangled, 1500, 6, tmp_path / "entangled.ckpt")
    assert accuracy(model, _shapes_only(entangled)) > 0.4  # chance 0.1; measured 0.53

    default = SyntheticConfig(variant="default", colour="random")
    model = _pattern_only_model(default, 600, 2, tmp_path / "default.ckpt")
    own = make_synthetic(replace(default, robust_amplitude=0.0, nonrobust_norm=2.0), 300, seed=1, split="test")
    assert accuracy(model, own) > 0.95  # it did learn the tiles
    assert accuracy(model, _shapes_only(default)) < 0.2  # and they say nothing about shapes (Type C); measured 0.11
