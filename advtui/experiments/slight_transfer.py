"""E11 (Springer et al. 2021, section 5, Figs. 5 and 6): transfer attacks from slightly robust sources.

Springer's corollary of entanglement: a source that is robust at a *small* eps has dropped the non-robust features
only it has (Type C, not universal) but kept the entangled ones, so its adversarial examples move features other
classifiers share. Untargeted and targeted L2 PGD (CIFAR: radius 2.0, 100 steps of 0.1) on each eps-robust source
of the sweep, evaluated on standard classifiers of other architectures: the untargeted error rate (victim wrong on
the true label) and the targeted hit rate (victim predicts the target) against the source's eps. Published: both
peak near eps 1/16, the targeted hit rate rising steeply from eps 0 (Figs. 5, 6 print no numbers).

The attacks run through the one PGD loop (:func:`advtui.attacks.pgd.pgd_attack`), cross-entropy, from the clean
image (no random start), every step's iterate scored.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from advtui.attacks.pgd import pgd_attack
from advtui.catalog.params import SlightTransferParams
from advtui.data.imageset import ImageSet
from advtui.experiments.robustified import SweepSource, predictions, wilson95
from advtui.progress import ProgressFn


def other_targets(labels: Tensor, num_classes: int, seed: int) -> Tensor:
    """A uniformly drawn class other than each label (seeded): the targets of the targeted attack."""
    generator = torch.Generator().manual_seed(seed)
    return (labels + torch.randint(1, num_classes, labels.shape, generator=generator)) % num_classes


def _rate(hits: Tensor) -> dict[str, Any]:
    count, n = int(hits.sum()), len(hits)
    return {"rate": count / n, "ci95": {"rate": wilson95(count, n)}}


def transfer_from_sources(
    sweep: Sequence[SweepSource], victims: Mapping[str, nn.Module], test: ImageSet, params: SlightTransferParams, *,
    load: Callable[[SweepSource], nn.Module], seed: int, device: torch.device | str,
    on_progress: ProgressFn | None = None,
) -> dict[str, Any]:
    """E11's metrics: per source of ``sweep``, the untargeted error rate and the targeted hit rate of its PGD images
    on the source itself (white box) and on each of ``victims``, with Wilson 95% intervals over the images; per
    victim its clean error rate and how often it predicts the targets on clean images (the baselines)."""
    picked = test.select(params.test_size, seed, key="e11.test_size") if params.test_size else test
    x, y = picked.float_images(), picked.labels
    targets = other_targets(y, picked.num_classes, seed)
    batch = {"batch_size": params.batch_size, "device": device}
    baseline = {}
    for name, victim in victims.items():
        clean = predictions(victim, x, **batch)
        baseline[name] = {"clean_error": _rate(clean != y), "clean_target": _rate(clean == targets)}
    rows: dict[str, dict[str, Any]] = {}
    for k, src in enumerate(sweep):
        source = load(src)
        row: dict[str, Any] = {"eps": src.eps, "origin": src.origin}
        for mode, goal in (("untargeted", y), ("targeted", targets)):
            adv = []
            for i in range(0, len(x), params.batch_size):
                adv.append(pgd_attack(
                    source, x[i:i + params.batch_size].to(device), goal[i:i + params.batch_size].to(device),
                    norm="l2", eps=params.eps, step_size=params.step_size, steps=params.steps,
                    targeted=mode == "targeted", random_start=False,
                ).cpu())
                if on_progress is not None:
                    on_progress(f"{mode} PGD on {src.name} ({k + 1}/{len(sweep)})", min(i + params.batch_size, len(x)), len(x))
            x_adv = torch.cat(adv)
            # untargeted: the victim errs on the true label; targeted: the victim predicts the target
            score = (lambda p: p != y) if mode == "untargeted" else (lambda p: p == targets)
            cell = {"white_box": _rate(score(predictions(source, x_adv, **batch)))}
            cell.update({name: _rate(score(predictions(v, x_adv, **batch))) for name, v in victims.items()})
            row[mode] = cell
        rows[src.name] = row
    return {"names": [s.name for s in sweep], "sweep_eps": [s.eps for s in sweep], "victims": list(victims),
            "sources": rows, "baseline": baseline, "n": len(x), "norm": "l2", "attack_eps": params.eps,
            "steps": params.steps, "step_size": params.step_size, "chance_target": 1 / (picked.num_classes - 1)}
