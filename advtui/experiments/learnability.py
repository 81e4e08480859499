"""E12: learnability vs transferability (Ilyas et al. 2019, Fig. 3).

Ilyas et al. trained several architectures on D_det (images whose only link to their label y+1 is the non-robust
features a targeted attack on the source planted) and plotted each one's natural test accuracy against the
transfer success of the source's adversarial examples to that architecture: the architectures that learn more from
D_det are the ones the source's examples fool more, so transferability follows from shared non-robust features.
Nakkiran's bugs-only set (E15) adds a point at the bottom left: non-transferable examples, a non-learnable set.

Here each architecture of ``e12.archs`` gets a D_det classifier (E4's, every seed, for ``model.arch``; else one
trained here) and a naturally trained one (E4's natural classifiers for ``model.arch``; E8's backbone for an
``e8.backbones`` architecture; else one trained here on the natural images D_det starts from). The source's
examples are targeted (y+1) PGD with D_det's own settings on class-balanced *test* images (none of them trained
on); transfer success is the share of those that hit their target on the source which the natural model of the
architecture also labels as the target.

Ground truth on the synthetic data: the source's examples add the planted pattern of the target class (E8: 84%
of the SL source's adversarial images). An architecture whose natural model reads that pattern (its accuracy
falls on the same test images drawn without the pattern, ``pattern_free_acc``) is fooled by them AND learns the
pattern -> y+1 rule from D_det; one that does not read it is neither: the points should lie on a rising line.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path

import torch
from torch import Tensor, nn

from advtui.attacks.pgd import pgd_attack
from advtui.catalog.data import DataParams
from advtui.catalog.params import RelabelConfig
from advtui.catalog.training import TrainConfig
from advtui.data.ground_truth import nonrobust_probe, nonrobust_scores
from advtui.data.imageset import ImageSet
from advtui.data.synthetic import without_pattern
from advtui.experiments.common import image_size, natural_split
from advtui.models.registry import Classifier, create_model
from advtui.paradigms.supervised import accuracy, train_classifier
from advtui.progress import ProgressFn
from advtui.runtime import seed_everything
from advtui.stats import interval95


def train_arch(arch: str, images: ImageSet, cfg: TrainConfig, *, checkpoint: Path, device: torch.device, seed: int,
               on_progress: ProgressFn | None = None, progress: bool = True) -> Classifier:
    """A fresh ``arch`` classifier trained on ``images`` with ``cfg`` (resumable from ``checkpoint``), in eval mode."""
    seed_everything(seed)
    model = create_model(arch, num_classes=images.num_classes, img_size=image_size(images))
    train_classifier(model, images, cfg, checkpoint=checkpoint, device=device, seed=seed, progress=progress,
                     on_progress=on_progress)
    return model.to(device).eval()


def source_examples(source: nn.Module, images: ImageSet, relabel: RelabelConfig, *, device: torch.device,
                    batch_size: int = 250) -> tuple[Tensor, Tensor, Tensor]:
    """The source's targeted examples of ``images`` made as D_det's are (target y+1, ``relabel``'s settings, no
    random start): (adversarial images, targets, whether the source predicts the target), on the CPU."""
    x, target = images.float_images(), (images.labels + 1) % images.num_classes
    out, hit = [], []
    for i in range(0, len(x), batch_size):
        xb, tb = x[i:i + batch_size].to(device), target[i:i + batch_size].to(device)
        adv = pgd_attack(source, xb, tb, norm=relabel.norm, eps=relabel.eps, step_size=relabel.step_size,
                         steps=relabel.steps, targeted=True, random_start=False)
        with torch.no_grad():
            hit.append((source(adv).argmax(1) == tb).cpu())
        out.append(adv.cpu())
    return torch.cat(out), target, torch.cat(hit)


@torch.no_grad()
def target_hit(model: nn.Module, x_adv: Tensor, target: Tensor, *, device: torch.device, batch_size: int = 500) -> float:
    """Share of ``x_adv`` that ``model`` labels as its ``target`` (the transfer success of targeted examples)."""
    if len(x_adv) == 0:
        return float("nan")
    model.eval()
    predicted = torch.cat([model(x_adv[i:i + batch_size].to(device)).argmax(1).cpu()
                           for i in range(0, len(x_adv), batch_size)])
    return (predicted == target).float().mean().item()


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values)


def learnability_transfer(
    *, source: nn.Module, det_models: Mapping[str, Sequence[nn.Module]], natural_models: Mapping[str, Sequence[nn.Module]],
    origins: Mapping[str, Mapping[str, str]], data: DataParams, relabel: RelabelConfig, test_size: int | None, seed: int,
    device: torch.device,
) -> dict:
    """E12's metrics: per architecture (the keys of ``det_models``, each with its ``natural_models``) the natural test
    accuracy of its D_det classifiers (mean, 95% interval over several, each one's value) and the transfer success
    of the source's targeted examples to its natural classifiers (mean over them), with those classifiers' accuracy
    on the natural test set and, on synthetic data, on the same images drawn without the planted pattern; ``origins``
    says where each model came from. Also the source's own hit rate and the planted probe on what it added."""
    test = natural_split(data, "test", seed)
    attacked = test.select(min(test_size, len(test)), seed, key="e12.test_size") if test_size else test
    x_adv, target, hit = source_examples(source, attacked, relabel, device=device)
    pattern_free = (natural_split(replace(data, synthetic=without_pattern(data.synthetic)), "test", seed)
                    if data.source == "synthetic" else None)
    result: dict = {"n": len(attacked), "n_test": len(test), "chance": 1 / test.num_classes,
                    "source_hit": hit.float().mean().item(),
                    "attack": {"norm": relabel.norm, "eps": relabel.eps, "steps": relabel.steps,
                               "step_size": relabel.step_size}, "archs": {}}
    if pattern_free is not None:
        delta = x_adv[hit] - attacked.float_images()[hit]
        result["pattern_added"] = (nonrobust_probe(delta, data.synthetic) == target[hit]).float().mean().item()
        # how much of it (L2 projection on the target's unit pattern; the planted one has data.synthetic's norm)
        scores = nonrobust_scores(delta, data.synthetic)
        result["pattern_projection"] = scores[torch.arange(len(delta)), target[hit]].mean().item()
    for arch, det in det_models.items():
        det_acc = [accuracy(m, test, device=device) for m in det]
        natural = natural_models[arch]
        transfer = [target_hit(m, x_adv[hit], target[hit], device=device) for m in natural]
        row = {"arch": arch, **origins[arch], "n_det_models": len(det), "n_natural_models": len(natural),
               "det_acc": _mean(det_acc), "transfer_success": _mean(transfer),
               "natural_acc": _mean([accuracy(m, test, device=device) for m in natural]),
               "per_model": {"det_acc": det_acc, "transfer_success": transfer},
               "ci95": {"det_acc": interval95(det_acc), "transfer_success": interval95(transfer)}}
        if pattern_free is not None:
            row["pattern_free_acc"] = _mean([accuracy(m, pattern_free, device=device) for m in natural])
        result["archs"][arch] = row
    return result
