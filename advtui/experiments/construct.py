"""E2 and E3: the constructed datasets of Ilyas et al. and Springer et al.

- D_R: invert the representation of a *robust* model (unbounded L2 steps), label := source label;
- D_NR: invert the representation of the *standard* model within a small L2 ball around the start;
- D_rand / D_det: targeted L2 PGD on the standard model, label := target (uniform / y+1 mod C);
- zero_robust: one targeted example per class for every image (Springer: robust features uncorrelated);
- neg_robust: targets y+1 mod C (Springer: robust features anti-correlated with the new label).

Inversions start from a random other image (any class, or another class: ``construct.start``) or from noise. Construction runs in chunks
written as separate files; a rerun after an interrupt keeps every finished chunk whose settings match,
and the final dataset is written atomically once all chunks are there. The random choices (starts,
targets) are drawn for the whole set up front and the attacks use no random start, so the result does
not depend on the chunk size or on where a run was interrupted.

The dataset's header records what made it (the recipe's settings, the seed, the data params, the number of
images and the source model's version) and nothing that depends on when it ran (the construction's rate
goes to the progress file only), so a rerun writes the same bytes. :func:`load_constructed` is how a later
stage reads it back, checked against what it expects.
"""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import torch
from torch import Tensor

from advtui.attacks.inversion import invert, noise_starts, pick_starts
from advtui.attacks.pgd import pgd_attack
from advtui.attacks.speed import faster
from advtui.data.imageset import ImageSet
from advtui.data.ground_truth import probe_agreement, robust_probe
from advtui.data.loaders import load_source
from advtui.data.synthetic import without_pattern
from advtui.data.store import load_artifact, params_digest, read_header, save_artifact, stored_version
from advtui.experiments.common import load_classifier, natural_split
from advtui.catalog.paths import model_path as source_model_path
from advtui.catalog.data import DataParams
from advtui.catalog.names import NATURAL_NOPATTERN, Recipe, recipe
from advtui.paradigms.base import Encoder, load_encoder
from advtui import distributed, shards
from advtui.progress import ProgressFn
from advtui.runtime import pick_device
from advtui.catalog.params import InversionConfig
from advtui.catalog.params import RelabelConfig
from advtui.catalog.params import ConstructParams
from advtui.catalog.attacks import SpeedConfig


@dataclass
class Plan:
    """Every per-image choice of a construction, drawn once: which natural image, start and label."""

    source: Tensor  # index into the natural subset of the image whose features/label the result carries
    start: Tensor  # index of the start image (-1: noise)
    label: Tensor  # the assigned label
    noise_seed: int


def source_images(size: int | None, data: DataParams, seed: int) -> ImageSet:
    """The first ``size`` natural training images of a seeded, class-balanced order (None: all).

    Constructions start from these (their ``sources`` and ``starts`` index into them), and the natural
    row of E4 trains on the same images, so every E4 row sees the same number of source images.
    """
    natural = natural_split(data, "train", seed)
    return natural.select(min(size, len(natural)) if size is not None else None, seed)


def _size_field(rec: Recipe) -> str:
    """The ``construct`` params field holding how many natural images a recipe starts from (null: all)."""
    return "zero_robust_size" if rec.targets == "all" else "size"


def planned_sources(name: str, cfg: ConstructParams, data: DataParams) -> int | None:
    """How many natural images construct ``name`` starts from under these params (see :func:`source_images`),
    or None when only the image folder knows (``data.train_size`` null: all its images)."""
    if data.train_size is None:
        return None
    size = getattr(cfg, _size_field(recipe(name)))
    return data.train_size if size is None else min(size, data.train_size)


