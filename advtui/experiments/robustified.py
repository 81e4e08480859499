"""E9 and E10 (Springer et al. 2021, sections 3-4): robustified test sets R_eps, with a leak control.

R_eps is the natural test set inverted through the eps-robust source C_eps: each test image's representation
under C_eps is matched, by unbounded L2 gradient steps, from a random other test image (DESIGN E2's inversion, the
one PGD loop). R_eps then carries what C_eps's features see of the image: robust features, and whatever else those
features respond to. Springer's reading: a zero-robust classifier (trained on a set whose labels only non-robust
features carry) that scores above chance on R_eps learned non-robust features *entangled* with robust ones (Type B);
a negative-robust one above chance is a lower bound on it (robust features mislead it). E10: a standard
classifier's accuracy on R_eps against eps (Springer: peak at eps 1/32), and each source's clean accuracy.

The leak control (not in the paper): inversion through a robust model also copies the planted non-robust pattern
of the *default* (Type C) synthetic data into R_eps (DESIGN section 7 measured zero-robust 0.27-0.62 there), which
a zero-robust classifier reads without any entanglement. So every cell is measured twice: on the images as they
are, and with the non-robust subspace projected out of them, the planted one where it is known (synthetic data:
every shift of every class tile repeated over the image, and per image the class-tile windows that best match what
the inversion added, :func:`~advtui.experiments.leak_control.tile_control`), else an estimate
(:func:`gradient_subspace`: the top directions of the zero-robust classifiers' input gradients). An entanglement
claim stands only where it survives the projection. The projected images are not clipped to [0, 1]: clipping would
put part of the pattern back.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from advtui.attacks.inversion import invert, pick_starts
from advtui.catalog.data import DataParams, ModelParams, SyntheticConfig
from advtui.catalog.names import sweep_name
from advtui.catalog.params import RobustifiedParams, SourceModel, SourceModels
from advtui.data.ground_truth import colour_probe, nonrobust_probe, robust_probe
from advtui.data.store import params_digest, read_header
from advtui.experiments.common import image_size, monitor_split, natural_split, save_classifier
from advtui.experiments.leak_control import WINDOWS, Control, Projector, local_tile_probe, tile_control
from advtui.experiments.source_models import source_recipe
from advtui.models.registry import Classifier, create_model
from advtui.paradigms.supervised import train_classifier
from advtui.paradigms.trainer import input_precision
from advtui.progress import ProgressFn
from advtui.runtime import seed_everything
from advtui.stats import interval95

# --- the sweep of eps-robust sources ----------------------------------------------------------------------------

@dataclass(frozen=True)
class SweepSource:
    """One eps-robust source of the sweep: its radius, its weights and where they come from (``E1 standard``,
    ``E1 robust_l2`` or ``trained``: made by the robustified stage)."""

    eps: float
    path: Path
    origin: str

    @property
    def name(self) -> str:
        """The name it goes by in tables and files (``eps_0.25``)."""
        return sweep_name(self.eps)


def plan_sweep(eps: Sequence[float], robust_eps: float, e1: Mapping[str, Path], trained: Callable[[str], Path]) -> list[SweepSource]:
    """The sources of the sweep ``eps``: eps 0 is E1's standard source (``e1["standard"]``), ``robust_eps`` (E1
    robust_l2's radius) is that source, any other radius a source to train at ``trained(name)``."""
    plan = []
    for value in eps:
        if value == 0:
            plan.append(SweepSource(value, e1["standard"], "E1 standard"))
        elif math.isclose(value, robust_eps, rel_tol=1e-9):
            plan.append(SweepSource(value, e1["robust_l2"], "E1 robust_l2"))
        else:
            plan.append(SweepSource(value, trained(sweep_name(value)), "trained"))
    return plan


def sweep_model(sources: SourceModels, eps: float) -> SourceModel:
    """The recipe of a trained sweep source: E1's L2-robust source's, at radius ``eps``."""
    robust = sources.robust_l2
    return SourceModel(replace(robust.adversarial, eps=eps), noise_std=robust.noise_std)


