"""E9's leak control on the default (Type C) synthetic data: remove the planted tile, repeated or in single copies.

Inverting through a source that reads the planted tile copies that tile into R_eps: repeated over the image (what
:func:`remove_periodic` removes exactly) and as single, non-repeating copies in one window each (a pooled CNN may
read those too; the periodic subspace misses them). The span of every class tile in every window is no control: 10
classes at 1,024 shifts span all 3,072 dimensions of a 32x32x3 image and would erase everything. So
:func:`remove_tiles` removes the periodic subspace and then, per image, the :data:`WINDOWS` windows that match a
class tile best (orthogonal matching pursuit over the windowed class tiles, each a single unit-norm tile at one
place): the exact orthogonal projection off the periodic subspace plus 16 dimensions of each image's 3,072, chosen
without its label. Why that is a fair control: every removed direction is a planted tile, and a fixed budget takes
the same number of dimensions from every image whatever it shows; on tile-free natural images it changes 1.5% of the
L2 norm beyond the periodic projection and leaves the shape and colour probes' accuracy as it was
(``tests/test_leak_control.py``; smoke's standard classifiers read the projected test images 83.7% against 84.2%
with the periodic projection alone), so a classifier that reads chance after it reads chance for want of the tile,
not of the robust features. :func:`tile_control` looks for the copies in what a construction added (R_eps minus its
start): a faint copy there is out-scored in the whole image by the start's shape edges.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from advtui.catalog.data import SyntheticConfig
from advtui.data.synthetic import high_pass, nonrobust_tiles

#: What removes a non-robust subspace from images (N, C, H, W).
Projector = Callable[[Tensor], Tensor]
#: What makes the projector for a batch of images from what their construction added to them (N, C, H, W): the
#: tile control looks there for local copies; a fixed subspace ignores it.
Control = Callable[[Tensor], Projector]

#: Tile windows removed per image. On smoke's R_0 (200 images inverted through the standard source, windows found in
#: what the inversion added) 8 leave a local copy of the label's tile on 18% of images, 16 on 11% (chance 10%), 32 on
#: 10% at 1.6x the L2 change on natural images (2.2% against 1.4%): 16 is the smallest budget that leaves none.
WINDOWS = 16
#: Images whose windows are looked for at once.
_CHUNK = 256


def remove_periodic(x: Tensor, tile: int) -> Tensor:
    """``x`` (N, C, H, W) minus its zero-mean ``tile``-periodic component: the orthogonal projection onto the
    complement of {images that repeat with period ``tile`` both ways and have zero mean per channel}.

    That subspace is the span of every class tile of the default synthetic variant at every circular shift (a
    high-passed tile has zero mean and, generically, every other Fourier coefficient non-zero), so this removes
    the planted pattern exactly, at any shift, whatever amplitude a construction gave it."""
    n, c, h, w = x.shape
    if h % tile or w % tile:
        raise ValueError(f"tile: {tile} px does not divide the {h}x{w} images; use the data's synthetic tile")
    folded = x.reshape(n, c, h // tile, tile, w // tile, tile).mean(dim=(2, 4))
    folded = folded - folded.mean(dim=(2, 3), keepdim=True)
    return x - folded.repeat(1, 1, h // tile, w // tile)


def _windowed_tiles(cfg: SyntheticConfig) -> Tensor:
    """Each class tile (unit norm) in the top-left window of an otherwise zero image (C, 3, H, W)."""
    tiles = nonrobust_tiles(cfg)
    tiles = tiles / tiles.flatten(1).norm(dim=1).view(-1, 1, 1, 1)
    pad = cfg.image_size - cfg.tile
    return torch.nn.functional.pad(tiles, (0, pad, 0, pad))


def _scores(x: Tensor, spectra: Tensor, size: int) -> Tensor:
    """:func:`window_scores` of ``x`` given the windowed tiles' spectra ``spectra`` (rfft2, computed once)."""
    spectrum = torch.fft.rfft2(high_pass(x.to(torch.float32)))
    return torch.fft.irfft2((spectrum[:, None] * spectra.conj()[None]).sum(dim=2), s=(size, size))


def window_scores(x: Tensor, cfg: SyntheticConfig) -> Tensor:
    """How strongly each window carries each class tile (N, C, H, W): the correlation of the high-passed ``x`` with
    the unit class tile placed at each position (the window's top-left corner; windows wrap at the borders). The
    high-pass is the matched filter's whitening: it takes out the smooth background and the shapes' interiors,
    which would otherwise out-score a faint tile."""
    return _scores(x, torch.fft.rfft2(_windowed_tiles(cfg).to(x.device)), cfg.image_size)


