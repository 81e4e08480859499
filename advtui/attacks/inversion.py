"""Representation inversion (DESIGN E2, E9): find an image whose representation matches a target's.

min_x ||g(x) - g(x_src)||_2 by L2-normalised gradient steps from a start image that is *not* the
source (a random other image, of any class or of another class, or noise), optionally inside an L2 ball
around that start, with x kept in [0, 1]. It is `pgd` with the `RepresentationDistance` objective and no
random start.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn

from advtui.attacks.objectives import RepresentationDistance
from advtui.attacks.pgd import pgd
from advtui.catalog.attacks import STARTS


def invert(
    feature_fn: Callable[[Tensor], Tensor],
    x_start: Tensor,
    target_repr: Tensor,
    *,
    steps: int,
    step_size: float,
    eps: float | None = None,
    modules: Sequence[nn.Module] | None = None,
) -> Tensor:
    """Move each start image until its representation is as close as possible to its target's.

    Args:
        feature_fn: images (N, C, H, W) -> representations (N, D) (e.g. `model.features`).
        x_start: start images in [0, 1] (another image per point, or noise; never the source).
        target_repr: representations to match (N, D), usually `feature_fn(x_src)` computed beforehand.
        steps: gradient steps (Li Table 3: 1000 for D_R and D_NR, 10000 from noise).
        step_size: absolute L2 step in pixel units (Li: 1.0 robust, 0.1 non-robust).
        eps: radius of the L2 ball around x_start the result must stay in; None = unbounded.
        modules: networks `feature_fn` runs, put in eval mode with parameter grads off during the
            inversion; inferred when `feature_fn` is a module or a bound method of one.

    Returns:
        The inverted images (N, C, H, W) in [0, 1]: per point the iterate with the smallest distance.
    """
    objective = RepresentationDistance(feature_fn, target_repr.detach(), modules=modules)
    return pgd(
        objective, x_start,
        norm="l2", eps=eps, step_size=step_size, steps=steps, random_start=False,
    )


def pick_image_starts(n: int, generator: torch.Generator | None = None) -> Tensor:
    """For each of ``n`` points i, the index j of a random *other* image (j != i), whatever its label.

    j is uniform over the n - 1 other images, drawn independently per point (with replacement) and
    independently of the labels: the start of Ilyas et al. ("a different image, chosen independently of
    the label") and Li et al. (Table 3: "randomly drawn different images in the dataset"). A start then
    shares the source's class at about that class's frequency, so the start's robust features are
    uncorrelated with the assigned label, as those papers intend.
    """
    if n < 2:
        raise ValueError(f"n: {n} image(s) leave no other image to start from; construct from at least two images")
    u = torch.rand(n, generator=generator, device=generator.device if generator is not None else "cpu").cpu()
    # a rank among the n - 1 others, then skip over the point itself
    rank = torch.clamp((u * (n - 1)).long(), max=n - 2)
    return rank + (rank >= torch.arange(n)).long()


def pick_other_starts(labels: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """For each point i, the index j of a random image of another class (labels[j] != labels[i]).

    j is uniform over all images whose label differs from labels[i], drawn independently per point
    (with replacement: two points may share a start). advtui's variant of the papers' "random other
    image" start, restricted to other classes so that a start never carries the source's class features;
    it makes the start's robust features anti-correlated with the assigned label (DESIGN 7).
    """
    labels = labels.detach().cpu()
    n = labels.shape[0]
    order = torch.argsort(labels, stable=True)
    classes, counts = torch.unique(labels, return_counts=True)
    if classes.numel() < 2:
        raise ValueError("labels: all points share one class; other-class starts need at least two classes")
    # Indices of `order` split into class blocks: draw a rank among the n - count(c) other-class slots
    # and skip over the block of the point's own class.
    offsets = torch.cumsum(counts, 0) - counts
    block = torch.searchsorted(classes, labels)
    own_start, own_count = offsets[block], counts[block]
    u = torch.rand(n, generator=generator, device=generator.device if generator is not None else "cpu")
    rank = torch.clamp((u.cpu() * (n - own_count)).long(), max=n - own_count - 1)
    rank = torch.where(rank >= own_start, rank + own_count, rank)
    return order[rank]


def pick_starts(start: str, labels: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """The start index of every point under start kind ``start`` (``STARTS``): 'image' (a random other
    image, any class), 'other' (a random image of another class) or 'noise' (-1 for every point: the
    caller draws noise with :func:`noise_starts`)."""
    if start == "image":
        return pick_image_starts(len(labels), generator)
    if start == "other":
        return pick_other_starts(labels, generator)
    if start == "noise":
        return torch.full((len(labels),), -1, dtype=torch.long)
    raise ValueError(f"start: unknown start {start!r}; use one of {', '.join(STARTS)}")


def noise_starts(
    n: int,
    shape: Sequence[int],
    generator: torch.Generator | None = None,
    device: torch.device | str = "cpu",
) -> Tensor:
    """`n` start images of `shape` (C, H, W), uniform noise in [0, 1] (Ilyas et al.'s noise start)."""
    gen_device = generator.device if generator is not None else device
    return torch.rand((n, *shape), generator=generator, device=gen_device).to(device)
