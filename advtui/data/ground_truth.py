"""Ground-truth probes of the synthetic dataset: which class an image's robust part (its shape) and its
non-robust part (the planted pattern) point to. They are fixed signal-processing detectors built from the
generator's own shapes and patterns, never a trained model (a pipeline model "agrees" with what it built).

- robust: matched filtering. Each class shape, blurred and stripped of its component in the generator's
  background subspace (so no smooth background counts as evidence), is correlated with the image at every
  integer shift of the jitter range and a few scales; the unknown colour is handled by summing the squared
  correlations of the three channels. The filters are unit-norm, so white noise scores every class alike, and
  smooth, so high-frequency noise and the planted pattern barely reach them: noisy, faint, partly drawn shapes
  (inverted images) still read correctly.
- colour (``colour="class"`` only): the shape filters plus blurred disks, per channel, give the signed colour of
  the best-fitting patch; the class whose base colour it is closest to (cosine) wins. The disks let it read
  shapeless colour patches too (inverted images are source-coloured texture rather than shapes).
- non-robust: correlation of the high-passed input with each class pattern at every shift, max over shifts
  (tiled patterns: all tile shifts at once by folding the image onto one tile; the entangled variant's outlines:
  matched filters of each class's high-passed shape over the jitter range and scales, colour-free as the robust
  probe's). On the entangled variant it reads a whole shape's class too: that is what entangled means.
"""

from __future__ import annotations

import functools
import math

import torch
import torch.nn.functional as F
from torch import Tensor

from advtui.data.synthetic import OUTLINE_SIGMA, background_basis, class_colours, high_pass, nonrobust_tiles, render_masks
from advtui.catalog.data import SyntheticConfig

_LOWPASS_SIGMA = 1.0  # px: removes the planted pattern and pixel noise, keeps a 20-px shape's outline
_CHUNK = 1024  # images per batch, bounds the memory of the score maps


def _scales(cfg: SyntheticConfig) -> list[float]:
    if cfg.scale_jitter == 0:
        return [1.0]
    return [1.0 - cfg.scale_jitter, 1.0, 1.0 + cfg.scale_jitter]


def _as_float(x: Tensor) -> Tensor:
    return x.to(torch.float32) / 255.0 if x.dtype == torch.uint8 else x.to(torch.float32)


@functools.lru_cache(maxsize=8)
def _shape_filters(cfg: SyntheticConfig) -> Tensor:
    """The robust probe's matched filters (C, P, H * W): for each class, one per placement P (probe scale
    x integer shift within the jitter range): the blurred shape mask, stripped of its component in the
    background subspace, unit L2 norm."""
    shift = math.ceil(cfg.jitter)
    offsets = torch.arange(-shift, shift + 1, dtype=torch.float32)
    scales = torch.tensor(_scales(cfg))
    scale, dy, dx = (t.flatten() for t in torch.meshgrid(scales, offsets, offsets, indexing="ij"))
    placements = len(scale)
    center = (cfg.image_size - 1) / 2 + torch.stack([dy, dx], dim=1)
    classes = torch.arange(cfg.num_classes).repeat_interleave(placements)
    masks = render_masks(cfg, classes, center.repeat(cfg.num_classes, 1), scale.repeat(cfg.num_classes))
    flat = (masks - high_pass(masks, sigma=_LOWPASS_SIGMA)).flatten(1)
    basis, _ = torch.linalg.qr(background_basis(cfg))
    flat = flat - (flat @ basis) @ basis.T
    flat = flat / flat.norm(dim=1, keepdim=True)
    return flat.view(cfg.num_classes, placements, -1)


def robust_scores(images: Tensor, cfg: SyntheticConfig) -> Tensor:
    """Per-class shape evidence (N, C): max over placements of the colour-free matched-filter response."""
    filters = _shape_filters(cfg).flatten(0, 1)
    scores = []
    for chunk in torch.split(images, _CHUNK):
        n = len(chunk)
        response = (_as_float(chunk).reshape(n * 3, -1) @ filters.T).square()
        scores.append(response.view(n, 3, cfg.num_classes, -1).sum(dim=1).amax(dim=2).sqrt())
    return torch.cat(scores)