def train_sweep_source(
    eps: float, *, sources: SourceModels, data: DataParams, model: ModelParams, seed: int, device: torch.device,
    out: Path, checkpoint: Path, on_progress: ProgressFn | None = None, progress: bool = True,
) -> str:
    """Train the eps-robust source of radius ``eps`` with E1's recipe (``sources.train``, robust_l2's attack at
    ``eps``) and store it at ``out``; a stored one made with the same settings is kept (resumable: its training
    also resumes from ``checkpoint``). Returns "kept" or "trained"."""
    source = sweep_model(sources, eps)
    train = natural_split(data, "train", seed)
    recipe = input_precision(source_recipe(sources.train, source), train, attacks_inputs=True, device=device)
    used = {"seed": seed, "data": asdict(data), "model": asdict(model), "train": asdict(recipe),
            "adversarial": asdict(source.adversarial)}
    if out.exists() and read_header(out).get("params_digest") == params_digest(used):
        return "kept"
    seed_everything(seed)
    test = natural_split(data, "test", seed)
    net = create_model(model.arch, num_classes=train.num_classes, img_size=image_size(train))
    metrics = train_classifier(net, train, recipe, source.adversarial, checkpoint=checkpoint, device=device, seed=seed,
                               eval_data=monitor_split(test, seed), progress=progress, on_progress=on_progress)
    save_classifier(net, out, paradigm="adversarial", params=used,
                    extra={"source_model": sweep_name(eps), "metrics": metrics})
    return "trained"


# --- the non-robust subspace -------------------------------------------------------------------------------------

def planted_control(cfg: SyntheticConfig) -> Control | None:
    """What removes the synthetic data's planted non-robust pattern from images: the default variant's tile, repeated
    and in single windows (:func:`~advtui.experiments.leak_control.tile_control`); None for the entangled variant,
    whose pattern is a part of each image's own shape (Type B by construction: there is no separate pattern to
    remove)."""
    if cfg.variant == "entangled":
        return None
    return tile_control(cfg)


def gradient_subspace(models: Sequence[torch.nn.Module], images: Tensor, labels: Tensor, rank: int, *,
                      batch_size: int = 256, device: torch.device | str = "cpu") -> Tensor:
    """An estimate of the non-robust subspace where none is known: an orthonormal basis (rank, D) of the top
    ``rank`` right singular vectors (fewer where the gradients span fewer) of the input gradients of ``models``' cross-entropy at ``images`` (their
    labels: the directions those classifiers are most sensitive to; zero-robust classifiers have only non-robust
    features to be sensitive through)."""
    grads = []
    for model in models:
        model.eval()
        for i in range(0, len(images), batch_size):
            x = images[i:i + batch_size].to(device).requires_grad_(True)
            loss = F.cross_entropy(model(x), labels[i:i + batch_size].to(device), reduction="sum")
            (grad,) = torch.autograd.grad(loss, x)
            grads.append(F.normalize(grad.flatten(1), dim=1).cpu())
    stacked = torch.cat(grads)
    _, values, vh = torch.linalg.svd(stacked, full_matrices=False)
    # keep only directions the gradients have (numerical rank): a linear C-class reader's span C - 1 of them
    found = int((values > 1e-4 * values[0]).sum())
    return vh[:min(rank, found)]


def basis_projector(basis: Tensor) -> Projector:
    """What removes the span of the orthonormal rows of ``basis`` (K, D) from images (N, ...)."""
    def project(x: Tensor) -> Tensor:
        flat = x.flatten(1)
        b = basis.to(flat.device, flat.dtype)
        return (flat - (flat @ b.T) @ b).view_as(x)
    return project


# --- robustified test sets --------------------------------------------------------------------------------------

def robustify(source: Classifier, images: Tensor, starts: Tensor, *, steps: int, step_size: float, batch_size: int,
              device: torch.device | str = "cpu", on_chunk: Callable[[int], None] | None = None) -> Tensor:
    """R_eps: each image of ``images`` (N, C, H, W) re-made from ``starts`` (N, C, H, W; another image each) by
    matching its penultimate representation under ``source``, unbounded (Springer: CIFAR 400 steps of 0.05)."""
    out = []
    for i in range(0, len(images), batch_size):
        x, s = images[i:i + batch_size].to(device), starts[i:i + batch_size].to(device)
        with torch.no_grad():
            target = source.features(x)
        out.append(invert(source.features, s, target, steps=steps, step_size=step_size, eps=None).cpu())
        if on_chunk is not None:
            on_chunk(min(i + batch_size, len(images)))
    return torch.cat(out)


