"""Contrastive learning (CL): SimCLR (Chen et al. 2020) as a paradigm, optionally adversarial.

Two random views of every image (``paradigms.views``) go through the backbone and a projection MLP;
the NT-Xent loss pulls each view's projection towards its partner's and pushes it from the other
2N - 2 views of the batch. The encoder is the backbone's pooled representation, not the projection
(Li et al. 2023 put their linear probes there, as SimCLR does).

With ``adversarial.eps > 0`` the first view of every pair is replaced by a PGD example in the
``norm`` ball around it that maximises its InfoNCE loss against the second view's projections (the
instance-wise attack of Kim et al. 2020, RoCL); the loss is then NT-Xent on (adversarial view, view).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from advtui.attacks.objectives import Evaluation, Objective
from advtui.attacks.pgd import attack_mode, pgd
from advtui.models.registry import create_model
from advtui.paradigms.base import Encoder, FeatureEncoder, Paradigm, register_paradigm
from advtui.paradigms.trainer import StepFn, StepOut
from advtui.paradigms.views import SimCLRViews
from advtui.catalog.training import SimCLRConfig


def _nt_xent_logits(z1: Tensor, z2: Tensor, temperature: float) -> tuple[Tensor, Tensor]:
    """Cosine-similarity logits (2N, 2N) of all views against all, self-pairs masked, and each row's partner."""
    if z1.shape != z2.shape or z1.dim() != 2:
        raise ValueError(f"z1, z2: need two (N, D) batches of one shape, got {tuple(z1.shape)} and {tuple(z2.shape)}")
    n = z1.shape[0]
    z = F.normalize(torch.cat([z1, z2]).float(), dim=1)
    logits = (z @ z.T) / temperature
    logits = logits.masked_fill(torch.eye(2 * n, dtype=torch.bool, device=z.device), -math.inf)
    partner = torch.cat([torch.arange(n, 2 * n), torch.arange(n)]).to(z.device)
    return logits, partner


def nt_xent(
    z1: Tensor, z2: Tensor, temperature: float, reduction: Literal["mean", "none"] = "mean"
) -> Tensor:
    """SimCLR's NT-Xent (normalised temperature-scaled cross-entropy) of paired projections (N, D).

    Row i of ``z1`` and row i of ``z2`` are two views of one image. Every one of the 2N views is an
    anchor whose positive is its partner and whose negatives are the other 2N - 2 views; the loss of an
    anchor is -log softmax of its partner's cosine similarity / ``temperature``. ``reduction="none"``
    returns the 2N anchor losses, the ``z1`` anchors first; "mean" their mean. Needs N >= 2 (with one
    image there are no negatives and the loss is 0).
    """
    logits, partner = _nt_xent_logits(z1, z2, temperature)
    return F.cross_entropy(logits, partner, reduction=reduction)


def projection_head(in_dim: int, hidden_dim: int, out_dim: int) -> nn.Sequential:
    """SimCLR's projection g: Linear, ReLU, Linear (Li et al.'s code: the same, without batch norm)."""
    return nn.Sequential(nn.Linear(in_dim, hidden_dim), nn.ReLU(inplace=True), nn.Linear(hidden_dim, out_dim))


class SimCLRModel(nn.Module):
    """A registered architecture's normalisation and backbone, and a projection MLP on top.

    ``features(x)``: the backbone representation (N, feature_dim) of images in [0, 1] (the encoder);
    ``forward(x)``: the projection (N, proj_dim) that NT-Xent compares.
    """

    def __init__(self, arch: str, *, proj_dim: int, hidden_dim: int, image_size: int) -> None:
        super().__init__()
        # only the classifier's input normalisation and backbone are kept: CL trains no class head
        net = create_model(arch, num_classes=1, img_size=image_size)
        self.arch = arch
        self.feature_dim = net.feature_dim
        self.normalise = net.normalise
        self.backbone = net.backbone
        self.projector = projection_head(net.feature_dim, hidden_dim or net.feature_dim, proj_dim)

    def features(self, x: Tensor) -> Tensor:
        """Backbone representation (N, feature_dim) of images ``x`` in [0, 1]."""
        return self.backbone(self.normalise(x))

    def forward(self, x: Tensor) -> Tensor:
        """Projection (N, proj_dim) of images ``x`` in [0, 1]."""
        return self.projector(self.features(x))


