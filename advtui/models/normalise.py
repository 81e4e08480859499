"""Per-channel input normalisation as a module, so models take images in [0, 1] and attacks work in pixel space."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2471, 0.2435, 0.2616)


class Normalise(nn.Module):
    """``(x - mean) / std`` per channel.

    ``mean`` and ``std`` are persistent buffers: they follow ``.to(device)`` and travel in the state dict,
    so saved weights always come back with the normalisation they were trained under.
    """

    def __init__(self, mean: Sequence[float], std: Sequence[float]) -> None:
        super().__init__()
        if len(mean) != len(std):
            raise ValueError(f"std: has {len(std)} channels but mean has {len(mean)}; give one value per channel for both")
        if any(s <= 0 for s in std):
            raise ValueError(f"std: every value must be > 0, got {tuple(std)}; use the data's per-channel spread")
        self.register_buffer("mean", torch.tensor(tuple(mean), dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(tuple(std), dtype=torch.float32).view(1, -1, 1, 1))

    def forward(self, x: Tensor) -> Tensor:
        """Normalise a batch ``x`` (N, C, H, W) of images in [0, 1]."""
        return (x - self.mean) / self.std

    def extra_repr(self) -> str:
        return f"mean={self.mean.flatten().tolist()}, std={self.std.flatten().tolist()}"
