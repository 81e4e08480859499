"""Linear classifiers whose minimal adversarial distance is known in closed form, for testing attacks.

The model is `flatten + Linear`: logits z = W x + b. Class j beats the label y exactly on the half-space
(w_j - w_y) . x + b_j - b_y > 0, so by Hoelder's inequality the smallest perturbation (in norm p) that
reaches its boundary has size

    (z_y - z_j) / ||w_y - w_j||_q,    q the dual exponent of p (l2 -> 2, linf -> 1),

and the untargeted minimal distance to misclassification is the minimum of that over j != y.

This ignores the [0, 1] image box. It does not bind for `interior_points` (every pixel in [0.3, 0.7]):
the minimising perturbation moves no pixel by more than its size (for linf each pixel moves by exactly
that much; for l2 no coordinate exceeds the l2 norm), so whenever the distance is below 0.3 the nearest
boundary point lies inside the box and the unconstrained answer is the constrained one. Tests keep
their eps below that, which also means an attack's clipping to [0, 1] never acts there.

Where the box does bind (`corner_points`), linf still has a closed form: the Linf ball intersected with the
box is a product of intervals, and a margin linear in x is smallest at one corner of it, each pixel moved
to whichever end of its interval lowers the margin (`box_linf_margin`). `assert_linf_box_ground_truth`
checks an attack's output against it.
"""

from __future__ import annotations

import math

import torch
from torch import nn

DUAL = {"l2": 2, "linf": 1}  # the dual norm's p for each attack norm


def linear_model(shape: tuple[int, ...], n_classes: int, seed: int, scale: float = 1.0) -> nn.Sequential:
    """flatten + Linear on images of `shape`, Gaussian weights times `scale`.

    The bias puts every decision boundary through (near) the centre of the [0, 1] box, so many interior
    points lie close to one; a larger `scale` makes the softmax sharper without moving the boundaries.
    """
    g = torch.Generator().manual_seed(seed)
    d = math.prod(shape)
    lin = nn.Linear(d, n_classes)
    with torch.no_grad():
        lin.weight.copy_(torch.randn(n_classes, d, generator=g) * scale)
        lin.bias.copy_(-(lin.weight @ torch.full((d,), 0.5)) + 0.1 * scale * torch.randn(n_classes, generator=g))
    return nn.Sequential(nn.Flatten(), lin)


def interior_points(n: int, shape: tuple[int, ...], seed: int) -> torch.Tensor:
    """n images of `shape` with every pixel uniform in [0.3, 0.7], at least 0.3 from the box's faces."""
    return 0.3 + 0.4 * torch.rand((n, *shape), generator=torch.Generator().manual_seed(seed))


def logits_of(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The model's logits, without building a graph."""
    with torch.no_grad():
        return model(x)


def predict(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The model's predicted classes."""
    return logits_of(model, x).argmax(1)


def hyperplane_distance(
    model: nn.Sequential, x: torch.Tensor, y: torch.Tensor, other: torch.Tensor, norm: str
) -> torch.Tensor:
    """Distance (in `norm`) from x to the hyperplane where class `other` ties with class y.

    Positive where y beats `other` at x; the closed form above, so exact only while the box does not bind.
    """
    w = model[1].weight.detach()
    logits = logits_of(model, x)
    margin = logits.gather(1, y[:, None]).squeeze(1) - logits.gather(1, other[:, None]).squeeze(1)
    return margin / (w[y] - w[other]).norm(p=DUAL[norm], dim=1)


def untargeted_distance(model: nn.Sequential, x: torch.Tensor, y: torch.Tensor, norm: str) -> torch.Tensor:
    """Exact minimal `norm` distance to misclassification: min over j != y of `hyperplane_distance` to j."""
    n_classes = model[1].out_features
    dists = torch.stack(
        [hyperplane_distance(model, x, y, torch.full_like(y, j), norm) for j in range(n_classes)], dim=1
    )
    dists[torch.arange(len(y)), y] = math.inf
    return dists.min(1).values


def perturbation_norm(x_adv: torch.Tensor, x: torch.Tensor, norm: str) -> torch.Tensor:
    """Per-example `norm` size of x_adv - x."""
    delta = (x_adv - x).flatten(1)
    return delta.norm(dim=1) if norm == "l2" else delta.abs().amax(1)


def corner_points(n: int, shape: tuple[int, ...], seed: int) -> torch.Tensor:
    """n images of `shape` with every pixel 0 or 1 (corners of the box): each pixel can move one way only, so
    the box takes away about half of any linf budget."""
    return torch.rand((n, *shape), generator=torch.Generator().manual_seed(seed)).round()


def box_linf_margin(model: nn.Sequential, x: torch.Tensor, y: torch.Tensor, eps: float) -> torch.Tensor:
    """Exact smallest margin z_y - z_j, over every other class j and every point of the Linf ball of radius
    `eps` around x that lies in the [0, 1] box: negative exactly where that set holds a misclassified point.

    For each j the margin falls by |v_i| per unit a pixel moves against v = w_y - w_j, as far as the box
    lets it: min(eps, x_i) down where v_i > 0, min(eps, 1 - x_i) up where v_i < 0.
    """
    w = model[1].weight.detach()
    logits = logits_of(model, x)
    z = x.flatten(1)
    margins = []
    for j in range(model[1].out_features):
        v = w[y] - w[j]
        room = torch.where(v > 0, z, 1 - z).clamp(max=eps)
        margin = logits.gather(1, y[:, None]).squeeze(1) - logits[:, j] - (v.abs() * room).sum(1)
        margins.append(torch.where(y == j, torch.full_like(margin, math.inf), margin))
    return torch.stack(margins, 1).min(1).values


def assert_linf_box_ground_truth(
    model: nn.Sequential, x: torch.Tensor, y: torch.Tensor, eps: float, x_adv: torch.Tensor
) -> None:
    """An untargeted Linf attack's images `x_adv` at radius `eps` on `corner_points`: valid images in the ball, no
    point broken that the box-aware closed form says cannot be, every point broken that it can be with 5% less
    budget, and enough points kept safe by the box alone (breakable were the box ignored) for that to show."""
    assert x_adv.min() >= 0 and x_adv.max() <= 1
    assert (perturbation_norm(x_adv, x, "linf") <= eps + 1e-5).all()
    broken = predict(model, x_adv) != y
    safe = box_linf_margin(model, x, y, eps) > 0
    assert not broken[safe].any()
    assert broken[box_linf_margin(model, x, y, eps / 1.05) < 0].float().mean() >= 0.99
    assert (safe & (untargeted_distance(model, x, y, "linf") < eps / 1.05)).sum() >= 0.1 * len(x)
