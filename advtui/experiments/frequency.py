"""E18, the frequency control (Hendrycks and Gilmer, Distill discussion of Ilyas et al.): train only on
high-passed images and test on natural ones.

High-passing (the image minus its Gaussian blur) keeps what varies from pixel to pixel and drops what is smooth.
On the synthetic data that split is planted: the shape and its colour are smooth (the robust features), the
planted pattern is a high-passed sign tile (the non-robust one). So the ground truth predicts that a model trained
on high-passed images reads the pattern alone: natural test accuracy as high as the pattern is predictive, and
chance on the same test images drawn without their pattern. The split is not perfect: a shape's edges are sharp, so
they survive a high-pass too; the probes on the high-passed training images say what did (``train_probes``).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from advtui.catalog.data import DataParams, ModelParams
from advtui.catalog.params import ConstructParams, FrequencyParams
from advtui.data.ground_truth import probe_agreement
from advtui.data.imageset import ImageSet
from advtui.data.synthetic import high_pass, without_pattern
from advtui.experiments.common import image_size, natural_split
from advtui.experiments.construct import source_images
from advtui.models.registry import create_model
from advtui.paradigms.supervised import accuracy, train_classifier
from advtui.progress import ProgressFn
from advtui.runtime import pick_device, seed_everything

#: What the planted truth expects of each test set's accuracy (synthetic data).
EXPECTED = {"natural": "above chance (the pattern is there, beside smooth content never seen in training)",
            "high_passed": "high (the features it trained on)",
            "pattern_free": "~chance if it reads the pattern; above if the shapes' edges (they survive the filter)"}


def high_passed(images: ImageSet, sigma: float) -> ImageSet:
    """``images`` minus their Gaussian blur of ``sigma`` pixels, shifted to mid-grey and clipped to [0, 1] (the
    models take images in [0, 1]; the planted pattern's pixels are far inside that range)."""
    x = (high_pass(images.float_images(), sigma=sigma) + 0.5).clamp(0.0, 1.0)
    return ImageSet(x, images.labels, images.classes)


def frequency_control(
    *, params: FrequencyParams, construct: ConstructParams, data: DataParams, model: ModelParams, seed: int,
    device: str, checkpoint: Path, on_progress: ProgressFn | None = None, progress: bool = True,
) -> dict:
    """E18's metrics: natural test accuracy of a classifier trained on high-passed natural images, on natural,
    high-passed and (synthetic data) pattern-free test images, and the probes' agreement on its training images."""
    dev = pick_device(device)
    train = high_passed(source_images(construct.size, data, seed), params.sigma)
    test = natural_split(data, "test", seed)
    seed_everything(seed)
    net = create_model(model.arch, num_classes=train.num_classes, img_size=image_size(train))
    train_classifier(net, train, params.train, checkpoint=checkpoint, device=dev, seed=seed, progress=progress,
                     on_progress=on_progress)
    tests = {"natural": test, "high_passed": high_passed(test, params.sigma)}
    if data.source == "synthetic":
        tests["pattern_free"] = natural_split(replace(data, synthetic=without_pattern(data.synthetic)), "test", seed)
    result: dict = {"sigma": params.sigma, "n_train": len(train), "n_test": len(test), "chance": 1 / test.num_classes,
                    "sets": {name: {"set": name, "clean_acc": accuracy(net, images, device=dev)}
                             for name, images in tests.items()}}
    if data.source == "synthetic":
        result["train_probes"] = probe_agreement(train.images - 0.5, train.labels, data.synthetic)
        for name, row in result["sets"].items():
            row["expected"] = EXPECTED[name]
    return result
