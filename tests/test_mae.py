"""MIM (masked autoencoder): masking, the masked-only loss, training on synthetic data, and the stored encoder."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import torch

from advtui.data.synthetic import make_synthetic
from advtui.catalog.data import SyntheticConfig
from advtui.paradigms.base import get_paradigm, load_encoder, representations, save_encoder
from advtui.paradigms.mae import MaskedAutoencoder, masked_mse, random_masking
from advtui.catalog.training import MAEConfig
from advtui.paradigms.trainer import fit
from advtui.catalog.training import TrainConfig
from advtui.schema import ParamsError, build

TINY = MAEConfig(embed_dim=32, depth=2, num_heads=2, decoder_dim=32, decoder_depth=1, decoder_heads=2)


def linear_probe_accuracy(train_x: torch.Tensor, train_y: torch.Tensor, test_x: torch.Tensor, test_y: torch.Tensor) -> float:
    """Test accuracy of a multinomial logistic regression (L-BFGS, small L2) on standardised features."""
    mean, std = train_x.mean(0), train_x.std(0) + 1e-6
    train_x, test_x = (train_x - mean) / std, (test_x - mean) / std
    weight = torch.zeros(train_x.shape[1], int(train_y.max()) + 1, requires_grad=True)
    bias = torch.zeros(weight.shape[1], requires_grad=True)
    opt = torch.optim.LBFGS([weight, bias], max_iter=200, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(train_x @ weight + bias, train_y) + 1e-3 * weight.pow(2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    return float(((test_x @ weight + bias).argmax(1) == test_y).float().mean())


def assert_resume_is_exact(name: str, cfg: object, tmp_path: Path) -> None:
    """A run of paradigm ``name`` interrupted mid-epoch and resumed ends with the uninterrupted run's weights.

    Holds only if the step draws its randomness (masks, noise, steps) from torch's global RNG, which the
    trainer checkpoints.
    """
    data = make_synthetic(SyntheticConfig(image_size=16, jitter=1.0), 48, seed=0, split="train")
    paradigm = get_paradigm(name)
    train_cfg = TrainConfig(epochs=2, batch_size=16, optimizer="adam", lr=1e-3, weight_decay=0.0)

    def fresh() -> torch.nn.Module:
        torch.manual_seed(3)
        return paradigm.build(cfg, num_classes=10, image_size=16)

    straight = fresh()
    fit(straight, data, train_cfg, paradigm.step(cfg), checkpoint=tmp_path / "a.pt", progress=False)
    calls = {"n": 0}

    def interrupted(module: torch.nn.Module, x: torch.Tensor, y: torch.Tensor):  # Ctrl-C in epoch 2
        calls["n"] += 1
        if calls["n"] == 5:
            raise KeyboardInterrupt
        return paradigm.step(cfg)(module, x, y)

    with pytest.raises(KeyboardInterrupt):
        fit(fresh(), data, train_cfg, interrupted, checkpoint=tmp_path / "b.pt", progress=False)
    resumed = fresh()
    fit(resumed, data, train_cfg, paradigm.step(cfg), checkpoint=tmp_path / "b.pt", progress=False)
    for key, tensor in straight.state_dict().items():
        assert torch.equal(tensor, resumed.state_dict()[key]), key


def test_interrupted_training_resumes_exactly(tmp_path: Path) -> None:
    assert_resume_is_exact("MIM", replace(TINY, patch_size=4), tmp_path)


def test_masking_keeps_the_right_number_of_patches_and_differs_per_image() -> None:
    torch.manual_seed(0)
    ids_keep, mask = random_masking(6, 64, 0.75)
    assert ids_keep.shape == (6, 16)
    assert torch.equal(mask.sum(1), torch.full((6,), 48.0))
    for row in range(6):
        assert ids_keep[row].unique().numel() == 16  # no patch kept twice
        assert torch.all(mask[row, ids_keep[row]] == 0)  # kept = unmasked
    assert len({tuple(sorted(r.tolist())) for r in ids_keep}) == 6
    torch.manual_seed(0)
    assert torch.equal(random_masking(6, 64, 0.75)[0], ids_keep)  # the global RNG decides everything


def test_loss_counts_only_masked_patches() -> None:
    torch.manual_seed(0)
    pred, target = torch.randn(2, 16, 12), torch.randn(2, 16, 12)
    _, mask = random_masking(2, 16, 0.75)
    for norm_pix in (True, False):
        loss = masked_mse(pred, target, mask, norm_pix)
        visible_changed = torch.where(mask[..., None].bool(), target, torch.randn_like(target) * 5)
        assert torch.allclose(masked_mse(pred, visible_changed, mask, norm_pix), loss)
        hidden_changed = torch.where(mask[..., None].bool(), torch.randn_like(target), target)
        assert not torch.allclose(masked_mse(pred, hidden_changed, mask, norm_pix), loss)
    # a perfect prediction of the normalised target scores zero
    norm_target = (target - target.mean(-1, keepdim=True)) / (target.var(-1, keepdim=True) + 1e-6).sqrt()
    assert float(masked_mse(norm_target, target, mask, True)) < 1e-10


def test_masked_path_is_the_vit_itself() -> None:
    """Encoding every patch through the masked path equals timm's own forward: training and probing share one ViT."""
    torch.manual_seed(0)
    mae = MaskedAutoencoder(TINY, 32).eval()
    x = mae.normalise(torch.rand(3, 3, 32, 32))
    all_patches = torch.arange(mae.num_patches).expand(3, -1)
    assert torch.allclose(mae.encode_visible(x, all_patches), mae.vit.forward_features(x), atol=1e-5)
    patches = mae.patchify(x)
    assert patches.shape == (3, 64, 48)
    assert torch.equal(patches[1, 9].view(4, 4, 3).permute(2, 0, 1), x[1, :, 4:8, 4:8])  # patch 9 = row 1, col 1


