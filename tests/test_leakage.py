"""E14: robust feature leakage (Goh). Ground truth: the planted shape of a relabelled image keeps its source's class,
so it agrees with D_rand's random labels at chance and with D_det's y+1 labels below chance, and an L2-0.5 attack
cannot add a shape (its norm is many times eps)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from advtui.catalog.params import ConstructParams, LeakageParams, RelabelConfig
from advtui.catalog.training import AdversarialConfig, AugmentConfig, TrainConfig
from advtui.catalog.data import DataParams
from advtui.experiments.common import natural_split, save_classifier
from advtui.experiments.construct import construct_dataset
from advtui.experiments.leakage import robust_feature_leakage
from advtui.models.registry import create_model
from advtui.paradigms.supervised import train_classifier
from advtui.runtime import seed_everything

DATA = DataParams(train_size=600, test_size=200)
CFG = ConstructParams(size=100, chunk=50, relabel=RelabelConfig(steps=20, step_size=0.1, eps=0.5))
PARAMS = LeakageParams(
    linear=TrainConfig(epochs=15, batch_size=64, optimizer="adam", lr=3e-3, weight_decay=0.0),
    adversarial=AdversarialConfig(norm="l2", eps=0.25, steps=3),
    restricted=TrainConfig(epochs=20, batch_size=50, optimizer="adam", lr=1e-2, weight_decay=0.0),
)


@pytest.fixture(scope="module")
def result(tmp_path_factory) -> dict:
    folder = tmp_path_factory.mktemp("leakage")
    seed_everything(0)
    model = create_model("small_cnn")
    train_classifier(model, natural_split(DATA, "train", 0),
                     TrainConfig(epochs=5, batch_size=64, lr=0.05, augment=AugmentConfig(noise_std=0.03)),
                     checkpoint=folder / "m.ckpt", progress=False)
    standard = save_classifier(model, folder / "standard.safetensors", paradigm="supervised", params={})
    sets = {}
    for name in ("D_rand", "D_det"):
        sets[name] = folder / f"{name}.safetensors"
        construct_dataset(name, cfg=CFG, data=DATA, seed=0, device="cpu", model_path=standard, out=sets[name])
    return robust_feature_leakage(sets=sets, params=PARAMS, construct=CFG, data=DATA, seed=0, device="cpu",
                                  checkpoints=[folder / f"{k}.ckpt" for k in range(3)], progress=False)


def test_shape_probe_reads_no_leakage_in_d_rand_and_the_old_class_in_d_det(result: dict) -> None:
    rand, det = result["sets"]["D_rand"], result["sets"]["D_det"]
    n = CFG.size
    # D_rand: random labels, so chance; 3 binomial standard errors of 100 images
    assert abs(rand["excess_over_chance"]) <= 3 * (0.1 * 0.9 / n) ** 0.5
    # D_det: the shape keeps the class the image came from, never y+1: below chance
    assert det["excess_over_chance"] < -0.05
    assert det["source_robust_agreement"] > 0.8
    for row in (rand, det):  # the attack drew no shape: the probe reads what it read on the start images
        assert abs(row["leakage"]) <= 0.02


def test_linear_lower_bound(result: dict) -> None:
    assert result["linear_clean_acc"] > 0.5  # the L2-robust linear model reads the classes on natural data
    for row in result["sets"].values():
        assert 0 <= row["linear_bound_acc"] <= 1
        assert row["linear_bound_excess"] == pytest.approx(row["linear_bound_acc"] - result["chance"])
    json.dumps(result)  # the metrics file is plain JSON
