"""ImageSet: the one in-memory form every data source returns (images, labels, class names, side info)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

_FLOAT_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


@dataclass
class ImageSet:
    """A labelled image set.

    ``images`` is NCHW, either uint8 in 0..255 (decoded natural images, kept compact) or floating point in
    [0, 1] (synthetic and constructed sets, which must keep their precision). ``extras`` holds per-image
    side information whose first dimension is N (synthetic ground truth, start indices of a constructed set),
    ``meta`` its provenance (JSON-serialisable values).
    """

    images: Tensor
    labels: Tensor
    classes: list[str]
    extras: dict[str, Tensor] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.images.dim() != 4:
            raise ValueError(f"images: expected an NCHW tensor, got shape {tuple(self.images.shape)}; stack images as (N, C, H, W)")
        if self.images.dtype != torch.uint8 and self.images.dtype not in _FLOAT_DTYPES:
            raise ValueError(f"images: dtype {self.images.dtype} unsupported; use uint8 (0..255) or float in [0, 1]")
        if self.labels.dtype != torch.int64 or self.labels.shape != (self.images.shape[0],):
            raise ValueError(
                f"labels: expected int64 of shape ({self.images.shape[0]},), got {self.labels.dtype} {tuple(self.labels.shape)}; "
                "give one int64 label per image"
            )
        if len(self.labels) and (int(self.labels.min()) < 0 or int(self.labels.max()) >= len(self.classes)):
            raise ValueError(f"labels: values must lie in 0..{len(self.classes) - 1}; give one class name per label value")
        for key, value in self.extras.items():
            if value.shape[:1] != self.images.shape[:1]:
                raise ValueError(f"extras[{key!r}]: first dimension {value.shape[:1]} != {len(self)} images; store one row per image")

    def __len__(self) -> int:
        return int(self.images.shape[0])

    @property
    def num_classes(self) -> int:
        """Number of classes (length of ``classes``)."""
        return len(self.classes)

    def float_images(self, index: Tensor | slice | None = None) -> Tensor:
        """The images (all, or ``index``) as float32 in [0, 1]; uint8 images are divided by 255."""
        images = self.images if index is None else self.images[index]
        if images.dtype == torch.uint8:
            return images.to(torch.float32).div_(255.0)
        return images.to(torch.float32)

    def subset(self, index: Tensor) -> ImageSet:
        """The images at ``index`` (int64 indices or a bool mask), with their labels and extras."""
        return ImageSet(
            images=self.images[index],
            labels=self.labels[index],
            classes=list(self.classes),
            extras={key: value[index] for key, value in self.extras.items()},
            meta=dict(self.meta),
        )

    def select(self, size: int | None, seed: int, *, key: str = "size") -> ImageSet:
        """A deterministic subset of ``size`` images (``None``: all), class-balanced where the classes allow.

        Each class is shuffled with ``seed`` and the classes take turns, so the same ``size`` and ``seed``
        always give the same images, a smaller size is a subset of a larger one, and a class with too few
        images leaves its share to the others. The chosen images keep their original order. ``key`` is the
        setting that gave ``size`` (e.g. ``data.train_size``), named when ``size`` exceeds the images there are.
        """
        if size is None:
            return self
        if size < 1 or size > len(self):
            raise ValueError(
                f"{key}: must lie in 1..{len(self)} (the images this source holds), got {size}; "
                f"lower {key} or set it to null for all images"
            )
        if size == len(self):
            return self
        generator = torch.Generator().manual_seed(seed)
        rank = torch.empty(len(self), dtype=torch.int64)
        for cls in range(self.num_classes):
            members = torch.nonzero(self.labels == cls).flatten()
            rank[members[torch.randperm(len(members), generator=generator)]] = torch.arange(len(members))
        # ties (same rank in different classes) are broken by a seeded class order, not by class index
        class_order = torch.randperm(self.num_classes, generator=generator)
        key = rank * self.num_classes + class_order[self.labels]
        chosen = torch.argsort(key)[:size].sort().values
        picked = self.subset(chosen)
        picked.meta = {**self.meta, "select": {"size": size, "seed": seed}}
        return picked

    def loader(
        self, batch_size: int, shuffle: bool = False, generator: torch.Generator | None = None
    ) -> Iterator[tuple[Tensor, Tensor]]:
        """Iterate over ``(x, y)`` batches, x float32 in [0, 1]; the last batch may be smaller."""
        if batch_size < 1:
            raise ValueError(f"batch_size: must be >= 1, got {batch_size}; use a positive batch size")
        order = torch.randperm(len(self), generator=generator) if shuffle else torch.arange(len(self))
        for start in range(0, len(self), batch_size):
            index = order[start : start + batch_size]
            yield self.float_images(index), self.labels[index]
