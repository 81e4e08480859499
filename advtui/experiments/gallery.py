"""The gallery: a few source images beside their constructed versions, for the terminal app to draw.

For each chosen natural image the gallery stores its D_R, D_NR, D_rand and D_det versions (the constructed
images whose ``sources`` index is that image), their labels, the perturbation that made each (constructed
minus its start image: another image or noise for the inversions, the source itself for the relabelled
sets), and what three models predict on every one of them: the E4 classifier trained on natural data and
the standard and L2-robust source models. Images are float16, labels and predictions int64; the header
carries the class names and captions. The TUI reads the file with NumPy only
(:mod:`advtui.appcore.galleryfile` documents the layout).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor

from advtui.data.imageset import ImageSet
from advtui.catalog.names import GALLERY_MODELS, GALLERY_SETS
from advtui.data.store import save_artifact
from advtui.experiments.common import load_classifier
from advtui.experiments.construct import load_constructed
from advtui.runtime import pick_device

def pick_sources(labels: Tensor, candidates: Tensor, n: int) -> Tensor:
    """``n`` indices from ``candidates`` (sorted natural indices): the classes take turns, each giving its
    lowest remaining index, so the choice is deterministic and shows every class before repeating one."""
    queues = [candidates[labels[candidates] == c].tolist() for c in range(int(labels.max()) + 1)]
    chosen: list[int] = []
    while len(chosen) < n and any(queues):
        for queue in queues:
            if queue and len(chosen) < n:
                chosen.append(queue.pop(0))
    return torch.tensor(chosen, dtype=torch.long)


def _versions(name: str, tensors: dict[str, Tensor], natural: ImageSet, chosen: Tensor) -> dict[str, Tensor]:
    """The constructed images of ``chosen`` natural images in set ``name``, their labels, starts and deltas."""
    sources, starts = tensors["sources"], tensors["starts"]
    rows = torch.stack([torch.nonzero(sources == s).flatten()[0] for s in chosen.tolist()])
    if not torch.equal(tensors["source_labels"][rows], natural.labels[chosen]):
        raise ValueError(f"dataset {name}: was built from other natural images than the active params give; "
                         f"rerun `dvc repro construct@{name}`")
    images = tensors["images"][rows].float()
    start_idx = starts[rows]
    if bool((start_idx >= 0).all()):
        start_images = natural.float_images(start_idx)
    elif "start_images" in tensors:
        start_images = tensors["start_images"][rows].float()
    else:
        raise ValueError(f"dataset {name}: noise starts without their start images; rerun `dvc repro construct@{name}`")
    return {"images": images, "labels": tensors["labels"][rows], "starts": start_idx, "delta": images - start_images}


@torch.no_grad()
def _predict(model, images: Tensor, device: torch.device) -> Tensor:
    return model(images.to(device)).argmax(1).cpu()


def build_gallery(
    *,
    n: int,
    natural: ImageSet,
    datasets: dict[str, Path],
    models: dict[str, Path],
    out: Path,
    device: str = "cpu",
) -> dict:
    """Write the gallery of ``n`` natural images (``natural``: the subset the constructions index into)
    and their versions in ``datasets`` (name: artifact), with the predictions of ``models``, to ``out``.

    Only images present in every dataset are chosen. Returns the stage's metrics: the count and, per set
    and model, how often the model predicts the set's label on the shown images.
    """
    dev = pick_device(device)
    present = torch.ones(len(natural), dtype=torch.bool)
    arts = {}
    for name, path in datasets.items():
        # checked: construct `name`'s output, from the current source model and as many natural images
        built = load_constructed(name, path, sources=len(natural))
        arts[name] = {"images": built.images, "labels": built.labels, **built.extras}
        sources = arts[name]["sources"]
        mask = torch.zeros(len(natural), dtype=torch.bool)
        mask[sources] = True
        present &= mask
    chosen = pick_sources(natural.labels, torch.nonzero(present).flatten(), n)
    if not len(chosen):
        raise ValueError("gallery: no natural image appears in every constructed set; rebuild them with `dvc repro construct`")
    shown = {"natural": {"images": natural.float_images(chosen), "labels": natural.labels[chosen]}}
    shown |= {name: _versions(name, tensors, natural, chosen) for name, tensors in arts.items()}
    tensors: dict[str, Tensor] = {"index": chosen}
    metrics: dict[str, float | int] = {"n": len(chosen)}
    nets = {name: load_classifier(path, dev) for name, path in models.items()}
    for name, version in shown.items():
        tensors[f"images/{name}"] = version["images"].to(torch.float16)
        tensors[f"labels/{name}"] = version["labels"]
        if "delta" in version:
            tensors[f"delta/{name}"] = version["delta"].to(torch.float16)
            tensors[f"starts/{name}"] = version["starts"]
        for model, net in nets.items():
            preds = _predict(net, version["images"], dev)
            tensors[f"preds/{model}/{name}"] = preds
            metrics[f"{model}_on_{name}"] = float((preds == version["labels"]).float().mean())
    save_artifact(
        out, tensors, kind="dataset", arch="gallery", sources=[str(p) for p in [*datasets.values(), *models.values()]],
        params={"n": n, "index": chosen.tolist()},
        extra={"classes": natural.classes, "sets": list(shown), "captions": {"natural": "the source image", **GALLERY_SETS},
               "models": {m: GALLERY_MODELS.get(m, m) for m in models}},
    )
    return metrics
