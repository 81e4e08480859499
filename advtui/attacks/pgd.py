"""Projected gradient ascent: the one attack loop behind every attack, construction and inversion.

Step-size conventions (those of Madry et al. and the `robustness` library the papers used):
- L2: the gradient is normalised per example to unit L2 norm, then scaled by `step_size`; so the
  step is absolute, in pixel-space L2 units (step 0.1 moves each image by exactly 0.1 in L2 norm,
  before projection).
- Linf: the step is `step_size * sign(gradient)`, so every pixel moves by `step_size`.
After each step the iterate is projected onto the eps ball around the clean input `x` and clamped to
[0, 1]; the clamp keeps it inside the ball, since it only moves pixels towards their clean values.

Per point the attack returns the best iterate it has seen over all steps and restarts: a successful
one first (when the objective knows success), else the one with the highest objective. This makes
`early_stop` exact: a point whose iterate succeeds is frozen there, and it would have returned a
successful iterate anyway.

Every step's forward pass scores the iterate it takes the gradient at, so `steps` gradient steps score
the start and all iterates but the final one for free. Scoring the final iterate costs one more forward
pass (`score_final`, on by default: what the `robustness` library the papers used does, and what every
pipeline caller keeps, since the adversarial training and the constructed datasets depend on which
iterate comes back). With `score_final=False` the final iterate is not scored: a point that succeeded at
an earlier iterate returns the best such one, every other point its final iterate. The set of points
that come back successful is the same either way (a point whose only success is the final iterate
returns that iterate); only which failed iterate a failed point returns differs, and, with restarts,
only the last restart's final iterate goes unscored. This is torchattacks' cost (one forward and one
backward per step) with the success-first guarantee kept, and it is what the robust-accuracy
evaluation uses: it scores the returned images once itself (`advtui.attacks.robust_accuracy`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
import torch
from torch import Tensor, nn

from advtui.attacks.objectives import CrossEntropy, Objective, TargetedCrossEntropy
from advtui.catalog.attacks import Norm, check_attack_settings

_TINY = 1e-12


@contextmanager
def attack_mode(*modules: nn.Module) -> Iterator[None]:
    """Run the body with `modules` in eval mode and their parameters' requires_grad off.

    Restores each submodule's own training flag and each parameter's own requires_grad afterwards,
    so mixed states (a frozen encoder in eval inside a training model) come back exactly as they were.
    """
    submodules = list({id(m): m for root in modules for m in root.modules()}.values())
    params = list({id(p): p for root in modules for p in root.parameters()}.values())
    training = [(m, m.training) for m in submodules]
    requires_grad = [(p, p.requires_grad) for p in params]
    for root in modules:
        root.eval()
    for p in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for m, mode in training:
            m.training = mode
        for p, flag in requires_grad:
            p.requires_grad_(flag)


def validate_attack(
    *, norm: str, eps: float | None, step_size: float, steps: int, restarts: int, random_start: bool
) -> None:
    """Raise ValueError for impossible PGD settings (one line naming the fix).

    The rules are the catalogue's (``check_attack_settings``), so PGD, ``AttackSpec`` and AutoAttack agree;
    PGD adds eps None (an unbounded ball, for inversion), which has no random start to draw.
    """
    bounded = {} if eps is None else {"eps": eps}
    check_attack_settings(norm=norm, **bounded, step_size=step_size, steps=steps, restarts=restarts)
    if random_start and eps is None:
        raise ValueError("random_start: needs a finite eps to draw from; pass random_start=False for eps=None")


def _per_example_l2(t: Tensor) -> Tensor:
    return torch.linalg.vector_norm(t.flatten(1), dim=1).view(-1, *([1] * (t.dim() - 1)))


def project(x_adv: Tensor, x: Tensor, norm: Norm, eps: float | None) -> Tensor:
    """Project `x_adv` onto the `norm` ball of radius `eps` around `x` (unbounded if None), then clamp to [0, 1]."""
    if eps is not None:
        delta = x_adv - x
        if norm == "l2":
            delta = delta * torch.clamp(eps / (_per_example_l2(delta) + _TINY), max=1.0)
        else:
            delta = delta.clamp(-eps, eps)
        x_adv = x + delta
    return x_adv.clamp(0.0, 1.0)


def random_start_point(x: Tensor, norm: Norm, eps: float, generator: torch.Generator | None) -> Tensor:
    """A uniform random point of the `norm` ball of radius `eps` around x, clamped to [0, 1]."""
    device = generator.device if generator is not None else x.device
    if norm == "linf":
        delta = (torch.rand(x.shape, generator=generator, device=device) * 2 - 1) * eps
    else:
        direction = torch.randn(x.shape, generator=generator, device=device)
        direction = direction / (_per_example_l2(direction) + _TINY)
        u = torch.rand((x.shape[0],) + (1,) * (x.dim() - 1), generator=generator, device=device)
        delta = direction * eps * u.pow(1.0 / x[0].numel())
    return (x + delta.to(x.device, x.dtype)).clamp(0.0, 1.0)


def _ascent_direction(grad: Tensor, norm: Norm) -> Tensor:
    if norm == "l2":
        return grad / (_per_example_l2(grad) + _TINY)
    return grad.sign()


class _Best:
    """Per point, the best iterate so far: successful first, then highest objective."""

    def __init__(self, x: Tensor) -> None:
        self.x = x.clone()
        self.loss = torch.full((x.shape[0],), -math.inf, device=x.device)
        self.success = torch.zeros(x.shape[0], dtype=torch.bool, device=x.device)

    def update(self, idx: Tensor, x_adv: Tensor, loss: Tensor, success: Tensor | None) -> None:
        higher = loss > self.loss[idx]
        if success is None:
            better = higher
        else:
            old = self.success[idx]
            better = (success & ~old) | ((success == old) & higher)
            self.success[idx[better]] = success[better]
        self.x[idx[better]] = x_adv[better]
        self.loss[idx[better]] = loss[better]

    def take_unscored(self, idx: Tensor, x_adv: Tensor) -> None:
        """Points ``idx`` without a successful iterate take ``x_adv``, an iterate that was not scored."""
        take = ~self.success[idx]
        self.x[idx[take]] = x_adv[take]
        self.loss[idx[take]] = math.nan  # unknown: nothing compares with it (only the last restart skips scoring)


def _run_once(
    objective: Objective,
    x: Tensor,
    start: Tensor,
    idx: Tensor,
    best: _Best,
    *,
    norm: Norm,
    eps: float | None,
    step_size: float,
    steps: int,
    early_stop: bool,
    score_final: bool,
) -> None:
    obj = objective.select(idx) if idx.numel() < x.shape[0] else objective
    x0, x_adv = x[idx], start[idx]
    for step in range(steps + 1):
        last = step == steps
        if last and not score_final:
            best.take_unscored(idx, x_adv)
            return
        with torch.enable_grad():
            x_adv.requires_grad_(not last)
            loss, success = obj.evaluate(x_adv)
            grad = None if last else torch.autograd.grad(loss.sum(), x_adv)[0]
        x_adv = x_adv.detach()
        best.update(idx, x_adv, loss.detach(), success)
        if grad is None:
            return
        if early_stop and success is not None and success.any():
            keep = ~success
            if not keep.any():
                return
            idx, x0, x_adv, grad, obj = idx[keep], x0[keep], x_adv[keep], grad[keep], obj.select(keep)
        x_adv = project(x_adv + step_size * _ascent_direction(grad, norm), x0, norm, eps)


def pgd(
    objective: Objective,
    x: Tensor,
    *,
    norm: Norm,
    eps: float | None,
    step_size: float,
    steps: int,
    random_start: bool = True,
    restarts: int = 1,
    generator: torch.Generator | None = None,
    early_stop: bool = False,
    score_final: bool = True,
) -> Tensor:
    """Maximise `objective` over the `norm` ball of radius `eps` around `x` (in [0, 1]) by PGD.

    Args:
        objective: per-example loss to maximise; its modules run in eval mode, parameter grads off.
        x: clean inputs (N, ...) in [0, 1]; the centre of the ball and, without random start, the start.
        norm: "l2" (unit-L2-normalised gradient steps) or "linf" (sign steps).
        eps: ball radius in pixel units of `norm`; None = unbounded (only the [0, 1] box); 0 returns x.
        step_size: absolute step length (see the module docstring).
        steps: gradient steps per restart (>= 1, as for every attack: see `check_attack_settings`).
        random_start: start each restart from a uniform random point of the ball.
        restarts: independent runs; per point the best result is kept (successful first, else highest
            objective), so more restarts never give a worse result.
        generator: RNG for the random starts (drawn on its device, for all N points every restart, so
            the draws do not depend on which points `early_stop` has dropped).
        early_stop: stop computing points once the objective reports success; the set of successful
            points is the same as without it.
        score_final: score the final iterate (one more forward pass) so that it competes with the
            earlier ones; False skips that pass and returns the final iterate for every point without an
            earlier success (see the module docstring: the same set of successful points).

    Returns:
        The adversarial inputs (N, ...), detached.
    """
    validate_attack(
        norm=norm, eps=eps, step_size=step_size, steps=steps, restarts=restarts, random_start=random_start
    )
    x = x.detach()
    if eps == 0 or x.shape[0] == 0:
        return x.clone()
    best = _Best(x)
    everyone = torch.arange(x.shape[0], device=x.device)
    with attack_mode(*objective.modules):
        for restart in range(restarts):
            start = random_start_point(x, norm, eps, generator) if random_start else x
            idx = everyone[~best.success] if early_stop else everyone
            if idx.numel() == 0:
                break
            # A restart's final iterate competes with the next restart's, so only the last may go unscored.
            _run_once(
                objective, x, start, idx, best,
                norm=norm, eps=eps, step_size=step_size, steps=steps, early_stop=early_stop,
                score_final=score_final or restart < restarts - 1,
            )
    return best.x


def pgd_attack(
    model: Callable[[Tensor], Tensor],
    x: Tensor,
    y: Tensor,
    *,
    norm: Norm,
    eps: float,
    step_size: float,
    steps: int,
    targeted: bool = False,
    random_start: bool = True,
    restarts: int = 1,
    generator: torch.Generator | None = None,
    early_stop: bool = False,
    score_final: bool = True,
) -> Tensor:
    """Cross-entropy PGD on a classifier: untargeted (y = true labels) or targeted (y = target classes).

    The model runs in eval mode with parameter gradients off during the attack; both are restored
    afterwards, and no gradient reaches the parameters. See `pgd` for the other arguments.
    """
    objective = TargetedCrossEntropy(model, y) if targeted else CrossEntropy(model, y)
    return pgd(
        objective, x,
        norm=norm, eps=eps, step_size=step_size, steps=steps, random_start=random_start,
        restarts=restarts, generator=generator, early_stop=early_stop, score_final=score_final,
    )
