"""APGD (Croce and Hein 2020) of the package ``pyautoattack`` on any :class:`Objective`, as an attack of the driver.

Li et al. (section 5.1, Appendix B) attack "with AutoAttack's APGD, default settings" on a chosen loss (CE,
InfoNCE, their ablations). The package's APGD names its losses ('ce', 'dlr'), but it also accepts a model that
computes the loss and its input gradient itself, its path for TensorFlow models (``is_tf_model=True``): APGD then
calls ``model.get_logits_loss_grad_xent(x, y) -> (logits, per-point loss, gradient)`` at every iterate. That hook
takes any advtui ``Objective``, so the attack here is the package's own APGD loop with its default settings (100
iterations, one restart, rho 0.75, first step 2 eps, its momentum and step-halving schedule) on the chosen loss,
without a fork of the package.

The verdict is the package's too: the hook returns the classifier's logits beside the objective's loss, APGD
marks a point broken when any iterate is misclassified and returns that iterate (AutoAttack's convention for
APGD-CE); for any loss but CE the classifier only watches the ascent, it is never in the loss.

:class:`ObjectiveApgd` runs it chunk by chunk inside :func:`advtui.attacks.driver.attack_standing` (resume file,
progress, only the clean-correct points attacked). The objective is built per chunk from the chunk's clean images
(InfoNCE's keys and negatives, the alignment loss's f(x)), and its ``monitors`` are losses evaluated without
gradient at every iterate: their means per iteration are the loss curves of Li's Fig. 2. The curves of finished
chunks are kept in a resume file of their own, keyed like the driver's, so a resumed run ends with the curves
an uninterrupted one would have.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch
from pyautoattack.autopgd_base import APGDAttack
from torch import Tensor, nn

from advtui.attacks.autoattack import PACKAGE_NORM, fork_rng
from advtui.attacks.driver import ChunkFn, Run
from advtui.attacks.objectives import Objective
from advtui.attacks.pgd import attack_mode
from advtui.catalog.attacks import check_attack_settings
from advtui.files import discard_stale, write_atomic

#: AutoAttack's APGD defaults (pyautoattack 0.2.0, 'standard' version): iterations and step-size decay rho.
N_ITER = 100
RHO = 0.75

Monitor = Callable[[Tensor, Tensor], Tensor]
"""``monitor(x_adv, logits) -> (N,)`` a loss watched (not attacked) at every iterate; ``logits`` are the classifier's."""


@dataclass(frozen=True)
class Setup:
    """What one chunk is attacked with: the objective APGD maximises and the losses it watches, by name."""

    objective: Objective
    monitors: Mapping[str, Monitor]


SetupFn = Callable[[Tensor, Tensor], Setup]
"""``setup(x, y) -> Setup`` for the clean images and labels of one chunk."""