def robust_probe(images: Tensor, cfg: SyntheticConfig) -> Tensor:
    """Class (N,) whose shape each image shows, read from its low-passed content."""
    return robust_scores(images, cfg).argmax(dim=1)


@functools.lru_cache(maxsize=8)
def _colour_filters(cfg: SyntheticConfig) -> Tensor:
    """The colour probe's filters (F, H * W): the shape filters, plus blurred disks of three radii at every
    integer shift of a wider range, made like them (background component removed, unit norm), for colour
    patches that are no class shape (the texture of inverted images)."""
    shift = math.ceil(cfg.jitter + cfg.radius_px / 2)
    offsets = torch.arange(-shift, shift + 1, dtype=torch.float32)
    fractions = torch.tensor([0.2, 0.4, 0.7])
    fraction, dy, dx = (t.flatten() for t in torch.meshgrid(fractions, offsets, offsets, indexing="ij"))
    grid = torch.arange(cfg.image_size, dtype=torch.float32) - (cfg.image_size - 1) / 2
    distance = torch.hypot(grid[None, :, None] - dy[:, None, None], grid[None, None, :] - dx[:, None, None])
    masks = (0.5 - distance + cfg.radius_px * fraction[:, None, None]).clamp(0.0, 1.0)
    flat = (masks - high_pass(masks, sigma=_LOWPASS_SIGMA)).flatten(1)
    basis, _ = torch.linalg.qr(background_basis(cfg))
    disks = F.normalize(flat - (flat @ basis) @ basis.T, dim=1)
    return torch.cat([_shape_filters(cfg).flatten(0, 1), disks])


def colour_scores(images: Tensor, cfg: SyntheticConfig) -> Tensor:
    """Per-class colour evidence (N, C) in [-1, 1] (``cfg.colour="class"`` only): the best response, over the
    colour filters at every placement, of the image projected onto the class's unit base colour, over the
    strongest colour-free response.

    Signed, unlike ``robust_scores``: a filter on a hole or the surround of a patch reads the opposite colour,
    so evidence for a colour is where it is present. The disks are needed because no shape filter fits a
    shapeless patch, and then a holed shape (ring, frame) centred on it reads the opposite colour strongest;
    on a class shape its own filter fits best and wins (a matched filter is the best unit filter for it)."""
    if cfg.colour != "class":
        raise ValueError(f"colour: the colour probe needs class colours, got colour={cfg.colour!r}; set colour: class in the synthetic params")
    filters = _colour_filters(cfg)
    palette = F.normalize(class_colours(cfg), dim=1)
    scores = []
    for chunk in torch.split(images, _CHUNK):
        n = len(chunk)
        response = (_as_float(chunk).reshape(n * 3, -1) @ filters.T).view(n, 3, -1)
        signed = (palette @ response).amax(dim=2)
        scores.append(signed / response.norm(dim=1).amax(dim=1, keepdim=True).clamp_min(1e-12))
    return torch.cat(scores)


def colour_probe(images: Tensor, cfg: SyntheticConfig) -> Tensor:
    """Class (N,) whose base colour each image's robust part carries (``cfg.colour="class"`` only)."""
    return colour_scores(images, cfg).argmax(dim=1)


def nonrobust_scores(delta: Tensor, cfg: SyntheticConfig) -> Tensor:
    """Per-class pattern evidence (N, C): max over shifts of the correlation of the high-passed ``delta``
    with the unit-norm class pattern (default variant), or the magnitude of its correlation with the class
    shape outline over the jitter range and scales (entangled variant)."""
    scores = []
    for chunk in torch.split(delta, _CHUNK):
        x = high_pass(_as_float(chunk))
        scores.append(_outline_scores(x, cfg) if cfg.variant == "entangled" else _tile_scores(x, cfg))
    return torch.cat(scores)


