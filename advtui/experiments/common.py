"""What every experiment needs: the natural data of the active params, and classifiers in and out of the store."""

from __future__ import annotations

from pathlib import Path

import torch

from advtui.data.imageset import ImageSet
from advtui.data.loaders import load_source
from advtui.data.store import load_artifact, save_artifact
from advtui.models.registry import Classifier, create_model
from advtui.catalog.data import DataParams
from advtui.catalog.paths import model_path, retrained_path

#: Classifier weights the pipeline makes, named by errors that ask for a classifier.
CLASSIFIER_EXAMPLE = f"{model_path('standard')} or {retrained_path('natural', 0)}"


def natural_split(data: DataParams, split: str, seed: int) -> ImageSet:
    """The natural train or test set that ``data`` describes (same params and seed: same images)."""
    size, key = (data.train_size, "data.train_size") if split == "train" else (data.test_size, "data.test_size")
    return load_source(
        data.source, split, root=data.root, size=size, seed=seed, synthetic=data.synthetic, download=data.download,
        size_key=key,
    )


#: Test images a training run reads its per-epoch accuracy on (its live curve and DVCLive log, never a reported
#: result): reading all of a 1000-image test set after every epoch cost about a fifth of E4's training time.
MONITOR_SIZE = 200


def monitor_split(test: ImageSet, seed: int) -> ImageSet:
    """The class-balanced ``MONITOR_SIZE`` images of ``test`` (all of a smaller set) a run's live curve reads."""
    return test.select(min(MONITOR_SIZE, len(test)), seed, key="data.test_size")


def image_size(images: ImageSet) -> int:
    """Side of the (square) images of a set."""
    return int(images.images.shape[-1])


def save_classifier(
    model: Classifier,
    path: str | Path,
    *,
    paradigm: str,
    params: dict,
    sources: list[str] | None = None,
    extra: dict | None = None,
) -> Path:
    """Store a classifier's weights with the header that lets :func:`load_classifier` rebuild it."""
    header = {"num_classes": model.num_classes, "img_size": model.img_size, **(extra or {})}
    return save_artifact(
        path, model.state_dict(), kind="model", arch=model.arch, paradigm=paradigm, sources=sources, params=params, extra=header
    )


def load_classifier(path: str | Path, device: torch.device | str = "cpu") -> Classifier:
    """Rebuild a stored classifier (architecture and sizes from its header) in eval mode on ``device``.

    Besides the store's checks (header, checksum, finite weights), refuses with one line a folder or a
    metrics file passed by mistake (both sit beside the weights under data/), and a paradigm encoder or a
    linear probe's head, which have no classifier architecture to rebuild.
    """
    path = Path(path)
    if path.is_dir() or path.suffix == ".json":
        what = "a folder" if path.is_dir() else "a metrics file (`advtui report` shows metrics)"
        raise ValueError(f"{path}: is {what}, not a classifier's weights; pass its .safetensors file, e.g. {CLASSIFIER_EXAMPLE}")
    art = load_artifact(path, "model")
    if art.arch == "linear_probe" or art.arch.startswith("paradigm:"):
        what = "a linear probe's head" if art.arch == "linear_probe" else f"a paradigm encoder ({art.paradigm})"
        raise ValueError(
            f"{path}: is {what}, not a classifier; pass a classifier's weights, e.g. {CLASSIFIER_EXAMPLE}"
        )
    try:
        model = create_model(art.arch, num_classes=int(art.extra["num_classes"]), img_size=int(art.extra["img_size"]))
    except KeyError as err:
        raise ValueError(f"{path}: model header lacks {err}; retrain it with this advtui version") from None
    try:
        model.load_state_dict(art.tensors)
    except RuntimeError as err:
        first = str(err).splitlines()[0]
        raise ValueError(f"{path}: weights do not fit architecture {art.arch!r} ({first}); retrain it") from None
    return model.to(device).eval()

