"""SimCLR views: kornia augmentations that keep images valid, draw fresh views, and pass gradients through."""

from __future__ import annotations

import pytest
import torch

from advtui.data.loaders import load_source
from advtui.paradigms.views import SimCLRViews
from advtui.catalog.training import ViewConfig
from advtui.schema import ParamsError, build

_OFF = dict(min_scale=1.0, max_scale=1.0, min_ratio=1.0, max_ratio=1.0, flip_p=0.0, jitter_p=0.0, grayscale_p=0.0)


@pytest.fixture(scope="module")
def images() -> torch.Tensor:
    return load_source("synthetic", "train", size=16, seed=0).float_images()


def test_views_keep_shape_and_range_and_differ_between_calls(images: torch.Tensor) -> None:
    torch.manual_seed(0)
    views = SimCLRViews(ViewConfig(blur_p=0.5))
    a, b = views(images), views(images)
    assert a.shape == b.shape == images.shape
    assert a.min() >= 0 and a.max() <= 1 and b.min() >= 0 and b.max() <= 1
    # two views of one image differ, and each differs from the image
    assert (a - b).flatten(1).abs().amax(1).min() > 0.05
    assert (a - images).flatten(1).abs().amax(1).min() > 0.05
    # randomness comes from torch's global RNG only: reseeding replays the same views
    torch.manual_seed(0)
    assert torch.equal(views(images), a)


def test_views_work_at_other_image_sizes() -> None:
    x = torch.rand(4, 3, 64, 48)
    out = SimCLRViews(ViewConfig(blur_p=1.0))(x)
    assert out.shape == x.shape and out.min() >= 0 and out.max() <= 1


def test_each_switch_does_what_it_says(images: torch.Tensor) -> None:
    # everything off (full-image crop at aspect 1): the identity, up to resampling round-off
    assert torch.allclose(SimCLRViews(ViewConfig(**_OFF))(images), images, atol=1e-4)
    flipped = SimCLRViews(ViewConfig(**{**_OFF, "flip_p": 1.0}))(images)
    assert torch.allclose(flipped, images.flip(3), atol=1e-4)
    grey = SimCLRViews(ViewConfig(**{**_OFF, "grayscale_p": 1.0}))(images)
    assert torch.allclose(grey[:, 0], grey[:, 1]) and torch.allclose(grey[:, 1], grey[:, 2])
    # a crop of at most a quarter of the area, resized back, magnifies: the view is smoother than the image
    torch.manual_seed(1)
    crop = SimCLRViews(ViewConfig(**{**_OFF, "min_scale": 0.1, "max_scale": 0.25}))(images)
    assert crop.diff(dim=3).abs().mean() < 0.7 * images.diff(dim=3).abs().mean()
    # jitter shifts colours without moving anything: mean colours change, the picture stays correlated
    torch.manual_seed(2)
    jittered = SimCLRViews(ViewConfig(**{**_OFF, "jitter_p": 1.0, "jitter_strength": 0.5}))(images)
    assert (jittered.mean((2, 3)) - images.mean((2, 3))).abs().mean() > 0.03
    assert _correlation(jittered, images).min() > 0.5


def _correlation(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Pearson correlation of each image of ``a`` with the same image of ``b`` over all its pixels."""
    a = a.flatten(1) - a.flatten(1).mean(1, keepdim=True)
    b = b.flatten(1) - b.flatten(1).mean(1, keepdim=True)
    return (a * b).sum(1) / (a.norm(dim=1) * b.norm(dim=1))


def test_gradients_flow_through_the_views_to_the_input(images: torch.Tensor) -> None:
    torch.manual_seed(0)
    x = images.clone().requires_grad_(True)
    views = SimCLRViews(ViewConfig(jitter_p=1.0, blur_p=1.0))
    target = torch.rand_like(images)
    ((views(x) - target) ** 2).sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    assert (x.grad.flatten(1).abs().sum(1) > 0).all()  # every image receives gradient


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"min_scale": 0.0}, "min_scale"),
        ({"min_scale": 0.9, "max_scale": 0.5}, "min_scale"),
        ({"min_ratio": 2.0, "max_ratio": 1.0}, "min_ratio"),
        ({"jitter_strength": 2.0}, "jitter_strength"),
        ({"grayscale_p": 1.5}, "grayscale_p"),
        ({"blur_p": -0.1}, "blur_p"),
    ],
)
def test_impossible_settings_name_the_field(values: dict, field: str) -> None:
    with pytest.raises(ParamsError, match=f"views.{field}"):
        build(ViewConfig, values, "views")
