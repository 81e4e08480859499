"""Supervised learning and PGD adversarial training (AT) of classifiers on the one trainer loop.

Plain classifier training: the E1 source models and E4 retraining use it without the paradigm registry
(the SL paradigm of Li's tables wraps it in :mod:`advtui.paradigms.sl`), so their stages do not depend on
the other paradigms' code.
"""

from __future__ import annotations

import os
from dataclasses import asdict

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from advtui.attacks.pgd import pgd_attack
from advtui.data.imageset import ImageSet
from advtui.models.registry import Classifier
from advtui.paradigms.trainer import StepFn, StepOut, fit
from advtui.progress import ProgressFn, epoch_progress
from advtui.catalog.training import TrainConfig
from advtui.catalog.training import AdversarialConfig


def supervised_step(adv: AdversarialConfig | None = None) -> StepFn:
    """The cross-entropy step on clean batches, or on PGD examples of the current model when ``adv`` is enabled.

    The step's ``acc`` metric is the accuracy on the batch it trains on (adversarial accuracy under AT).
    PGD runs with the model in eval mode and parameter gradients off (``pgd_attack`` restores both), and
    draws its random starts from torch's global RNG, which the trainer checkpoints.
    """

    def step(model: nn.Module, x: Tensor, y: Tensor) -> StepOut:
        if adv is not None and adv.enabled:
            x = pgd_attack(
                model, x, y, norm=adv.norm, eps=adv.eps, step_size=adv.effective_step_size, steps=adv.steps
            )
        logits = model(x)
        loss = F.cross_entropy(logits, y)
        return StepOut(loss, {"acc": (logits.detach().argmax(1) == y).float().mean()})

    return step


@torch.inference_mode()
def accuracy(model: nn.Module, data: ImageSet, *, batch_size: int = 512, device: str | torch.device = "cpu") -> float:
    """Clean top-1 accuracy of ``model`` on ``data`` (eval mode; the model's mode is restored)."""
    if len(data) == 0:
        raise ValueError("data: is empty; evaluate on at least one image")
    was_training = model.training
    model.eval()
    correct = 0
    for x, y in data.loader(batch_size):
        correct += int((model(x.to(device)).argmax(1).cpu() == y).sum())
    model.train(was_training)
    return correct / len(data)


def train_classifier(
    model: Classifier,
    data: ImageSet,
    cfg: TrainConfig,
    adv: AdversarialConfig | None = None,
    *,
    checkpoint: str | os.PathLike,
    live_dir: str | os.PathLike | None = None,
    device: str | torch.device = "cpu",
    seed: int = 0,
    eval_data: ImageSet | None = None,
    progress: bool = True,
    on_progress: ProgressFn | None = None,
) -> dict[str, float]:
    """Train ``model`` with cross-entropy, adversarially when ``adv`` is enabled; resumable (see ``fit``).

    With ``eval_data``, the clean accuracy on it is logged after every epoch as ``epoch/test_acc``.
    ``on_progress`` gets phase "train", epochs done of ``cfg.epochs`` (and ``test_acc``), after each epoch.
    Returns the last epoch's metrics (``train_loss``, ``train_acc``, ``lr``, ``test_acc``...).
    """
    if model.num_classes != data.num_classes:
        raise ValueError(
            f"model: has {model.num_classes} outputs but the data has {data.num_classes} classes; "
            "create the model with num_classes=data.num_classes"
        )
    adv = adv if adv is not None and adv.enabled else None
    evaluate = None
    if eval_data is not None:
        held_out = eval_data

        def evaluate(module: nn.Module, epoch: int) -> dict[str, float]:
            return {"test_acc": accuracy(module, held_out, batch_size=max(cfg.batch_size, 256), device=device)}

    on_epoch = epoch_progress(on_progress, "train", cfg.epochs, evaluate=evaluate) if on_progress else evaluate
    return fit(
        model, data, cfg, supervised_step(adv),
        checkpoint=checkpoint, live_dir=live_dir, device=device, seed=seed, on_epoch=on_epoch, progress=progress,
        identity={"paradigm": "adversarial" if adv else "supervised", "adversarial": asdict(adv) if adv else None},
        attacks_inputs=adv is not None,
    )
