"""The synthetic planted-feature dataset (DESIGN section 7): images whose robust and non-robust features are known.

x = clip(background + robust(shape) + nonrobust(label), 0, 1) with

- background: a smooth random colour field in [background_low, background_high], independent of the label;
- robust part: a large filled class shape (its outline is the class) of ``robust_amplitude`` per channel,
  jittered in position and scale; a fraction ``wrong_shape_frac`` of the images carries another class's
  shape, so the robust part is not fully predictive. Its colour is drawn independently of the class
  (``colour="random"``: the outline is the only robust feature) or is the shape class's base colour plus
  jitter (``colour="class"``: colour is a second robust feature, read by ``probes.colour_probe``);
- non-robust part, L2 norm ``nonrobust_norm`` per image, always of the label's class:
  ``variant="default"`` (Springer's Type C): a fixed high-passed sign tile repeated over the whole image;
  ``variant="entangled"`` (Springer's Type B): a faint copy of the label's shape outline (the high-passed mask, in
  the image's shape colour) at the drawn shape's place and scale: a small component of the robust pattern itself
  (for the 90% of images whose shape is the label's, of their own shape), so a model that learned it reads shapes.

The class shapes and patterns depend only on the config (``pattern_seed``), never on the image seed: they
define the classes. Every random draw is made whatever the amplitudes, so two configs that differ only in
amplitudes give the same images part by part (``robust_amplitude=0`` or ``nonrobust_norm=0`` isolates a part),
and two configs that differ only in ``colour`` / ``colour_jitter`` differ only in the shapes' colours.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable
from dataclasses import asdict, replace

import torch
import torch.nn.functional as F
from torch import Tensor

from advtui.data.imageset import ImageSet
from advtui.catalog.data import SHAPE_NAMES, SyntheticConfig


def _box(u: Tensor, v: Tensor, half_w: float, half_h: float, cu: float = 0.0, cv: float = 0.0) -> Tensor:
    return torch.maximum((u - cu).abs() - half_w, (v - cv).abs() - half_h)


def _circle(u: Tensor, v: Tensor, radius: float, cu: float = 0.0, cv: float = 0.0) -> Tensor:
    return torch.hypot(u - cu, v - cv) - radius


def _rotate45(u: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
    return (u + v) / math.sqrt(2.0), (v - u) / math.sqrt(2.0)


def _plus(u: Tensor, v: Tensor) -> Tensor:
    return torch.minimum(_box(u, v, 0.95, 0.28), _box(u, v, 0.28, 0.95))


def _triangle(u: Tensor, v: Tensor) -> Tensor:
    # apex up (v grows downwards in image coordinates); each edge as a half-plane with a unit normal
    edges = [(0.0, 1.0, 0.75), (0.866, -0.5, 0.4), (-0.866, -0.5, 0.4)]
    return torch.stack([nu * u + nv * v - d for nu, nv, d in edges]).amax(0)


# Signed distance (in shape radii; negative inside) of each shape in the library, on coordinates
# centred on the shape and divided by its radius: every shape stays inside the unit box.
SHAPES: dict[str, Callable[[Tensor, Tensor], Tensor]] = {
    "disk": lambda u, v: _circle(u, v, 0.9),
    "ring": lambda u, v: _circle(u, v, 0.72).abs() - 0.22,
    "square": lambda u, v: _box(u, v, 0.75, 0.75),
    "triangle": _triangle,
    "plus": _plus,
    "cross": lambda u, v: _plus(*_rotate45(u, v)),
    "hbars": lambda u, v: torch.stack([_box(u, v, 0.92, 0.17, cv=c) for c in (-0.66, 0.0, 0.66)]).amin(0),
    "vbars": lambda u, v: torch.stack([_box(u, v, 0.17, 0.92, cu=c) for c in (-0.66, 0.0, 0.66)]).amin(0),
    "frame": lambda u, v: _box(u, v, 0.8, 0.8).abs() - 0.17,
    "tee": lambda u, v: torch.minimum(_box(u, v, 0.95, 0.22, cv=-0.7), _box(u, v, 0.22, 0.9, cv=0.05)),
    "crescent": lambda u, v: torch.maximum(_circle(u, v, 0.92), -_circle(u, v, 0.72, cu=0.42)),
    "checker": lambda u, v: torch.minimum(_box(u, v, 0.42, 0.42, -0.48, -0.48), _box(u, v, 0.42, 0.42, 0.48, 0.48)),
}
if tuple(SHAPES) != SHAPE_NAMES:  # params are validated against the catalogue's names, without torch
    raise ImportError("advtui.data.synthetic.SHAPES and advtui.catalog.data.SHAPE_NAMES list different shapes")


def background_basis(cfg: SyntheticConfig) -> Tensor:
    """(H * W, G * G) basis of the background subspace: bilinear interpolation of a G x G control grid."""
    grid = cfg.background_grid
    axis = F.interpolate(torch.eye(grid)[None], size=cfg.image_size, mode="linear", align_corners=True)[0].T
    return torch.kron(axis, axis)


def derive_seed(seed: int, *tags: str) -> int:
    """A 63-bit seed derived from ``seed`` and tags (stable across runs and platforms)."""
    digest = hashlib.sha256(":".join([str(seed), *tags]).encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def class_shapes(cfg: SyntheticConfig) -> list[str]:
    """Name of the library shape of each class (a seeded choice from ``SHAPES``); also the class names."""
    generator = torch.Generator().manual_seed(derive_seed(cfg.pattern_seed, "shapes"))
    names = list(SHAPES)
    return [names[i] for i in torch.randperm(len(names), generator=generator)[: cfg.num_classes].tolist()]


def _icosahedron() -> Tensor:
    """The 12 vertices (12, 3) of a regular icosahedron, scaled so that each one's strongest channel is 1:
    12 directions at least 63.4 degrees apart (the best possible for 12), including each one's opposite."""
    phi = (1.0 + math.sqrt(5.0)) / 2.0
    vertices = []
    for a in (-1.0, 1.0):
        for b in (-phi, phi):
            vertices += [(0.0, a, b), (a, b, 0.0), (b, 0.0, a)]
    vertices_t = torch.tensor(vertices)
    return vertices_t / vertices_t.abs().amax(dim=1, keepdim=True)


