"""E14: robust feature leakage in D_rand (Goh, Distill discussion of Ilyas et al.).

D_rand relabels each image with a uniformly random target after a small targeted attack. Its robust features
(the image's own class) are independent of the assigned label, so anything a model learns from them is
chance, unless the attack, small as it is, *adds* robust features of the target: leakage. D_det assigns y+1,
so its robust features point to the old class and mislead (Ilyas et al.'s control for leakage).

Two measurements:

- synthetic data: the ground-truth shape probe (:mod:`advtui.data.synthetic`'s planted robust feature) read on
  the relabelled images, its agreement with the assigned label minus chance (1/C): D_rand ~0, D_det below 0
  (the shape keeps the old class, which is never the assigned one). Beside it, the same agreement on the
  start images: what the attack itself changed (``leakage``, ~0 when eps is far below the shape's norm).
- any data (Goh's lower bound): a linear model adversarially trained on natural images (L2 0.25) spans robust
  linear features with its C weight vectors; a linear classifier on those C features alone, trained on
  D_rand's (D_det's) assigned labels and tested on natural data, scores above chance only if the set's robust
  linear features carry its labels.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import torch
from torch import nn

from advtui.catalog.data import DataParams
from advtui.catalog.params import ConstructParams, LeakageParams
from advtui.data.ground_truth import robust_probe
from advtui.data.imageset import ImageSet
from advtui.experiments.common import natural_split
from advtui.experiments.construct import load_constructed, planned_sources, source_images
from advtui.models.normalise import CIFAR10_MEAN, CIFAR10_STD
from advtui.models.registry import Classifier
from advtui.paradigms.supervised import accuracy, train_classifier
from advtui.progress import ProgressFn
from advtui.runtime import pick_device, seed_everything

#: The relabelled sets compared, with what the planted truth expects of their robust features' excess agreement.
LEAKAGE_SETS: dict[str, str] = {"D_rand": "~0 (random labels: robust features independent of them)",
                                "D_det": "< 0 (labels y+1: robust features point to y)"}


def linear_classifier(images: ImageSet) -> Classifier:
    """A linear model on the (normalised) pixels of ``images``: logits = W x + b."""
    size = int(images.images.shape[-1])
    dim = int(images.images[0].numel())
    return Classifier(nn.Flatten(), dim, images.num_classes, arch="linear", img_size=size, mean=CIFAR10_MEAN,
                      std=CIFAR10_STD)


def restricted_classifier(robust: Classifier) -> Classifier:
    """A linear classifier that sees an image only through ``robust``'s C weight vectors (frozen): logits =
    V (W x) + c, V and c trained. Same normalisation as ``robust``."""
    weights = robust.head.weight.detach()
    projection = nn.Linear(weights.shape[1], weights.shape[0], bias=False)
    projection.weight.data.copy_(weights)
    projection.requires_grad_(False)
    return Classifier(nn.Sequential(nn.Flatten(), projection), weights.shape[0], robust.num_classes,
                      arch="linear_restricted", img_size=robust.img_size, mean=CIFAR10_MEAN, std=CIFAR10_STD)


def probe_leakage(data: ImageSet, starts: torch.Tensor, synthetic) -> dict[str, float]:
    """The shape probe's agreement with ``data``'s assigned labels on the relabelled images and on their start
    images, their excess over chance (1/C), and the difference (what the attack added)."""
    chance = 1.0 / data.num_classes
    agreement = (robust_probe(data.float_images(), synthetic) == data.labels).float().mean().item()
    before = (robust_probe(starts, synthetic) == data.labels).float().mean().item()
    source = data.extras.get("source_labels")
    row = {"robust_agreement": agreement, "start_robust_agreement": before, "excess_over_chance": agreement - chance,
           "leakage": agreement - before}
    if source is not None:  # D_det: the shape still reads the class the image came from
        row["source_robust_agreement"] = (robust_probe(data.float_images(), synthetic) == source).float().mean().item()
    return row


def robust_feature_leakage(
    *, sets: dict[str, Path], params: LeakageParams, construct: ConstructParams, data: DataParams, seed: int,
    device: str, checkpoints: list[Path], on_progress: ProgressFn | None = None, progress: bool = True,
) -> dict:
    """E14's metrics for the constructed ``sets`` (name -> file; D_rand, D_det): per set the linear lower bound
    (``linear_bound_acc`` on natural test data and its excess over chance) and on synthetic data the shape probe's
    agreements; and the adversarially trained linear model's own natural test accuracy. ``checkpoints``: one
    resumable training checkpoint for the linear model and one per set, in that order."""
    dev = pick_device(device)
    train, test = natural_split(data, "train", seed), natural_split(data, "test", seed)
    seed_everything(seed)
    robust = linear_classifier(train)
    train_classifier(robust, train, params.linear, params.adversarial, checkpoint=checkpoints[0], device=dev,
                     seed=seed, progress=progress, on_progress=on_progress)
    chance = 1.0 / test.num_classes
    result: dict = {"chance": chance, "n_test": len(test), "linear_clean_acc": accuracy(robust, test, device=dev),
                    "adversarial": asdict(params.adversarial), "sets": {}}
    natural = source_images(construct.size, data, seed) if data.source == "synthetic" else None
    for (name, path), checkpoint in zip(sets.items(), checkpoints[1:]):
        constructed = load_constructed(name, path, sources=planned_sources(name, construct, data))
        seed_everything(seed)
        bound = restricted_classifier(robust)
        train_classifier(bound, constructed, params.restricted, checkpoint=checkpoint, device=dev, seed=seed,
                         progress=progress, on_progress=on_progress)
        acc = accuracy(bound, test, device=dev)
        row = {"set": name, "expected": LEAKAGE_SETS[name], "n_train": len(constructed), "linear_bound_acc": acc,
               "linear_bound_excess": acc - chance}
        if natural is not None:
            starts = natural.float_images(constructed.extras["starts"])
            row.update(probe_leakage(constructed, starts, data.synthetic))
        result["sets"][name] = row
    return result
