"""Read the gallery file (``data/gallery/gallery.safetensors``, written by ``advtui stage gallery main``) with
NumPy only, so the TUI never imports torch.

Layout (the writer is :mod:`advtui.experiments.gallery`): for each shown set (``natural`` first, then the
constructed sets) ``images/<set>`` (N, C, H, W) float16 and ``labels/<set>`` (N,) int; for constructed sets
``delta/<set>`` (constructed minus its start image) and ``starts/<set>``; ``preds/<model>/<set>`` (N,) the
class each model predicts; ``index`` (N,) the source images' indices in the natural subset. The metadata
header holds ``classes``, ``sets``, ``models`` (name -> description) and ``captions`` (set -> description)
as JSON strings.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from safetensors import SafetensorError, safe_open

GALLERY_FILE = Path("data") / "gallery" / "gallery.safetensors"
STAGE = "gallery"


@dataclass(frozen=True)
class Tile:
    """One image of a gallery row and what to write under it."""

    set: str
    image: np.ndarray  # (C, H, W) float32 in [0, 1]
    label: int
    preds: dict[str, int]  # model -> predicted class
    delta: np.ndarray | None  # (C, H, W) constructed minus start image; None for natural images
    start: int | None  # index of the start image in the natural subset (-1: noise); None for natural images


@dataclass(frozen=True)
class Gallery:
    """The whole gallery file."""

    classes: list[str]
    sets: list[str]
    models: dict[str, str]
    captions: dict[str, str]
    index: np.ndarray
    tensors: dict[str, np.ndarray]

    def __len__(self) -> int:
        return len(self.index)

    def row(self, i: int) -> list[Tile]:
        """The tiles of source image ``i``: the natural image, then each constructed set's version."""
        tiles = []
        for name in self.sets:
            delta = self.tensors.get(f"delta/{name}")
            start = self.tensors.get(f"starts/{name}")
            tiles.append(Tile(
                set=name, image=self.tensors[f"images/{name}"][i].astype(np.float32),
                label=int(self.tensors[f"labels/{name}"][i]),
                preds={m: int(self.tensors[f"preds/{m}/{name}"][i]) for m in self.models if f"preds/{m}/{name}" in self.tensors},
                delta=None if delta is None else delta[i].astype(np.float32),
                start=None if start is None else int(start[i]),
            ))
        return tiles

    def class_name(self, label: int) -> str:
        """The name of class ``label`` (its number when the file has no name for it)."""
        return self.classes[label] if 0 <= label < len(self.classes) else str(label)


def _json(meta: dict[str, str], key: str, default):
    try:
        return json.loads(meta[key])
    except (KeyError, json.JSONDecodeError):
        return default


def read_gallery(path: Path) -> Gallery:
    """Load the gallery file at ``path``; a missing file raises FileNotFoundError naming the stage to run."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no gallery yet; run `dvc repro {STAGE}` (or `advtui stage gallery main`)")
    try:
        with safe_open(str(path), framework="np") as fh:
            meta = fh.metadata() or {}
            tensors = {key: fh.get_tensor(key) for key in fh.keys()}
    except (SafetensorError, OSError, ValueError) as err:
        raise ValueError(f"{path}: not a readable gallery file ({err}); rerun `dvc repro {STAGE}`") from None
    sets = _json(meta, "sets", [])
    needed = ["index"] + [f"{kind}/{name}" for name in sets for kind in ("images", "labels")]
    lacking = [key for key in needed if key not in tensors]
    if meta.get("arch") != "gallery" or not sets or lacking:
        raise ValueError(f"{path}: not a gallery file (lacks {', '.join(lacking) or 'its header'}); rerun `dvc repro {STAGE}`")
    return Gallery(
        classes=[str(c) for c in _json(meta, "classes", [])], sets=list(sets), models=dict(_json(meta, "models", {})),
        captions=dict(_json(meta, "captions", {})), index=tensors["index"], tensors=tensors,
    )