def make_plan(name: str, cfg: ConstructParams, labels: Tensor, num_classes: int, seed: int) -> Plan:
    """Draw the starts and labels of dataset ``name`` for source images with ``labels``."""
    rec = recipe(name)
    gen = torch.Generator().manual_seed(seed)
    n = len(labels)
    idx = torch.arange(n)
    if rec.method == "invert":
        return Plan(idx, pick_starts(cfg.start, labels, gen), labels.clone(), seed)
    if rec.targets == "random":
        target = torch.randint(0, num_classes, (n,), generator=gen)
    elif rec.targets == "next":
        target = (labels + 1) % num_classes
    else:  # one example per target class for every image
        idx = idx.repeat_interleave(num_classes)
        target = torch.arange(num_classes).repeat(n)
    return Plan(idx, idx.clone(), target, seed)


class _EncoderSource(torch.nn.Module):
    """A paradigm encoder in the place of a source classifier: inversion only reads ``features``."""

    def __init__(self, encoder: Encoder) -> None:
        super().__init__()
        self.encoder = encoder

    def features(self, x: Tensor) -> Tensor:
        return self.encoder(x)


def _load_source_model(rec: Recipe, path: Path, device) -> torch.nn.Module:
    """An E1 classifier, or a stored paradigm encoder (the robust CL source) for an inversion recipe."""
    if not read_header(path).get("arch", "").startswith("paradigm:"):
        return load_classifier(path, device)
    if rec.method != "invert":
        raise ValueError(f"{path}: is an encoder without class logits; relabelling needs a classifier source")
    _, encoder, _ = load_encoder(path, device=str(device))
    return _EncoderSource(encoder)


def _chunk_file(parts: Path, begin: int) -> Path:
    return parts / f"chunk-{begin:07d}.safetensors"


def _cached_chunk(path: Path, chunk_identity: dict) -> dict[str, Tensor] | None:
    """The chunk at ``path`` if it was made by these settings (``chunk_identity``); None if absent, made by
    others, or damaged (then it is rebuilt)."""
    if not path.exists():
        return None
    try:
        art = load_artifact(path, "dataset")
    except ValueError:
        return None
    return art.tensors if art.params_digest == params_digest(chunk_identity) else None


def _build_chunk(
    rec: Recipe, cfg: ConstructParams, model, natural: ImageSet, plan: Plan, begin: int, end: int, device
) -> dict[str, Tensor]:
    src = plan.source[begin:end]
    x_src = natural.float_images(src).to(device)
    if rec.method == "invert":
        inv: InversionConfig = getattr(cfg, rec.settings)
        start_idx = plan.start[begin:end]
        if cfg.start != "noise":
            x_start = natural.float_images(start_idx).to(device)
        else:
            gen = torch.Generator().manual_seed(plan.noise_seed * 1_000_003 + begin)
            x_start = noise_starts(end - begin, x_src.shape[1:], gen, device)
        with torch.no_grad():
            target = model.features(x_src)
        x_out = invert(model.features, x_start, target, steps=inv.steps, step_size=inv.step_size, eps=inv.eps)
        with torch.no_grad():
            err = (model.features(x_out) - target).norm(dim=1) / target.norm(dim=1).clamp_min(1e-12)
        return {"images": x_out.cpu(), "start_images": x_start.cpu(), "repr_error": err.cpu()}
    rel: RelabelConfig = getattr(cfg, rec.settings)
    target = plan.label[begin:end].to(device)
    x_out = pgd_attack(
        model, x_src, target, norm=rel.norm, eps=rel.eps, step_size=rel.step_size, steps=rel.steps,
        targeted=True, random_start=False,
    )
    with torch.no_grad():
        hit = (model(x_out).argmax(1) == target).cpu()
    return {"images": x_out.cpu(), "start_images": x_src.cpu(), "target_hit": hit}


