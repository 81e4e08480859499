"""E15, bugs-only examples (Nakkiran): a targeted attack on the source that keeps independently trained reference
models on the true label. Ground truth: the references read the planted pattern, so a plain targeted attack (D_det's)
adds the target's pattern and fools them too, while the reference-consistent one must add less of it (with these
weak references, so little that the probe rarely reads it)."""

from __future__ import annotations

import pytest
import torch

from advtui.attacks.pgd import pgd_attack
from advtui.catalog.data import DataParams, ModelParams
from advtui.catalog.params import BugsOnlyParams, RelabelConfig
from advtui.catalog.training import AugmentConfig, TrainConfig
from advtui.data.ground_truth import nonrobust_probe
from advtui.experiments.bugs_only import bugs_only_experiment, bugs_only_set
from advtui.experiments.common import natural_split
from advtui.models.registry import create_model
from advtui.paradigms.supervised import train_classifier
from advtui.runtime import seed_everything

DATA = DataParams(train_size=600, test_size=200)
CPU = torch.device("cpu")
PARAMS = BugsOnlyParams(size=100, references=2, attack=RelabelConfig(steps=20, step_size=0.1, eps=0.5),
                        train=TrainConfig(epochs=2, batch_size=50, optimizer="adam", lr=2e-3, weight_decay=0.0))


def _train(seed: int, folder, noise: float = 0.0):
    seed_everything(seed)
    model = create_model("small_cnn")
    train_classifier(model, natural_split(DATA, "train", 0), TrainConfig(
        epochs=4, batch_size=64, optimizer="adam", lr=2e-3, weight_decay=0.0, augment=AugmentConfig(noise_std=noise)),
        checkpoint=folder / f"{seed}.ckpt", seed=seed, progress=False)
    return model.eval()


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    folder = tmp_path_factory.mktemp("e15")
    return _train(0, folder, noise=0.03), [_train(1, folder), _train(2, folder)], _train(3, folder)


def test_reference_consistent_attack_keeps_the_references(models) -> None:
    source, references, _ = models
    start = natural_split(DATA, "train", 0).select(PARAMS.size, 0)
    bugs, success = bugs_only_set(source, references, start, PARAMS, device=CPU)
    assert torch.equal(bugs.labels, (start.labels + 1) % 10)
    assert success.float().mean() > 0.3  # the source can be fooled without fooling the references
    with torch.no_grad():
        for reference in references:  # where the attack succeeded, every reference still says the true class
            assert (reference(bugs.float_images()[success]).argmax(1) == start.labels[success]).all()
        assert (source(bugs.float_images()[success]).argmax(1) == bugs.labels[success]).all()
    # D_det's plain targeted attack on the same images adds the target's planted pattern and fools the references
    x = start.float_images()
    plain = pgd_attack(source, x, bugs.labels, norm="l2", eps=0.5, step_size=0.1, steps=20, targeted=True,
                       random_start=False)
    with torch.no_grad():
        plain_fooled = (references[0](plain).argmax(1) == bugs.labels).float().mean()
        bugs_fooled = (references[0](bugs.float_images()).argmax(1) == bugs.labels).float().mean()
    plain_pattern = (nonrobust_probe(plain - x, DATA.synthetic) == bugs.labels).float().mean()
    bugs_pattern = (nonrobust_probe(bugs.float_images() - x, DATA.synthetic) == bugs.labels).float().mean()
    assert plain_pattern > 0.8 and bugs_pattern < 0.3  # measured: 100% / 8% (chance 10%)
    assert plain_fooled > 0.2 and bugs_fooled < 0.05  # measured: 29% / 0%


def test_experiment_reports_transfer_and_learnability(models, tmp_path) -> None:
    source, references, held_out = models
    start = natural_split(DATA, "train", 0).select(PARAMS.size, 0)
    result = bugs_only_experiment(
        source=source, references=references, held_out=held_out, start=start, test=natural_split(DATA, "test", 0),
        params=PARAMS, data=DATA, model=ModelParams(), seed=0, device=CPU, checkpoint=tmp_path / "fresh.ckpt",
        progress=False)
    assert result["n"] == PARAMS.size and result["references"] == 2
    assert result["reference_hit"] < 0.1 and result["source_hit"] > result["reference_hit"]
    assert 0 <= result["transfer_success"] < 0.3  # the held-out natural model is barely fooled either
    assert 0 <= result["clean_acc"] <= 1 and 0 <= result["pattern_added"] <= 1
    assert result["shape_kept"] == 1.0  # an L2-0.5 attack cannot redraw a shape
    assert result["pattern_projection"] < 0.5  # less than the whole planted pattern (norm 0.5)


def test_params_need_a_reference() -> None:
    with pytest.raises(ValueError, match="references"):
        BugsOnlyParams(references=0)
