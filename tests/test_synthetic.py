"""The synthetic planted-feature dataset and its ground-truth probes, checked against what was planted."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
from torch import Tensor

from advtui.data.ground_truth import colour_probe, nonrobust_probe, probe_agreement, robust_probe
from advtui.data.synthetic import class_colours, class_shapes, high_pass, make_synthetic, nonrobust_patterns, render_masks, shape_templates
from advtui.catalog.data import SyntheticConfig

CFG = SyntheticConfig()
N = 2000


@pytest.fixture(scope="module")
def natural():
    """Test-split images, and the same draws without the planted pattern / without the shape."""
    images = make_synthetic(CFG, N, seed=7, split="test")
    no_pattern = make_synthetic(replace(CFG, nonrobust_norm=0.0), N, seed=7, split="test").images
    background = make_synthetic(replace(CFG, nonrobust_norm=0.0, robust_amplitude=0.0), N, seed=7, split="test").images
    return images, no_pattern, background


@pytest.mark.parametrize(
    "field, value",
    [("num_classes", 1), ("num_classes", 99), ("robust_amplitude", -0.1), ("background_low", 0.9), ("tile", 5),
     ("nonrobust_norm", -1.0), ("wrong_shape_frac", 1.5), ("variant", "typeA"), ("shape_radius", 0.45)],
)
def test_config_rejects_impossible_values(field, value):
    with pytest.raises(ValueError, match=f"^{field}: "):
        SyntheticConfig(**{field: value})


def test_deterministic_per_seed_and_split():
    a = make_synthetic(CFG, 64, seed=3)
    b = make_synthetic(CFG, 64, seed=3)
    assert torch.equal(a.images, b.images) and torch.equal(a.labels, b.labels)
    for key in a.extras:
        assert torch.equal(a.extras[key], b.extras[key])
    assert not torch.equal(a.images, make_synthetic(CFG, 64, seed=4).images)
    assert not torch.equal(a.images, make_synthetic(CFG, 64, seed=3, split="test").images)
    assert a.images.dtype == torch.float32 and a.images.shape == (64, 3, 32, 32)
    assert a.classes == class_shapes(CFG) and len(set(a.classes)) == 10


def test_patterns_belong_to_the_config_not_the_image_seed():
    patterns = nonrobust_patterns(CFG)
    assert patterns.shape == (10, 3, 32, 32)
    assert torch.allclose(patterns.flatten(1).norm(dim=1), torch.full((10,), 0.5), atol=1e-5)
    # tiled: every tile-sized block is the same tile
    t = CFG.tile
    assert torch.allclose(patterns[..., :t, :t], patterns[..., t : 2 * t, t : 2 * t])
    other = nonrobust_patterns(replace(CFG, pattern_seed=1))
    assert not torch.allclose(patterns, other)
    for seed in (0, 1):
        a = make_synthetic(CFG, 32, seed=seed)
        planted = a.images - make_synthetic(replace(CFG, nonrobust_norm=0.0), 32, seed=seed).images
        assert torch.allclose(planted, patterns[a.labels], atol=1e-5)  # the label's pattern
        assert torch.allclose(planted, patterns[a.extras["pattern_class"]], atol=1e-5)  # as the ground truth says


def test_labels_balanced_and_wrong_shape_fraction(natural):
    images, _, _ = natural
    assert torch.equal(images.labels.bincount(), torch.full((10,), N // 10))
    wrong = (images.extras["shape_class"] != images.labels).float().mean().item()
    assert 0.07 < wrong < 0.13


def test_part_norms_and_clipping(natural):
    images, no_pattern, background = natural
    nonrobust = (images.images - no_pattern).flatten(1).norm(dim=1)
    assert torch.allclose(nonrobust, torch.full_like(nonrobust, CFG.nonrobust_norm), rtol=0.02)
    robust = (no_pattern - background).flatten(1).norm(dim=1)
    assert robust.min().item() >= 5 * CFG.nonrobust_norm
    clipped = ((images.images <= 0) | (images.images >= 1)).float().mean().item()
    assert clipped < 0.01


def test_probes_agree_with_the_truth_on_natural_data(natural):
    images, no_pattern, _ = natural
    shape_read = robust_probe(images.images, CFG)
    assert (shape_read == images.extras["shape_class"]).float().mean() >= 0.95
    wrong = (images.extras["shape_class"] != images.labels).float().mean().item()
    assert abs((shape_read == images.labels).float().mean().item() - (1 - wrong)) < 0.03
    assert (nonrobust_probe(images.images - no_pattern, CFG) == images.labels).float().mean() >= 0.99
    # through the background and the shape's edges too (measured 1.00)
    assert (nonrobust_probe(images.images, CFG) == images.labels).float().mean() >= 0.9
    agreement = probe_agreement(images.images, images.labels, CFG)
    assert agreement["nonrobust_agreement"] >= 0.9 and 0.85 <= agreement["robust_agreement"] <= 0.95


def test_nonrobust_probe_reads_an_added_target_pattern_under_noise():
    gen = torch.Generator().manual_seed(0)
    target = torch.randint(0, 10, (500,), generator=gen)
    noise = torch.randn(500, 3, 32, 32, generator=gen)
    noise = noise / noise.flatten(1).norm(dim=1).view(-1, 1, 1, 1) * CFG.nonrobust_norm
    assert (nonrobust_probe(nonrobust_patterns(CFG)[target] + noise, CFG) == target).float().mean() >= 0.95
    # a pattern at another tile shift is still found (max over shifts)
    shifted = torch.roll(nonrobust_patterns(CFG)[target], shifts=(3, 5), dims=(2, 3))
    assert (nonrobust_probe(shifted, CFG) == target).float().mean() >= 0.99
    # pure noise has no preferred class
    reads = nonrobust_probe(noise, CFG).bincount(minlength=10)
    assert reads.max() < 0.25 * 500


def test_robust_probe_tolerates_noise_faintness_and_missing_parts(natural):
    images, _, background = natural
    shape_class = images.extras["shape_class"]
    gen = torch.Generator().manual_seed(1)
    noisy = images.images + 0.1 * torch.randn(images.images.shape, generator=gen)
    assert (robust_probe(noisy, CFG) == shape_class).float().mean() >= 0.8
    # half-contrast shapes with a quarter of 4x4 blocks missing, plus noise: like an inverted (D_R) image
    keep = (torch.rand(N, 1, 8, 8, generator=gen) < 0.75).float().repeat_interleave(4, 2).repeat_interleave(4, 3)
    partial = background + 0.5 * (images.images - background) * keep + 0.1 * torch.randn(images.images.shape, generator=gen)
    assert (robust_probe(partial, CFG) == shape_class).float().mean() >= 0.85


def test_probe_agreement_scores_what_a_construction_added(natural):
    images, _, _ = natural
    target = (images.labels + 1) % 10
    constructed = images.images + nonrobust_patterns(CFG)[target]
    with_starts = probe_agreement(constructed, target, CFG, starts=images.images)
    assert with_starts["nonrobust_agreement"] >= 0.99
    assert with_starts["robust_agreement"] <= 0.1
    with pytest.raises(ValueError, match="^starts: "):
        probe_agreement(constructed, target, CFG, starts=images.images[:10])


def test_entangled_variant_carries_its_pattern_on_the_moving_shape():
    cfg = replace(CFG, variant="entangled")
    a = make_synthetic(cfg, 400, seed=2)
    assert torch.equal(a.images, make_synthetic(cfg, 400, seed=2).images)
    part = a.images - make_synthetic(replace(cfg, nonrobust_norm=0.0), 400, seed=2).images
    assert torch.allclose(part.flatten(1).norm(dim=1), torch.full((400,), 0.5), rtol=0.02)
    masks = render_masks(cfg, a.extras["shape_class"], a.extras["center"], a.extras["scale"])
    # the pattern lies on the outline: nothing farther than 4 px from the drawn shape's edge
    near = torch.nn.functional.max_pool2d(masks[:, None], 9, stride=1, padding=4)[:, 0]
    inner = -torch.nn.functional.max_pool2d(-masks[:, None], 9, stride=1, padding=4)[:, 0]
    same = a.extras["shape_class"] == a.labels
    edge = (near - inner)[same]
    assert part[same].abs().amax(dim=1)[edge == 0].max() < 1e-3
    # the shapes do move, and the outline goes with them: its energy is centred on each shape
    assert a.extras["center"].std(dim=0).min() > 1.0
    energy = part.square().sum(dim=1)
    grid = torch.arange(32.0)
    row = (energy.sum(dim=2) * grid).sum(dim=1) / energy.sum(dim=(1, 2))
    assert torch.corrcoef(torch.stack([row, a.extras["center"][:, 0]]))[0, 1] > 0.8
    assert (nonrobust_probe(part, cfg) == a.labels).float().mean() >= 0.99
    assert (robust_probe(a.images, cfg) == a.extras["shape_class"]).float().mean() >= 0.95
    patterns = nonrobust_patterns(cfg)
    assert torch.allclose(patterns.flatten(1).norm(dim=1), torch.full((10,), 0.5), atol=1e-5)


def test_entangled_pattern_is_a_small_component_of_its_own_shape():
    """Type B by construction: where the shape is the label's, the planted part points along the shape's own fine
    structure, so the pattern probe reads a whole shape's class on images without any planted part; on the default
    variant (Type C) the tile probe reads such images at chance."""
    for variant, low, high in (("entangled", 0.9, 1.01), ("default", 0.0, 0.25)):
        cfg = replace(CFG, variant=variant)
        shapes = make_synthetic(replace(cfg, nonrobust_norm=0.0), 300, seed=3)
        read = (nonrobust_probe(shapes.images, cfg) == shapes.extras["shape_class"]).float().mean()
        assert low <= read <= high, (variant, read)


def test_other_pattern_seed_and_amplitudes_still_read_correctly():
    cfg = SyntheticConfig(pattern_seed=3, robust_amplitude=0.2, nonrobust_norm=0.3, num_classes=7)
    images = make_synthetic(cfg, 300, seed=0)
    assert images.num_classes == 7 and images.classes != class_shapes(CFG)[:7]
    agreement = probe_agreement(images.images, images.extras["shape_class"], cfg)
    assert agreement["robust_agreement"] >= 0.95


CLASS_CFG = SyntheticConfig(colour="class")


def test_class_colours_are_deterministic_and_well_separated():
    colours = class_colours(CLASS_CFG)
    assert colours.shape == (10, 3) and torch.equal(colours, class_colours(replace(CLASS_CFG, pattern_seed=0)))
    assert torch.allclose(colours.abs().amax(dim=1), torch.ones(10))
    unit = torch.nn.functional.normalize(colours, dim=1)
    cosine = unit @ unit.T - 2 * torch.eye(10)
    assert cosine.max() < 0.45  # at least 63 degrees apart
    assert not torch.equal(colours, class_colours(replace(CLASS_CFG, pattern_seed=1)))
    with pytest.raises(ValueError, match="^colour_jitter: "):
        SyntheticConfig(colour_jitter=-0.1)
    with pytest.raises(ValueError, match="^colour: "):
        SyntheticConfig(colour="label")


def test_class_colour_mode_changes_only_the_colour():
    a = make_synthetic(CLASS_CFG, 300, seed=5)
    b = make_synthetic(CFG, 300, seed=5)
    assert torch.equal(a.images, make_synthetic(CLASS_CFG, 300, seed=5).images)
    for key in ("shape_class", "pattern_class", "center", "scale"):
        assert torch.equal(a.extras[key], b.extras[key])
    assert torch.equal(a.labels, b.labels)
    no_shape = replace(CLASS_CFG, robust_amplitude=0.0)
    assert torch.equal(make_synthetic(no_shape, 300, seed=5).images, make_synthetic(replace(CFG, robust_amplitude=0.0), 300, seed=5).images)
    colour = a.extras["colour"]
    assert torch.allclose(colour.abs().amax(dim=1), torch.ones(300))
    # each image's colour is its shape class's base colour plus jitter
    unit = torch.nn.functional.normalize(class_colours(CLASS_CFG), dim=1)
    nearest = (torch.nn.functional.normalize(colour, dim=1) @ unit.T).argmax(dim=1)
    assert (nearest == a.extras["shape_class"]).float().mean() >= 0.97
    assert (colour - class_colours(CLASS_CFG)[a.extras["shape_class"]]).abs().max() > 0.05


@pytest.fixture(scope="module")
def class_natural():
    images = make_synthetic(CLASS_CFG, N, seed=7, split="test")
    background = make_synthetic(replace(CLASS_CFG, robust_amplitude=0.0), N, seed=7, split="test").images
    return images, background


def test_colour_probe_reads_the_shape_class_colour(class_natural):
    images, _ = class_natural
    shape_class = images.extras["shape_class"]
    assert (colour_probe(images.images, CLASS_CFG) == shape_class).float().mean() >= 0.95  # measured 1.00
    gen = torch.Generator().manual_seed(2)
    noisy = images.images + 0.1 * torch.randn(images.images.shape, generator=gen)
    assert (colour_probe(noisy, CLASS_CFG) == shape_class).float().mean() >= 0.9  # measured 1.00
    # a shape of class a painted with class b's colour: the colour probe reads b, the shape probe a
    other = (shape_class + 3) % 10
    repainted = images.images + 0.25 * render_masks(
        CLASS_CFG, shape_class, images.extras["center"], images.extras["scale"]
    )[:, None] * (class_colours(CLASS_CFG)[other] - images.extras["colour"])[:, :, None, None]
    assert (colour_probe(repainted, CLASS_CFG) == other).float().mean() >= 0.9
    assert (robust_probe(repainted, CLASS_CFG) == shape_class).float().mean() >= 0.9
    agreement = probe_agreement(images.images, images.labels, CLASS_CFG)
    assert 0.85 <= agreement["colour_agreement"] <= 0.95 and 0.85 <= agreement["robust_agreement"] <= 0.95
    assert "colour_agreement" not in probe_agreement(images.images[:10], images.labels[:10], CFG)
    with pytest.raises(ValueError, match="^colour: "):
        colour_probe(images.images, CFG)


def _smooth_noise(n: int, sigma: float, gen: torch.Generator) -> Tensor:
    raw = torch.randn(n, 32, 32, generator=gen)
    smooth = raw - high_pass(raw, sigma=sigma)
    return smooth / smooth.flatten(1).std(dim=1).view(-1, 1, 1)


def test_colour_probe_reads_shapeless_colour_patches(class_natural):
    """Colour on no class shape: one irregular blob, or scattered patches (like inverted images' texture)."""
    _, background = class_natural
    gen = torch.Generator().manual_seed(3)
    target = torch.randint(0, 10, (N,), generator=gen)
    grid = torch.arange(32.0)
    center = 15.5 + (torch.rand(N, 2, generator=gen) * 2 - 1) * 3
    width = 4 + 2 * torch.rand(N, 1, 1, generator=gen)
    envelope = torch.exp(-((grid[:, None] - center[:, 0, None, None]) ** 2 + (grid - center[:, 1, None, None]) ** 2) / (2 * width**2))
    blob = ((envelope + 0.25 * _smooth_noise(N, 2.0, gen) - 0.5) * 4).clamp(0, 1)
    texture_field = _smooth_noise(N, 1.5, gen)
    patches = ((texture_field - texture_field.flatten(1).quantile(0.85, dim=1).view(-1, 1, 1)) * 3).clamp(0, 1) * (envelope > 0.05)
    colour = class_colours(CLASS_CFG)[target][:, :, None, None]
    for mask, amplitude, bound in ((blob, 0.25, 0.95), (patches, 0.2, 0.9)):  # measured 0.99, 0.99
        x = (background + amplitude * colour * mask[:, None] + 0.05 * torch.randn(background.shape, generator=gen)).clamp(0, 1)
        assert (colour_probe(x, CLASS_CFG) == target).float().mean() >= bound
    # no colour patch: no preferred class
    reads = colour_probe(background + 0.05 * torch.randn(background.shape, generator=gen), CLASS_CFG).bincount(minlength=10)
    assert reads.max() < 0.3 * N
