"""E15: non-transferable "bugs-only" adversarial examples (Preetum Nakkiran, Distill discussion of Ilyas et al.).

Nakkiran built targeted adversarial examples that fool the source model but, by construction, *not* independently
trained reference models: the attack moves the source to the target class while keeping every reference on the
true label. Relabelled with their targets (y+1, as D_det), they make a training set whose labels no generalising
feature carries; a model trained on it scores near chance on natural data, and Ilyas et al. put that point on their
learnability-vs-transferability plot (Fig. 3; here E12's figure): non-transferable examples, non-learnable set.

The attack maximises, per image, -CE(source(x'), y+1) - w * sum_k CE(reference_k(x'), y) over the L2 ball; it
succeeds where the source predicts y+1 and every reference still predicts y (the best iterate is kept, successful
first). Ground truth on the synthetic data: the references read the planted pattern (E4's natural classifiers), so
adding enough of the target's pattern would flip them; a reference-consistent attack must add less of it than D_det's
attack does (``pattern_projection``, the L2 projection of what it added on the target's unit pattern, beside E12's
``pattern_projection`` of D_det's attack), and a model trained on the set should not learn "pattern -> label"
(natural accuracy near chance). On smoke the argmax probe still reads the target in what it added (99.5%), at
two thirds of D_det's amount (0.09 against 0.13; README, E15).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from advtui.attacks.objectives import Evaluation, Objective, _index
from advtui.attacks.pgd import pgd
from advtui.catalog.data import DataParams, ModelParams
from advtui.catalog.params import BugsOnlyParams
from advtui.data.ground_truth import nonrobust_probe, nonrobust_scores, robust_probe
from advtui.data.imageset import ImageSet
from advtui.experiments.common import image_size
from advtui.experiments.mislabelled import predict
from advtui.models.registry import Classifier, create_model
from advtui.paradigms.supervised import accuracy, train_classifier
from advtui.progress import ProgressFn
from advtui.runtime import seed_everything


class ReferenceConsistentTarget(Objective):
    """Targeted on ``source`` (towards ``target``) while ``references`` keep ``y``: the loss is -CE(source, target)
    - ``weight`` * sum of CE(reference, y); success = the source predicts the target and every reference ``y``."""

    def __init__(self, source: nn.Module, references: Sequence[nn.Module], target: Tensor, y: Tensor,
                 weight: float = 1.0) -> None:
        self.source, self.references = source, tuple(references)
        self.target, self.y, self.weight = target, y, weight
        self.modules = (source, *self.references)

    def evaluate(self, x_adv: Tensor) -> Evaluation:
        """The combined loss and the joint success at ``x_adv``."""
        logits = self.source(x_adv)
        target, y = self.target.to(logits.device), self.y.to(logits.device)
        loss = -F.cross_entropy(logits, target, reduction="none")
        success = logits.argmax(1) == target
        for reference in self.references:
            ref_logits = reference(x_adv)
            loss = loss - self.weight * F.cross_entropy(ref_logits, y, reduction="none")
            success = success & (ref_logits.argmax(1) == y)
        return Evaluation(loss, success)

    def select(self, index: Tensor) -> ReferenceConsistentTarget:
        """The same objective for the selected points."""
        return ReferenceConsistentTarget(self.source, self.references, _index(self.target, index),
                                         _index(self.y, index), self.weight)


def bugs_only_set(source: nn.Module, references: Sequence[nn.Module], images: ImageSet, params: BugsOnlyParams, *,
                  device: torch.device, batch_size: int = 250) -> tuple[ImageSet, Tensor]:
    """The bugs-only set: ``images`` attacked towards y+1 on ``source`` keeping ``references`` on y, relabelled
    y+1; and the attacked images' per-image success (the source hits y+1 and every reference keeps y)."""
    x, y = images.float_images(), images.labels
    target = (y + 1) % images.num_classes
    attack = params.attack
    out = []
    for i in range(0, len(x), batch_size):
        objective = ReferenceConsistentTarget(source, references, target[i:i + batch_size], y[i:i + batch_size],
                                              params.ref_weight)
        out.append(pgd(objective, x[i:i + batch_size].to(device), norm=attack.norm, eps=attack.eps,
                       step_size=attack.step_size, steps=attack.steps, random_start=False).cpu())  # as D_det
    x_adv = torch.cat(out)
    with torch.no_grad():
        success = torch.cat([ReferenceConsistentTarget(source, references, target[i:i + batch_size],
                                                       y[i:i + batch_size]).evaluate(
            x_adv[i:i + batch_size].to(device)).success.cpu() for i in range(0, len(x), batch_size)])
    return ImageSet(x_adv, target, images.classes), success


def hit_rate(model: nn.Module, images: ImageSet, *, device: torch.device) -> float:
    """Share of ``images`` that ``model`` labels with their (assigned) labels: a target-hit rate on adversarial sets."""
    return accuracy(model, images, device=device)


def bugs_only_experiment(
    *, source: Classifier, references: list[Classifier], held_out: Classifier | None, start: ImageSet, test: ImageSet,
    params: BugsOnlyParams, data: DataParams, model: ModelParams, seed: int, device: torch.device, checkpoint,
    on_progress: ProgressFn | None = None, progress: bool = True,
) -> dict:
    """E15's metrics: the attack's joint success, the source's and the references' target-hit rates, the held-out
    natural model's (``transfer_success``: what E12's x axis reads), the fresh model's natural test accuracy
    (``clean_acc``, E12's y axis) and, on synthetic data, the planted probes on what the attack added."""
    bugs, success = bugs_only_set(source, references, start, params, device=device)
    result: dict = {"n": len(bugs), "references": len(references), "chance": 1 / test.num_classes,
                    "attack": {"norm": params.attack.norm, "eps": params.attack.eps, "steps": params.attack.steps,
                               "step_size": params.attack.step_size},
                    "joint_success": success.float().mean().item(),
                    "source_hit": hit_rate(source, bugs, device=device),
                    "reference_hit": sum(hit_rate(r, bugs, device=device) for r in references) / len(references),
                    "transfer_success": None if held_out is None else hit_rate(held_out, bugs, device=device)}
    if data.source == "synthetic":
        delta = bugs.float_images() - start.float_images()
        # what the attack added: does it carry the target's planted pattern (D_det's does, E8: 84%)?
        result["pattern_added"] = (nonrobust_probe(delta, data.synthetic) == bugs.labels).float().mean().item()
        # and how much of it: the L2 projection on the target's unit pattern (compare E12's, D_det's attack)
        scores = nonrobust_scores(delta, data.synthetic)
        result["pattern_projection"] = scores[torch.arange(len(delta)), bugs.labels].mean().item()
        result["shape_kept"] = (robust_probe(bugs.float_images(), data.synthetic)
                                == robust_probe(start.float_images(), data.synthetic)).float().mean().item()
    seed_everything(seed)
    fresh = create_model(model.arch, num_classes=test.num_classes, img_size=image_size(test))
    train_classifier(fresh, bugs, params.train, checkpoint=checkpoint, device=device, seed=seed, progress=progress,
                     on_progress=on_progress)
    predicted = predict(fresh, test, device=device)
    result["clean_acc"] = (predicted == test.labels).float().mean().item()
    # the labels are y+1: a model that learnt the robust features would predict y+1 on natural images
    result["next_class_rate"] = (predicted == (test.labels + 1) % test.num_classes).float().mean().item()
    return result