def _tile_scores(x: Tensor, cfg: SyntheticConfig) -> Tensor:
    # a tiled pattern correlates with the image as its tile does with the sum of the image's tiles
    t, blocks = cfg.tile, cfg.image_size // cfg.tile
    folded = x.reshape(len(x), 3, blocks, t, blocks, t).sum(dim=(2, 4))
    tiles = nonrobust_tiles(cfg)
    tiles = tiles / (tiles.flatten(1).norm(dim=1).view(-1, 1, 1, 1) * blocks)
    spectrum = torch.fft.rfft2(folded)[:, None] * torch.fft.rfft2(tiles).conj()[None]
    correlation = torch.fft.irfft2(spectrum, s=(t, t)).sum(dim=2)
    return correlation.flatten(2).amax(dim=2)


@functools.lru_cache(maxsize=8)
def _outline_filters(cfg: SyntheticConfig) -> Tensor:
    """The entangled variant's pattern filters (C * P, H * W): each class's shape outline (high-passed mask, as the
    generator draws it, high-passed again as the probe's input is) at every integer shift of the jitter range and
    seven scales over the scale range, unit norm (outlines are thin: at the robust probe's three scales a ring's
    two edges fit worse than a disk's one)."""
    shift = math.ceil(cfg.jitter)
    offsets = torch.arange(-shift, shift + 1, dtype=torch.float32)
    scales = torch.linspace(1.0 - cfg.scale_jitter, 1.0 + cfg.scale_jitter, 7)
    scale, dy, dx = (t.flatten() for t in torch.meshgrid(scales, offsets, offsets, indexing="ij"))
    center = (cfg.image_size - 1) / 2 + torch.stack([dy, dx], dim=1)
    classes = torch.arange(cfg.num_classes).repeat_interleave(len(scale))
    masks = render_masks(cfg, classes, center.repeat(cfg.num_classes, 1), scale.repeat(cfg.num_classes))
    edges = high_pass(high_pass(masks, sigma=OUTLINE_SIGMA)).flatten(1)
    return edges / edges.norm(dim=1, keepdim=True).clamp_min(1e-12)


def _outline_scores(x: Tensor, cfg: SyntheticConfig) -> Tensor:
    filters = _outline_filters(cfg)
    n = len(x)
    response = (x.reshape(n * 3, -1) @ filters.T).square()
    return response.view(n, 3, cfg.num_classes, -1).sum(dim=1).amax(dim=2).sqrt()


def nonrobust_probe(delta: Tensor, cfg: SyntheticConfig) -> Tensor:
    """Class (N,) of the planted pattern that ``delta`` carries (apply it to what a construction added)."""
    return nonrobust_scores(delta, cfg).argmax(dim=1)


def probe_agreement(images: Tensor, labels: Tensor, cfg: SyntheticConfig, starts: Tensor | None = None) -> dict[str, float]:
    """Share of images whose robust (shape) / non-robust probe reads ``labels``, and with ``cfg.colour="class"``
    also ``colour_agreement``, the colour probe of the whole image.

    ``starts``: the start images of a constructed set (same shape as ``images``); the non-robust probe then
    reads ``images - starts``, what the construction added, since an eps-bounded attack cannot erase the
    start's own pattern. ``None`` (natural data): the whole image is probed.
    """
    if len(images) != len(labels):
        raise ValueError(f"labels: {len(labels)} labels for {len(images)} images; pass one label per image")
    x = _as_float(images)
    if starts is None:
        delta = x
    else:
        if starts.shape != images.shape:
            raise ValueError(f"starts: shape {tuple(starts.shape)} != images {tuple(images.shape)}; pass each image's start image")
        delta = x - _as_float(starts)
    agreement = {
        "robust_agreement": (robust_probe(x, cfg) == labels).float().mean().item(),
        "nonrobust_agreement": (nonrobust_probe(delta, cfg) == labels).float().mean().item(),
    }
    if cfg.colour == "class":
        agreement["colour_agreement"] = (colour_probe(x, cfg) == labels).float().mean().item()
    return agreement
