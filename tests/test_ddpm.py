"""DM (DDPM): the noising, training on synthetic data, the randomised block features and the stored encoder."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import torch

from advtui.data.synthetic import make_synthetic
from advtui.catalog.data import SyntheticConfig
from advtui.paradigms.ddpm import DDPMEncoder, DiffusionModel
from advtui.catalog.training import DDPMConfig
from advtui.data.imageset import ImageSet
from advtui.paradigms.base import Encoder, get_paradigm, load_encoder, representations, save_encoder
from advtui.paradigms.trainer import fit
from advtui.catalog.training import TrainConfig
from advtui.schema import ParamsError, build
from test_mae import assert_resume_is_exact, linear_probe_accuracy

TINY = DDPMConfig(
    block_out_channels=(16, 32), layers_per_block=1, attention=(False, True), dropout=0.0, norm_num_groups=8,
    feature_block=0,
)


def test_noising_matches_the_closed_form() -> None:
    cfg = replace(TINY, num_train_timesteps=100, beta_start=1e-3, beta_end=0.05)
    ddpm = DiffusionModel(cfg, 32)
    abar = torch.cumprod(1 - torch.linspace(cfg.beta_start, cfg.beta_end, cfg.num_train_timesteps, dtype=torch.float64), 0)
    torch.manual_seed(0)
    x0, eps = torch.rand(4, 3, 32, 32) * 2 - 1, torch.randn(4, 3, 32, 32)
    t = torch.tensor([0, 11, 50, 99])
    expected = abar[t].sqrt().view(-1, 1, 1, 1) * x0 + (1 - abar[t]).sqrt().view(-1, 1, 1, 1) * eps
    assert torch.allclose(ddpm.q_sample(x0, t, eps), expected.float(), atol=1e-5)
    assert DiffusionModel.to_model_range(torch.tensor([0.0, 0.5, 1.0])).tolist() == [-1.0, 0.0, 1.0]


def probe(encoder: Encoder, train: ImageSet, test: ImageSet) -> float:
    """Linear-probe test accuracy of ``encoder``'s features (one fixed noise draw per image)."""
    torch.manual_seed(1)
    return linear_probe_accuracy(
        representations(encoder, train.float_images()), train.labels, representations(encoder, test.float_images()), test.labels
    )


def test_ddpm_learns_and_its_features_probe_above_chance(tmp_path: Path) -> None:
    syn = SyntheticConfig(image_size=16, jitter=1.0, colour="class")  # 16 px: a quarter of the convolution work
    train, test = make_synthetic(syn, 400, seed=0, split="train"), make_synthetic(syn, 300, seed=1, split="test")
    paradigm = get_paradigm("DM")
    torch.manual_seed(0)
    module = paradigm.build(TINY, num_classes=10, image_size=16)
    untrained = probe(paradigm.encoder(module.eval(), TINY), train, test)
    cfg = TrainConfig(epochs=3, batch_size=25, optimizer="adam", lr=2e-3, weight_decay=0.0)
    metrics = fit(module, train, cfg, paradigm.step(TINY), checkpoint=tmp_path / "ck.pt", live_dir=tmp_path / "live", progress=False)
    losses = [float(line.split("\t")[-1]) for line in (tmp_path / "live/plots/metrics/train/loss.tsv").read_text().splitlines()[1:]]
    # an untrained UNet predicts roughly nothing (loss ~ E[eps^2] = 1); denoising is learnt within three epochs
    assert losses[0] > 0.7 and metrics["train_loss"] < 0.3
    module.eval().requires_grad_(False)
    trained = probe(paradigm.encoder(module, TINY), train, test)
    # random UNet features already read the class colour well (~0.7); denoising makes them better still
    assert trained > 0.5 and trained > untrained + 0.03  # chance is 0.1


def test_interrupted_training_resumes_exactly(tmp_path: Path) -> None:
    assert_resume_is_exact("DM", replace(TINY, dropout=0.1), tmp_path)  # dropout draws from the RNG too


@pytest.mark.parametrize("block", [0, 1])
def test_features_are_the_pooled_level_before_its_upsampler(block: int) -> None:
    torch.manual_seed(0)
    ddpm = DiffusionModel(TINY, 32).eval().requires_grad_(False)
    cfg = replace(TINY, feature_block=block)
    encoder = get_paradigm("DM").encoder(ddpm, cfg)
    assert encoder.feature_dim == cfg.feature_channels == TINY.block_out_channels[::-1][block]
    x = torch.rand(3, 3, 32, 32)
    torch.manual_seed(5)
    features = encoder(x)
    assert features.shape == (3, encoder.feature_dim)

    # the same activation read by a plain hook during a full forward pass, with the same noise
    seen: list[torch.Tensor] = []
    level = ddpm.unet.up_blocks[block]
    if level.upsamplers is not None:
        handle = level.upsamplers[0].register_forward_pre_hook(lambda m, args: seen.append(args[0]))
    else:
        handle = level.register_forward_hook(lambda m, args, out: seen.append(out))
    torch.manual_seed(5)
    t = torch.full((3,), cfg.feature_t)
    ddpm.unet(ddpm.q_sample(x * 2 - 1, t, torch.randn(3, 3, 32, 32)), t)
    handle.remove()
    expected_side = 32 // 2 ** (len(TINY.block_out_channels) - 1 - block)
    assert seen[0].shape[2:] == (expected_side, expected_side)
    assert torch.allclose(features, seen[0].mean(dim=(2, 3)), atol=1e-5)