@torch.inference_mode()
def predictions(model: torch.nn.Module, images: Tensor, *, batch_size: int, device: torch.device | str) -> Tensor:
    """``model``'s predicted classes (N,) on ``images`` (eval mode)."""
    model.eval()
    return torch.cat([model(images[i:i + batch_size].to(device)).argmax(1).cpu() for i in range(0, len(images), batch_size)])


def seed_cell(models: Sequence[torch.nn.Module], images: Tensor, labels: Tensor, *, batch_size: int,
              device: torch.device | str) -> dict[str, Any]:
    """Accuracy of each of ``models`` (one per seed) on ``images``: ``acc`` (their mean), ``per_seed.acc`` (each
    one's), ``ci95.acc`` (the mean's 95% interval; None for one model)."""
    values = [(predictions(m, images, batch_size=batch_size, device=device) == labels).float().mean().item() for m in models]
    return {"acc": sum(values) / len(values), "per_seed": {"acc": values}, "ci95": {"acc": interval95(values)}}


def wilson95(successes: int, n: int) -> list[float] | None:
    """Wilson's 95% interval of a proportion ``successes`` / ``n`` (one model's accuracy on ``n`` images)."""
    if n < 1:
        return None
    z, p = 1.959963984540054, successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return [centre - half, centre + half]


def leak_reading(robustified: Tensor, starts: Tensor, labels: Tensor, cfg: SyntheticConfig,
                 projector: Projector | None) -> dict[str, float | None]:
    """What R_eps carries of the planted truth (synthetic data): ``shape_agreement``, the share whose shape probe
    reads the label (robust features drawn), and with class colours ``colour_agreement``, the colour probe's;
    ``pattern_agreement``, the share whose added part (R_eps minus its
    start) carries the label's planted pattern at any shift (the leak; chance 1/C); ``pattern_fraction``, the mean
    share of the added part's energy that the control removes, and ``local_pattern_agreement``, the share whose
    added part, projected, still holds a local copy of the label's tile (:func:`local_tile_probe`; None where there
    is no subspace to remove). ``projector``: the control's for these images (made from their added parts)."""
    added = robustified - starts
    row: dict[str, float | None] = {
        "shape_agreement": (robust_probe(robustified, cfg) == labels).float().mean().item(),
        "pattern_agreement": (nonrobust_probe(added, cfg) == labels).float().mean().item(),
        "pattern_fraction": None,
    }
    if cfg.colour == "class":  # colour is a robust feature there too, and inverted images draw it before the outline
        row["colour_agreement"] = (colour_probe(robustified, cfg) == labels).float().mean().item()
    if projector is not None:
        # what the projection leaves of the leak: local (non-repeating) copies of the label's tile
        left = projector(added)
        row["local_pattern_agreement"] = (local_tile_probe(left, cfg) == labels).float().mean().item()
        kept = left.flatten(1).square().sum(1)
        total = added.flatten(1).square().sum(1).clamp_min(1e-12)
        row["pattern_fraction"] = (1 - kept / total).mean().item()
    return row


