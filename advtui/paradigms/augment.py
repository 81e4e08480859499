"""Batched image augmentation (random crop with padding, horizontal flip, Gaussian noise) from one generator.

Every random draw comes from the ``torch.Generator`` passed in (on the CPU, then moved), so a run is
reproducible and a resumed run continues the same sequence.
"""

from __future__ import annotations


import torch
import torch.nn.functional as F
from torch import Tensor
from advtui.catalog.training import AugmentConfig


def random_crop(x: Tensor, padding: int, generator: torch.Generator) -> Tensor:
    """Zero-pad each image of ``x`` (N, C, H, W) by ``padding`` and crop an H x W window at a random offset."""
    n, _, h, w = x.shape
    padded = F.pad(x, (padding, padding, padding, padding))
    dy = torch.randint(0, 2 * padding + 1, (n,), generator=generator).to(x.device)
    dx = torch.randint(0, 2 * padding + 1, (n,), generator=generator).to(x.device)
    rows = (dy[:, None] + torch.arange(h, device=x.device))[:, :, None]  # (N, H, 1)
    cols = (dx[:, None] + torch.arange(w, device=x.device))[:, None, :]  # (N, 1, W)
    batch = torch.arange(n, device=x.device)[:, None, None]
    # advanced indexing on dims 0, 2, 3 puts the indexed dims first: (N, H, W, C)
    return padded.permute(0, 2, 3, 1)[batch, rows, cols].permute(0, 3, 1, 2).contiguous()


def random_flip(x: Tensor, generator: torch.Generator) -> Tensor:
    """Mirror each image of ``x`` left-right with probability 1/2."""
    flip = (torch.rand(x.shape[0], generator=generator) < 0.5).to(x.device)
    return torch.where(flip[:, None, None, None], x.flip(3), x)


def gaussian_noise(x: Tensor, std: float, generator: torch.Generator) -> Tensor:
    """Add N(0, std^2) pixel noise and clip to [0, 1]."""
    noise = torch.randn(x.shape, generator=generator).to(device=x.device, dtype=x.dtype)
    return (x + std * noise).clamp_(0.0, 1.0)


def augment(x: Tensor, cfg: AugmentConfig, generator: torch.Generator) -> Tensor:
    """Apply the augmentations ``cfg`` turns on to a batch ``x`` in [0, 1]: crop, then flip, then noise."""
    if cfg.crop_padding > 0:
        x = random_crop(x, cfg.crop_padding, generator)
    if cfg.flip:
        x = random_flip(x, generator)
    if cfg.noise_std > 0:
        x = gaussian_noise(x, cfg.noise_std, generator)
    return x
