"""Robust accuracy against eps (issue 12 item 2): the curve is the true robust fraction where that is known in
closed form, the planted pattern's flip radius is the one a pattern-reading classifier really has, and the
stages write metrics, ``dvc plots`` files, figure files and a report table."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch import nn

from advtui.catalog import paths
from advtui.catalog.data import DataParams
from advtui.catalog.params import CurveParams, parse_params
from advtui.data.imageset import ImageSet
from advtui.data.synthetic import nonrobust_patterns
from advtui.experiments.common import save_classifier
from advtui.experiments.curves import eps_curve, pattern_flip_distance
from advtui.models.registry import create_model
from advtui.pipeline.runners import run_stage
from advtui.report.layout import report_tables, stays_above
from advtui.catalog.names import SOURCE_MODELS
from advtui.report.tables import collect, half_clean_eps, missing_metrics
from linear_ground_truth import interior_points, linear_model, predict, untargeted_distance
from test_integrity import tiny_raw

SHAPE = (3, 4, 4)


@pytest.mark.parametrize("norm", ["l2", "linf"])
def test_curve_is_the_true_robust_fraction_of_a_linear_model(norm: str) -> None:
    model = linear_model(SHAPE, 4, seed=1, scale=3.0)
    x = interior_points(200, SHAPE, seed=2)
    y = predict(model, x)
    dist = untargeted_distance(model, x, y, norm)
    radii = [0.0, *sorted({round(float(dist.quantile(q)), 4) for q in (0.2, 0.5, 0.8)})]
    assert radii[-1] < 0.3  # the [0, 1] box never binds (see linear_ground_truth)
    cfg = CurveParams(**{norm: tuple(radii)}, steps=100, step_factor=2.5, test_size=None, batch_size=64)
    test = ImageSet(x, y, classes=[str(c) for c in range(4)])
    curve, clean = eps_curve(model, test, cfg, norm, device=torch.device("cpu"), seed=0)
    assert clean == 1.0 and [e for e, _ in curve] == radii
    for eps, acc in curve:
        truth = float((dist > eps).float().mean())
        # sound: no attack breaks a point farther than eps; strong: PGD finds nearly every nearer one
        assert truth <= acc <= truth + 0.03, (eps, acc, truth)


def test_pattern_flip_radius_is_that_of_a_classifier_reading_only_the_pattern() -> None:
    data = DataParams()
    patterns = nonrobust_patterns(data.synthetic)
    reader = nn.Sequential(nn.Flatten(), nn.Linear(patterns[0].numel(), len(patterns), bias=False))
    with torch.no_grad():
        reader[1].weight.copy_(patterns.flatten(1))
    labels = torch.arange(len(patterns))
    flip = pattern_flip_distance(data)
    for norm in ("l2", "linf"):
        # an image that is only its class's pattern: its minimal adversarial distance, in closed form
        assert flip[norm] == pytest.approx(float(untargeted_distance(reader, patterns, labels, norm).min()), rel=1e-5)
    # equal-norm, near-orthogonal patterns: about norm / sqrt(2), the ~0.35 of DESIGN section 7
    assert 0.3 < flip["l2"] < data.synthetic.nonrobust_norm / 2**0.5 + 0.01
    assert pattern_flip_distance(DataParams(source="cifar10")) is None


def test_half_clean_radius_interpolates_and_says_never() -> None:
    assert half_clean_eps([[0, 0.8], [0.5, 0.6], [1.0, 0.2]]) == pytest.approx(0.75)
    assert half_clean_eps([[0, 0.8], [0.5, 0.6]]) is None


def test_d_r_against_d_nr_verdict_reads_the_curves_past_the_flip_radius() -> None:
    flip = {"l2": 0.34, "linf": 0.008}
    def row(run, accs):
        return {"run": run, "missing": False, "pattern_flip": flip, "l2": [[e, a] for e, a in zip((0, 0.25, 0.5, 1.0), accs)]}
    above = [row("E4-D_R", (0.9, 0.2, 0.6, 0.4)), row("E4-D_NR", (0.9, 0.5, 0.1, 0.0))]
    assert "E4-D_R stays above E4-D_NR" in stays_above(above, "E4-D_R", "E4-D_NR", "l2")  # eps 0.25 < flip: ignored
    below = [row("E4-D_R", (0.9, 0.8, 0.1, 0.0)), row("E4-D_NR", (0.9, 0.5, 0.1, 0.0))]
    assert "does NOT stay above (first at eps 0.5: 10.0% against 10.0%)" in stays_above(below, "E4-D_R", "E4-D_NR", "l2")
    # both broken far past the flip radius is not D_R falling below: the verdict says how far it stayed above
    broken = [row("E4-D_R", (0.9, 0.6, 0.3, 0.0)), row("E4-D_NR", (0.9, 0.0, 0.0, 0.0))]
    verdict = stays_above(broken, "E4-D_R", "E4-D_NR", "l2")
    assert "stays above E4-D_NR past the planted pattern's flip radius 0.34 up to eps 0.5 (1.5x" in verdict
    assert "from eps 1 on both are broken (0%)" in verdict and "NOT" not in verdict
    never = [row("E4-D_R", (0.9, 0.6, 0.0, 0.0)), row("E4-D_NR", (0.9, 0.0, 0.0, 0.0))]
    assert "does NOT stay above E4-D_NR past the planted pattern's flip radius 0.34: from eps 0.5 on both are broken" in (
        stays_above(never, "E4-D_R", "E4-D_NR", "l2"))


def test_curve_and_figure_stages_write_metrics_plots_and_reproducible_figures(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    raw = tiny_raw()
    raw["curves"].update(steps=2, test_size=10)
    params = parse_params(raw)
    for name in SOURCE_MODELS:  # E1's three models, all untrained, with their own weights
        torch.manual_seed(len(name))
        save_classifier(create_model("small_cnn", num_classes=10, img_size=32), paths.model_path(name),
                        paradigm="supervised", params={})
    run_stage("curve", params, "E1")
    stored = json.loads(paths.metrics_path("curves", "E1").read_text())
    assert set(stored) == set(SOURCE_MODELS)
    row = stored["standard"]
    assert row["model"] == "standard" and row["n"] == 10 and row["pattern_flip"]["l2"] > 0.3
    assert [e for e, _ in row["l2"]] == list(params.curves.l2)
    tsv = paths.curve_tsv("E1", "standard", "linf").read_text().splitlines()
    assert tsv[0] == "eps\trobust_acc" and len(tsv) == 1 + len(params.curves.linf)

    run_stage("figures", params, "main")
    files = sorted(paths.FIGURES.iterdir())
    assert [f.name for f in files] == ["E1_eps_l2.png", "E1_eps_l2.svg", "E1_eps_linf.png", "E1_eps_linf.svg"]
    assert files[0].read_bytes().startswith(b"\x89PNG") and b"<svg" in files[1].read_bytes()
    before = {f.name: f.read_bytes() for f in files}
    run_stage("figures", params, "main")
    assert {f.name: f.read_bytes() for f in paths.FIGURES.iterdir()} == before  # same metrics, same bytes

    tables = {t.spec.id: t for t in report_tables(collect(Path("data")))}
    curves = tables["curves"]
    assert [r["run"] for r in curves.rows[:3]] == [f"E1-{m}" for m in SOURCE_MODELS]
    assert not any(r["missing"] for r in curves.rows[:3]) and all(r["missing"] for r in curves.rows[3:])
    assert "planted pattern flips at L2" in curves.caption
    assert missing_metrics("curves", curves.rows[3]) == ["curves/E4.json"]  # the app names curve_E4
