"""E17, layer robustness (Nakano): r = E max_{||d|| <= eps} ||f(x+d) - f(x)|| / E ||f(x) - f(x')||. Ground truth: for a
linear layer f(x) = W x the max is ||W||_2 eps, so r has a closed form the attack must reach."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from advtui.catalog.data import DataParams
from advtui.catalog.params import LayerRobustnessParams
from advtui.experiments.common import natural_split
from advtui.experiments.layer_robustness import (
    classifier_blocks, layer_robustness, max_change, pair_distance, partners,
)
from advtui.models.registry import create_model


def test_linear_layer_ratio_is_its_closed_form() -> None:
    torch.manual_seed(0)
    d_in, eps = 48, 0.05
    # W with a known spectrum (a gap after the top singular value, so a few ascent steps find its direction)
    u, _ = torch.linalg.qr(torch.randn(8, 8))
    v, _ = torch.linalg.qr(torch.randn(d_in, 8))
    singular = torch.tensor([3.0, 1.0, 0.8, 0.6, 0.4, 0.3, 0.2, 0.1])
    layer = nn.Linear(d_in, 8, bias=False)
    layer.weight.data = u @ torch.diag(singular) @ v.T
    x = 0.4 + 0.2 * torch.rand(64, d_in)  # eps 0.05 from the box's faces: the ball is never clipped
    partner = partners(len(x), seed=0)
    # the profiles' setting: steps of eps / 2 (2.5 eps / steps keeps bouncing around the top direction, ~98%)
    change = max_change(layer, x, modules=(layer,), eps=eps, steps=10, step_size=eps / 2,
                        generator=torch.Generator().manual_seed(0))
    pair = pair_distance(layer, x, partner)
    expected = singular[0] * eps / pair.mean()
    assert change.max() <= singular[0] * eps * (1 + 1e-4)  # never above the operator norm's bound
    assert (change.mean() / pair.mean()).item() == pytest.approx(expected.item(), rel=0.01)
    # the denominator is the mean distance of each image to its partner, which is never itself
    assert (partner != torch.arange(len(x))).all()
    assert pair.mean().item() == pytest.approx((x - x[partner]).matmul(layer.weight.T).norm(dim=1).mean().item(),
                                               rel=1e-5)


def test_blocks_follow_the_backbone() -> None:
    names = [block.name for block in classifier_blocks(create_model("small_cnn"))]
    assert names == ["backbone.0", "backbone.1", "backbone.2", "backbone.3-4", "head"]  # 3 convs, pool, logits
    mlp = create_model("small_mlp")
    blocks = classifier_blocks(mlp)
    assert [b.name for b in blocks] == ["backbone.0-2", "backbone.3-4", "head"]  # flatten + linear + relu, twice
    x = torch.rand(2, 3, 32, 32)
    torch.testing.assert_close(blocks[-2].fn(x), mlp.features(x))


def test_every_block_of_every_model_gets_a_row() -> None:
    torch.manual_seed(0)
    models = {"standard": create_model("small_cnn").eval(), "robust_l2": create_model("small_cnn").eval()}
    test = natural_split(DataParams(train_size=100, test_size=20), "test", 0)
    result = layer_robustness(models, test, LayerRobustnessParams(eps=0.5, steps=2, test_size=10), seed=0,
                              device=torch.device("cpu"))
    assert result["n"] == 10 and result["compared"] == ["standard", "robust_l2"]
    for rows in result["models"].values():
        assert [row["block"] for row in rows] == ["backbone.0", "backbone.1", "backbone.2", "backbone.3-4", "head"]
        assert all(row["ratio"] > 0 and row["ratio"] == pytest.approx(row["max_change"] / row["pair_distance"])
                   for row in rows)
    assert set(result["robust_lower"]) == {row["block"] for row in result["models"]["standard"]}


def test_params_refuse_an_unknown_model() -> None:
    with pytest.raises(ValueError, match="models"):
        LayerRobustnessParams(models=("vgg",))


def test_report_marks_blocks_where_the_robust_model_is_not_lower(tmp_path) -> None:
    from advtui.files import write_json
    from advtui.report.figures import write_distill_figures
    from advtui.report.tables import collect, markdown

    rows = lambda ratios: [{"block": b, "dim": 1, "max_change": r, "pair_distance": 1.0, "ratio": r}  # noqa: E731
                           for b, r in zip(("backbone.0", "head"), ratios)]
    write_json(tmp_path / "data/metrics/E17/layers.json",
               {"models": {"standard": rows((0.3, 0.9)), "robust_l2": rows((0.4, 0.2))}, "n": 100, "eps": 0.5,
                "steps": 10, "step_size": 0.25, "model_order": ["standard", "robust_l2"], "compared": ["standard", "robust_l2"],
                "robust_lower": {"backbone.0": False, "head": True}})
    text = markdown(collect(tmp_path / "data"))
    assert "| backbone.0 | 0.300 | 0.400 | NO |" in text and "| head | 0.900 | 0.200 | yes |" in text
    assert [p.name for p in write_distill_figures(tmp_path / "data/metrics", tmp_path)] == [
        "E17_layers.png", "E17_layers.svg"]