class InfoNCE(Objective):
    """Maximise each point's InfoNCE loss against fixed keys (for PGD on a contrastive encoder).

    Point i's loss is -log softmax_j(cos(project(x_i), keys_j) / temperature) at j = ``positive[i]``:
    its positive key (another view of the same image) against every other key as a negative. The keys
    are fixed, so each point's loss depends on its own input only. Success: the positive key is no
    longer the most similar one (the point is no longer recognised among the batch).

    ``project``: images in [0, 1] -> projections (N, D), e.g. a ``SimCLRModel``, or views composed with
    it; pass ``modules`` when it is not a module, so the attack still runs them in eval mode.
    ``positive``: index of each point's positive key (default: point i's is key i).
    """

    def __init__(
        self,
        project: Callable[[Tensor], Tensor],
        keys: Tensor,
        *,
        temperature: float,
        positive: Tensor | None = None,
        modules: Sequence[nn.Module] | None = None,
    ) -> None:
        self.project = project
        self.keys = F.normalize(keys.detach().flatten(1).float(), dim=1)
        self.temperature = temperature
        self.positive = positive if positive is not None else torch.arange(keys.shape[0], device=keys.device)
        if modules is not None:
            self.modules = tuple(modules)
        else:
            self.modules = (project,) if isinstance(project, nn.Module) else ()

    def evaluate(self, x_adv: Tensor) -> Evaluation:
        """InfoNCE loss of each point against the keys, and whether its positive is no longer the nearest key."""
        q = F.normalize(self.project(x_adv).flatten(1).float(), dim=1)
        logits = q @ self.keys.to(q.device).T / self.temperature
        positive = self.positive.to(q.device)
        return Evaluation(F.cross_entropy(logits, positive, reduction="none"), logits.argmax(1) != positive)

    def select(self, index: Tensor) -> InfoNCE:
        """The same objective for the selected points (the keys, negatives included, stay whole)."""
        return InfoNCE(
            self.project, self.keys, temperature=self.temperature,
            positive=self.positive[index.to(self.positive.device)], modules=self.modules,
        )


def adversarial_view(module: nn.Module, view: Tensor, other: Tensor, cfg: SimCLRConfig) -> Tensor:
    """PGD on ``view`` (in its ``cfg.adversarial`` ball) maximising its InfoNCE loss against ``other``'s projections.

    The module runs in eval mode with parameter gradients off during the attack (restored afterwards);
    random starts come from torch's global RNG.
    """
    adv = cfg.adversarial
    with attack_mode(module), torch.no_grad():
        keys = module(other)
    objective = InfoNCE(module, keys, temperature=cfg.temperature)
    return pgd(objective, view, norm=adv.norm, eps=adv.eps, step_size=adv.effective_step_size, steps=adv.steps)


def simclr_step(cfg: SimCLRConfig) -> StepFn:
    """The SimCLR step: two random views of each image, NT-Xent of their projections (labels unused).

    With ``cfg.adversarial`` enabled the first view is replaced by its PGD example (``adversarial_view``).
    The step's ``acc`` metric is the share of the 2N views whose partner is their most similar view.
    """
    views = SimCLRViews(cfg.views)

    def step(module: nn.Module, x: Tensor, y: Tensor) -> StepOut:
        if x.shape[0] < 2:
            raise ValueError("batch_size: NT-Xent needs at least 2 images per batch for negatives; raise it")
        x1, x2 = views(x), views(x)
        if cfg.adversarial.enabled:
            x1 = adversarial_view(module, x1, x2, cfg)
        logits, partner = _nt_xent_logits(module(x1), module(x2), cfg.temperature)
        loss = F.cross_entropy(logits, partner)
        return StepOut(loss, {"acc": (logits.detach().argmax(1) == partner).float().mean()})

    return step


@register_paradigm
class SimCLR(Paradigm):
    """CL: SimCLR contrastive learning (adversarial when ``adversarial.eps > 0``); encoder = the backbone."""

    name = "CL"
    config_type = SimCLRConfig

    def build(self, cfg: SimCLRConfig, *, num_classes: int, image_size: int) -> nn.Module:
        return SimCLRModel(cfg.arch, proj_dim=cfg.proj_dim, hidden_dim=cfg.hidden_dim, image_size=image_size)

    def step(self, cfg: SimCLRConfig) -> StepFn:
        return simclr_step(cfg)

    def encoder(self, module: nn.Module, cfg: SimCLRConfig) -> Encoder:
        if not isinstance(module, SimCLRModel):
            raise ValueError(f"module: expected a SimCLRModel, got {type(module).__name__}; build it with the CL paradigm")
        return FeatureEncoder(module)
