"""E13: Ilyas et al.'s Gaussian model (section 4), the closed form against a simulation.

Two classes y = +-1, x ~ N(y mu*, Sigma*). The model's parameters (mu, Sigma) are fitted by maximum likelihood,
the loss of a point being its negative log-likelihood l(x, y) = 1/2 (x - y mu)^T Sigma^-1 (x - y mu) +
1/2 log det Sigma. Robust training (Ilyas Theorem 2) lets an adversary move each point by delta first, at a
price lambda/2 ||delta||^2 (lambda is the Lagrange multiplier of the L2 budget ||delta|| <= eps). The adversary's
best response is linear, delta = (lambda Sigma - I)^-1 v with v = x - y mu, and the robust MLE is

    mu_r = mu*,   Sigma_r = Sigma*/2 + I/lambda + sqrt(Sigma*/lambda + Sigma*^2/4),

a mix of the data's metric Sigma* and the adversary's metric I. As eps grows, lambda falls and Sigma_r turns
towards a multiple of I: its condition number falls to 1, and the gradient of the model's decision function,
Sigma_r^-1 mu*, turns towards the inter-class direction mu* (Theorem 3: robust models' gradients align with
the direction between the classes, standard ones need not).

The simulation does what adversarial training does: draw samples, let the adversary answer the current model,
take an Adam step on the perturbed loss; it never uses the closed form. Which lambda goes with which eps is
defined by the budget: the adversary's root-mean-square ||delta|| at the robust optimum equals eps.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from advtui.catalog.params import GaussianParams

_DTYPE = torch.float64  # covariances with condition number 100 and their square roots: float32 loses digits
_LAMBDA_RANGE = (1e-8, 1e8)  # bisection bracket of the multiplier (log scale)


@dataclass(frozen=True)
class PlantedGaussian:
    """The true parameters: class mean ``mean`` (mu*, d) and covariance ``cov`` (Sigma*, d x d)."""

    mean: Tensor
    cov: Tensor


def _matrix_function(cov: Tensor, fn) -> Tensor:
    """``fn`` applied to the eigenvalues of the symmetric matrix ``cov``."""
    values, vectors = torch.linalg.eigh(cov)
    return (vectors * fn(values)) @ vectors.T


def planted_gaussian(p: GaussianParams, seed: int) -> PlantedGaussian:
    """mu* and Sigma* of ``p``: eigenvalues log-spaced over [var_min, var_max] in a random orthonormal basis (so
    no coordinate is special), mu* of norm ``mean_norm`` along a random direction (so it mixes high- and
    low-variance directions and the two metrics disagree about it)."""
    gen = torch.Generator().manual_seed(seed)
    basis, _ = torch.linalg.qr(torch.randn(p.dim, p.dim, generator=gen, dtype=_DTYPE))
    variances = torch.logspace(math.log10(p.var_min), math.log10(p.var_max), p.dim, dtype=_DTYPE)
    direction = torch.randn(p.dim, generator=gen, dtype=_DTYPE)
    return PlantedGaussian(mean=p.mean_norm * direction / direction.norm(), cov=(basis * variances) @ basis.T)


def sample(truth: PlantedGaussian, n: int, seed: int) -> tuple[Tensor, Tensor]:
    """``n`` draws (x (n, d), y (n,) in {-1, +1}) of the model, half of each class in expectation."""
    gen = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 2, (n,), generator=gen).to(_DTYPE) * 2 - 1
    noise = torch.randn(n, len(truth.mean), generator=gen, dtype=_DTYPE) @ torch.linalg.cholesky(truth.cov).T
    return y[:, None] * truth.mean + noise, y


def robust_covariance(cov: Tensor, multiplier: float) -> Tensor:
    """Ilyas Theorem 2: Sigma_r = Sigma/2 + I/lambda + sqrt(Sigma/lambda + Sigma^2/4) for true covariance
    ``cov``; ``multiplier`` lambda = inf is the standard MLE, Sigma itself."""
    if math.isinf(multiplier):
        return cov.clone()
    inv = 1.0 / multiplier
    return _matrix_function(cov, lambda s: s / 2 + inv + torch.sqrt(s * inv + s * s / 4))


def adversary_rms(cov: Tensor, model_cov: Tensor, multiplier: float) -> float:
    """Root-mean-square ||delta|| of the adversary's best response delta = (lambda Sigma - I)^-1 v against a
    model of covariance ``model_cov``, for residuals v ~ N(0, ``cov``): sqrt(tr(B cov B)), B = (lambda Sigma - I)^-1."""
    if math.isinf(multiplier):
        return 0.0
    response = torch.linalg.inv(multiplier * model_cov - torch.eye(len(cov), dtype=cov.dtype))
    return math.sqrt(float(torch.trace(response @ cov @ response)))


def multiplier_for_eps(cov: Tensor, eps: float) -> float:
    """The lambda whose robust optimum spends the budget: adversary_rms(Sigma*, Sigma_r(lambda)) = ``eps``
    (inf for eps 0). The spend falls monotonically as lambda grows, so bisection on log lambda finds it."""
    if eps == 0:
        return math.inf
    low, high = (math.log(v) for v in _LAMBDA_RANGE)
    for _ in range(200):
        mid = (low + high) / 2
        lam = math.exp(mid)
        if adversary_rms(cov, robust_covariance(cov, lam), lam) > eps:
            low = mid
        else:
            high = mid
    return math.exp((low + high) / 2)


@dataclass(frozen=True)
class Fit:
    """A fitted model: ``mean`` (mu), ``cov`` (Sigma), and the adversary's rms ||delta|| at the end."""

    mean: Tensor
    cov: Tensor
    rms_delta: float