def local_tile_probe(delta: Tensor, cfg: SyntheticConfig) -> Tensor:
    """Class (N,) of the planted tile that the best-matching single ``cfg.tile``-pixel window of ``delta`` carries
    (:func:`window_scores`): a copy of the tile in one place, which the periodic subspace (and
    :func:`~advtui.data.ground_truth.nonrobust_probe`, which folds the image) misses."""
    return window_scores(delta, cfg).flatten(2).amax(dim=2).argmax(dim=1)


def tile_windows(x: Tensor, cfg: SyntheticConfig, windows: int) -> Tensor:
    """The windows of each image of ``x`` (N, 3, H, W) that carry a class tile, as an orthonormal basis (N, K, 3*H*W)
    orthogonal to the periodic subspace: greedily (orthogonal matching pursuit) the class tile and window of the
    largest ``|window_scores|`` of what :func:`remove_periodic` and the windows found so far leave, ``windows`` of
    them (fewer where a window adds nothing to the span). Rows of zeros are windows not found."""
    if windows < 0:
        raise ValueError(f"windows: must be >= 0, got {windows}")
    n, size = len(x), cfg.image_size
    left = remove_periodic(x.to(torch.float32), cfg.tile)
    if cfg.tile == size:  # one window is the whole image: every shift of it is periodic, already removed
        return torch.zeros(n, 0, left[0].numel(), device=x.device)
    basis = torch.zeros(n, windows, left[0].numel(), device=x.device)
    placed = _windowed_tiles(cfg).to(x.device)
    spectra = torch.fft.rfft2(placed)
    taken = torch.zeros(n, cfg.num_classes * size * size, dtype=torch.bool, device=x.device)
    rows, axis = torch.arange(n, device=x.device), torch.arange(size, device=x.device)
    for k in range(windows):
        index = _scores(left, spectra, size).abs().flatten(1).masked_fill(taken, -1.0).argmax(dim=1)
        taken[rows, index] = True
        c, py, px = index // size ** 2, index // size % size, index % size
        # class c's tile rolled to (py, px), as torch.roll would, for every image at once
        atom = placed[c].gather(2, ((axis[None] - py[:, None]) % size)[:, None, :, None].expand(n, 3, size, size))
        atom = atom.gather(3, ((axis[None] - px[:, None]) % size)[:, None, None, :].expand(n, 3, size, size))
        atom = remove_periodic(atom, cfg.tile).flatten(1)
        for _ in range(2):  # twice: one Gram-Schmidt pass loses orthogonality in float32
            atom = atom - torch.bmm(torch.bmm(atom[:, None], basis[:, :k].transpose(1, 2)), basis[:, :k])[:, 0]
        norm = atom.norm(dim=1, keepdim=True)
        atom = torch.where(norm > 1e-4, atom / norm.clamp_min(1e-12), torch.zeros_like(atom))
        basis[:, k] = atom
        flat = left.flatten(1)
        left = (flat - (flat * atom).sum(dim=1, keepdim=True) * atom).view_as(left)
    return basis


def project_off(x: Tensor, basis: Tensor, tile: int) -> Tensor:
    """``x`` (N, 3, H, W) projected off the periodic subspace and, per image, off the rows of ``basis`` (N, K, D;
    orthonormal and orthogonal to the periodic subspace, as :func:`tile_windows` makes it)."""
    flat = remove_periodic(x.to(torch.float32), tile).flatten(1)
    b = basis.to(flat.device)
    flat = flat - torch.bmm(torch.bmm(flat[:, None], b.transpose(1, 2)), b)[:, 0]
    return flat.view_as(x).to(x.dtype)


def remove_tiles(x: Tensor, cfg: SyntheticConfig, windows: int = WINDOWS) -> Tensor:
    """``x`` (N, 3, H, W) with the planted tile removed: off the periodic subspace and off each image's ``windows``
    best-matching tile windows (:func:`tile_windows`): the exact orthogonal projection off their span."""
    return project_off(x, tile_windows(x, cfg, windows), cfg.tile)


def tile_control(cfg: SyntheticConfig, windows: int = WINDOWS) -> Control:
    """The leak control of the default variant: given what a construction added to a batch of images (R_eps minus
    its start; a natural image is all planted), the projection off the periodic subspace and off each image's
    ``windows`` tile windows found there (:func:`tile_windows`). Looking for copies in the added part, not the
    whole image, finds the faint ones a start image's shape edges would out-score; the label is never used."""
    def control(added: Tensor) -> Projector:
        # in chunks: the scores of every class at every window are 2 MB an image
        basis = torch.cat([tile_windows(chunk, cfg, windows) for chunk in added.split(_CHUNK)])
        return lambda x: project_off(x, basis, cfg.tile)
    return control