def class_colours(cfg: SyntheticConfig) -> Tensor:
    """Each class's base colour (C, 3) for ``colour="class"``: a seeded choice of icosahedron vertices, so any
    two classes' colours are at least 63 degrees apart; strongest channel 1 (signed: brighter or darker)."""
    generator = torch.Generator().manual_seed(derive_seed(cfg.pattern_seed, "colours"))
    return _icosahedron()[torch.randperm(12, generator=generator)[: cfg.num_classes]]


def render_masks(cfg: SyntheticConfig, shape_class: Tensor, center: Tensor, scale: Tensor) -> Tensor:
    """Anti-aliased masks (N, H, W) in [0, 1] of each class's shape at ``center`` (N, 2: row, col) and ``scale`` (N,)."""
    size = cfg.image_size
    grid = torch.arange(size, dtype=torch.float32)
    radius = cfg.radius_px * scale.to(torch.float32)[:, None, None]
    v = (grid[None, :, None] - center[:, 0, None, None]) / radius
    u = (grid[None, None, :] - center[:, 1, None, None]) / radius
    masks = torch.zeros(len(shape_class), size, size)
    for cls, name in enumerate(class_shapes(cfg)):
        members = torch.nonzero(shape_class == cls).flatten()
        if len(members):
            distance_px = SHAPES[name](u[members].expand(-1, size, size), v[members].expand(-1, size, size)) * radius[members]
            masks[members] = (0.5 - distance_px).clamp(0.0, 1.0)
    return masks


