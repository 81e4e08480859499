"""E9/E10 (Springer et al.): robustified test sets and the leak control, checked against the planted truth.

Ground truth: the default synthetic variant's non-robust pattern is a class tile repeated over the image. The leak
control removes every class tile at every shift exactly; inverting through a model that reads only the planted
pattern copies the source image's pattern into R_eps (a leak, not entanglement), and projecting the planted
subspace out takes a pattern-reading classifier back to chance. Inverting through a model that reads one window copies
the tile there once, not repeated: the periodic projection leaves that copy, the tile control removes it.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from torch import Tensor, nn

from advtui.attacks.inversion import pick_other_starts
from advtui.catalog.data import DataParams, SyntheticConfig
from advtui.catalog.params import RobustifiedParams, SourceModels
from advtui.data.ground_truth import robust_scores
from advtui.data.synthetic import nonrobust_patterns, nonrobust_tiles
from advtui.experiments.leak_control import local_tile_probe, remove_periodic
from advtui.experiments.robustified import (
    SweepSource, basis_projector, gradient_subspace, leak_reading, plan_sweep, planted_control, robustified_experiment,
    robustify, sweep_model, wilson95,
)

CFG = SyntheticConfig()
DATA = DataParams(train_size=100, test_size=100)


class PatternReader(nn.Module):
    """A classifier that sees only the planted pattern at its planted phase: logits = correlations of the image with
    the class patterns (unit norm); ``features`` the same (what an inversion matches)."""

    def __init__(self, cfg: SyntheticConfig) -> None:
        super().__init__()
        patterns = nonrobust_patterns(cfg).flatten(1)
        self.register_buffer("patterns", patterns / patterns.norm(dim=1, keepdim=True))

    def features(self, x: Tensor) -> Tensor:
        return (x.flatten(1) - 0.5) @ self.patterns.T

    def forward(self, x: Tensor) -> Tensor:
        return self.features(x)


class ShapeReader(nn.Module):
    """A classifier that sees only shapes: the ground-truth shape probe's scores as logits (not differentiable in a
    way any test needs; only evaluated)."""

    def forward(self, x: Tensor) -> Tensor:
        return robust_scores(x.detach(), CFG)


def _shifted(t: Tensor, dy: int, dx: int) -> Tensor:
    return torch.roll(t, shifts=(dy, dx), dims=(-2, -1))


def test_projection_removes_every_class_tile_at_every_shift_exactly() -> None:
    patterns = nonrobust_patterns(CFG)
    shifted = torch.stack([_shifted(p, dy, dx) for p in patterns for dy in range(CFG.tile) for dx in (0, 3, 7)])
    assert shifted.flatten(1).norm(dim=1).min() > 0.49  # each pattern carries its planted norm (0.5)
    assert remove_periodic(shifted, CFG.tile).abs().max() < 1e-6
    # an orthogonal projection: idempotent, and what it removes is orthogonal to what it keeps
    x = torch.rand(4, 3, 32, 32)
    kept = remove_periodic(x, CFG.tile)
    assert torch.allclose(remove_periodic(kept, CFG.tile), kept, atol=1e-6)
    assert abs(float(((x - kept) * kept).sum())) < 1e-3
    with pytest.raises(ValueError, match="tile"):
        remove_periodic(x, 5)


def test_entangled_variant_has_no_separate_subspace() -> None:
    assert planted_control(SyntheticConfig(variant="entangled")) is None
    assert planted_control(CFG) is not None


def test_inversion_through_a_pattern_reader_copies_the_pattern_and_projection_removes_it() -> None:
    from advtui.experiments.common import natural_split

    test = natural_split(DATA, "test", 0)
    x, y = test.float_images(), test.labels
    starts = x[pick_other_starts(y, torch.Generator().manual_seed(0))]  # an image of another class each
    reader = PatternReader(CFG)
    robust_x = robustify(reader, x, starts, steps=20, step_size=0.2, batch_size=50)
    projector = planted_control(CFG)(robust_x - starts)
    leak = leak_reading(robust_x, starts, y, CFG, projector)
    assert leak["pattern_agreement"] > 0.95  # the source's pattern was copied: a leak
    assert leak["pattern_fraction"] > 0.9  # nearly all that inversion added lies in the planted subspace
    assert (reader(robust_x).argmax(1) == y).float().mean() > 0.95
    projected = projector(robust_x)
    # nothing of any class pattern is left for the reader: its logits are all equal (chance)
    assert reader(projected).abs().max() < 1e-4


def test_experiment_reads_the_leak_and_its_control(tmp_path: Path) -> None:
    reader, shapes = PatternReader(CFG), ShapeReader()
    models = {tmp_path / "src": reader, tmp_path / "zero": reader, tmp_path / "shape": shapes}
    sweep = [SweepSource(0.0, tmp_path / "src", "test")]
    (tmp_path / "src").touch()
    params = RobustifiedParams(eps=(0.0,), test_size=100, start="other", steps=20, step_size=0.2, batch_size=50)
    result = robustified_experiment(
        sweep=sweep, classifiers={"standard": [tmp_path / "shape"], "zero_robust": [tmp_path / "zero"]},
        params=params, data=DATA, seed=0, device="cpu", load=lambda p: models[p],
    )
    cells, chance = result["cells"], result["chance"]
    assert result["control"].startswith("planted")
    assert cells["zero_robust"]["R"]["eps_0"]["acc"] > 0.95  # reads the leaked pattern
    assert cells["zero_robust"]["R_projected"]["eps_0"]["acc"] <= chance + 0.05  # and nothing once it is removed
    # the shapes in R are the starts' (the inversion drew none): the shape reader sits near chance, far below its
    # accuracy on the test images themselves
    assert cells["standard"]["test"]["acc"] > 0.8
    assert cells["standard"]["R"]["eps_0"]["acc"] < 0.3
    assert result["leak"]["eps_0"]["pattern_agreement"] > 0.95


def test_gradient_subspace_of_a_pattern_reader_lies_in_the_planted_subspace() -> None:
    from advtui.experiments.common import natural_split

    test = natural_split(DATA, "test", 0)
    basis = gradient_subspace([PatternReader(CFG)], test.float_images(), test.labels, rank=10)
    # cross-entropy gradients of a linear reader span the differences of its class patterns: C - 1 directions
    assert basis.shape[0] == CFG.num_classes - 1
    inside = remove_periodic(basis.view(-1, 3, 32, 32), CFG.tile).flatten(1).norm(dim=1)
    assert inside.max() < 1e-4  # every estimated direction is a planted one
    patterns = nonrobust_patterns(CFG)
    removed = basis_projector(basis)(patterns - patterns[:1])
    assert removed.flatten(1).norm(dim=1).max() < 1e-3  # and the estimate removes what tells the classes apart


def test_sweep_reuses_e1_sources_and_trains_the_rest(tmp_path: Path) -> None:
    e1 = {"standard": tmp_path / "s", "robust_l2": tmp_path / "r"}
    plan = plan_sweep([0.0, 0.25, 1.0], 1.0, e1, lambda name: tmp_path / name)
    assert [(s.name, s.origin) for s in plan] == [("eps_0", "E1 standard"), ("eps_0.25", "trained"),
                                                  ("eps_1", "E1 robust_l2")]
    assert plan[1].path == tmp_path / "eps_0.25"
    model = sweep_model(SourceModels(), 0.25)
    assert model.adversarial.eps == 0.25 and model.adversarial.norm == "l2"


def test_wilson_interval_covers_the_proportion() -> None:
    lo, hi = wilson95(50, 100)
    assert lo < 0.5 < hi and math.isclose(lo + hi, 1.0)
    assert wilson95(0, 10)[0] == pytest.approx(0.0, abs=1e-12)
    assert wilson95(0, 0) is None


def test_params_refuse_a_noise_start_and_unsorted_radii() -> None:
    with pytest.raises(ValueError, match="start"):
        RobustifiedParams(start="noise")
    with pytest.raises(ValueError, match="eps"):
        RobustifiedParams(eps=(1.0, 0.5))
    assert nonrobust_tiles(CFG).shape[0] == CFG.num_classes


def test_a_single_tile_copy_survives_the_projection_and_the_local_probe_reads_it() -> None:
    tiles = nonrobust_tiles(CFG)
    canvas = torch.zeros(CFG.num_classes, 3, 32, 32)
    for c in range(CFG.num_classes):  # one copy of class c's tile, at a position that differs per class
        y0, x0 = (3 * c) % 16, (5 * c) % 16
        canvas[c, :, y0:y0 + 16, x0:x0 + 16] = tiles[c] * 4
    projected = remove_periodic(canvas, CFG.tile)
    assert projected.flatten(1).norm(dim=1).min() > 0.5 * canvas.flatten(1).norm(dim=1).min()  # most of it stays
    assert torch.equal(local_tile_probe(projected, CFG), torch.arange(CFG.num_classes))


class WindowReader(nn.Module):
    """A classifier that sees only one window of the image: logits = correlations with each class tile (unit norm) in
    the top-left window, where a natural image's repeated tile sits at its planted phase. Inverting through it adds a
    single, non-repeating copy of tiles in that window: a local leak."""

    def __init__(self, cfg: SyntheticConfig) -> None:
        super().__init__()
        tiles = nonrobust_tiles(cfg)
        windows = torch.zeros(cfg.num_classes, 3, cfg.image_size, cfg.image_size)
        windows[:, :, :cfg.tile, :cfg.tile] = tiles / tiles.flatten(1).norm(dim=1).view(-1, 1, 1, 1)
        self.register_buffer("windows", windows.flatten(1))

    def features(self, x: Tensor) -> Tensor:
        return (x.flatten(1) - 0.5) @ self.windows.T

    def forward(self, x: Tensor) -> Tensor:
        return self.features(x)


def test_a_local_copy_survives_the_periodic_projection_and_the_tile_control_removes_it() -> None:
    from advtui.experiments.common import natural_split

    test = natural_split(DATA, "test", 0)
    x, y = test.float_images(), test.labels
    starts = x[pick_other_starts(y, torch.Generator().manual_seed(0))]
    reader = WindowReader(CFG)
    robust_x = robustify(reader, x, starts, steps=20, step_size=0.2, batch_size=50)
    assert (reader(robust_x).argmax(1) == y).float().mean() > 0.95  # the inversion copied the label's tile locally
    # the periodic projection leaves 3/4 of a window's energy: the reader still reads the label
    assert (reader(remove_periodic(robust_x, CFG.tile)).argmax(1) == y).float().mean() > 0.95
    projected = planted_control(CFG)(robust_x - starts)(robust_x)
    # the control found the copies in what the inversion added and removed them: nothing is left for the reader
    assert reader(projected).abs().max() < 1e-3 * reader(robust_x).abs().max()
