"""Linear probing: the encoder stays frozen (weights, BatchNorm statistics, eval mode), the probe learns,
and encoder + head is an ordinary classifier for the attacks."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from advtui.attacks.robust_accuracy import robust_accuracy
from advtui.catalog.attacks import AttackSpec
from advtui.catalog.data import SyntheticConfig
from advtui.catalog.training import AugmentConfig, SupervisedConfig, TrainConfig
from advtui.data.imageset import ImageSet
from advtui.data.loaders import load_source
from advtui.experiments.linear_probe import (
    LinearProbe, can_cache_features, encode_set, load_probe, probe_accuracy, save_probe, train_probe,
)
from advtui.paradigms.base import Encoder, get_paradigm, representations, save_encoder
from advtui.paradigms.trainer import fit

SL = SupervisedConfig(arch="small_cnn")
PROBE = TrainConfig(epochs=8, batch_size=64, optimizer="adam", lr=1e-2, weight_decay=0.0)


@pytest.fixture(scope="module")
def synthetic():
    cfg = SyntheticConfig()
    return load_source("synthetic", "train", size=600, seed=0, synthetic=cfg), load_source(
        "synthetic", "test", size=200, seed=0, synthetic=cfg
    )


def _sl_module(train=None, tmp_path=None):
    torch.manual_seed(0)
    paradigm = get_paradigm("SL")
    module = paradigm.build(SL, num_classes=10, image_size=32)
    if train is not None:
        cfg = TrainConfig(epochs=5, batch_size=64, optimizer="adam", lr=2e-3, weight_decay=0.0)
        fit(module, train, cfg, paradigm.step(SL), checkpoint=tmp_path / "sl.ckpt", progress=False)
    return module


def _encoder_state(encoder: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in encoder.state_dict().items()}


@pytest.mark.parametrize("augment", [AugmentConfig(), AugmentConfig(noise_std=0.05)], ids=["cached", "per-batch"])
def test_probe_keeps_the_encoder_frozen_in_eval_mode(tmp_path, synthetic, augment):
    train, _ = synthetic
    module = _sl_module()
    module.train()  # a module left in train mode must not leak into the probe's encoder
    encoder = get_paradigm("SL").encoder(module, SL)
    before = _encoder_state(encoder)
    assert any("running_mean" in k for k in before)  # small_cnn has BatchNorm: the check below means something
    cfg = dataclasses.replace(PROBE, epochs=2, augment=augment)
    probe, metrics = train_probe(encoder, train.select(128, 0), cfg, checkpoint=tmp_path / "p.ckpt", progress=False)
    assert metrics["cached"] == float(not augment.active)
    after = encoder.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before), "encoder weights or BN statistics changed"
    assert not any(m.training for m in probe.encoder.modules())
    assert all(not p.requires_grad and p.grad is None for p in probe.encoder.parameters())
    assert all(p.requires_grad for p in probe.head.parameters())
    probe.train()  # what the trainer calls every epoch
    assert probe.head.training and not any(m.training for m in probe.encoder.modules())


def test_probe_on_a_trained_sl_encoder_beats_chance_and_is_attackable(tmp_path, synthetic):
    train, test = synthetic
    module = _sl_module(train, tmp_path)
    encoder = get_paradigm("SL").encoder(module, SL).eval().requires_grad_(False)
    probe, _ = train_probe(encoder, train, PROBE, checkpoint=tmp_path / "p.ckpt", progress=False)
    x, y = test.float_images(), test.labels
    with torch.no_grad():
        acc = (probe(x).argmax(1) == y).float().mean().item()
    assert acc > 0.5, f"probe accuracy {acc:.2f} is not clearly above chance (0.1)"
    # encoder + head is a classifier the attacks accept, with gradients reaching the input: Linf 8/255, four
    # times the radius that flips the planted pattern (2/255), breaks a standard encoder's probe (measured 0/50)
    result = robust_accuracy(probe, x[:50], y[:50], [AttackSpec(norm="linf", eps=8 / 255, steps=5, step_size=2 / 255)])
    assert result.clean_acc > 0.8 and result.robust_acc < 0.2
    xg = x[:4].clone().requires_grad_(True)
    probe(xg).sum().backward()
    assert xg.grad is not None and xg.grad.abs().sum() > 0
    # stored head + stored encoder give the same classifier back
    save_encoder(tmp_path / "enc.safetensors", "SL", module, SL, num_classes=10, image_size=32)
    save_probe(tmp_path / "probe.safetensors", probe, encoder_path=tmp_path / "enc.safetensors", params={})
    again = load_probe(tmp_path / "probe.safetensors")
    with torch.no_grad():
        assert torch.allclose(again(x[:16]), probe(x[:16]), atol=1e-5)


def test_cached_features_are_the_frozen_encoders_representations_of_every_image(synthetic):
    """The head trains on exactly what the encoder maps each image to: a uint8 set encoded batch by batch
    (last batch partial) gives the features of its float images, with no graph, as (N, D, 1, 1) "images"."""
    train, _ = synthetic
    data = train.select(300, 0)
    uint8 = (data.images * 255).round().to(torch.uint8)
    data = ImageSet(images=uint8, labels=data.labels, classes=list(data.classes), meta={"n": 300})
    encoder = get_paradigm("SL").encoder(_sl_module(), SL).eval()  # eval: BatchNorm statistics, not the batch's
    with torch.no_grad():
        whole = encoder(data.float_images())
    from_set = representations(encoder, data, batch_size=128)
    assert torch.equal(from_set, representations(encoder, data.float_images(), batch_size=128))
    assert torch.allclose(from_set, whole, atol=1e-5)
    assert from_set.dtype == torch.float32 and from_set.device.type == "cpu" and not from_set.requires_grad

    encoded = encode_set(encoder, data)
    assert encoded.images.shape == (300, encoder.feature_dim, 1, 1)
    assert torch.equal(encoded.images.flatten(1), representations(encoder, data))
    assert torch.equal(encoded.labels, data.labels) and encoded.meta["n"] == 300

    assert representations(encoder, data.float_images()[:0]).shape == (0, encoder.feature_dim)


def test_features_are_cached_only_for_deterministic_encoders_without_augmentation():
    class Noisy(Encoder):
        feature_dim = 3
        randomised = True

        def forward(self, x):
            return x.mean((2, 3)) + torch.randn(len(x), 3)

    noisy, plain = Noisy(), Noisy()
    plain.randomised = False
    assert not can_cache_features(noisy, PROBE)
    assert can_cache_features(plain, PROBE)
    assert not can_cache_features(plain, dataclasses.replace(PROBE, augment=AugmentConfig(flip=True)))
    assert LinearProbe(noisy, 10).randomised and not LinearProbe(plain, 10).randomised
    # a fixed number of noise draws makes a randomised encoder's features cacheable (not with augmentation)
    assert can_cache_features(noisy, PROBE, noise_draws=3)
    assert not can_cache_features(noisy, dataclasses.replace(PROBE, augment=AugmentConfig(flip=True)), noise_draws=3)


def test_noise_draws_train_the_head_on_that_many_draws_of_a_randomised_encoder(tmp_path):
    """Each draw is a fresh pass of the noisy encoder (draws * N rows, labels repeated), and a head trained on
    3 draws separates classes whose mean brightness differs by 4 noise sigmas (Bayes accuracy 98%)."""

    class Noisy(Encoder):
        feature_dim = 1
        randomised = True

        def forward(self, x):
            return x.mean((1, 2, 3))[:, None] * 10 + 0.5 * torch.randn(len(x), 1)

    torch.manual_seed(0)
    labels = torch.arange(200) % 2
    images = (0.4 + 0.2 * labels.float()).view(-1, 1, 1, 1).expand(-1, 3, 4, 4).contiguous()
    data = ImageSet(images=images, labels=labels, classes=["dark", "bright"], meta={})
    encoded = encode_set(Noisy(), data, draws=3)
    rows = encoded.images.flatten(1)
    assert rows.shape == (600, 1) and torch.equal(encoded.labels, labels.repeat(3))
    assert not torch.equal(rows[:200], rows[200:400])  # fresh noise per draw
    cfg = dataclasses.replace(PROBE, epochs=20, lr=0.1)
    probe, metrics = train_probe(Noisy(), data, cfg, checkpoint=tmp_path / "p.ckpt", progress=False, noise_draws=3)
    assert metrics["cached"] == 1.0
    assert probe_accuracy(probe, data) > 0.9


def test_probe_of_a_changed_encoder_is_refused(tmp_path):
    module = _sl_module()
    encoder = get_paradigm("SL").encoder(module, SL)
    enc_path = save_encoder(tmp_path / "enc.safetensors", "SL", module, SL, num_classes=10, image_size=32, params={"v": 1})
    save_probe(tmp_path / "probe.safetensors", LinearProbe(encoder, 10), encoder_path=enc_path, params={})
    save_encoder(enc_path, "SL", module, SL, num_classes=10, image_size=32, params={"v": 2})
    with pytest.raises(ValueError, match="rerun its probe stage"):
        load_probe(tmp_path / "probe.safetensors")
