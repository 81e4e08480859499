"""E11 (Springer et al. Figs. 5, 6): transfer attacks from each source of the sweep, checked on closed-form cases: a
victim identical to its source is fooled exactly as often as the source (white box), and a victim that reads a
different feature than the one the source's attack moves is not fooled beyond its clean error."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor, nn

from advtui.catalog.data import DataParams, SyntheticConfig
from advtui.catalog.params import SlightTransferParams
from advtui.data.ground_truth import robust_scores
from advtui.data.synthetic import nonrobust_patterns
from advtui.experiments.common import natural_split
from advtui.experiments.robustified import SweepSource
from advtui.experiments.slight_transfer import other_targets, transfer_from_sources

CFG = SyntheticConfig()
DATA = DataParams(train_size=100, test_size=60)


class PatternReader(nn.Module):
    """Logits: correlations of the image with the unit class patterns (the planted feature only)."""

    def __init__(self) -> None:
        super().__init__()
        patterns = nonrobust_patterns(CFG).flatten(1)
        self.register_buffer("patterns", patterns / patterns.norm(dim=1, keepdim=True))

    def forward(self, x: Tensor) -> Tensor:
        return 20 * ((x.flatten(1) - 0.5) @ self.patterns.T)


class ShapeReader(nn.Module):
    """Logits: the ground-truth shape probe's scores (the robust feature only)."""

    def forward(self, x: Tensor) -> Tensor:
        return robust_scores(x.detach(), CFG)


def test_other_targets_are_uniform_other_classes() -> None:
    labels = torch.arange(1000) % 10
    targets = other_targets(labels, 10, seed=0)
    assert (targets != labels).all()
    assert set(targets.tolist()) == set(range(10))
    assert torch.equal(targets, other_targets(labels, 10, seed=0))


def test_transfer_is_white_box_for_the_same_model_and_misses_another_feature(tmp_path: Path) -> None:
    source = PatternReader()
    victims = {"same": source, "shapes": ShapeReader()}
    sweep = [SweepSource(0.0, tmp_path / "eps_0", "test")]
    params = SlightTransferParams(test_size=60, eps=1.0, steps=10, step_size=0.2, batch_size=30)
    result = transfer_from_sources(sweep, victims, natural_split(DATA, "test", 0), params, load=lambda s: source,
                                   seed=0, device="cpu")
    row = result["sources"]["eps_0"]
    for mode in ("untargeted", "targeted"):
        assert row[mode]["same"]["rate"] == row[mode]["white_box"]["rate"]
    assert row["untargeted"]["white_box"]["rate"] > 0.9  # L2 1.0 is twice the planted pattern's norm
    assert row["targeted"]["white_box"]["rate"] > 0.9
    # the shape reader ignores the pattern the attack moved: fooled no more than on clean images (+ noise)
    clean = result["baseline"]["shapes"]["clean_error"]["rate"]
    assert row["untargeted"]["shapes"]["rate"] <= clean + 0.1
    assert row["targeted"]["shapes"]["rate"] <= 0.1
    assert result["victims"] == ["same", "shapes"] and result["n"] == 60
