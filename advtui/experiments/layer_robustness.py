"""E17: layer robustness (Reiichiro Nakano, Distill discussion of Ilyas et al.).

Nakano asked whether style transfer works with VGG because its *layers* are robust, rather than its predictions,
and measured, for a layer f,

    r(f) = E_x max_{||d||_2 <= eps} ||f(x + d) - f(x)||  /  E_{x, x'} ||f(x) - f(x')||,

how far a small perturbation can move the layer's output, against how far apart the outputs of two images are.
This module measures r at every block of a classifier (the outputs of its backbone's parametrised children, the
pooled representation and the logits), the inner max by L2 PGD on ||f(x + d) - f(x)||^2 from a random start (the
best iterate per point is kept), x' a random other image of the same set.

Ground truth: for a linear layer f(x) = W x (inputs away from the [0, 1] box's faces) the max is the operator norm
times eps, so r = ||W||_2 eps / E ||W (x - x')||; ``tests/test_layer_robustness.py`` checks the attack reaches it.
On the synthetic data the standard source reads the planted pattern, a perturbation of L2 norm 0.5, so its blocks
should move far within eps 0.5, the L2-robust source's (trained at eps 1.0) much less: the robust model's ratio
should be the lower one at every block.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from advtui.attacks.objectives import FeatureAlignment
from advtui.attacks.pgd import pgd
from advtui.catalog.params import LayerRobustnessParams
from advtui.data.imageset import ImageSet
from advtui.models.registry import Classifier

#: Children of a backbone that only reshape or activate: they end the block before them instead of making their own.
_PASS_THROUGH = (nn.Flatten, nn.ReLU, nn.Identity, nn.Dropout)


@dataclass(frozen=True)
class Block:
    """One block of a classifier: its name and the map from images in [0, 1] to its output."""

    name: str
    fn: Callable[[Tensor], Tensor]


def classifier_blocks(model: Classifier) -> list[Block]:
    """The blocks of ``model`` in forward order: for an ``nn.Sequential`` backbone, the output after each child that
    is not an activation or a reshape (those join the block before them; one leading joins the next), named by the
    child's index (``backbone.2``); another backbone is one block (``backbone``); then the logits (``head``)."""
    blocks: list[Block] = []
    backbone = model.backbone
    if isinstance(backbone, nn.Sequential):
        ends: list[int] = []
        for index, child in enumerate(backbone):
            if isinstance(child, _PASS_THROUGH) and ends:
                ends[-1] = index  # an activation or flatten extends the block before it
            elif not isinstance(child, _PASS_THROUGH):
                ends.append(index)
        for k, end in enumerate(ends):
            first = ends[k - 1] + 1 if k else 0
            trunk = backbone[: end + 1]
            name = f"backbone.{end}" if first == end else f"backbone.{first}-{end}"
            blocks.append(Block(name, lambda x, trunk=trunk: trunk(model.normalise(x))))
    else:
        blocks.append(Block("backbone", model.features))
    blocks.append(Block("head", model))
    return blocks


def pair_distance(fn: Callable[[Tensor], Tensor], x: Tensor, partner: Tensor) -> Tensor:
    """||f(x_i) - f(x_partner(i))|| per image (N,): how far apart the block puts two images."""
    with torch.no_grad():
        out = fn(x).flatten(1)
    return torch.linalg.vector_norm(out - out[partner], dim=1)


def max_change(fn: Callable[[Tensor], Tensor], x: Tensor, *, modules: tuple[nn.Module, ...], eps: float, steps: int,
               step_size: float, generator: torch.Generator | None = None) -> Tensor:
    """max over ||d||_2 <= eps of ||f(x + d) - f(x)|| per image (N,), as L2 PGD from a random start finds it (a
    lower bound of the true max; the best iterate per point)."""
    with torch.no_grad():
        clean = fn(x).detach()
    x_adv = pgd(FeatureAlignment(fn, clean, modules=modules), x, norm="l2", eps=eps, step_size=step_size, steps=steps,
                random_start=True, generator=generator)
    with torch.no_grad():
        return torch.linalg.vector_norm(fn(x_adv).flatten(1) - clean.flatten(1), dim=1)


def partners(n: int, seed: int) -> Tensor:
    """For each of ``n`` images another one (a random derangement: never itself), seeded."""
    if n < 2:
        raise ValueError(f"test_size: needs at least 2 images to pair, got {n}")
    gen = torch.Generator().manual_seed(seed)
    shift = torch.randint(1, n, (1,), generator=gen).item()
    order = torch.randperm(n, generator=gen)
    out = torch.empty(n, dtype=torch.int64)
    out[order] = order.roll(-int(shift))  # a cyclic shift of a random order has no fixed point
    return out


def layer_ratios(model: Classifier, images: ImageSet, params: LayerRobustnessParams, *, seed: int,
                 device: torch.device, batch_size: int = 100) -> list[dict]:
    """One row per block of ``model``: ``ratio`` r, its numerator (``max_change``, the mean over images of the
    largest output change within ``params.eps``) and denominator (``pair_distance``, mean over image pairs), the
    block's output size (``dim``)."""
    model = model.to(device).eval()
    x = images.float_images()
    partner = partners(len(x), seed)
    gen = torch.Generator(device=device).manual_seed(seed)
    rows = []
    for block in classifier_blocks(model):
        pair = pair_distance(block.fn, x.to(device), partner.to(device))
        change = torch.cat([max_change(block.fn, x[i:i + batch_size].to(device), modules=(model,), eps=params.eps,
                                       steps=params.steps, step_size=params.effective_step_size, generator=gen)
                            for i in range(0, len(x), batch_size)])
        with torch.no_grad():
            dim = block.fn(x[:1].to(device)).flatten(1).shape[1]
        rows.append({"block": block.name, "dim": int(dim), "max_change": change.mean().item(),
                     "pair_distance": pair.mean().item(), "ratio": (change.mean() / pair.mean()).item()})
    return rows


def layer_robustness(models: dict[str, Classifier], test: ImageSet, params: LayerRobustnessParams, *, seed: int,
                     device: torch.device) -> dict:
    """E17's metrics: per model of ``models`` (name -> classifier) its blocks' rows (:func:`layer_ratios`) on
    ``params.test_size`` class-balanced images of ``test`` (``model_order``: their order, as JSON files sort keys);
    ``robust_lower``: per block of the first two models,
    whether the second's ratio is the lower (the planted truth for standard vs robust_l2)."""
    images = test.select(min(params.test_size, len(test)), seed, key="e17.test_size")
    result: dict = {"models": {name: layer_ratios(model, images, params, seed=seed, device=device)
                               for name, model in models.items()},
                    "model_order": list(models), "n": len(images), "eps": params.eps, "steps": params.steps,
                    "step_size": params.effective_step_size}
    names = list(models)
    if len(names) >= 2:
        first, second = (result["models"][n] for n in names[:2])
        result["compared"] = names[:2]
        result["robust_lower"] = {a["block"]: b["ratio"] < a["ratio"] for a, b in zip(first, second)
                                  if a["block"] == b["block"]}
    return result