@pytest.mark.parametrize("pool", [2, 16])
def test_grid_pooling_reads_the_level_as_lis_released_classifier_does(pool: int) -> None:
    """``feature_pool`` > 1 average-pools the level to a pool x pool grid (Li's released classifier: 16x16),
    flattened; a grid finer than the map repeats each cell, as ``AdaptiveAvgPool2d`` does."""
    torch.manual_seed(0)
    ddpm = DiffusionModel(TINY, 32).eval().requires_grad_(False)
    x = torch.rand(2, 3, 32, 32)
    torch.manual_seed(5)
    pooled = DDPMEncoder(ddpm, replace(TINY, feature_pool=pool))(x)
    seen: list[torch.Tensor] = []
    handle = ddpm.unet.up_blocks[0].upsamplers[0].register_forward_pre_hook(lambda m, args: seen.append(args[0]))
    torch.manual_seed(5)
    DDPMEncoder(ddpm, TINY)(x)
    handle.remove()
    level = seen[0]  # 16x16 at level 0 of the tiny two-level UNet, 32 channels
    assert pooled.shape == (2, 32 * pool * pool) == (2, replace(TINY, feature_pool=pool).feature_dim)
    expected = torch.nn.AdaptiveAvgPool2d((pool, pool))(level).flatten(1)
    assert torch.allclose(pooled, expected, atol=1e-6)
    if pool == 16:  # the level's own resolution: the map itself
        assert torch.allclose(pooled, level.flatten(1), atol=1e-6)


def test_paper_profile_reads_ddpm_features_as_lis_released_code() -> None:
    """Li's released Diffusion_Classifier: t = 11 and a 16x16 pool into Linear(65536, 10), i.e. a 256-channel
    map; the layer is DDAE's out_6 (up level 1, 8x8, 256 channels), as the config default."""
    from advtui.catalog.params import load_params, profile_path

    dm = load_params(profile_path("paper")).paradigms.DM.config
    default = DDPMConfig()
    assert (dm.feature_t, dm.feature_block, dm.feature_pool) == (11, default.feature_block, 16)
    assert dm.feature_channels == 256 and dm.feature_dim == 65536
    assert (default.feature_t, default.feature_pool) == (11, 1)  # DDAE and Li's text: global pooling


def test_encoder_is_randomised_reproducible_and_differentiable() -> None:
    torch.manual_seed(0)
    ddpm = DiffusionModel(TINY, 32).eval().requires_grad_(False)
    encoder = get_paradigm("DM").encoder(ddpm, TINY)
    assert encoder.randomised is True
    x = torch.rand(2, 3, 32, 32, requires_grad=True)
    first, second = encoder(x), encoder(x)
    assert not torch.allclose(first, second)  # fresh noise at every call
    torch.manual_seed(3)
    again = encoder(x)
    torch.manual_seed(3)
    assert torch.equal(again, encoder(x))
    (grad,) = torch.autograd.grad(first.sum(), x)
    assert torch.isfinite(grad).all() and grad.abs().sum() > 0


def test_encoder_refuses_a_config_of_another_unet() -> None:
    ddpm = DiffusionModel(TINY, 32)
    DDPMEncoder(ddpm, replace(TINY, feature_t=100, feature_block=1))  # reading elsewhere is fine
    DDPMEncoder(ddpm, replace(TINY, feature_pool=4))
    with pytest.raises(ValueError, match=r"more than the read-out \(feature_t, feature_block, feature_pool\)"):
        DDPMEncoder(ddpm, replace(TINY, layers_per_block=2))


def test_save_and_load_round_trip(tmp_path: Path) -> None:
    torch.manual_seed(0)
    module = get_paradigm("DM").build(TINY, num_classes=10, image_size=32)
    path = save_encoder(tmp_path / "dm.safetensors", "DM", module, TINY, num_classes=10, image_size=32)
    loaded, encoder, cfg = load_encoder(path)
    assert cfg == TINY and not any(p.requires_grad for p in loaded.parameters())
    assert encoder.randomised is True
    x = torch.rand(4, 3, 32, 32)
    module.eval()
    torch.manual_seed(7)
    reference = get_paradigm("DM").encoder(module, TINY)(x)
    torch.manual_seed(7)
    assert torch.equal(encoder(x), reference)


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"attention": [False]}, "attention"),
        ({"norm_num_groups": 12}, "norm_num_groups"),
        ({"feature_t": 1000}, "feature_t"),
        ({"feature_block": 4}, "feature_block"),
        ({"feature_pool": 0}, "feature_pool"),
        ({"beta_start": 0.5, "beta_end": 0.1}, "beta_end"),
    ],
)
def test_bad_settings_name_the_field(data: dict, field: str) -> None:
    with pytest.raises(ParamsError, match=field):
        build(DDPMConfig, data, "paradigms.DM")


def test_too_many_levels_for_the_image() -> None:
    with pytest.raises(ValueError, match="use fewer levels"):
        DiffusionModel(replace(TINY, block_out_channels=(8,) * 7, attention=(False,) * 7), 32)
