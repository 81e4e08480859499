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
their eps below that, which also means an attack's clipping to [0, 1] never acts.
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