def construct_dataset(
    name: str,
    *,
    cfg: ConstructParams,
    data: DataParams,
    seed: int,
    device: str,
    model_path: Path,
    out: Path,
    on_progress: ProgressFn | None = None,
    speed: SpeedConfig | None = None,
) -> dict | None:
    """Build constructed dataset ``name`` into ``out`` (resumably) and return its construction metrics.

    The artifact holds ``images`` (``cfg.precision``), ``labels`` (assigned), ``source_labels``,
    ``sources`` and ``starts`` (indices into the natural subset; -1 = noise). On synthetic data the
    metrics include the ground-truth probes' agreement with the assigned labels, the non-robust probe
    reading what the construction added (result minus start). After every chunk ``on_progress`` gets
    phase "construct", images done of all, and ``images_per_s`` (and ``target_hit`` so far, if relabelled).
    ``speed``: how the source model runs (``attack.speed``, see ``advtui.attacks.speed``; None: plain): a
    relabelling's targeted PGD runs through it whole, an inversion reads ``features`` uncompiled.
    Split over several ranks (``advtui.shards.split``) each builds its share of the chunks; rank 0 writes
    the dataset, the same bytes as one process writes, and returns the metrics; the other ranks return None.
    """
    rec = recipe(name)
    dev = pick_device(device)
    settings = getattr(cfg, rec.settings)
    natural = source_images(getattr(cfg, _size_field(rec)), data, seed)
    plan = make_plan(name, cfg, natural.labels, natural.num_classes, seed)
    # the source model's version (settings and weights): chunks, and stages reading the set, refuse it once
    # that model is rebuilt
    identity = {
        "dataset": name, "recipe": asdict(rec), "settings": asdict(settings), "start": cfg.start, "seed": seed,
        "data": asdict(data), "source_model": stored_version(model_path), "n": len(plan.label),
    }
    parts = out.parent / f".{out.stem}.parts"
    parts.mkdir(parents=True, exist_ok=True)
    source_model = _load_source_model(rec, model_path, dev)
    total, started, done_now = len(plan.label), time.perf_counter(), 0
    begins = range(0, total, cfg.chunk)
    chunks: list[dict[str, Tensor]] = []
    done = 0
    with faster(source_model, speed, dev) as model:
        for begin in shards.mine(begins):  # one process: every chunk
            end = min(begin + cfg.chunk, total)
            path = _chunk_file(parts, begin)
            chunk_identity = identity | {"begin": begin, "end": end}
            cached = _cached_chunk(path, chunk_identity)
            if cached is None:
                cached = _build_chunk(rec, cfg, model, natural, plan, begin, end, dev)
                save_artifact(path, cached, kind="dataset", arch=name, params=chunk_identity)
                done_now += end - begin
            chunks.append(cached)
            done += end - begin
            if on_progress is not None:
                # the rate goes to the (untracked) progress file only: artifacts and metrics hold no timings
                rate = done_now / max(time.perf_counter() - started, 1e-9)
                info = {"images_per_s": rate}
                if "target_hit" in cached:
                    info["target_hit"] = float(torch.cat([c["target_hit"] for c in chunks]).float().mean())
                on_progress("construct", done, total, **info)
    if shards.share()[1] > 1:  # sharded: rank 0 merges every rank's chunks, the others are done
        if not distributed.is_main():
            return None
        chunks = shards.collect(
            begins, dict(zip(shards.mine(begins), chunks)),
            lambda b: _cached_chunk(_chunk_file(parts, b), identity | {"begin": b, "end": min(b + cfg.chunk, total)}),
            lambda b: _chunk_file(parts, b),
        )

    merged = {key: torch.cat([c[key] for c in chunks]) for key in chunks[0]}
    images, starts_img = merged.pop("images"), merged.pop("start_images")
    delta = (images - starts_img).flatten(1).norm(dim=1)
    metrics: dict[str, object] = {
        "dataset": name, "n": total, "method": rec.method, "model": str(model_path), "settings": asdict(settings),
        "start": cfg.start if rec.method == "invert" else "source", "mean_l2_change": delta.mean().item(),
    }
    if "target_hit" in merged:
        metrics["target_hit_rate"] = merged["target_hit"].float().mean().item()
    if "repr_error" in merged:
        metrics["mean_repr_error"] = merged["repr_error"].mean().item()
    if data.source == "synthetic":
        metrics.update(probe_agreement(images, plan.label, data.synthetic, starts=starts_img))
        if rec.method == "invert" and cfg.start != "noise":
            # tells "the start's shape survived" (high) from "no shape drawn at all" (both this and
            # robust_agreement near chance) when robust_agreement is low
            start_labels = natural.labels[plan.start]
            metrics["start_robust_agreement"] = (robust_probe(images, data.synthetic) == start_labels).float().mean().item()
    dtype = torch.float16 if cfg.precision == "float16" else torch.float32
    tensors = {
        "images": images.to(dtype), "labels": plan.label, "source_labels": natural.labels[plan.source],
        "sources": plan.source, "starts": plan.start,
    }
    if cfg.start == "noise" and rec.method == "invert":
        tensors["start_images"] = starts_img.to(dtype)
    save_artifact(
        out, tensors, kind="dataset", arch=name, paradigm="", sources=[str(model_path)], params=identity,
        extra={"classes": natural.classes, "construction": {k: v for k, v in metrics.items() if k != "settings"}},
    )
    shutil.rmtree(parts, ignore_errors=True)
    return metrics