def shape_templates(cfg: SyntheticConfig) -> Tensor:
    """Each class's shape mask (C, H, W) at the image centre, scale 1."""
    classes = torch.arange(cfg.num_classes)
    center = torch.full((cfg.num_classes, 2), (cfg.image_size - 1) / 2)
    return render_masks(cfg, classes, center, torch.ones(cfg.num_classes))


def _blur_matrix(size: int, sigma: float, circular: bool) -> Tensor:
    """(size, size) matrix of a 1-D Gaussian blur with reflected (or wrapped) borders."""
    radius = max(1, math.ceil(3 * sigma))
    offsets = torch.arange(-radius, radius + 1)
    taps = torch.exp(-0.5 * (offsets.float() / sigma) ** 2)
    taps = taps / taps.sum()
    source = torch.arange(size)[:, None] + offsets[None, :]
    if circular:
        source = source % size
    else:
        period = 2 * (size - 1)
        source = source.abs() % period
        source = torch.where(source >= size, period - source, source)
    matrix = torch.zeros(size, size)
    matrix.scatter_add_(1, source, taps.expand(size, -1).contiguous())
    return matrix


def high_pass(x: Tensor, sigma: float = 1.0, circular: bool = False) -> Tensor:
    """``x`` minus its Gaussian blur over the last two dims; ``circular`` wraps, else reflects at the border."""
    rows = _blur_matrix(x.shape[-2], sigma, circular).to(x.dtype)
    cols = _blur_matrix(x.shape[-1], sigma, circular).to(x.dtype)
    return x - rows @ x @ cols.T