def robustified_experiment(
    *, sweep: Sequence[SweepSource], classifiers: Mapping[str, Sequence[Path]], params: RobustifiedParams,
    data: DataParams, seed: int, device: torch.device, load: Callable[[Path], Classifier],
    on_progress: ProgressFn | None = None, state_dir: Path | None = None,
) -> dict[str, Any]:
    """E9/E10's metrics: every classifier of ``classifiers`` (name -> weights, one file per seed) on the natural
    test subset and on R_eps of every ``sweep`` source, as is and with the non-robust subspace projected out; each
    source's clean accuracy; on synthetic data what R_eps carries of the planted truth. ``state_dir`` keeps each
    finished R_eps, so a rerun after a kill redoes only the sources it had not finished."""
    test = natural_split(data, "test", seed)
    picked = test.select(params.test_size, seed, key="e9.test_size") if params.test_size else test
    x, y = picked.float_images(), picked.labels
    generator = torch.Generator().manual_seed(seed)
    starts = x[pick_starts(params.start, y, generator)]
    synthetic = data.synthetic if data.source == "synthetic" else None
    models = {name: [load(p) for p in paths] for name, paths in classifiers.items()}
    leak_control: Control | None
    if synthetic is not None:
        leak_control = planted_control(synthetic)
        control = f"planted: the periodic tile subspace and {WINDOWS} tile windows per image"
        if leak_control is None:
            control = "none: the entangled variant's pattern is part of each shape"
    else:
        basis = gradient_subspace(models["zero_robust"], x, y, params.subspace_rank, batch_size=params.batch_size,
                                  device=device)
        fixed = basis_projector(basis)
        leak_control, control = (lambda added: fixed), f"estimated: top {len(basis)} input-gradient directions of zero_robust"
    batch = {"batch_size": params.batch_size, "device": device}
    cells: dict[str, dict[str, Any]] = {name: {"test": seed_cell(ms, x, y, **batch), "R": {}, "R_projected": {}}
                                        for name, ms in models.items()}
    if leak_control is not None:
        projected = leak_control(x)(x)  # natural images: the planted pattern is all of what was added
        for name, ms in models.items():
            cells[name]["test_projected"] = seed_cell(ms, projected, y, **batch)
    sources: dict[str, dict[str, Any]] = {}
    leak: dict[str, dict[str, Any]] = {}
    full_x, full_y = test.float_images(), test.labels
    for k, src in enumerate(sweep):
        model = load(src.path)
        correct = int((predictions(model, full_x, **batch) == full_y).sum())
        sources[src.name] = {"eps": src.eps, "origin": src.origin, "clean_acc": correct / len(full_y),
                             "ci95": {"clean_acc": wilson95(correct, len(full_y))}, "n_test": len(full_y)}
        cached = state_dir / f"{src.name}.pt" if state_dir is not None else None
        key = {"source": str(src.path), "mtime": src.path.stat().st_mtime_ns, "n": len(x), "seed": seed,
               "steps": params.steps, "step_size": params.step_size, "start": params.start}
        state = torch.load(cached) if cached is not None and cached.exists() else None
        if state is not None and state.get("key") == key:
            robust_x = state["images"]
        else:
            def chunk(done: int, k: int = k) -> None:
                if on_progress is not None:
                    on_progress(f"invert through {src.name} ({k + 1}/{len(sweep)})", done, len(x))
            robust_x = robustify(model, x, starts, steps=params.steps, step_size=params.step_size,
                                 batch_size=params.batch_size, device=device, on_chunk=chunk)
            if cached is not None:
                cached.parent.mkdir(parents=True, exist_ok=True)
                torch.save({"key": key, "images": robust_x}, cached)
        with torch.no_grad():
            target = model.features(x.to(device))
            err = (model.features(robust_x.to(device)) - target).norm(dim=1) / target.norm(dim=1).clamp_min(1e-12)
        sources[src.name]["repr_error"] = err.mean().item()
        # the control looks for the leak where the inversion put it: in what it added to the start
        projector = leak_control(robust_x - starts) if leak_control is not None else None
        projected = projector(robust_x) if projector is not None else None
        for name, ms in models.items():
            cells[name]["R"][src.name] = seed_cell(ms, robust_x, y, **batch)
            if projected is not None:
                cells[name]["R_projected"][src.name] = seed_cell(ms, projected, y, **batch)
        if synthetic is not None:
            leak[src.name] = leak_reading(robust_x, starts, y, synthetic, projector)
    return {
        "sweep_eps": [s.eps for s in sweep], "names": [s.name for s in sweep], "sources": sources,
        "classifiers": {name: {"n_seeds": len(ms)} for name, ms in models.items()}, "cells": cells,
        "leak": leak, "control": control, "n_test": len(x), "chance": 1 / picked.num_classes,
        "start": params.start, "steps": params.steps, "step_size": params.step_size,
        "variant": synthetic.variant if synthetic is not None else None,
    }