def fit_mle(x: Tensor, y: Tensor, multiplier: float, *, steps: int, lr: float) -> Fit:
    """Maximum likelihood of (mu, Sigma) on samples ``x``, ``y``, standard (``multiplier`` inf) or robust.

    Robust: every step the adversary answers the current model with its best response delta (a linear solve:
    the penalised objective is concave in delta while Sigma > I/lambda), then Adam steps on the loss of the
    perturbed points; delta is held fixed for the gradient (Danskin: the gradient of a max is the gradient at
    the maximiser). Sigma = I/lambda + L L^T keeps the adversary's problem bounded; L starts at the Cholesky
    factor of the sample covariance, mu at the sample mean of y x.
    """
    d = x.shape[1]
    eye = torch.eye(d, dtype=_DTYPE)
    floor = 0.0 if math.isinf(multiplier) else 1.0 / multiplier
    start_mean = (y[:, None] * x).mean(0)
    residual = x - y[:, None] * start_mean
    mean = start_mean.clone().requires_grad_(True)
    factor = torch.linalg.cholesky(residual.T @ residual / len(x)).requires_grad_(True)
    optimiser = torch.optim.Adam([mean, factor], lr=lr)

    def covariance() -> Tensor:
        lower = torch.tril(factor)
        return floor * eye + lower @ lower.T

    def perturbations(cov: Tensor, v: Tensor) -> Tensor:
        if math.isinf(multiplier):
            return torch.zeros_like(v)
        return v @ torch.linalg.inv(multiplier * cov - eye)  # the d x d matrices are symmetric: inverting once is cheap

    for _ in range(steps):
        cov = covariance()
        v = x - y[:, None] * mean
        delta = perturbations(cov.detach(), v.detach())
        shifted = v + delta
        loss = 0.5 * ((shifted @ torch.linalg.inv(cov)) * shifted).sum(1).mean() + 0.5 * torch.logdet(cov)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    with torch.no_grad():
        cov = covariance()
        delta = perturbations(cov, x - y[:, None] * mean)
        rms = float(delta.square().sum(1).mean().sqrt())
    return Fit(mean=mean.detach(), cov=cov, rms_delta=rms)


