"""E7 and E8 (Li et al. 2023, section 5): do adversarial examples transfer across objectives and paradigms?

E7, attack-objective transfer (Fig. 2, Table 7): the SL and the CL encoder + linear probe are attacked with the
package's APGD (:mod:`advtui.attacks.apgd`) on each objective of ``E7_OBJECTIVES``: InfoNCE with the projection
head and the SimCLR views (differentiated through kornia), its ablations without either, the alignment loss
||f(x) - f(x')||^2, and the probe's cross-entropy. Each row is the probe's accuracy on the adversarial images;
the CE and InfoNCE (default) losses are watched at every iterate for Fig. 2's curves. InfoNCE on the SL encoder
needs a projection head: one is trained on the frozen encoder (:func:`train_projector`, Li: "re-trained").

InfoNCE as an attack loss: point i's query is its (viewed, projected) adversarial image, the keys are the
(viewed, projected) clean images of its chunk, its positive key its own clean image: the loss is -log of the
softmax weight of the positive among the keys (``advtui.paradigms.simclr.InfoNCE``). The keys' views are drawn
once per chunk; each iterate draws fresh views of the queries.

E8, the transfer matrix (Fig. 3): AutoAttack's APGD-CE on every classifier of :func:`transfer_models` ('rand',
with EOT, on a randomised encoder), then the accuracy of every classifier on each source's adversarial images
(clean images where APGD broke nothing, as AutoAttack returns them).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from advtui.attacks.apgd import Monitor, ObjectiveApgd, Setup, SetupFn
from advtui.attacks.autoattack import run_autoattack
from advtui.attacks.driver import attack_standing, clean_correct
from advtui.attacks.objectives import CrossEntropy, FeatureAlignment, Objective
from advtui.catalog.attacks import autoattack_version
from advtui.catalog.names import E7_OBJECTIVES
from advtui.catalog.params import E7Params, E8Params
from advtui.catalog.data import SyntheticConfig
from advtui.catalog.training import SimCLRConfig
from advtui.data.ground_truth import nonrobust_probe, robust_probe
from advtui.data.imageset import ImageSet
from advtui.data.store import tensors_checksum
from advtui.experiments.linear_probe import LinearProbe
from advtui.paradigms.base import Encoder
from advtui.paradigms.simclr import InfoNCE, projection_head, simclr_step
from advtui.paradigms.trainer import fit
from advtui.paradigms.views import SimCLRViews
from advtui.progress import ProgressFn

#: The objective whose loss is Fig. 2's InfoNCE curve (and CL's own training loss).
DEFAULT_INFONCE = "infonce_proj_aug"
#: The attacks of Fig. 2's panels, on whose iterates both the CE and the InfoNCE loss are logged (the others log CE).
FIG2_OBJECTIVES = ("ce", DEFAULT_INFONCE)


class ProjectedEncoder(nn.Module):
    """A frozen encoder with a SimCLR projection head on top: ``forward(x)`` = ``projector(encoder(x))``.

    ``train()`` trains the head only: the encoder stays in eval mode (BatchNorm statistics untouched) and its
    parameters frozen, as a linear probe's encoder.
    """

    def __init__(self, encoder: Encoder, projector: nn.Module) -> None:
        super().__init__()
        self.encoder = encoder.requires_grad_(False)
        self.projector = projector
        self.train(False)

    def train(self, mode: bool = True) -> ProjectedEncoder:
        super().train(mode)
        self.encoder.eval()
        return self

    def forward(self, x: Tensor) -> Tensor:
        return self.projector(self.encoder(x))


def train_projector(
    encoder: Encoder,
    data: ImageSet,
    cl: SimCLRConfig,
    e7: E7Params,
    *,
    checkpoint: Path,
    device: torch.device,
    seed: int,
    progress: bool = True,
) -> ProjectedEncoder:
    """A projection head of CL's shape trained with CL's NT-Xent and views on the frozen ``encoder`` (``e7.projector``
    recipe, on ``data``), resumably through ``checkpoint``; returned in eval mode."""
    torch.manual_seed(seed)
    head = projection_head(encoder.feature_dim, cl.hidden_dim or encoder.feature_dim, cl.proj_dim)
    module = ProjectedEncoder(encoder, head).to(device)
    # SimCLR's step on the frozen encoder: only the head takes gradients, and CL's adversarial views stay off
    step = simclr_step(replace(cl, adversarial=replace(cl.adversarial, eps=0.0)))
    fit(module, data, e7.projector, step, checkpoint=checkpoint, device=device, seed=seed,
        identity={"projector": asdict(cl)}, progress=progress)
    return module.eval()


def _chain(encoder: Encoder, projector: nn.Module, views: SimCLRViews, *, proj: bool, aug: bool) -> Callable[[Tensor], Tensor]:
    """Images -> (a random view of each ->) representation (-> projection)."""

    def represent(x: Tensor) -> Tensor:
        h = encoder(views(x) if aug else x)
        return projector(h) if proj else h

    return represent


def objective_setup(
    name: str, classifier: LinearProbe, projector: nn.Module, views: SimCLRViews, temperature: float
) -> SetupFn:
    """The :class:`Setup` builder of E7 objective ``name`` (a key of ``E7_OBJECTIVES``) for one chunk: the objective
    on its clean images, and the losses Fig. 2 plots, watched at every iterate: ``ce`` (the probe's) and, for the
    attacks of ``FIG2_OBJECTIVES``, ``infonce`` (the default InfoNCE)."""
    if name not in E7_OBJECTIVES:
        raise ValueError(f"objective: unknown E7 objective {name!r}; use one of {', '.join(E7_OBJECTIVES)}")
    encoder = classifier.encoder
    modules = (encoder, projector, views)

    def infonce(x: Tensor, *, proj: bool, aug: bool) -> InfoNCE:
        represent = _chain(encoder, projector, views, proj=proj, aug=aug)
        with torch.no_grad():
            keys = represent(x)
        return InfoNCE(represent, keys, temperature=temperature, modules=modules)

    def setup(x: Tensor, y: Tensor) -> Setup:
        default = infonce(x, proj=True, aug=True)
        objective: Objective
        if name == DEFAULT_INFONCE:
            objective = default
        elif name.startswith("infonce"):
            objective = infonce(x, proj="proj" in name, aug="aug" in name)
        elif name == "alignment":
            with torch.no_grad():
                clean = encoder(x)
            objective = FeatureAlignment(encoder, clean, modules=(encoder,))
        else:
            objective = CrossEntropy(classifier, y)
        # the probe's logits come with every iterate, so the CE curve is free; the InfoNCE curve costs a view and
        # a pass of the encoder per iterate, spent only where Fig. 2 plots it
        monitors: dict[str, Monitor] = {
            "ce": lambda x_adv, logits: F.cross_entropy(logits, y.to(logits.device), reduction="none")}
        if name in FIG2_OBJECTIVES:
            monitors["infonce"] = lambda x_adv, logits: default(x_adv)
        return Setup(objective, monitors)

    return setup


def objective_transfer(
    classifier: LinearProbe,
    projector: nn.Module,
    test: ImageSet,
    cl: SimCLRConfig,
    e7: E7Params,
    *,
    device: torch.device,
    seed: int,
    state_dir: Path | None = None,
    on_progress: ProgressFn | None = None,
) -> dict[str, Any]:
    """E7 for one encoder: the probe's accuracy under APGD on every objective of ``E7_OBJECTIVES``, on
    ``e7.test_size`` class-balanced images of ``test``.

    ``projector`` maps the encoder's representation to InfoNCE's space (CL's own head; for SL one from
    :func:`train_projector`). Each objective is its own evaluation (resumable in ``state_dir``). Returns
    ``clean_acc``, ``acc`` (objective -> accuracy), ``curves`` (objective -> {``ce`` and, for Fig. 2's attacks,
    ``infonce``: mean loss per iterate, the start point first; ``points``: how many points they average}), ``n``
    and the settings.
    """
    attacked = test.select(min(e7.test_size, len(test)), seed, key="e7.test_size") if e7.test_size else test
    x, y = attacked.float_images(), attacked.labels
    views = SimCLRViews(cl.views)
    # what every resume file here must have been made from, besides the driver's own key
    made_from = {"data": tensors_checksum({"x": x, "y": y}), "probe": tensors_checksum(classifier.state_dict()),
                 "projector": tensors_checksum(projector.state_dict()), "temperature": cl.temperature,
                 "views": asdict(cl.views)}
    acc: dict[str, float] = {}
    curves: dict[str, dict[str, Any]] = {}
    clean = None
    for name in E7_OBJECTIVES:
        attack = ObjectiveApgd(
            classifier, objective_setup(name, classifier, projector, views, cl.temperature), name=name,
            norm=e7.norm, eps=e7.eps, identity={"objective": name, **made_from},
            curve_path=state_dir / f"{name}.curves.pt" if state_dir is not None else None,
        )
        result = attack_standing(
            classifier, x, y, [attack], batch_size=e7.batch_size, seed=seed, device=device,
            state_path=state_dir / f"{name}.pt" if state_dir is not None else None, on_progress=on_progress,
            phase=f"E7 {name}",
        )
        clean, acc[name], curves[name] = result.clean_acc, result.robust_acc, attack.curves()
    return {"clean_acc": clean, "acc": acc, "curves": curves, "n": len(attacked), "norm": e7.norm, "eps": e7.eps,
            "n_iter": attack.n_iter, "batch_size": e7.batch_size, "temperature": cl.temperature}


def transfer_matrix(
    models: Mapping[str, LinearProbe],
    test: ImageSet,
    e8: E8Params,
    *,
    device: torch.device,
    seed: int,
    state_dir: Path | None = None,
    on_progress: ProgressFn | None = None,
    synthetic: SyntheticConfig | None = None,
) -> dict[str, Any]:
    """E8: APGD-CE on each of ``models`` (AutoAttack's, 'rand' for a randomised encoder), and every model's
    accuracy on each source's adversarial images, on ``e8.test_size`` class-balanced images of ``test``.

    A randomised source is attacked on ``e8.rand_test_size`` of those images (a class-balanced subset), and every
    classifier is evaluated on that source's images.

    Returns ``models`` (names, in order), ``acc`` (source -> target -> accuracy; the diagonal is each model's
    white-box robust accuracy), ``clean`` (per model, its clean accuracy), ``autoattack_version`` (per source), ``n``
    (images drawn), ``attacked`` (per source, how many images it was attacked on) and settings.
    With ``synthetic`` (the planted data's config), also ``ground_truth`` per source, over the images its attack
    changed (``changed``, their share): ``pattern_added``, the share whose perturbation carries the planted pattern
    of the class the source now predicts (chance about 1 / (classes - 1)), and ``shape_kept``, the share whose shape
    probe reads what it read on the clean image.
    """
    attacked = test.select(min(e8.test_size, len(test)), seed, key="e8.test_size") if e8.test_size else test
    acc: dict[str, dict[str, float]] = {}
    clean: dict[str, float] = {}
    versions: dict[str, str] = {}
    sizes: dict[str, int] = {}
    truth: dict[str, dict[str, float | None]] = {}
    for source, model in models.items():
        versions[source] = autoattack_version(model.randomised)
        images = attacked
        if model.randomised and e8.rand_test_size is not None and e8.rand_test_size < len(attacked):
            images = attacked.select(e8.rand_test_size, seed, key="e8.rand_test_size")
        x, y = images.float_images(), images.labels
        sizes[source] = len(images)
        result = run_autoattack(
            model, x.to(device), y.to(device), norm=e8.norm, eps=e8.eps, version=versions[source],
            batch_size=e8.batch_size, state_path=state_dir / f"{source}.pt" if state_dir is not None else None,
            on_progress=None if on_progress is None else (
                lambda phase, done, total, **info: on_progress(f"E8 {source}", done, total, **info)),
            seed=seed, attacks=["apgd-ce"],
        )
        clean[source] = result.clean_acc
        acc[source] = {}
        for target, other in models.items():
            other.eval()
            correct, _ = clean_correct(other, result.x_adv, y, batch_size=e8.batch_size, device=device)
            acc[source][target] = correct.float().mean().item()
        # the source's own verdict on its images (AutoAttack's, on the draw it attacked, for a randomised one)
        acc[source][source] = result.robust_acc
        if synthetic is not None:
            x_adv = result.x_adv.cpu()
            predicted = torch.cat([model(x_adv[i:i + e8.batch_size].to(device)).argmax(1).cpu()
                                   for i in range(0, len(x_adv), e8.batch_size)])
            truth[source] = _planted_reading(x, x_adv, predicted, synthetic)
    return {"models": list(models), "acc": acc, "clean": clean, "autoattack_version": versions,
            "n": len(attacked), "attacked": sizes, "norm": e8.norm, "eps": e8.eps, "attack": "apgd-ce",
            **({"ground_truth": truth} if synthetic is not None else {})}


def _planted_reading(x: Tensor, x_adv: Tensor, predicted: Tensor, cfg: SyntheticConfig) -> dict[str, float | None]:
    """What an attack changed in the planted features (the ground truth of the synthetic data), over the images it
    changed: the share whose perturbation carries the planted pattern of the class the attacked model now predicts
    (``predicted``; the probe reads what the attack added, x_adv - x, since an eps-bounded attack adds a pattern
    but cannot erase the image's own: DESIGN section 7), and the share whose shape probe still reads the clean
    image's class; None where it changed none."""
    changed = (x_adv != x).flatten(1).any(dim=1)
    if not changed.any():
        return {"changed": 0.0, "pattern_added": None, "shape_kept": None}
    xa, xc = x_adv[changed], x[changed]
    return {"changed": changed.float().mean().item(),
            "pattern_added": (nonrobust_probe(xa - xc, cfg) == predicted[changed]).float().mean().item(),
            "shape_kept": (robust_probe(xa, cfg) == robust_probe(xc, cfg)).float().mean().item()}


def log_curves(live_dir: Path, curves: Mapping[str, Mapping[str, Any]]) -> None:
    """Write E7's loss curves with DVCLive, one folder per objective (``<live_dir>/<objective>``): per iterate (its
    step) the mean ``loss/ce`` and, where logged, ``loss/infonce``, so ``dvc plots`` draws Fig. 2's two curves. Written once the
    attacks are done (the curves average every chunk), over any logs of an earlier run."""
    try:
        from dvclive import Live
    except ImportError as err:  # as the trainer: DVCLive imports DVC, which a GPU machine may lack
        print(f"dvclive unavailable ({err}): no DVCLive logs in {live_dir}; the metrics file has the curves")
        return
    for objective, curve in curves.items():
        live = Live(dir=str(live_dir / objective), resume=False, save_dvc_exp=False, dvcyaml=None)
        losses = [k for k in ("ce", "infonce") if k in curve]
        for step, values in enumerate(zip(*(curve[k] for k in losses))):
            live.step = step
            for key, value in zip(losses, values):
                live.log_metric(f"loss/{key}", value)
        live.end()
