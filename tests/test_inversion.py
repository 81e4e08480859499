"""Representation inversion on linear, invertible representations (exact answers known)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from advtui.attacks.inversion import invert, noise_starts, pick_image_starts, pick_other_starts, pick_starts

SHAPE = (3, 4, 4)
D = 48



class LinearFeatures(nn.Module):
    """features(x) = M flatten(x), with M square and invertible; a BatchNorm to check eval mode."""

    def __init__(self, matrix: torch.Tensor) -> None:
        super().__init__()
        self.matrix = nn.Parameter(matrix)
        self.norm = nn.BatchNorm1d(D, affine=False)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        # In eval mode with fresh statistics BatchNorm is (nearly) the identity; in train mode it is not.
        return self.norm(x.flatten(1) @ self.matrix.T)


def orthogonal(seed: int) -> torch.Tensor:
    q, _ = torch.linalg.qr(torch.randn(D, D, generator=torch.Generator().manual_seed(seed)))
    return q


def sources(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = 0.1 + 0.8 * torch.rand((n, *SHAPE), generator=g)
    labels = torch.randint(0, 4, (n,), generator=g)
    return x, labels


def test_unbounded_inversion_recovers_the_source_representation() -> None:
    # Well conditioned but not orthogonal (singular values 0.5 .. 2), so the path is not a straight line.
    matrix = orthogonal(0) @ torch.diag(torch.linspace(0.5, 2.0, D)) @ orthogonal(1)
    model = LinearFeatures(matrix).train()
    x_src, labels = sources(64, seed=2)
    with torch.no_grad():
        model.eval()
        target = model.features(x_src)
        model.train()
    idx = pick_other_starts(labels, torch.Generator().manual_seed(3))
    x_start = x_src[idx]
    x_inv = invert(model.features, x_start, target, steps=400, step_size=0.02)
    assert model.training and model.norm.training  # restored afterwards
    assert not model.norm.running_mean.any()  # ran in eval mode: statistics untouched
    with torch.no_grad():
        model.eval()
        got = model.features(x_inv)
    start_err = (model.features(x_start) - target).norm(dim=1) / target.norm(dim=1)
    err = (got - target).norm(dim=1) / target.norm(dim=1)
    assert start_err.min() > 0.2
    assert err.max() < 0.02
    assert (x_inv - x_src).flatten(1).norm(dim=1).max() < 0.05  # invertible: the image comes back too


def test_bounded_inversion_stays_in_the_ball_and_reaches_its_optimum() -> None:
    # Orthogonal map: the best point of the ball is x_start moved eps straight towards x_src (inside the
    # box, since it lies on the segment between two images in [0, 1]).
    model = LinearFeatures(orthogonal(4)).eval()
    x_src, labels = sources(64, seed=5)
    target = model.features(x_src).detach()
    x_start = x_src[pick_other_starts(labels, torch.Generator().manual_seed(6))]
    eps = 0.5
    x_inv = invert(model.features, x_start, target, steps=100, step_size=0.05, eps=eps)
    moved = (x_inv - x_start).flatten(1).norm(dim=1)
    assert (moved <= eps + 1e-5).all()
    gap = (x_src - x_start).flatten(1)
    assert gap.norm(dim=1).min() > eps
    optimum = x_start.flatten(1) + eps * gap / gap.norm(dim=1, keepdim=True)
    assert (x_inv.flatten(1) - optimum).norm(dim=1).max() < 0.02


def test_unbounded_inversion_finds_the_best_image_in_the_box() -> None:
    # Orthogonal map, so ||g(x) - g(s)|| = ||x - s||: for a target image s with pixels outside [0, 1], the best
    # image in the box is s clipped to it (the distance splits over pixels); without the clip an unbounded
    # inversion would reach s itself.
    model = LinearFeatures(orthogonal(9)).eval()
    g = torch.Generator().manual_seed(10)
    s = 2 * torch.rand((16, *SHAPE), generator=g) - 0.5  # a quarter of its pixels below 0, a quarter above 1
    target = model.features(s).detach()
    x_inv = invert(model.features, 0.3 + 0.4 * torch.rand((16, *SHAPE), generator=g), target, steps=200, step_size=0.05)
    assert x_inv.min() >= 0 and x_inv.max() <= 1
    assert (x_inv - s.clamp(0, 1)).flatten(1).norm(dim=1).max() < 0.02


def test_inversion_with_a_plain_callable_uses_given_modules() -> None:
    model = LinearFeatures(orthogonal(7)).train()
    x_src, labels = sources(8, seed=8)
    with torch.no_grad():
        model.eval()
        target = model.features(x_src)
        model.train()
    modes: list[bool] = []

    def feature_fn(x: torch.Tensor) -> torch.Tensor:
        modes.append(model.training)
        return model.features(x)

    invert(feature_fn, x_src.flip(0), target, steps=3, step_size=0.05, modules=[model])
    assert modes and not any(modes)
    assert model.training


def test_pick_other_starts_picks_uniformly_among_other_classes() -> None:
    labels = torch.tensor([0, 0, 0, 1, 1, 2, 0, 2, 1, 0])
    counts = torch.zeros(10, 10)
    g = torch.Generator().manual_seed(0)
    for _ in range(400):
        idx = pick_other_starts(labels, g)
        assert idx.dtype == torch.long and idx.shape == labels.shape
        assert (labels[idx] != labels).all()
        counts[torch.arange(10), idx] += 1
    other = labels[:, None] != labels[None, :]
    assert (counts[~other] == 0).all()
    # Every other-class image is drawn, at roughly 1 / (number of other-class images) each.
    expected = 400 / other.sum(1, keepdim=True).float()
    assert ((counts - expected).abs()[other] < 0.5 * expected.expand(-1, 10)[other]).all()
    same = pick_other_starts(labels, torch.Generator().manual_seed(1))
    assert torch.equal(same, pick_other_starts(labels, torch.Generator().manual_seed(1)))


def test_pick_other_starts_needs_two_classes() -> None:
    with pytest.raises(ValueError, match="^labels:"):
        pick_other_starts(torch.zeros(5, dtype=torch.long))


def test_image_starts_are_label_independent_other_images() -> None:
    """The papers' start (Ilyas: "chosen independently of the label"; Li Table 3: "randomly drawn different
    images"): never the point itself, and of the point's own class at about that class's frequency among the
    other images, where other-class starts never are."""
    labels = torch.arange(1000) % 4  # four classes of 250
    labels[:100] = 0  # class 0 now holds 325 of 1000 images
    g = torch.Generator().manual_seed(0)
    draws = torch.stack([pick_image_starts(len(labels), g) for _ in range(40)])  # 40,000 starts
    assert draws.dtype == torch.long and draws.shape == (40, 1000)
    assert (draws != torch.arange(1000)).all() and draws.min() >= 0 and draws.max() < 1000
    same = labels[draws] == labels
    for c in range(4):
        own = labels == c
        expected = (own.sum().item() - 1) / 999  # the other images of the point's own class
        assert same[:, own].float().mean().item() == pytest.approx(expected, abs=0.01), c
    assert (labels[pick_starts("other", labels, g)] != labels).all()  # the option keeps other classes only
    assert torch.equal(pick_image_starts(1000, torch.Generator().manual_seed(5)),
                       pick_image_starts(1000, torch.Generator().manual_seed(5)))


def test_start_kinds_and_their_errors() -> None:
    labels = torch.tensor([0, 1, 0, 1])
    assert torch.equal(pick_starts("noise", labels), torch.full((4,), -1))
    with pytest.raises(ValueError, match="^start: unknown start 'random'; use one of image, other, noise$"):
        pick_starts("random", labels)
    with pytest.raises(ValueError, match="^n: 1 image"):
        pick_image_starts(1)
    assert torch.equal(pick_image_starts(2), torch.tensor([1, 0]))


def test_noise_starts() -> None:
    a = noise_starts(6, SHAPE, torch.Generator().manual_seed(0))
    b = noise_starts(6, SHAPE, torch.Generator().manual_seed(0))
    assert a.shape == (6, *SHAPE) and a.dtype == torch.float32
    assert torch.equal(a, b)
    # uniform on [0, 1] (Ilyas's noise start): every tenth of the range holds a tenth of the pixels, none outside
    many = noise_starts(1000, SHAPE, torch.Generator().manual_seed(1))
    share = torch.histc(many, bins=10, min=0.0, max=1.0) / many.numel()
    assert share.sum() == pytest.approx(1.0) and (share - 0.1).abs().max() < 0.005
