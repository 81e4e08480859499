"""E16: learning from mislabelled data (Wallace). Ground truth: the planted pattern reads every natural image's true
class, so on the weak model's errors it agrees with the true class always and with the (wrong) label never."""

from __future__ import annotations

import json

import pytest

from advtui.catalog.data import DataParams, ModelParams
from advtui.catalog.params import MislabelledParams
from advtui.catalog.training import TrainConfig
from advtui.experiments.mislabelled import mislabelled_experiment
from advtui.files import write_json
from advtui.report.tables import collect, markdown

DATA = DataParams(train_size=600, test_size=200)
PARAMS = MislabelledParams(
    weak_size=100, weak=TrainConfig(epochs=1, batch_size=50, optimizer="adam", lr=2e-3, weight_decay=0.0),
    train=TrainConfig(epochs=2, batch_size=64, optimizer="adam", lr=2e-3, weight_decay=0.0),
)


@pytest.fixture(scope="module")
def result(tmp_path_factory) -> dict:
    folder = tmp_path_factory.mktemp("e16")
    return mislabelled_experiment(params=PARAMS, data=DATA, model=ModelParams(), seed=0, device="cpu",
                                  checkpoints=[folder / f"{k}.ckpt" for k in range(3)], progress=False)


def test_errors_carry_only_wrong_labels(result: dict) -> None:
    errors, noise = result["sets"]["errors"], result["sets"]["noise"]
    assert 0 < result["weak_train_acc"] < 1
    assert errors["n_train"] == round((1 - result["weak_train_acc"]) * DATA.train_size)
    assert noise["n_train"] == errors["n_train"]  # the control: as many images, labelled by the same model
    assert errors["true_nonrobust_agreement"] == 1.0  # the planted pattern names each image's true class...
    assert errors["nonrobust_agreement"] == 0.0  # ...which is never the label the weak model gave it
    for row in (errors, noise):
        assert 0 <= row["clean_acc"] <= 1 and 0 <= row["weak_agreement"] <= 1


def test_report_puts_wallace_beside_ours(result: dict, tmp_path) -> None:
    write_json(tmp_path / "data/metrics/E16/mislabelled.json", result)
    report = collect(tmp_path / "data")
    rows = {row["set"]: row for row in report["E16"]}
    assert rows["errors"]["published_clean_acc"] == 0.497 and rows["weak model"]["published_clean_acc"] == 0.63
    text = markdown(report)
    assert "## E16 learning from mislabelled data (Wallace), ours (paper)" in text
    assert f"| errors | {100 * rows['errors']['clean_acc']:.1f} (49.7) | {rows['errors']['n_train']} (18768) |" in text
    assert report["E14"] == [{"name": "leakage", "missing": True}]  # a stage not run: one row naming its file
    assert report["E18"] == [{"name": "frequency", "missing": True}, {"name": "world1", "missing": True}]
    json.dumps(report)
