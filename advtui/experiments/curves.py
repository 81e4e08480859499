"""Robust accuracy against the attack radius (DESIGN section 7: one eps says little), and the radius at which
the synthetic data's planted pattern flips, the ground truth the curves are read against.

A curve is one driver run over PGD specs of ascending radius: each attacks only the points the smaller radii
left standing, which is exact, not an approximation, because a perturbation within eps lies within every
larger eps. The curve is therefore non-increasing by construction and costs little past the knee.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from advtui.attacks.robust_accuracy import robust_accuracy, spec_names
from advtui.catalog.attacks import SpeedConfig
from advtui.catalog.data import DataParams
from advtui.catalog.params import CurveParams
from advtui.data.imageset import ImageSet
from advtui.data.synthetic import nonrobust_patterns
from advtui.models.registry import Classifier
from advtui.progress import ProgressFn
from advtui.stats import interval95

NORMS = ("l2", "linf")
_DUAL = {"l2": 2, "linf": 1}


def eps_curve(
    model: Classifier,
    test: ImageSet,
    cfg: CurveParams,
    norm: str,
    *,
    device: torch.device,
    seed: int,
    on_progress: ProgressFn | None = None,
    state_dir: Path | None = None,
    speed: SpeedConfig | None = None,
) -> tuple[list[list[float]], float]:
    """``[[eps, robust accuracy], ...]`` of ``model`` on ``test`` at every radius of ``cfg``'s ``norm`` list (0:
    clean), and the clean accuracy; ``state_dir`` holds the resume file and ``speed`` says how the attacks run
    the model (see ``robust_accuracy``)."""
    specs = cfg.specs(norm)
    result = robust_accuracy(
        model, test.float_images(), test.labels, specs, batch_size=cfg.batch_size, device=device,
        generator=torch.Generator().manual_seed(seed), on_progress=on_progress, phase=f"curve {norm}",
        state_dir=state_dir, speed=speed,
    )
    cumulative = iter(result.per_attack[name] for name in spec_names(specs))
    return [[eps, result.clean_acc if eps == 0 else next(cumulative)] for eps in getattr(cfg, norm)], result.clean_acc


def mean_curves(rows: Sequence[dict[str, Any]], seeds: Sequence[int]) -> dict[str, Any]:
    """One curves row from :func:`robustness_curves` rows of several seeds' classifiers (same radii and test
    images): the clean accuracy and the accuracy at each radius as their mean over the seeds (a mean of
    non-increasing curves never rises either), with ``seeds``, ``per_seed`` (``clean_acc``: one value per seed;
    ``l2``, ``linf``: one list of accuracies per seed, by radius) and ``ci95`` (``clean_acc``: [lo, hi];
    ``l2``, ``linf``: [lo, hi] per radius; None with one seed), see :mod:`advtui.stats`."""
    if not rows or len(rows) != len(seeds):
        raise ValueError(f"seeds: {len(seeds)} seeds for {len(rows)} curves; pass one seed per classifier")
    clean = [row["clean_acc"] for row in rows]
    out = {**rows[0], "clean_acc": statistics.fmean(clean), "seeds": list(seeds)}
    per_seed: dict[str, Any] = {"clean_acc": clean}
    ci95: dict[str, Any] = {"clean_acc": interval95(clean)}
    for norm in NORMS:
        radii = [eps for eps, _ in rows[0][norm]]
        per_seed[norm] = [[acc for _, acc in row[norm]] for row in rows]
        at_radius = list(zip(*per_seed[norm]))
        out[norm] = [[eps, statistics.fmean(accs)] for eps, accs in zip(radii, at_radius)]
        ci95[norm] = [interval95(accs) for accs in at_radius]
    return {**out, "per_seed": per_seed, "ci95": ci95}


def pattern_flip_distance(data: DataParams) -> dict[str, float] | None:
    """The smallest perturbation (L2 and Linf) that makes another class's planted pattern correlate with an image
    as strongly as its own: min over class pairs of <p_a, p_a - p_b> / ||p_a - p_b||_dual. None off synthetic data.

    With equal-norm orthogonal patterns of norm r the L2 value is r / sqrt(2) (0.354 for r = 0.5): a model that
    reads the pattern can be flipped at about this radius, one that reads the shape needs far more.
    """
    if data.source != "synthetic":
        return None
    patterns = nonrobust_patterns(data.synthetic).flatten(1).double()
    out = {}
    for norm, dual in _DUAL.items():
        best = float("inf")
        for a in range(len(patterns)):
            for b in range(len(patterns)):
                if a != b:
                    diff = patterns[a] - patterns[b]
                    best = min(best, float(patterns[a] @ diff / diff.norm(p=dual)))
        out[norm] = best
    return out


def robustness_curves(
    model: Classifier,
    test: ImageSet,
    cfg: CurveParams,
    data: DataParams,
    *,
    device: torch.device,
    seed: int,
    on_progress: ProgressFn | None = None,
    state_dir: Path | None = None,
    speed: SpeedConfig | None = None,
) -> dict[str, Any]:
    """Both norms' curves on ``cfg.test_size`` class-balanced test images, as one metrics row (``state_dir``:
    where each norm's resume file goes, a sub-folder each; ``speed``: see ``eps_curve``)."""
    attacked = test.select(min(cfg.test_size, len(test)), seed) if cfg.test_size is not None else test
    row: dict[str, Any] = {"n": len(attacked)}
    for norm in NORMS:
        row[norm], row["clean_acc"] = eps_curve(model, attacked, cfg, norm, device=device, seed=seed,
                                                on_progress=on_progress, speed=speed,
                                                state_dir=None if state_dir is None else state_dir / norm)
    row.update(steps=cfg.steps, step_factor=cfg.step_factor, restarts=cfg.restarts,
               pattern_flip=pattern_flip_distance(data))
    return row