def nonrobust_tiles(cfg: SyntheticConfig) -> Tensor:
    """The default variant's class tiles (C, 3, tile, tile): high-passed sign tiles, scaled so that
    repeating one over the image gives L2 norm ``nonrobust_norm``."""
    generator = torch.Generator().manual_seed(derive_seed(cfg.pattern_seed, "tiles"))
    signs = torch.randint(0, 2, (cfg.num_classes, 3, cfg.tile, cfg.tile), generator=generator).float() * 2 - 1
    tiles = high_pass(signs, circular=True)
    repeats = (cfg.image_size // cfg.tile) ** 2
    norms = tiles.flatten(1).norm(dim=1).view(-1, 1, 1, 1) * math.sqrt(repeats)
    return tiles / norms * cfg.nonrobust_norm


#: px: the Gaussian blur the entangled variant's outline is high-passed with (the ground-truth probe's own).
OUTLINE_SIGMA = 1.0


def outline_patterns(cfg: SyntheticConfig, classes: Tensor, center: Tensor, scale: Tensor, colour: Tensor) -> Tensor:
    """The entangled variant's non-robust parts (N, 3, H, W): the high-passed outline of class ``classes``' shape
    at ``center`` / ``scale``, in ``colour`` (N, 3), each of L2 norm ``nonrobust_norm``. The high-pass of a shape is
    the fine part of the shape itself, so where ``classes`` is the drawn shape's class the pattern points exactly
    along the robust part's own high frequencies (Type B: entangled), at a fraction of their energy."""
    edges = high_pass(render_masks(cfg, classes, center, scale), sigma=OUTLINE_SIGMA)
    pattern = edges[:, None] * colour[:, :, None, None]
    norms = pattern.flatten(1).norm(dim=1).clamp_min(1e-12).view(-1, 1, 1, 1)
    return pattern / norms * cfg.nonrobust_norm


def nonrobust_patterns(cfg: SyntheticConfig) -> Tensor:
    """Each class's non-robust pattern (C, 3, H, W), L2 norm ``nonrobust_norm``: the tiled sign tile
    (default variant), or the class's shape outline at the centre, scale 1, in the class's base colour
    (``colour="class"``) or grey (entangled)."""
    if cfg.variant == "entangled":
        classes = torch.arange(cfg.num_classes)
        center = torch.full((cfg.num_classes, 2), (cfg.image_size - 1) / 2)
        scale = torch.ones(cfg.num_classes)
        colour = class_colours(cfg) if cfg.colour == "class" else torch.ones(cfg.num_classes, 3)
        return outline_patterns(cfg, classes, center, scale, colour)
    repeats = cfg.image_size // cfg.tile
    return nonrobust_tiles(cfg).repeat(1, 1, repeats, repeats)


def without_pattern(cfg: SyntheticConfig) -> SyntheticConfig:
    """``cfg`` with no planted non-robust pattern (``nonrobust_norm`` 0). Every random draw is made whatever the
    amplitudes, so image i of a set made with it is image i of ``cfg``'s set drawn without its pattern: the
    same background, shape, colour and label, for either variant (the entangled one's outlines move with each
    image's shape, so no fixed pattern could be subtracted)."""
    return replace(cfg, nonrobust_norm=0.0)


def make_synthetic(cfg: SyntheticConfig, n: int, seed: int, split: str = "train") -> ImageSet:
    """Generate ``n`` images, deterministic in (cfg, n, seed, split); splits draw from different seeds.

    Labels are balanced (``n`` split as evenly as possible over the classes) and shuffled. ``extras`` holds
    the ground truth: ``shape_class`` (class of the drawn shape), ``pattern_class`` (class of the planted
    non-robust pattern, = label), ``center`` (row, col of the shape centre), ``scale`` and ``colour`` (signed,
    strongest channel 1; with ``cfg.colour="class"`` it follows ``shape_class``).
    """
    if n < 1:
        raise ValueError(f"n: must be >= 1, got {n}; ask for at least one image")
    if not split:
        raise ValueError("split: must be a non-empty name; use 'train' or 'test'")
    C, size = cfg.num_classes, cfg.image_size
    generator = torch.Generator().manual_seed(derive_seed(seed, "synthetic", split))
    labels = (torch.arange(n) % C)[torch.randperm(n, generator=generator)]
    wrong = torch.rand(n, generator=generator) < cfg.wrong_shape_frac
    other = (labels + torch.randint(1, C, (n,), generator=generator)) % C
    shape_class = torch.where(wrong, other, labels)
    center = (size - 1) / 2 + (torch.rand(n, 2, generator=generator) * 2 - 1) * cfg.jitter
    scale = 1 + (torch.rand(n, generator=generator) * 2 - 1) * cfg.scale_jitter
    colour = torch.rand(n, 3, generator=generator) * 2 - 1
    if cfg.colour == "class":
        colour = class_colours(cfg)[shape_class] + cfg.colour_jitter * colour
    # the strongest channel carries the full amplitude: a bright or dark shape of any hue, never a faint one
    colour = colour / colour.abs().amax(dim=1, keepdim=True).clamp_min(1e-12)
    control = torch.rand(n, 3, cfg.background_grid, cfg.background_grid, generator=generator)

    field = (control.flatten(2) @ background_basis(cfg).T).view(n, 3, size, size)
    background = cfg.background_low + (cfg.background_high - cfg.background_low) * field
    masks = render_masks(cfg, shape_class, center, scale)
    robust = cfg.robust_amplitude * masks[:, None] * colour[:, :, None, None]
    if cfg.variant == "entangled":
        nonrobust = outline_patterns(cfg, labels, center, scale, colour)
    else:
        nonrobust = nonrobust_patterns(cfg)[labels]
    images = (background + robust + nonrobust).clamp_(0.0, 1.0)
    return ImageSet(
        images=images,
        labels=labels,
        classes=class_shapes(cfg),
        extras={"shape_class": shape_class, "pattern_class": labels.clone(), "center": center, "scale": scale, "colour": colour},
        meta={"source": "synthetic", "split": split, "seed": seed, "n": n, "synthetic": asdict(cfg)},
    )
