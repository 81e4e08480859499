"""E16: learning from mislabelled data (Wallace, Distill discussion of Ilyas et al.).

A weakly trained model labels the natural training images; only the images it gets *wrong* are kept, each with
the weak model's (wrong) label, and a fresh model trained on them alone is tested on natural data. Wallace: 49.7%
on CIFAR-10 from the 18,768 errors of a 63%-accurate ResNet-18. Every label is wrong, yet the labels carry
the weak model's features ("feature distillation", Ilyas et al.'s reply), so the fresh model generalises.
The control trains on uniform-noise images labelled by the weak model: labels with no natural image behind them.

On synthetic data the planted features say what the error labels carry: the ground-truth probes read, on the
kept images, how often the shape, colour and planted pattern agree with the weak label (and with the true one).
Each planted feature identifies the true class, which is never the label of a kept image, so a model that learned
"planted feature -> label" would score at or below chance on natural data; accuracy above chance must come from
the weak model's own decision function handed on through the labels, which ``weak_agreement`` (the fresh model's
agreement with the weak one on natural test images) measures.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor

from advtui.catalog.data import DataParams, ModelParams
from advtui.catalog.params import MislabelledParams
from advtui.data.ground_truth import probe_agreement
from advtui.data.imageset import ImageSet
from advtui.experiments.common import image_size, natural_split
from advtui.models.registry import Classifier, create_model
from advtui.paradigms.supervised import train_classifier
from advtui.progress import ProgressFn
from advtui.runtime import pick_device, seed_everything

#: The training sets of the fresh models: the weak model's errors, and the noise control.
E16_SETS = ("errors", "noise")


@torch.inference_mode()
def predict(model: Classifier, images: ImageSet, *, batch_size: int = 512, device: torch.device) -> Tensor:
    """``model``'s predicted class (N,) of every image (eval mode; the model's mode is restored)."""
    was_training = model.training
    model.eval()
    out = torch.cat([model(x.to(device)).argmax(1).cpu() for x, _ in images.loader(batch_size)])
    model.train(was_training)
    return out


def noise_images(n: int, like: ImageSet, seed: int) -> Tensor:
    """``n`` images of uniform noise in [0, 1], shaped like ``like``'s."""
    gen = torch.Generator().manual_seed(seed)
    return torch.rand(n, *like.images.shape[1:], generator=gen)


def mislabelled_experiment(
    *, params: MislabelledParams, data: DataParams, model: ModelParams, seed: int, device: str,
    checkpoints: list[Path], on_progress: ProgressFn | None = None, progress: bool = True,
) -> dict:
    """E16's metrics: the weak model (its natural test and training accuracy), then per set of ``E16_SETS`` the
    fresh model's natural test accuracy, its agreement with the weak model there, and the set's size; on synthetic
    data the probes' agreement of the error set with its (weak) labels and with the true ones. ``checkpoints``: one resumable training checkpoint
    for the weak model and one per set."""
    dev = pick_device(device)
    train, test = natural_split(data, "train", seed), natural_split(data, "test", seed)
    seed_everything(seed)
    weak = create_model(model.arch, num_classes=train.num_classes, img_size=image_size(train))
    train_classifier(weak, train.select(params.weak_size, seed, key="e16.weak_size"), params.weak,
                     checkpoint=checkpoints[0], device=dev, seed=seed, progress=progress, on_progress=on_progress)
    relabelled = predict(weak, train, device=dev)
    wrong = relabelled != train.labels
    if not wrong.any():
        raise ValueError("e16: the weak model makes no error on the training images; train it less "
                         "(fewer e16.weak.epochs, a smaller e16.weak_size)")
    errors = ImageSet(train.images[wrong], relabelled[wrong], train.classes)
    unlabelled = ImageSet(noise_images(len(errors), train, seed), torch.zeros(len(errors), dtype=torch.int64), train.classes)
    noise = ImageSet(unlabelled.images, predict(weak, unlabelled, device=dev), train.classes)
    weak_test = predict(weak, test, device=dev)
    result: dict = {"weak_test_acc": (weak_test == test.labels).float().mean().item(),
                    "weak_train_acc": 1 - wrong.float().mean().item(),
                    "n_train_natural": len(train), "n_test": len(test), "chance": 1 / test.num_classes, "sets": {}}
    for (name, images), checkpoint in zip({"errors": errors, "noise": noise}.items(), checkpoints[1:]):
        seed_everything(seed)
        fresh = create_model(model.arch, num_classes=train.num_classes, img_size=image_size(train))
        train_classifier(fresh, images, params.train, checkpoint=checkpoint, device=dev, seed=seed, progress=progress,
                         on_progress=on_progress)
        fresh_test = predict(fresh, test, device=dev)
        # agreement with the weak model on natural test images: how much of its function the labels handed on
        row = {"set": name, "n_train": len(images), "clean_acc": (fresh_test == test.labels).float().mean().item(),
               "weak_agreement": (fresh_test == weak_test).float().mean().item(),
               "label_classes": int(images.labels.unique().numel())}
        if name == "errors" and data.source == "synthetic":
            row.update(probe_agreement(errors.float_images(), errors.labels, data.synthetic))
            truth = probe_agreement(errors.float_images(), train.labels[wrong], data.synthetic)
            row.update({f"true_{key}": value for key, value in truth.items()})
        result["sets"][name] = row
    return result
