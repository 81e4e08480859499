"""E18, the World-1 control: a D_det classifier generalises to natural test data only because the planted pattern is
there too. Ground truth: on the same test images drawn without the pattern (World 1: the pattern a training-set
artefact) it keeps only D_det's robust features, which say y where its labels say y+1: at or below chance."""

from __future__ import annotations

import pytest

from advtui.catalog.data import DataParams
from advtui.catalog.params import ConstructParams, RelabelConfig
from advtui.catalog.training import AugmentConfig, TrainConfig
from advtui.experiments.common import natural_split, save_classifier
from advtui.experiments.construct import construct_dataset, load_constructed
from advtui.experiments.world1 import world1_control
from advtui.models.registry import create_model
from advtui.paradigms.supervised import train_classifier
from advtui.runtime import seed_everything

DATA = DataParams(train_size=600, test_size=200)
CFG = ConstructParams(size=300, chunk=150, relabel=RelabelConfig(steps=20, step_size=0.1, eps=0.5))


def _train(data, epochs: int, folder, name: str, noise: float = 0.0):
    seed_everything(0)
    model = create_model("small_cnn")
    train_classifier(model, data, TrainConfig(epochs=epochs, batch_size=64, optimizer="adam", lr=2e-3, weight_decay=0.0,
                                              augment=AugmentConfig(noise_std=noise)),
                     checkpoint=folder / f"{name}.ckpt", progress=False)
    return save_classifier(model, folder / f"{name}.safetensors", paradigm="supervised", params={})


def test_d_det_generalises_in_world_2_only(tmp_path) -> None:
    standard = _train(natural_split(DATA, "train", 0), 5, tmp_path, "standard", noise=0.03)
    construct_dataset("D_det", cfg=CFG, data=DATA, seed=0, device="cpu", model_path=standard, out=tmp_path / "D_det.st")
    det = _train(load_constructed("D_det", tmp_path / "D_det.st"), 15, tmp_path, "det")
    result = world1_control(classifiers={"D_det": [det]}, data=DATA, seed=0, device="cpu")
    row = result["sets"]["D_det"]
    assert row["world2_acc"] > 0.5  # the planted pattern is a feature of the test data too
    assert row["world1_acc"] <= result["chance"] + 3 * (0.1 * 0.9 / DATA.test_size) ** 0.5
    assert row["ci95"]["world1_acc"] is None  # one seed: no interval


def test_world1_needs_the_planted_pattern() -> None:
    with pytest.raises(ValueError, match="synthetic"):
        world1_control(classifiers={}, data=DataParams(source="cifar10"), seed=0, device="cpu")