def test_mae_learns_on_synthetic_data(tmp_path: Path) -> None:
    syn = SyntheticConfig(colour="class")
    train, test = make_synthetic(syn, 600, seed=0, split="train"), make_synthetic(syn, 300, seed=1, split="test")
    paradigm = get_paradigm("MIM")
    # mean-pooled: after seconds of training the class token still carries little (probe ~0.3 here)
    cfg = replace(TINY, pool="avg")
    torch.manual_seed(0)
    module = paradigm.build(cfg, num_classes=10, image_size=32)
    train_cfg = TrainConfig(epochs=4, batch_size=32, optimizer="adam", lr=2e-3, weight_decay=0.0)
    metrics = fit(module, train, train_cfg, paradigm.step(cfg), checkpoint=tmp_path / "ck.pt", live_dir=tmp_path / "live", progress=False)
    losses = [float(line.split("\t")[-1]) for line in (tmp_path / "live/plots/metrics/train/loss.tsv").read_text().splitlines()[1:]]
    # per-patch normalised targets: predicting each patch's mean (zero) scores 1; the model must beat that
    assert losses[0] > 0.95 and metrics["train_loss"] < 0.9
    module.eval().requires_grad_(False)
    encoder = paradigm.encoder(module, cfg)
    assert encoder.randomised is False and encoder.feature_dim == 32
    acc = linear_probe_accuracy(
        representations(encoder, train.float_images()), train.labels, representations(encoder, test.float_images()), test.labels
    )
    assert acc > 0.4  # chance is 0.1


def test_encoder_is_deterministic_and_differentiable() -> None:
    torch.manual_seed(0)
    mae = MaskedAutoencoder(TINY, 32).eval().requires_grad_(False)
    encoder = get_paradigm("MIM").encoder(mae, TINY)
    x = torch.rand(2, 3, 32, 32, requires_grad=True)
    first = encoder(x)
    assert torch.equal(first, encoder(x))
    (grad,) = torch.autograd.grad(first.sum(), x)
    assert torch.isfinite(grad).all() and grad.abs().sum() > 0
    assert torch.allclose(first, mae.vit.forward_features(mae.normalise(x))[:, 0])  # "token": the class token
    # the same trained module read with mean pooling: no retraining, no other change allowed
    mean_pooled = get_paradigm("MIM").encoder(mae, replace(TINY, pool="avg"))
    tokens = mae.vit.forward_features(mae.normalise(x))
    assert torch.allclose(mean_pooled(x), tokens[:, 1:].mean(1), atol=1e-6)
    with pytest.raises(ValueError, match="more than pool"):
        get_paradigm("MIM").encoder(mae, replace(TINY, depth=3))


def test_save_and_load_round_trip(tmp_path: Path) -> None:
    torch.manual_seed(0)
    module = get_paradigm("MIM").build(TINY, num_classes=10, image_size=32)
    path = save_encoder(tmp_path / "mim.safetensors", "MIM", module, TINY, num_classes=10, image_size=32)
    loaded, encoder, cfg = load_encoder(path)
    assert cfg == TINY and not any(p.requires_grad for p in loaded.parameters())
    x = torch.rand(4, 3, 32, 32)
    module.eval()
    assert torch.equal(encoder(x), get_paradigm("MIM").encoder(module, TINY)(x))


@pytest.mark.parametrize(
    ("data", "field"),
    [({"mask_ratio": 1.0}, "mask_ratio"), ({"num_heads": 5}, "num_heads"), ({"pool": "max"}, "pool"), ({"patch_size": 0}, "patch_size")],
)
def test_bad_settings_name_the_field(data: dict, field: str) -> None:
    with pytest.raises(ParamsError, match=field):
        build(MAEConfig, data, "paradigms.MIM")


def test_patch_size_must_divide_the_image() -> None:
    with pytest.raises(ValueError, match="patch_size: 5 does not divide"):
        MaskedAutoencoder(replace(TINY, patch_size=5), 32)
    with pytest.raises(ValueError, match="keeps no patch"):
        MaskedAutoencoder(replace(TINY, patch_size=16, mask_ratio=0.9), 32)
