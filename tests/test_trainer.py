"""The one trainer loop: learning, PGD adversarial training, resume after an interrupt, DVCLive logs, augmentation."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch

import advtui.paradigms.trainer as trainer_module
from advtui.attacks.pgd import pgd_attack
from advtui.data.synthetic import make_synthetic
from advtui.catalog.data import SyntheticConfig
from advtui.data.imageset import ImageSet
from advtui.files import STALE
from advtui.models import create_model
from advtui.paradigms.augment import augment, random_crop
from advtui.catalog.training import AugmentConfig
from advtui.paradigms.supervised import accuracy, supervised_step, train_classifier
from advtui.catalog.training import AdversarialConfig
from advtui.paradigms.trainer import StepOut, fit, holdout_split, input_precision, lr_factor
from advtui.catalog.training import EarlyStopConfig, TrainConfig
from advtui.catalog.params import load_params, profile_path
from advtui.runtime import seed_everything

GREY = dict(mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25))


@pytest.fixture(autouse=True)
def _outside_any_repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # DVCLive runs `dvc init` in the enclosing git repo when it finds no DVC repo; keep tests out of ours.
    monkeypatch.chdir(tmp_path)


def _robust_accuracy(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float) -> float:
    generator = torch.Generator().manual_seed(0)
    x_adv = pgd_attack(model, x, y, norm="l2", eps=eps, step_size=eps / 4, steps=10, generator=generator)
    model.eval()
    with torch.no_grad():
        return (model(x_adv).argmax(1) == y).float().mean().item()


def _without_timing(metrics: dict[str, float]) -> dict[str, float]:
    return {k: v for k, v in metrics.items() if k != "images_per_s"}


def _rows(tsv: Path) -> list[dict[str, str]]:
    with open(tsv, newline="") as fh:
        return list(csv.DictReader(fh, delimiter="\t"))


# --- learning --------------------------------------------------------------------------------------------


def test_standard_training_learns_and_pgd_breaks_it(tmp_path: Path) -> None:
    """DESIGN 7 recipe on the planted-feature data: high clean accuracy, but L2 PGD at eps 0.5 (the planted
    non-robust pattern's norm) breaks the standard model."""
    cfg = SyntheticConfig()
    train, test = make_synthetic(cfg, 2000, seed=1, split="train"), make_synthetic(cfg, 500, seed=2, split="test")
    seed_everything(0)
    model = create_model("small_cnn", **GREY)
    metrics = train_classifier(
        model, train, TrainConfig(epochs=3, batch_size=64, lr=0.05, augment=AugmentConfig(noise_std=0.03)),
        checkpoint=tmp_path / "std.pt", eval_data=test, progress=False,
    )
    assert metrics["test_acc"] >= 0.95 and metrics["test_acc"] == accuracy(model, test)
    assert _robust_accuracy(model, test.float_images()[:200], test.labels[:200], eps=0.5) < 0.3


def test_adversarial_training_resists_the_attack_that_breaks_standard_training(tmp_path: Path) -> None:
    """Issue test: trained at L2 eps about the non-robust pattern's norm (0.5), the model still classifies
    PGD-0.5 examples well, while the standard model on the same data is broken by them.

    Four classes without wrong-class shapes keep it cheap: on the 10-class default, robust features need
    far more than this test's budget of PGD training (measured: 0.31 clean accuracy after 6 epochs).
    """
    cfg = SyntheticConfig(num_classes=4, wrong_shape_frac=0.0)
    train, test = make_synthetic(cfg, 1000, seed=0, split="train"), make_synthetic(cfg, 300, seed=100, split="test")
    x, y = test.float_images(), test.labels
    seed_everything(0)
    standard = create_model("small_cnn", num_classes=4, **GREY)
    train_classifier(
        standard, train, TrainConfig(epochs=3, batch_size=64, lr=0.05, augment=AugmentConfig(noise_std=0.03)),
        checkpoint=tmp_path / "std.pt", progress=False,
    )
    seed_everything(0)
    robust = create_model("small_cnn", num_classes=4, **GREY)
    train_classifier(
        robust, train, TrainConfig(epochs=8, batch_size=32, optimizer="adam", lr=2e-3, weight_decay=0.0),
        AdversarialConfig(norm="l2", eps=0.5, steps=3), checkpoint=tmp_path / "adv.pt", progress=False,
    )
    standard_robust = _robust_accuracy(standard, x, y, eps=0.5)
    assert accuracy(standard, test) >= 0.95 and standard_robust < 0.3
    assert accuracy(robust, test) >= 0.8
    assert _robust_accuracy(robust, x, y, eps=0.5) >= standard_robust + 0.25


# --- resume and logs -------------------------------------------------------------------------------------


def _resume_setup() -> tuple:
    data = make_synthetic(SyntheticConfig(), 300, seed=3, split="train")
    cfg = TrainConfig(epochs=2, batch_size=64, lr=0.05, augment=AugmentConfig(flip=True, crop_padding=2, noise_std=0.03))
    # one random-start PGD step: the step draws from the global RNG too, which the checkpoint must restore
    step = supervised_step(AdversarialConfig(eps=0.25, steps=1))
    return data, cfg, step


def _fresh_model() -> torch.nn.Module:
    seed_everything(7)
    return create_model("small_cnn", **GREY)


def test_interrupted_run_resumes_to_the_same_weights_and_logs(tmp_path: Path) -> None:
    data, cfg, step = _resume_setup()
    steps_per_epoch = 5  # ceil(300 / 64), last batch partial

    straight = _fresh_model()
    expected = fit(straight, data, cfg, step, checkpoint=tmp_path / "a.pt", live_dir=tmp_path / "a", seed=11, progress=False)

    calls = {"n": 0}

    def interrupted(model, x, y) -> StepOut:  # Ctrl-C in the middle of epoch 2
        calls["n"] += 1
        if calls["n"] == steps_per_epoch + 3:
            raise KeyboardInterrupt
        return step(model, x, y)

    with pytest.raises(KeyboardInterrupt):
        fit(_fresh_model(), data, cfg, interrupted, checkpoint=tmp_path / "b.pt", live_dir=tmp_path / "b", seed=11,
            progress=False)
    saved = torch.load(tmp_path / "b.pt", weights_only=True)
    assert saved["epoch"] == 1
    assert len(_rows(tmp_path / "b/plots/metrics/train/loss.tsv")) == steps_per_epoch + 2  # half an epoch logged

    resumed = _fresh_model()
    got = fit(resumed, data, cfg, step, checkpoint=tmp_path / "b.pt", live_dir=tmp_path / "b", seed=11, progress=False)
    for name, tensor in straight.state_dict().items():
        assert torch.equal(tensor, resumed.state_dict()[name]), name
    assert _without_timing(got) == _without_timing(expected)

    # per-step and per-epoch rows: each step once, identical to the uninterrupted run's
    for name in ("train/loss", "train/acc", "epoch/train_loss", "epoch/index", "epoch/lr"):
        a, b = _rows(tmp_path / f"a/plots/metrics/{name}.tsv"), _rows(tmp_path / f"b/plots/metrics/{name}.tsv")
        assert a == b, name
    steps = [int(r["step"]) for r in _rows(tmp_path / "b/plots/metrics/train/loss.tsv")]
    assert steps == list(range(2 * steps_per_epoch))
    epochs = _rows(tmp_path / "b/plots/metrics/epoch/index.tsv")
    assert [(int(r["step"]), int(r["index"])) for r in epochs] == [(steps_per_epoch - 1, 1), (2 * steps_per_epoch - 1, 2)]
    summary = json.loads((tmp_path / "b/metrics.json").read_text())
    assert summary["step"] == 2 * steps_per_epoch - 1 and summary["epoch"]["train_loss"] == pytest.approx(got["train_loss"])

    # a finished run reruns as a no-op: same weights, same metrics, no new rows
    again = _fresh_model()
    assert fit(again, data, cfg, step, checkpoint=tmp_path / "b.pt", live_dir=tmp_path / "b", seed=11, progress=False) == got
    assert torch.equal(again.head.weight, straight.head.weight)
    assert len(_rows(tmp_path / "b/plots/metrics/train/loss.tsv")) == 2 * steps_per_epoch


def test_interrupt_while_saving_keeps_the_previous_checkpoint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data, cfg, step = _resume_setup()
    real_save = torch.save
    saves = {"n": 0}

    def save_then_interrupt(obj, fh) -> None:
        saves["n"] += 1
        if saves["n"] == 2:  # the epoch-2 checkpoint: write some bytes, then Ctrl-C
            fh.write(b"partial")
            raise KeyboardInterrupt
        real_save(obj, fh)

    monkeypatch.setattr(trainer_module.torch, "save", save_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        fit(_fresh_model(), data, cfg, step, checkpoint=tmp_path / "c.pt", seed=1, progress=False)
    monkeypatch.setattr(trainer_module.torch, "save", real_save)
    assert torch.load(tmp_path / "c.pt", weights_only=True)["epoch"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["c.pt"]  # no temp file left behind


def test_checkpoint_of_other_settings_is_ignored(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data, cfg, step = _resume_setup()
    cfg1 = TrainConfig(epochs=1, batch_size=64, lr=0.05)
    fit(_fresh_model(), data, cfg1, step, checkpoint=tmp_path / "d.pt", live_dir=tmp_path / "d", seed=1, progress=False)
    capsys.readouterr()
    fit(_fresh_model(), data, cfg1, step, checkpoint=tmp_path / "d.pt", live_dir=tmp_path / "d", seed=2, progress=False)
    assert capsys.readouterr().err == f"{tmp_path / 'd.pt'}: {STALE}\n"
    # started over: one epoch of rows, not two
    assert len(_rows(tmp_path / "d/plots/metrics/epoch/index.tsv")) == 1


@pytest.mark.parametrize("changed", ["one pixel of the training set", "the starting weights"])
def test_a_checkpoint_of_other_inputs_is_not_resumed(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                     changed: str) -> None:
    """Issue 11: a run killed on dataset A and rerun with the same params on A' (or on another frozen encoder,
    i.e. other starting weights) must not resume A's checkpoint: it ends exactly as a fresh run on A'."""
    data, cfg, step = _resume_setup()
    calls = {"n": 0}

    def killed_in_epoch_2(model, x, y) -> StepOut:  # after epoch 1's checkpoint
        calls["n"] += 1
        if calls["n"] == 7:
            raise KeyboardInterrupt
        return step(model, x, y)

    with pytest.raises(KeyboardInterrupt):
        fit(_fresh_model(), data, cfg, killed_in_epoch_2, checkpoint=tmp_path / "a.pt", seed=11, progress=False)
    assert torch.load(tmp_path / "a.pt", weights_only=True)["epoch"] == 1

    other, start = data, _fresh_model
    if changed == "the starting weights":
        def start() -> torch.nn.Module:
            model = _fresh_model()
            with torch.no_grad():
                model.head.bias.add_(0.01)
            return model
    else:  # a pixel the old strided sample of the data never looked at
        images = data.images.clone()
        images.view(-1)[1] += 0.01
        other = ImageSet(images=images, labels=data.labels, classes=data.classes, meta=data.meta)
    fresh = start()
    expected = fit(fresh, other, cfg, step, checkpoint=tmp_path / "fresh.pt", seed=11, progress=False)
    capsys.readouterr()
    rerun = start()
    got = fit(rerun, other, cfg, step, checkpoint=tmp_path / "a.pt", seed=11, progress=False)
    assert capsys.readouterr().err == f"{tmp_path / 'a.pt'}: {STALE}\n"
    assert _without_timing(got) == _without_timing(expected)
    for name, tensor in fresh.state_dict().items():
        assert torch.equal(tensor, rerun.state_dict()[name]), name


def test_damaged_checkpoint_fails_with_one_line(tmp_path: Path) -> None:
    data, cfg, step = _resume_setup()
    (tmp_path / "e.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="delete it to train from scratch"):
        fit(_fresh_model(), data, cfg, step, checkpoint=tmp_path / "e.pt", progress=False)


def test_schedule_warmup_and_optimizers(tmp_path: Path) -> None:
    assert lr_factor(0, total_steps=10, warmup_steps=2, schedule="cosine") == 0.5
    assert lr_factor(2, total_steps=10, warmup_steps=2, schedule="cosine") == 1.0
    assert lr_factor(9, total_steps=10, warmup_steps=2, schedule="cosine") < 0.05
    assert lr_factor(9, total_steps=10, warmup_steps=0, schedule="constant") == 1.0
    data = make_synthetic(SyntheticConfig(), 64, seed=0, split="train")
    model = _fresh_model()
    before = model.head.weight.detach().clone()
    metrics = fit(
        model, data, TrainConfig(epochs=2, batch_size=32, optimizer="adam", lr=1e-3, schedule="constant"),
        supervised_step(), checkpoint=tmp_path / "f.pt", progress=False,
    )
    assert metrics["lr"] == 1e-3 and not torch.equal(before, model.head.weight)


def test_bfloat16_and_channels_last_steps_run(tmp_path: Path) -> None:
    data = make_synthetic(SyntheticConfig(), 32, seed=0, split="train")
    cfg = TrainConfig(epochs=1, batch_size=16, precision="bf16", channels_last=True)
    metrics = fit(_fresh_model(), data, cfg, supervised_step(), checkpoint=tmp_path / "g.pt", progress=False)
    assert torch.isfinite(torch.tensor(metrics["train_loss"]))


# --- early stopping ----------------------------------------------------------------------------------------


class _Dial(torch.nn.Module):
    """One weight w that each SGD step (lr 1, one batch per epoch) raises by exactly 1: w = epochs trained."""

    def __init__(self) -> None:
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(()))


def _dial_step(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> StepOut:
    # accuracy peaks at w = 2 (after epoch 2) and falls by 0.1 per epoch on either side
    return StepOut(-model.w, {"acc": 1.0 - (model.w.detach() - 2.0).abs() / 10})


def _dial_run(tmp_path: Path, step=_dial_step, name: str = "es.pt") -> tuple[torch.nn.Module, dict[str, float]]:
    data = ImageSet(images=torch.rand(20, 1, 2, 2), labels=torch.arange(20) % 2, classes=["a", "b"])
    cfg = TrainConfig(epochs=10, batch_size=20, lr=1.0, momentum=0.0, weight_decay=0.0, schedule="constant",
                      early_stop=EarlyStopConfig(patience=2, val_fraction=0.25, metric="acc"))
    model = _Dial()
    return model, fit(model, data, cfg, step, checkpoint=tmp_path / name, live_dir=tmp_path / "live", progress=False)


def test_early_stopping_keeps_the_best_epoch_weights(tmp_path: Path) -> None:
    """Validation accuracy peaks at epoch 2; with patience 2 training stops after epoch 4 and the module
    holds epoch 2's weights, not the last ones."""
    model, metrics = _dial_run(tmp_path)
    assert model.w.item() == 2.0
    assert metrics["best_epoch"] == 2 and metrics["epoch"] == 2 and metrics["epochs_trained"] == 4
    assert metrics["val_acc"] == 1.0 and metrics["n_val"] == 5
    logged = [float(r["val_acc"]) for r in _rows(tmp_path / "live/plots/metrics/epoch/val_acc.tsv")]
    assert logged == pytest.approx([0.9, 1.0, 0.9, 0.8])  # four epochs, then it stopped


def test_early_stopped_run_resumes_to_the_same_best_weights(tmp_path: Path) -> None:
    _, expected = _dial_run(tmp_path, name="a.pt")
    calls = {"n": 0}

    def killed_in_epoch_4(model, x, y) -> StepOut:  # after epoch 3's checkpoint, past the best epoch
        calls["n"] += 1
        if calls["n"] == 7:  # one training step and one validation batch per epoch
            raise KeyboardInterrupt
        return _dial_step(model, x, y)

    with pytest.raises(KeyboardInterrupt):
        _dial_run(tmp_path, killed_in_epoch_4, name="b.pt")
    model, got = _dial_run(tmp_path, name="b.pt")
    assert model.w.item() == 2.0 and _without_timing(got) == _without_timing(expected)
    again, rerun = _dial_run(tmp_path, name="b.pt")  # a finished run: no training, the best weights again
    assert again.w.item() == 2.0 and _without_timing(rerun) == _without_timing(expected)


def test_holdout_split_is_seeded_disjoint_and_keeps_the_labels() -> None:
    data = ImageSet(images=torch.arange(40.0).view(40, 1, 1, 1) / 40, labels=torch.arange(40) % 4,
                    classes=list("abcd"), meta={"source": "constructed"})
    train, val = holdout_split(data, 0.1, seed=3)
    assert (len(train), len(val)) == (36, 4) and val.meta == data.meta
    index = lambda part: (part.images.flatten() * 40).round().long()  # noqa: E731
    assert set(index(train).tolist()).isdisjoint(index(val).tolist())
    assert torch.equal(val.labels, index(val) % 4)  # each held-out image keeps its own (assigned) label
    assert torch.equal(val.images, holdout_split(data, 0.1, seed=3)[1].images)
    assert not torch.equal(val.images, holdout_split(data, 0.1, seed=4)[1].images)


def test_early_stopping_on_a_metric_the_step_lacks_fails_with_one_line(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="^early_stop.metric: the training step reports no 'acc'; use metric: loss$"):
        _dial_run(tmp_path, lambda model, x, y: StepOut(-model.w))


def test_springer_recipe_of_the_paper_profile_decays_and_stops_early() -> None:
    """Springer Table 3: lr 1e-4 with "LR decay" (schedule not published: cosine over the 100-epoch budget)
    and early stopping on a validation set."""
    recipe = load_params(profile_path("paper")).retrain.springer
    assert (recipe.optimizer, recipe.lr, recipe.epochs, recipe.schedule) == ("adam", 1e-4, 100, "cosine")
    assert recipe.early_stop.enabled and recipe.early_stop.metric == "acc"
    total = recipe.epochs * 250  # e.g. 250 steps per epoch
    lr = [recipe.lr * lr_factor(s, total_steps=total, warmup_steps=0, schedule=recipe.schedule)
          for s in (0, total // 4, total // 2, 3 * total // 4, total - 1)]
    assert lr == pytest.approx([1e-4, 0.8536e-4, 0.5e-4, 0.1464e-4, 0.0], abs=1e-8)
    for name in ("smoke", "cpu"):  # the small profiles keep their constant rate and full schedule
        small = load_params(profile_path(name)).retrain.springer
        assert not small.early_stop.enabled


# --- precision -------------------------------------------------------------------------------------------


def _autocast_seen(tmp_path: Path, data: ImageSet, capsys, **kwargs) -> tuple[set[bool], str]:
    seen: set[bool] = set()

    def step(model, x, y) -> StepOut:
        seen.add(torch.is_autocast_enabled("cpu"))
        return supervised_step()(model, x, y)

    capsys.readouterr()
    fit(_fresh_model(), data, TrainConfig(epochs=1, batch_size=16, precision="bf16"), step,
        checkpoint=tmp_path / f"p{len(list(tmp_path.iterdir()))}.pt", progress=False, **kwargs)
    return seen, capsys.readouterr().err


def test_perturbations_never_pass_through_bf16(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """DESIGN 4: a constructed set's perturbations (~2/255) and adversarial training's attacks run in fp32,
    with one line saying so; natural images keep the bf16 the recipe asks for."""
    natural = make_synthetic(SyntheticConfig(), 32, seed=0, split="train")
    constructed = ImageSet(images=natural.images, labels=natural.labels, classes=natural.classes,
                           meta={"source": "constructed", "arch": "D_NR"})
    assert _autocast_seen(tmp_path, natural, capsys) == ({True}, "")
    seen, err = _autocast_seen(tmp_path, constructed, capsys)
    assert seen == {False}
    assert err == "precision: fp32, not bf16, for constructed set D_NR: bf16 would round its ~2/255 perturbations away (DESIGN 4)\n"
    seen, err = _autocast_seen(tmp_path, natural, capsys, attacks_inputs=True)
    assert seen == {False} and err.startswith("precision: fp32, not bf16, for adversarial training:")
    fp32 = TrainConfig(precision="fp32")
    assert input_precision(fp32, constructed) is fp32
    assert input_precision(TrainConfig(precision="bf16"), constructed).precision == "fp32"


# --- augmentation and configs ----------------------------------------------------------------------------


def test_random_crop_is_a_shifted_window_of_the_zero_padded_image() -> None:
    x = torch.rand(16, 3, 8, 8)
    out = random_crop(x, 2, torch.Generator().manual_seed(0))
    padded = torch.nn.functional.pad(x, (2, 2, 2, 2))
    offsets = set()
    for i in range(16):
        windows = {(dy, dx): padded[i, :, dy : dy + 8, dx : dx + 8] for dy in range(5) for dx in range(5)}
        matches = [offset for offset, window in windows.items() if torch.equal(out[i], window)]
        assert matches, f"image {i} is not a window of its padded image"
        offsets.add(matches[0])
    assert len(offsets) > 3  # offsets vary per image


def test_flip_noise_and_determinism() -> None:
    x = torch.rand(200, 3, 4, 4) * 0.5 + 0.25
    flipped = augment(x, AugmentConfig(flip=True), torch.Generator().manual_seed(0))
    same = (flipped == x).flatten(1).all(1)
    mirrored = (flipped == x.flip(3)).flatten(1).all(1)
    assert bool((same | mirrored).all()) and 60 < int(mirrored.sum()) < 140
    cfg = AugmentConfig(flip=True, crop_padding=1, noise_std=0.05)
    a = augment(x, cfg, torch.Generator().manual_seed(3))
    assert torch.equal(a, augment(x, cfg, torch.Generator().manual_seed(3)))
    noisy = augment(torch.full((100, 3, 8, 8), 0.5), AugmentConfig(noise_std=0.05), torch.Generator().manual_seed(0))
    assert abs((noisy - 0.5).std().item() - 0.05) < 0.003
    # near the faces of [0, 1] the noise would leave the image range: it is clipped onto the faces
    edges = augment(torch.tensor([0.02, 0.98]).repeat(50, 3, 8, 4), AugmentConfig(noise_std=0.05), torch.Generator().manual_seed(0))
    assert edges.min() == 0 and edges.max() == 1
    assert augment(x, AugmentConfig(), torch.Generator()) is x


@pytest.mark.parametrize(
    ("build", "field"),
    [
        (lambda: TrainConfig(epochs=0), "epochs"),
        (lambda: TrainConfig(lr=0.0), "lr"),
        (lambda: TrainConfig(momentum=1.0), "momentum"),
        (lambda: TrainConfig(epochs=2, warmup_epochs=2), "warmup_epochs"),
        (lambda: AugmentConfig(crop_padding=-1), "crop_padding"),
        (lambda: AugmentConfig(noise_std=-0.1), "noise_std"),
        (lambda: AdversarialConfig(eps=-0.5), "eps"),
        (lambda: AdversarialConfig(eps=0.5, steps=0), "steps"),
        (lambda: AdversarialConfig(eps=0.5, step_size=0.0), "step_size"),
    ],
)
def test_impossible_settings_name_the_field(build, field: str) -> None:
    with pytest.raises(ValueError, match=f"^{field}: "):
        build()


def test_adversarial_config_defaults() -> None:
    assert not AdversarialConfig().enabled
    assert AdversarialConfig(eps=1.0, steps=5).effective_step_size == pytest.approx(0.5)
    assert AdversarialConfig(eps=1.0, steps=5, step_size=0.1).effective_step_size == 0.1
