"""E18, the frequency control: trained on high-passed images only. Ground truth: the high-pass keeps the planted
pattern whole, so the model reads it, and loses most of its accuracy on test images drawn without the pattern."""

from __future__ import annotations

import pytest

from advtui.catalog.data import DataParams, ModelParams
from advtui.catalog.params import ConstructParams, FrequencyParams
from advtui.catalog.training import TrainConfig
from advtui.experiments.common import natural_split
from advtui.experiments.frequency import frequency_control, high_passed

DATA = DataParams(train_size=600, test_size=200)
PARAMS = FrequencyParams(train=TrainConfig(epochs=4, batch_size=64, optimizer="adam", lr=2e-3, weight_decay=0.0))


@pytest.fixture(scope="module")
def result(tmp_path_factory) -> dict:
    return frequency_control(params=PARAMS, construct=ConstructParams(size=400), data=DATA, model=ModelParams(),
                             seed=0, device="cpu", checkpoint=tmp_path_factory.mktemp("e18") / "m.ckpt", progress=False)


def test_high_pass_keeps_the_pattern_and_the_model_reads_it(result: dict) -> None:
    assert result["train_probes"]["nonrobust_agreement"] == 1.0  # the planted pattern survives the filter whole
    acc = {name: row["clean_acc"] for name, row in result["sets"].items()}
    assert acc["high_passed"] > 0.8
    assert acc["pattern_free"] < acc["high_passed"] - 0.3  # without the pattern most of what it learned is gone


def test_high_passed_images_are_valid_inputs() -> None:
    images = high_passed(natural_split(DATA, "test", 0), sigma=1.0)
    assert images.images.min() >= 0 and images.images.max() <= 1
    assert abs(float(images.images.mean()) - 0.5) < 0.01  # the smooth content (background, shape fill) is gone
