"""Data sources: every way advtui gets images, each returned as one ImageSet.

- ``synthetic``: the planted-feature dataset (advtui.data.synthetic), generated on the fly;
- ``cifar10``: torchvision's download of the original pickled batches;
- ``imagefolder``: any ``root/<split>/<class>/*.jpg|png`` tree (the shared CIFAR-10 JPEG copy, Tiny-ImageNet-200,
  ImageNet-9), decoded once and cached under the user cache folder;
- ``constructed``: a dataset artifact written by a construction stage (advtui.data.store).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections import Counter
from pathlib import Path
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from safetensors.torch import load_file, save_file
from torch import Tensor

from advtui.data.imageset import ImageSet
from advtui.data.store import load_artifact
from advtui.files import atomic_path
from advtui import distributed
from advtui.data.synthetic import make_synthetic
from advtui.catalog.data import SyntheticConfig

SourceName = Literal["synthetic", "cifar10", "imagefolder", "constructed"]
SOURCES: tuple[str, ...] = ("synthetic", "cifar10", "imagefolder", "constructed")
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".gif", ".tif", ".tiff"})
#: Where the profiles that read real images expect them (data.root: data/cifar10-jpeg), and how to put them there.
_UNPACK_HINT = "mkdir -p data/cifar10-jpeg && tar -xzf cifar10-jpeg.tar.gz -C data/cifar10-jpeg"


def cache_dir() -> Path:
    """advtui's cache folder: ``$ADVTUI_CACHE``, else ``$XDG_CACHE_HOME/advtui``, else ``~/.cache/advtui``."""
    if os.environ.get("ADVTUI_CACHE"):
        return Path(os.environ["ADVTUI_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "advtui"


def load_source(
    name: SourceName,
    split: Literal["train", "test"],
    *,
    root: str | None = None,
    size: int | None = None,
    seed: int = 0,
    synthetic: SyntheticConfig | None = None,
    download: bool = True,
    size_key: str = "size",
) -> ImageSet:
    """Load one split of a data source.

    ``root``: the download folder (cifar10; default ``<cache_dir>/cifar10``), the tree (imagefolder), or the
    artifact file (constructed: a constructed set is one set, ``split`` is only recorded). ``size`` and ``seed``
    pick a deterministic, class-balanced subset (``None``: all); for synthetic, ``size`` images are generated
    from ``seed`` with ``synthetic`` (default ``SyntheticConfig()``). ``size_key``: the setting that gave
    ``size``, named when the source holds fewer images.
    """
    if split not in ("train", "test"):
        raise ValueError(f"split: must be 'train' or 'test', got {split!r}; pick one of the two")
    if name == "synthetic":
        if size is None:
            raise ValueError("size: the synthetic source needs a number of images; pass size=<n>")
        return make_synthetic(synthetic or SyntheticConfig(), size, seed, split)
    if name == "cifar10":
        images = _load_cifar10(split, root, download)
    elif name == "imagefolder":
        images = _load_imagefolder(split, root)
    elif name == "constructed":
        images = _load_constructed(split, root)
    else:
        raise ValueError(f"name: unknown data source {name!r}; use one of {', '.join(SOURCES)}")
    return images.select(size, seed, key=size_key)


def _load_cifar10(split: str, root: str | None, download: bool) -> ImageSet:
    from torchvision.datasets import CIFAR10

    folder = Path(root) if root else cache_dir() / "cifar10"
    try:
        with distributed.main_first():  # under torchrun, rank 0 downloads and the other ranks read its copy
            dataset = CIFAR10(str(folder), train=split == "train", download=download)
    except (OSError, RuntimeError) as err:
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise ValueError(
            f"cifar10: cannot load CIFAR-10 from {folder} ({reason}); without internet use source imagefolder "
            f"with root at an ImageFolder copy, e.g. `{_UNPACK_HINT}` then root=data/cifar10-jpeg"
        ) from err
    return ImageSet(
        images=torch.from_numpy(dataset.data).permute(0, 3, 1, 2).contiguous(),
        labels=torch.tensor(dataset.targets, dtype=torch.int64),
        classes=list(dataset.classes),
        meta={"source": "cifar10", "split": split, "root": str(folder)},
    )


def _is_labelled(folder: Path, classes: set[str]) -> bool:
    return (folder / "val_annotations.txt").is_file() or any(d.is_dir() and d.name in classes for d in folder.iterdir())


def _image_files(folder: Path) -> list[str]:
    # os.walk on strings: pathlib's rglob costs ~0.7 s on 50,000 files, which would dominate a cached load
    found = [
        os.path.join(parent, name)
        for parent, _, names in os.walk(folder)
        for name in names
        if os.path.splitext(name)[1].lower() in IMAGE_SUFFIXES
    ]
    return sorted(found)


def _list_imagefolder(root: Path, split: str) -> tuple[list[str], list[str], list[int]]:
    """Class names, image files and their labels. Class names come from ``train/`` so that every split
    shares one index; ``test`` falls back to ``val/`` when ``test/`` is missing or unlabelled (Tiny-ImageNet,
    whose ``val/`` holds images/ plus val_annotations.txt, is read as it is)."""
    names_from = root / "train" if (root / "train").is_dir() else root / split
    if not names_from.is_dir():
        raise FileNotFoundError(f"imagefolder: no folder {root / split}; point root at a tree with {split}/<class>/ image folders")
    classes = sorted(d.name for d in names_from.iterdir() if d.is_dir())
    index = {name: i for i, name in enumerate(classes)}
    candidates = [root / split] + ([root / "val"] if split == "test" else [])
    labelled = [c for c in candidates if c.is_dir() and _is_labelled(c, set(classes))]
    if not labelled:
        tried = " or ".join(str(c) for c in candidates)
        raise FileNotFoundError(f"imagefolder: no labelled {tried}; point root at a tree with {split}/<class>/ image folders")
    folder = labelled[0]
    files: list[str] = []
    labels: list[int] = []
    annotations = folder / "val_annotations.txt"
    if annotations.is_file():
        for line in annotations.read_text().splitlines():
            fields = line.split("\t")
            if len(fields) >= 2 and fields[1] in index:
                files.append(str(folder / "images" / fields[0]))
                labels.append(index[fields[1]])
    else:
        for class_dir in sorted(d for d in folder.iterdir() if d.is_dir()):
            if class_dir.name not in index:
                raise ValueError(
                    f"imagefolder: class folder {class_dir} is not among the classes of {names_from}; give both splits the same classes"
                )
            found = _image_files(class_dir)
            files.extend(found)
            labels.extend([index[class_dir.name]] * len(found))
    if not files:
        raise ValueError(f"imagefolder: no images under {folder}/<class>/; put .jpg/.png files in one folder per class")
    return classes, files, labels


def _fingerprint(base: Path, split: str, classes: list[str], files: list[str], labels: list[int]) -> str:
    """Cache key over every file's path, size and mtime: editing, adding or removing an image rebuilds the cache."""
    listing = [(f, st.st_size, st.st_mtime_ns) for f in files for st in [os.stat(f)]]
    return hashlib.sha256(json.dumps([str(base), split, classes, labels, listing]).encode()).hexdigest()[:24]


def _decode(path: str) -> Tensor:
    with Image.open(path) as image:
        return torch.from_numpy(np.asarray(image.convert("RGB")).copy()).permute(2, 0, 1)


#: What PIL raises for a truncated, corrupt or foreign file (OSError covers UnidentifiedImageError; some
#: plugins raise SyntaxError or ValueError on malformed headers).
_UNDECODABLE = (OSError, SyntaxError, ValueError, Image.DecompressionBombError)


def _decode_all(files: list[str]) -> list[Tensor]:
    """Decode every image file, or fail with one line naming the first that cannot be read (and how many
    more), so one pass finds every bad file instead of a PIL traceback for the first."""
    decoded, bad = [], []
    for path in files:
        try:
            decoded.append(_decode(path))
        except _UNDECODABLE as err:
            bad.append((path, str(err).splitlines()[0] if str(err) else type(err).__name__))
    if bad:
        (first, reason), more = bad[0], len(bad) - 1
        others = f" ({more} more in this tree cannot be decoded either)" if more else ""
        raise ValueError(f"{first}: cannot decode this image ({reason}); remove or replace it{others}, then rerun")
    return decoded


def _stack(decoded: list[Tensor]) -> Tensor:
    """Stack uint8 CHW images, resizing (antialiased) only those whose size differs from the most common one."""
    height, width = Counter(tuple(img.shape[1:]) for img in decoded).most_common(1)[0][0]
    out = torch.empty(len(decoded), 3, height, width, dtype=torch.uint8)
    for i, img in enumerate(decoded):
        if img.shape[1:] != (height, width):
            resized = F.interpolate(img[None].float(), size=(height, width), mode="bilinear", antialias=True, align_corners=False)
            img = resized[0].round().clamp(0, 255).to(torch.uint8)
        out[i] = img
    return out


def _load_imagefolder(split: str, root: str | None) -> ImageSet:
    if not root:
        raise ValueError(f"root: the imagefolder source needs root=<folder with train/ and test/ class folders>, e.g. after `{_UNPACK_HINT}`")
    base = Path(root).expanduser().resolve()
    if not base.is_dir():
        raise FileNotFoundError(f"imagefolder: root {base} does not exist; unpack the tree first, e.g. `{_UNPACK_HINT}`")
    classes, files, labels = _list_imagefolder(base, split)
    meta = {"source": "imagefolder", "split": split, "root": str(base)}
    cached = cache_dir() / "imagefolder" / f"{_fingerprint(base, split, classes, files, labels)}.safetensors"
    if cached.is_file():
        tensors = load_file(str(cached))
        return ImageSet(images=tensors["images"], labels=tensors["labels"], classes=classes, meta=meta)
    images = _stack(_decode_all(files))
    labels_t = torch.tensor(labels, dtype=torch.int64)
    tmp = atomic_path(cached)
    try:
        save_file({"images": images, "labels": labels_t}, str(tmp), metadata={"root": str(base), "split": split})
        os.replace(tmp, cached)
    finally:
        tmp.unlink(missing_ok=True)
    return ImageSet(images=images, labels=labels_t, classes=classes, meta=meta)


def _load_constructed(split: str, root: str | None) -> ImageSet:
    if not root:
        raise ValueError("root: the constructed source needs root=<dataset .safetensors artifact>; run a construct stage first")
    artifact = load_artifact(root, kind="dataset")
    tensors = dict(artifact.tensors)
    if "images" not in tensors or "labels" not in tensors:
        raise ValueError(f"{root}: dataset artifact lacks 'images' or 'labels'; rebuild it with its construct stage")
    images, labels = tensors.pop("images"), tensors.pop("labels").to(torch.int64)
    meta = artifact.meta
    classes = meta.get("classes")
    top = int(labels.max()) if len(labels) else -1
    if not (isinstance(classes, list) and len(classes) > top):
        count = int(meta.get("num_classes") or top + 1)
        classes = [str(i) for i in range(count)]
    return ImageSet(
        images=images,
        labels=labels,
        classes=[str(c) for c in classes],
        extras=tensors,
        meta={**meta, "source": "constructed", "split": split, "root": str(root)},
    )