def condition_number(cov: Tensor) -> float:
    """kappa(Sigma) = largest / smallest eigenvalue: 1 for a multiple of I."""
    values = torch.linalg.eigvalsh(cov)
    return float(values[-1] / values[0])


def isotropy(cov: Tensor) -> float:
    """Cosine between Sigma and I in the Frobenius inner product, tr(Sigma) / (sqrt(d) ||Sigma||_F): 1 exactly for
    a multiple of I."""
    return float(torch.trace(cov) / (math.sqrt(len(cov)) * torch.linalg.matrix_norm(cov)))


def gradient_alignment(cov: Tensor, mean: Tensor, direction: Tensor) -> float:
    """Cosine between the input gradient of the model's decision function x^T Sigma^-1 mu, which is
    Sigma^-1 mu, and the inter-class ``direction`` (mu*)."""
    gradient = torch.linalg.solve(cov, mean)
    return float(gradient @ direction / (gradient.norm() * direction.norm()))


def sampling_tolerance(cov: Tensor, multiplier: float, n: int, sigmas: float = 3.0) -> float:
    """How far (relative Frobenius error) a fit on ``n`` samples may stray from Sigma_r by sampling alone,
    ``sigmas`` standard errors.

    The sample covariance S of n Gaussian draws errs by E||S - Sigma||_F^2 = ((tr Sigma)^2 + ||Sigma||_F^2) / n;
    the robust optimum is the matrix function F(s) = s/2 + 1/lambda + sqrt(s/lambda + s^2/4) of it, whose
    Frechet derivative is bounded in Frobenius norm by max F' over the spectrum (Daleckii-Krein), reached at
    the smallest eigenvalue since F' falls with s."""
    error = math.sqrt((float(torch.trace(cov)) ** 2 + float(torch.linalg.matrix_norm(cov)) ** 2) / n)
    if not math.isinf(multiplier):
        s, inv = float(torch.linalg.eigvalsh(cov)[0]), 1.0 / multiplier
        error *= 0.5 + (inv + s / 2) / (2 * math.sqrt(s * inv + s * s / 4))
    return sigmas * error / float(torch.linalg.matrix_norm(robust_covariance(cov, multiplier)))


def gaussian_experiment(p: GaussianParams, seed: int) -> dict:
    """E13's metrics: the planted model, then per eps of ``p.eps`` the multiplier lambda, the closed form's and
    the simulation's condition number, isotropy and gradient alignment, the simulation's relative error from
    the closed form beside the tolerance its sample size allows, and the adversary's spend (rms ||delta||,
    which should equal eps)."""
    truth = planted_gaussian(p, seed)
    x, y = sample(truth, p.samples, seed + 1)
    rows = []
    for eps in p.eps:
        lam = multiplier_for_eps(truth.cov, eps)
        analytic = robust_covariance(truth.cov, lam)
        fit = fit_mle(x, y, lam, steps=p.fit_steps, lr=p.lr)
        rows.append({
            "eps": eps, "multiplier": None if math.isinf(lam) else lam,
            "condition_analytic": condition_number(analytic), "condition_simulated": condition_number(fit.cov),
            "isotropy_analytic": isotropy(analytic), "isotropy_simulated": isotropy(fit.cov),
            "alignment_analytic": gradient_alignment(analytic, truth.mean, truth.mean),
            "alignment_simulated": gradient_alignment(fit.cov, fit.mean, truth.mean),
            "cov_error": float(torch.linalg.matrix_norm(fit.cov - analytic) / torch.linalg.matrix_norm(analytic)),
            "cov_tolerance": sampling_tolerance(truth.cov, lam, p.samples),
            "mean_error": float((fit.mean - truth.mean).norm() / truth.mean.norm()),
            "rms_delta": fit.rms_delta,
        })
    return {
        "dim": p.dim, "n_samples": p.samples, "var_range": [p.var_min, p.var_max], "mean_norm": p.mean_norm,
        "condition_true": condition_number(truth.cov), "curve": rows,
    }