def load_constructed(name: str, path: str | os.PathLike, *, sources: int | None = None) -> ImageSet:
    """Constructed set ``name`` from ``path``, checked to be the one a stage expects; one line naming
    ``dvc repro construct@<name>`` otherwise.

    The store has checked the contents against their checksum. Here: the file is construct ``name``'s
    output (not another set, nor an ``advtui invert`` result copied over it); it was made from the source
    model now at the pipeline's path (its recorded params digest and checksum; skipped when that model is
    absent, as after pulling only the datasets); and, when ``sources`` is given (how many natural images
    the construction starts from: :func:`planned_sources`), it holds as many images as it makes from them.
    """
    rec = recipe(name)
    fix = f"run `dvc repro construct@{name}`"
    data = load_source("constructed", "train", root=str(path))
    made_as = data.meta.get("arch", "")
    if made_as != name:
        raise ValueError(f"{path}: holds dataset {made_as!r}, not the constructed set {name}; {fix}")
    model = source_model_path(rec.model)
    identity = data.meta.get("params") or {}
    if model.exists() and identity.get("source_model") != stored_version(model):
        raise ValueError(f"{path}: was built from another {rec.model} model than the one in {model}; {fix}")
    if sources is not None:
        expected = sources * (data.num_classes if rec.targets == "all" else 1)
        if len(data) != expected:
            raise ValueError(
                f"{path}: holds {len(data)} images, the params make {expected} "
                f"(construct.{_size_field(rec)}, data.train_size); {fix}"
            )
    return data


def training_set(
    dataset: str, *, dataset_path: Path | None, construct: ConstructParams, data: DataParams, seed: int
) -> ImageSet:
    """Training set ``dataset`` of E4 and E5/E6: the natural images the constructions start from; the same images
    drawn without their planted pattern (``natural_nopattern``, synthetic data only); or a constructed set
    (checked to be the one these params make, see :func:`load_constructed`)."""
    if dataset == NATURAL_NOPATTERN:
        if data.source != "synthetic":
            raise ValueError(f"{dataset}: needs the synthetic data's planted pattern, data.source is {data.source!r}; "
                             "train on it with data.source: synthetic")
        return source_images(construct.size, replace(data, synthetic=without_pattern(data.synthetic)), seed)
    if dataset == "natural":
        return source_images(construct.size, data, seed)
    if dataset_path is None or not Path(dataset_path).exists():
        raise FileNotFoundError(f"{dataset_path}: constructed dataset missing; run `dvc repro construct@{dataset}` first")
    return load_constructed(dataset, dataset_path, sources=planned_sources(dataset, construct, data))
