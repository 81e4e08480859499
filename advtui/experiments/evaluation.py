"""Clean and robust accuracy of a classifier on the natural test set, as one metrics dict."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch

from advtui.attacks.robust_accuracy import robust_accuracy
from advtui.catalog.attacks import AttackSpec, SpeedConfig
from advtui.data.imageset import ImageSet
from advtui.models.registry import Classifier
from advtui.paradigms.supervised import accuracy
from advtui.progress import ProgressFn


def evaluate_classifier(
    model: Classifier,
    test: ImageSet,
    threats: Mapping[str, Sequence[AttackSpec]],
    *,
    batch_size: int,
    device: torch.device,
    seed: int,
    on_progress: ProgressFn | None = None,
    state_dir: Path | None = None,
    speed: SpeedConfig | None = None,
) -> dict[str, object]:
    """Clean accuracy and, for each named threat model, robust accuracy of ``model`` on ``test``.

    Each threat model (an L2 and an Linf column of the papers' tables) is evaluated on its own; within
    one, robust accuracy is the per-point worst case over its attacks. Progress goes to ``on_progress``
    as phase ``attack <name>``. Where several threat models share a norm (E6: PGD and AutoAttack, Li's separate
    columns), ``robust_acc_worst_<norm>`` is their per-point worst case: robust only if no attack of any of
    them broke the point (DESIGN section 9). With ``state_dir``, each threat model keeps its resume file in
    ``state_dir/<name>/``, so a rerun after a kill attacks only what was left. ``speed``: how the attacks run the
    model (``advtui.attacks.speed``; None: plain). Returns ``{"n", "clean_acc",
    "robust_acc_<name>", "per_attack_<name>": {attack: acc}, "attacks": {name: [settings]}}``.
    """
    x, y = test.float_images(), test.labels
    metrics: dict[str, object] = {"n": len(test)}
    settings: dict[str, list[dict]] = {}
    by_norm: dict[str, list[torch.Tensor]] = {}
    for name, specs in threats.items():
        result = robust_accuracy(
            model, x, y, list(specs), batch_size=batch_size, device=device,
            generator=torch.Generator().manual_seed(seed), on_progress=on_progress, phase=f"attack {name}",
            state_dir=state_dir / name if state_dir is not None else None, speed=speed,
        )
        metrics["clean_acc"] = result.clean_acc
        metrics[f"robust_acc_{name}"] = result.robust_acc
        metrics[f"per_attack_{name}"] = result.per_attack
        settings[name] = [{**dataclasses.asdict(s), "name": s.name} for s in specs]
        norms = {s.norm for s in specs}
        if len(norms) == 1:
            by_norm.setdefault(norms.pop(), []).append(result.robust)
    for norm, flags in by_norm.items():
        if len(flags) > 1:
            metrics[f"robust_acc_worst_{norm}"] = torch.stack(flags).all(dim=0).float().mean().item()
    if not threats:
        metrics["clean_acc"] = accuracy(model, test, batch_size=batch_size, device=device)
    metrics["attacks"] = settings
    return metrics