class _LossHook:
    """The package's interface for a model that supplies its own loss and gradient (its ``is_tf_model`` path).

    APGD calls :meth:`get_logits_loss_grad_xent` once per iterate (``eot_iter`` times with EOT); the first call
    of each iterate also records the sum over points of every monitor.
    """

    def __init__(self, classifier: Callable[[Tensor], Tensor], setup: Setup, eot_iter: int) -> None:
        self.classifier, self.setup, self.eot_iter = classifier, setup, eot_iter
        self.sums: dict[str, list[float]] = {name: [] for name in setup.monitors}
        self.calls = 0

    def predict(self, x: Tensor) -> Tensor:
        """The classifier's logits (the package's clean pass)."""
        with torch.no_grad():
            return self.classifier(x)

    def get_logits_loss_grad_xent(self, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """(the classifier's logits, the objective's per-point loss, its gradient w.r.t. x) at iterate ``x``."""
        x = x.detach().requires_grad_(True)
        with torch.enable_grad():
            loss = self.setup.objective(x)
            (grad,) = torch.autograd.grad(loss.sum(), x)
        x = x.detach()
        with torch.no_grad():
            logits = self.classifier(x)
            if self.calls % self.eot_iter == 0:
                for name, monitor in self.setup.monitors.items():
                    self.sums[name].append(float(monitor(x, logits).float().sum()))
        self.calls += 1
        return logits, loss.detach(), grad.detach()


@dataclass(frozen=True)
class ApgdRun:
    """One APGD run on a batch: ``broken`` (N,) bool on CPU, ``x_adv`` (a misclassified iterate where broken),
    ``sums``: per monitor, the sum over the batch at each iterate (the start point first)."""

    broken: Tensor
    x_adv: Tensor
    sums: dict[str, list[float]]


def apgd_objective(
    classifier: Callable[[Tensor], Tensor],
    setup: Setup,
    x: Tensor,
    y: Tensor,
    *,
    norm: Literal["l2", "linf"],
    eps: float,
    seed: int,
    n_iter: int = N_ITER,
    eot_iter: int = 1,
) -> ApgdRun:
    """The package's APGD (one restart, its default schedule) maximising ``setup.objective`` on (x, y).

    ``classifier`` judges each iterate (its logits are APGD's verdict); the caller puts the modules in eval mode
    with parameter gradients off. The random start and any randomness in the objective (SimCLR views) draw from
    torch's global RNG, seeded with ``seed``; the caller's RNG state is kept.
    """
    check_attack_settings(norm=norm, eps=eps, steps=n_iter)
    if eot_iter < 1:
        raise ValueError(f"eot_iter: must be >= 1, got {eot_iter}; use 1 for a deterministic model")
    hook = _LossHook(classifier, setup, eot_iter)
    apgd = APGDAttack(hook, n_iter=n_iter, norm=PACKAGE_NORM[norm], eps=eps, seed=seed, eot_iter=eot_iter, rho=RHO,
                      device=x.device, is_tf_model=True)
    apgd.init_hyperparam(x)
    with fork_rng(x.device):
        torch.manual_seed(seed)
        # attack_single_run is one restart of the package's perturb(); perturb() itself accepts only 'ce'/'dlr'
        _, robust, _, x_adv = apgd.attack_single_run(x.detach(), y)
    broken = ~robust.bool().cpu()
    return ApgdRun(broken, torch.where(broken.to(x.device).view(-1, *[1] * (x.dim() - 1)), x_adv, x), hook.sums)


class ObjectiveApgd:
    """APGD on an objective built per chunk (``setup``), as an attack of ``attack_standing``.

    ``name`` labels it (its one part); ``identity`` adds what else decides its outcome (objective settings) to the
    driver's resume key. ``curve_path``/``curve_key``: where the monitors' per-chunk sums are kept for a resume, and
    what they must have been made from (the caller's data and model checksums); another key's file is discarded
    with one line. :meth:`curves` gives the monitors' means per iterate over the points attacked.
    """

    def __init__(
        self,
        classifier: nn.Module,
        setup: SetupFn,
        *,
        name: str,
        norm: Literal["l2", "linf"],
        eps: float,
        n_iter: int = N_ITER,
        eot_iter: int = 1,
        identity: Mapping[str, Any] | None = None,
        curve_path: Path | None = None,
        curve_key: Mapping[str, Any] | None = None,
    ) -> None:
        check_attack_settings(norm=norm, eps=eps, steps=n_iter)
        self.classifier, self.setup, self.name = classifier, setup, name
        self.norm, self.eps, self.n_iter, self.eot_iter = norm, eps, n_iter, eot_iter
        self.parts = (name,)
        self.identity = {"apgd": "pyautoattack", "norm": norm, "eps": float(eps), "n_iter": n_iter,
                         "eot_iter": eot_iter, "rho": RHO, **(identity or {})}
        self.curve_path = curve_path
        self.curve_key = {**self.identity, **(curve_key or {})}
        self.chunks: dict[int, tuple[int, dict[str, list[float]]]] = {}
        if curve_path is not None and curve_path.exists():
            saved = torch.load(curve_path, weights_only=True)
            if saved.get("key") == self.curve_key:
                self.chunks = {int(k): (int(n), sums) for k, (n, sums) in saved["chunks"].items()}
            else:
                discard_stale(curve_path)

    def _save(self) -> None:
        if self.curve_path is not None:
            state = {"key": self.curve_key, "chunks": {k: list(v) for k, v in self.chunks.items()}}
            write_atomic(self.curve_path, lambda tmp: torch.save(state, tmp))

    @contextmanager
    def running(self, run: Run) -> Iterator[ChunkFn]:
        """Yield the chunk attack; each chunk's seed follows from the run's seed and its first point."""

        def attack_chunk(part: str, x: Tensor, y: Tensor, points: Tensor) -> tuple[Tensor, Tensor]:
            setup = self.setup(x, y)
            with attack_mode(*setup.objective.modules):
                result = apgd_objective(
                    self.classifier, setup, x, y, norm=self.norm, eps=self.eps, n_iter=self.n_iter,
                    eot_iter=self.eot_iter, seed=(run.seed + run.index * run.n + int(points[0])) % 2**31,
                )
            self.chunks[int(points[0])] = (len(points), result.sums)
            self._save()
            return result.broken, result.x_adv

        yield attack_chunk

    def curves(self) -> dict[str, Any]:
        """Per monitor, its mean over the attacked points at each iterate (the start point first), and ``points``:
        how many points they average (those the classifier got right clean)."""
        n = sum(count for count, _ in self.chunks.values())
        names = next(iter(self.chunks.values()))[1].keys() if self.chunks else ()
        means = {name: [sum(vals) / n for vals in zip(*(s[name] for _, s in self.chunks.values()))] for name in names}
        return {"points": n, **means}
