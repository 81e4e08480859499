"""Attack objectives: per-example losses that `pgd` maximises.

An objective is bound to its targets (labels, target classes, target representations), so it can be
restricted to a subset of points with `select`; `pgd` uses that to stop computing points that are done.
`evaluate` returns the loss and, where the objective has a notion of it, whether each point has reached
its goal, from one forward pass.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class Evaluation(NamedTuple):
    """One forward pass of an objective: per-example loss (N,) and success (N,) bool, or None."""

    loss: Tensor
    success: Tensor | None


def _modules_of(fn: Callable[..., Tensor]) -> tuple[nn.Module, ...]:
    """The nn.Module behind `fn` (the module itself, or the owner of a bound method), if any."""
    if isinstance(fn, nn.Module):
        return (fn,)
    owner = getattr(fn, "__self__", None)
    return (owner,) if isinstance(owner, nn.Module) else ()


def _index(t: Tensor, index: Tensor) -> Tensor:
    return t[index.to(t.device)]


class Objective(ABC):
    """A per-example loss to maximise, bound to one target per point.

    `modules` are the networks the objective runs; `pgd` puts them in eval mode with parameter
    gradients off for the duration of the attack.
    """

    modules: tuple[nn.Module, ...]

    @abstractmethod
    def evaluate(self, x_adv: Tensor) -> Evaluation:
        """Loss (N,) to maximise and success (N,) bool (None when the objective has no goal) at x_adv."""

    @abstractmethod
    def select(self, index: Tensor) -> Objective:
        """The same objective for the points picked by `index` (bool mask or int64 indices)."""

    def __call__(self, x_adv: Tensor) -> Tensor:
        """Per-example loss (N,) that the attack maximises."""
        return self.evaluate(x_adv).loss

    def success(self, x_adv: Tensor) -> Tensor | None:
        """Per-example bool (N,): the point reached the objective's goal; None if there is no goal."""
        return self.evaluate(x_adv).success


class CrossEntropy(Objective):
    """Untargeted attack: maximise cross-entropy to the true label `y`; success = misclassified."""

    def __init__(self, model: Callable[[Tensor], Tensor], y: Tensor) -> None:
        self.model = model
        self.y = y
        self.modules = _modules_of(model)

    def evaluate(self, x_adv: Tensor) -> Evaluation:
        """Cross-entropy to `y` and misclassification at x_adv."""
        logits = self.model(x_adv)
        y = self.y.to(logits.device)
        return Evaluation(F.cross_entropy(logits, y, reduction="none"), logits.argmax(1) != y)

    def select(self, index: Tensor) -> CrossEntropy:
        """Cross-entropy for the selected points only."""
        return CrossEntropy(self.model, _index(self.y, index))


class TargetedCrossEntropy(Objective):
    """Targeted attack: maximise -cross-entropy to `target`; success = predicted class is the target."""

    def __init__(self, model: Callable[[Tensor], Tensor], target: Tensor) -> None:
        self.model = model
        self.target = target
        self.modules = _modules_of(model)

    def evaluate(self, x_adv: Tensor) -> Evaluation:
        """Negative cross-entropy to the target and whether the target is predicted at x_adv."""
        logits = self.model(x_adv)
        t = self.target.to(logits.device)
        return Evaluation(-F.cross_entropy(logits, t, reduction="none"), logits.argmax(1) == t)

    def select(self, index: Tensor) -> TargetedCrossEntropy:
        """Targeted cross-entropy for the selected points only."""
        return TargetedCrossEntropy(self.model, _index(self.target, index))


class RepresentationDistance(Objective):
    """Representation inversion: maximise -||feature_fn(x) - target_repr||_2 (per example).

    The loss has no success notion: inversion runs its fixed number of steps. `modules` defaults to
    the module behind `feature_fn` (a module or a bound method such as `model.features`); pass it
    explicitly when `feature_fn` is another callable, so the attack still runs those in eval mode.
    """

    def __init__(
        self,
        feature_fn: Callable[[Tensor], Tensor],
        target_repr: Tensor,
        *,
        modules: Sequence[nn.Module] | None = None,
    ) -> None:
        self.feature_fn = feature_fn
        self.target_repr = target_repr
        self.modules = tuple(modules) if modules is not None else _modules_of(feature_fn)

    def evaluate(self, x_adv: Tensor) -> Evaluation:
        """Negative L2 distance between the representation of x_adv and the target representation."""
        rep = self.feature_fn(x_adv).flatten(1)
        target = self.target_repr.to(rep.device).flatten(1)
        return Evaluation(-torch.linalg.vector_norm(rep - target, dim=1), None)

    def select(self, index: Tensor) -> RepresentationDistance:
        """The representation distance for the selected points only."""
        return type(self)(self.feature_fn, _index(self.target_repr, index), modules=self.modules)


class FeatureAlignment(RepresentationDistance):
    """Li et al.'s alignment-only attack (Appendix B, Eq. 15): maximise ||feature_fn(x') - target_repr||_2^2.

    ``target_repr`` is the clean image's representation f(x), so the loss is 0 at x' = x and grows as the
    representation moves away; unlike InfoNCE it has no negatives and no normalisation, and no success notion.
    ``modules`` as in :class:`RepresentationDistance`, whose construction and selection it shares.
    """

    def __init__(
        self,
        feature_fn: Callable[[Tensor], Tensor],
        target_repr: Tensor,
        *,
        modules: Sequence[nn.Module] | None = None,
    ) -> None:
        super().__init__(feature_fn, target_repr.detach(), modules=modules)

    def evaluate(self, x_adv: Tensor) -> Evaluation:
        """Squared L2 distance between the representation of x_adv and the clean one."""
        rep = self.feature_fn(x_adv).flatten(1)
        target = self.target_repr.to(rep.device).flatten(1)
        return Evaluation((rep - target).pow(2).sum(1), None)
