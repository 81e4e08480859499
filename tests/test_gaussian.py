"""E13: Ilyas et al.'s Gaussian model. The ground truth is the closed form of Theorem 2; the simulation (Adam on
sampled data, the adversary answering each step) must land on it within what its sample size allows."""

from __future__ import annotations

import json
import math

import pytest
import torch

from advtui.catalog.params import GaussianParams
from advtui.experiments.gaussian import (
    adversary_rms, fit_mle, gaussian_experiment, multiplier_for_eps, planted_gaussian, robust_covariance, sample,
    sampling_tolerance,
)

SMALL = GaussianParams(dim=4, samples=4000, var_min=0.02, var_max=1.0, eps=(0.0, 0.5, 2.0), fit_steps=200)


@pytest.fixture(scope="module")
def result() -> dict:
    return gaussian_experiment(SMALL, seed=3)


def test_closed_form_minimises_the_robust_loss_per_eigenvalue() -> None:
    # Per eigen-direction of variance s*, the robust population loss of a model variance s is
    # 1/2 s*/(s - 1/lambda) + 1/2 log s (the adversary's best response, substituted); Sigma_r's eigenvalue must be
    # its minimiser, found here by brute force on a grid.
    cov = torch.diag(torch.tensor([0.05, 0.3, 2.0], dtype=torch.float64))
    lam = 3.0
    closed = torch.linalg.eigvalsh(robust_covariance(cov, lam))
    for s_star, s_r in zip([0.05, 0.3, 2.0], closed.tolist()):
        grid = torch.linspace(1 / lam + 1e-4, 10.0, 200001, dtype=torch.float64)
        loss = 0.5 * s_star / (grid - 1 / lam) + 0.5 * torch.log(grid)
        assert float(grid[loss.argmin()]) == pytest.approx(s_r, rel=1e-3)


def test_multiplier_spends_the_budget() -> None:
    truth = planted_gaussian(SMALL, seed=3)
    for eps in (0.1, 1.0, 3.0):
        lam = multiplier_for_eps(truth.cov, eps)
        assert adversary_rms(truth.cov, robust_covariance(truth.cov, lam), lam) == pytest.approx(eps, rel=1e-6)
    assert math.isinf(multiplier_for_eps(truth.cov, 0.0))


def test_simulated_mle_agrees_with_the_closed_form(result: dict) -> None:
    for row in result["curve"]:
        assert row["cov_error"] <= row["cov_tolerance"], row
        assert row["mean_error"] < 0.1  # mu_r = mu*: robust training does not move the mean
        # the simulated adversary spends the budget the closed form's multiplier was chosen for
        assert row["rms_delta"] == pytest.approx(row["eps"], rel=0.1, abs=1e-9)


def test_tolerance_tells_a_wrong_multiplier_apart() -> None:
    # negative control: the closed form at half the right multiplier lies outside the tolerance the fit meets
    truth = planted_gaussian(SMALL, seed=3)
    x, y = sample(truth, SMALL.samples, seed=4)
    lam = multiplier_for_eps(truth.cov, 0.5)
    fit = fit_mle(x, y, lam, steps=SMALL.fit_steps, lr=SMALL.lr)
    wrong = robust_covariance(truth.cov, lam / 2)
    error = float(torch.linalg.matrix_norm(fit.cov - wrong) / torch.linalg.matrix_norm(wrong))
    assert error > 2 * sampling_tolerance(truth.cov, lam, SMALL.samples)


def test_covariance_turns_towards_identity_and_gradient_towards_the_means(result: dict) -> None:
    rows = result["curve"]
    assert rows[0]["condition_analytic"] == pytest.approx(SMALL.var_max / SMALL.var_min)
    for source in ("analytic", "simulated"):
        conditions = [row[f"condition_{source}"] for row in rows]
        alignment = [row[f"alignment_{source}"] for row in rows]
        assert conditions == sorted(conditions, reverse=True)
        assert alignment == sorted(alignment) and alignment[-1] > alignment[0] + 0.1
    assert rows[-1]["isotropy_analytic"] > 0.95  # far along the way to a multiple of I at eps 2


def test_stage_writes_metrics_curves_and_figure(tmp_path, monkeypatch) -> None:
    from dataclasses import replace

    from advtui.catalog.params import Params
    from advtui.pipeline.runners import gaussian
    from advtui.report.distill import e13_rows
    from advtui.report.figures import write_theory_figures

    monkeypatch.chdir(tmp_path)
    gaussian.run(replace(Params(), e13=replace(SMALL, fit_steps=50)), "gaussian")
    metrics = json.loads((tmp_path / "data/metrics/E13/gaussian.json").read_text())
    assert [row["eps"] for row in metrics["curve"]] == list(SMALL.eps)
    tsv = (tmp_path / "data/curves/E13/simulated-l2.tsv").read_text().splitlines()
    assert tsv[0].split("\t") == ["eps", "condition", "isotropy", "alignment"] and len(tsv) == 1 + len(SMALL.eps)
    rows = e13_rows(lambda experiment, name: json.loads((tmp_path / f"data/metrics/{experiment}/{name}.json").read_text()))
    assert [row["name"] for row in rows] == ["standard", "robust", "robust"]
    files = write_theory_figures(tmp_path / "data/metrics", tmp_path / "figs")
    assert sorted(f.name for f in files) == ["E13_gaussian.png", "E13_gaussian.svg"]
