"""SimCLR's random views of a batch (Chen et al. 2020), on tensors with kornia, differentiable w.r.t. the images.

A view is: random resized crop, horizontal flip, colour jitter (applied with probability ``jitter_p``),
random grayscale, and optionally Gaussian blur. Every op is a kornia module, so gradients flow from a
view back to the input image: an attack on a contrastive objective can keep the augmentations in the
loop (Li et al. 2023, section 5.1, differentiate through SimCLR's augmentations with kornia). The crop
resamples through an affine warp (kornia's "resample" mode) rather than slicing, for that reason.

Randomness comes from torch's global RNG (kornia draws its parameters there), which the trainer seeds
and checkpoints.
"""

from __future__ import annotations


import kornia.augmentation as K
from torch import Tensor, nn
from advtui.catalog.training import ViewConfig


class SimCLRViews(nn.Module):
    """``forward(x)``: one random view of each image of ``x`` (N, C, H, W) in [0, 1]; same shape, in [0, 1].

    Each image gets its own random parameters; two calls give two independent views. The module has no
    parameters and behaves the same in train and eval mode (an attack can run it in eval mode). Works at
    any image size (the crop resizes back to the input's size).
    """

    def __init__(self, cfg: ViewConfig) -> None:
        super().__init__()
        self.cfg = cfg
        s = cfg.jitter_strength
        colour: list[nn.Module] = [K.RandomHorizontalFlip(p=cfg.flip_p)]
        if s > 0 and cfg.jitter_p > 0:
            colour.append(K.ColorJitter(0.8 * s, 0.8 * s, 0.8 * s, 0.2 * s, p=cfg.jitter_p))
        if cfg.grayscale_p > 0:
            colour.append(K.RandomGrayscale(p=cfg.grayscale_p))
        self.colour = nn.Sequential(*colour)
        # the crop's output size and the blur's kernel follow the image size: built on first use per size
        self._by_size: dict[tuple[int, int], tuple[nn.Module, nn.Module | None]] = {}

    def _sized(self, size: tuple[int, int]) -> tuple[nn.Module, nn.Module | None]:
        if size not in self._by_size:
            cfg = self.cfg
            crop = K.RandomResizedCrop(
                size, scale=(cfg.min_scale, cfg.max_scale), ratio=(cfg.min_ratio, cfg.max_ratio),
                cropping_mode="resample", p=1.0,
            )
            blur = None
            if cfg.blur_p > 0:
                kernel = max(3, min(size) // 10) | 1  # odd; SimCLR: a tenth of the side
                blur = K.RandomGaussianBlur(kernel, (0.1, 2.0), p=cfg.blur_p)
            self._by_size[size] = (crop, blur)
        return self._by_size[size]

    def forward(self, x: Tensor) -> Tensor:
        crop, blur = self._sized((int(x.shape[-2]), int(x.shape[-1])))
        x = self.colour(crop(x))
        if blur is not None:
            x = blur(x)
        # bilinear resampling can overshoot [0, 1] by rounding; the jitter clamps its own output already
        return x.clamp(0.0, 1.0)
