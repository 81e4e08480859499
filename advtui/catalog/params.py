"""The typed, validated view of ``params.yaml``: every section's dataclass, loading, and profile switching.

``params.yaml`` keeps every active value concrete (DVC tracks params by key, so each stage depends on
exactly the keys it reads). A *profile* (``smoke``, ``cpu``, ``paper``) is a complete params file
shipped in ``advtui/catalog/profiles/``; ``advtui profile use NAME`` copies it over ``params.yaml``.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
import shutil
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml

from advtui.catalog.attacks import (
    AUTOATTACK_PARTS, AttackSpec, SpeedConfig, Start, Version, autoattack_version, check_attack_settings,
)
from advtui.catalog.data import DataParams, ModelParams
from advtui.catalog.launch import check_launch
from advtui.catalog.names import PARADIGMS, PROFILES, ROBUST_CL, SOURCE_MODELS, SPRINGER_SETS
from advtui.catalog.paths import PARAMS_FILE
from advtui.catalog.training import PARADIGM_CONFIGS, AdversarialConfig, AugmentConfig, TrainConfig
from advtui.files import atomic_path
from advtui.schema import ParamsError, build


@dataclass(frozen=True)
class AttackParams:
    """Default attacks of ``advtui attack`` and of the E4 evaluation; ``speed``: how every evaluation (E1, E4,
    the curves, E6, ``advtui attack``) runs the model (channels_last, torch.compile)."""

    l2: AttackSpec = field(default_factory=lambda: AttackSpec(kind="pgd", norm="l2", eps=0.25, steps=20, step_size=0.05))
    linf: AttackSpec = field(
        default_factory=lambda: AttackSpec(kind="pgd", norm="linf", eps=4 / 255, steps=20, step_size=1 / 255)
    )
    batch_size: int = 256
    speed: SpeedConfig = field(default_factory=SpeedConfig)

    def __post_init__(self) -> None:
        check_attack_settings(batch_size=self.batch_size)

    def threats(self) -> dict[str, list[AttackSpec]]:
        """The two threat models of the papers' tables, by name."""
        return {"l2": [self.l2], "linf": [self.linf]}


@dataclass(frozen=True)
class InversionConfig:
    """Representation inversion: L2-normalised steps of ``step_size``, within ``eps`` of the start (null: unbounded)."""

    steps: int = 1000
    step_size: float = 1.0
    eps: float | None = None

    def __post_init__(self) -> None:
        if self.steps < 1:
            raise ValueError(f"steps: must be >= 1, got {self.steps}; use a positive step count")
        if not self.step_size > 0:
            raise ValueError(f"step_size: must be > 0, got {self.step_size}; use a positive step")
        if self.eps is not None and not self.eps > 0:
            raise ValueError(f"eps: must be > 0 or null (unbounded), got {self.eps}")


@dataclass(frozen=True)
class RelabelConfig:
    """Targeted PGD on the standard model (Ilyas: L2 eps 0.5, step 0.1, 100-200 steps)."""

    norm: Literal["l2", "linf"] = "l2"
    eps: float = 0.5
    step_size: float = 0.1
    steps: int = 100

    def __post_init__(self) -> None:
        if not (math.isfinite(self.eps) and self.eps > 0):
            raise ValueError(f"eps: must be > 0, got {self.eps}; use a positive radius")
        if not self.step_size > 0:
            raise ValueError(f"step_size: must be > 0, got {self.step_size}; use a positive step")
        if self.steps < 1:
            raise ValueError(f"steps: must be >= 1, got {self.steps}; use a positive step count")


@dataclass(frozen=True)
class ConstructParams:
    """Settings of every constructed dataset (``construct`` in params.yaml).

    ``start``: where inversions (D_R, D_NR) start: 'image', a random other image of any class (the
    papers' start: Ilyas et al., Li et al. Table 3); 'other', a random image of another class (keeps the
    start's class features off the source's label, but anti-correlates them with it, DESIGN 7); 'noise'.
    """

    size: int | None = 1000
    zero_robust_size: int | None = 200
    chunk: int = 250
    start: Start = "other"
    precision: Literal["float16", "float32"] = "float16"
    robust: InversionConfig = field(default_factory=lambda: InversionConfig(steps=1000, step_size=1.0, eps=None))
    nonrobust: InversionConfig = field(default_factory=lambda: InversionConfig(steps=1000, step_size=0.1, eps=0.5))
    relabel: RelabelConfig = field(default_factory=RelabelConfig)
    springer: RelabelConfig = field(default_factory=lambda: RelabelConfig(steps=200))

    def __post_init__(self) -> None:
        for name in ("size", "zero_robust_size"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"{name}: must be a positive count or null (all images), got {value}")
        if self.chunk < 1:
            raise ValueError(f"chunk: must be >= 1, got {self.chunk}; use e.g. 250 images per chunk")


@dataclass(frozen=True)
class SourceModel:
    """One E1 source model: its adversarial training (eps 0 = standard) and its Gaussian input noise.

    ``noise_std`` overrides ``sources.train.augment.noise_std``: DESIGN section 7 measured that a little
    noise (0.03) while training the *standard* model is what makes D_det generalise.
    """

    adversarial: AdversarialConfig = field(default_factory=AdversarialConfig)
    noise_std: float = 0.0

    def __post_init__(self) -> None:
        if self.noise_std < 0:
            raise ValueError(f"noise_std: must be >= 0, got {self.noise_std}; use 0 for no noise")


@dataclass(frozen=True)
class SourceModels:
    """E1: the standard and the adversarially trained source models, all with the ``train`` recipe."""

    train: TrainConfig = field(default_factory=TrainConfig)
    standard: SourceModel = field(default_factory=lambda: SourceModel(noise_std=0.03))
    robust_l2: SourceModel = field(
        default_factory=lambda: SourceModel(AdversarialConfig(norm="l2", eps=1.0, steps=7, step_size=0.25))
    )
    robust_linf: SourceModel = field(
        default_factory=lambda: SourceModel(AdversarialConfig(norm="linf", eps=8 / 255, steps=7, step_size=2 / 255))
    )

    def model(self, name: str) -> SourceModel:
        """The source model called ``name`` (one of ``SOURCE_MODELS``)."""
        if name not in SOURCE_MODELS:
            raise ValueError(f"source model: unknown name {name!r}; use one of {', '.join(SOURCE_MODELS)}")
        return getattr(self, name)


@dataclass(frozen=True)
class RetrainParams:
    """Recipes of the E4 classifiers: ``train`` (Ilyas), ``springer`` (zero-/negative-robust: Adam, lr 1e-4, no
    augmentation); ``seeds``: how many classifiers each set trains, with seeds ``seed``, ``seed + 1``, ...
    (E4 reports their mean and 95% interval)."""

    train: TrainConfig = field(default_factory=TrainConfig)
    springer: TrainConfig = field(
        default_factory=lambda: TrainConfig(optimizer="adam", lr=1e-4, weight_decay=0.0, augment=AugmentConfig())
    )
    seeds: int = 3

    def __post_init__(self) -> None:
        if self.seeds < 1:
            raise ValueError(f"seeds: must be >= 1, got {self.seeds}; train at least one classifier per set (3 for an interval)")

    def seed_list(self, seed: int) -> list[int]:
        """The seeds of a set's classifiers, from the pipeline's ``seed`` on."""
        return [seed + k for k in range(self.seeds)]

    def recipe(self, dataset: str) -> TrainConfig:
        """The training recipe of the classifier trained on ``dataset``."""
        return self.springer if dataset in SPRINGER_SETS else self.train


@dataclass(frozen=True)
class GalleryParams:
    """``gallery`` in params.yaml: how many source images to show."""

    n: int = 8

    def __post_init__(self) -> None:
        if self.n < 1:
            raise ValueError(f"n: must be >= 1, got {self.n}; show at least one source image")


@dataclass(frozen=True)
class ProbeParams:
    """Linear probing (Li Table 6, CIFAR-10: 30 epochs, batch 256, lr 0.1 cosine, wd 5e-4, augmentation).

    ``noise_draws``: for a randomised encoder (DM: noise added at the feature timestep), run it over the training
    set this many times, once, and train the head on those draws' features as on a deterministic encoder's
    (an epoch then passes over every draw); null: the encoder runs inside training, fresh noise at every step,
    which costs one encoder pass per image per epoch. Ignored with augmentation (every batch is new then).
    """

    train: TrainConfig = field(
        default_factory=lambda: TrainConfig(epochs=30, batch_size=256, lr=0.1, weight_decay=5e-4)
    )
    noise_draws: int | None = None

    def __post_init__(self) -> None:
        if self.noise_draws is not None and self.noise_draws < 1:
            raise ValueError(f"noise_draws: must be a positive count or null, got {self.noise_draws}")


@dataclass(frozen=True)
class ThreatBudget:
    """One threat model of Table 2: ``pgd`` (Li A.4: PGD-1000) and AutoAttack at radius ``autoattack_eps``.

    ``autoattack_skip``: AutoAttack's attacks left out, in whichever version a run gets (e.g. smoke leaves out
    'standard''s FAB-T and Square, which broke no point APGD-CE and APGD-T left standing on smoke's runs and
    cost two thirds of E6's time: README "Smoke pipeline time"); empty: AutoAttack whole, as Li et al. ran it.
    """

    pgd: AttackSpec
    autoattack_eps: float
    autoattack_skip: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.pgd.kind != "pgd":
            raise ValueError(f"pgd: kind must be 'pgd', got {self.pgd.kind!r}; AutoAttack is set by autoattack_eps")
        if not self.autoattack_eps > 0:
            raise ValueError(f"autoattack_eps: must be > 0, got {self.autoattack_eps}; use the threat's radius")
        known = {a for parts in AUTOATTACK_PARTS.values() for a in parts}
        if set(self.autoattack_skip) - known:
            raise ValueError(
                f"autoattack_skip: {sorted(set(self.autoattack_skip) - known)} are not AutoAttack's; pick from {sorted(known)}"
            )
        if "apgd-ce" in self.autoattack_skip:
            raise ValueError("autoattack_skip: apgd-ce is AutoAttack's first attack in every version; keep it")

    def specs(self, version: Version) -> dict[str, list[AttackSpec]]:
        """PGD and AutoAttack (in ``version``) as two separate evaluations ('pgd_<norm>', 'autoattack_<norm>')."""
        kept = tuple(a for a in AUTOATTACK_PARTS[version] if a not in self.autoattack_skip)
        subset = kept if len(kept) < len(AUTOATTACK_PARTS[version]) else ()
        aa = AttackSpec(kind="autoattack", norm=self.pgd.norm, eps=self.autoattack_eps, version=version, parts=subset)
        return {f"pgd_{self.pgd.norm}": [self.pgd], f"autoattack_{self.pgd.norm}": [aa]}


@dataclass(frozen=True)
class E6Params:
    """E6 robustness evaluation (Li Table 2 and A.4): L2 eps 0.5 and Linf eps 4/255, PGD-1000 and AutoAttack.

    ``test_size``: natural test images attacked (a class-balanced subset; null: the whole test set);
    ``rand_test_size``: the same for runs attacked with AutoAttack 'rand', which averages 20 EOT gradients
    per step and so costs 20 times as much (null: ``test_size``). ``rand_paradigms``: paradigms attacked
    with 'rand' although their encoder is deterministic (Li A.4 names MIM, for MAE's random masking; advtui's
    MAE encoder reads every patch, so 'standard' is the stronger attack on it); randomised encoders (DM)
    always get 'rand'. SL runs are attacked under both threats (Table 2a), the other paradigms under Linf
    (Table 2b).
    """

    test_size: int | None = 1000
    rand_test_size: int | None = None
    rand_paradigms: tuple[str, ...] = ()
    batch_size: int = 256
    l2: ThreatBudget = field(
        default_factory=lambda: ThreatBudget(AttackSpec(norm="l2", eps=0.5, steps=1000, step_size=0.05), 0.5)
    )
    linf: ThreatBudget = field(
        default_factory=lambda: ThreatBudget(
            AttackSpec(norm="linf", eps=4 / 255, steps=1000, step_size=1 / 255), 4 / 255
        )
    )

    def __post_init__(self) -> None:
        for name in ("test_size", "rand_test_size"):
            size = getattr(self, name)
            if size is not None and size < 1:
                raise ValueError(f"{name}: must be a positive count or null, got {size}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size: must be >= 1, got {self.batch_size}")
        unknown = [p for p in self.rand_paradigms if p not in PARADIGMS]
        if unknown:
            raise ValueError(f"rand_paradigms: unknown paradigm {unknown[0]!r}; use some of {', '.join(PARADIGMS)}")
        for name in ("l2", "linf"):
            if getattr(self, name).pgd.norm != name:
                raise ValueError(f"{name}.pgd.norm: must be {name!r} in the {name} section; fix the norm")

    def version(self, paradigm: str, randomised: bool) -> Version:
        """AutoAttack's version for a run of ``paradigm`` whose encoder is (or is not) ``randomised``."""
        return autoattack_version(randomised, rand_anyway=paradigm in self.rand_paradigms)

    def attacked_size(self, eot: bool) -> int | None:
        """How many test images a run is attacked on (None: all); ``eot``: with AutoAttack 'rand'."""
        return self.rand_test_size if eot and self.rand_test_size is not None else self.test_size

    def threats(self, paradigm: str, randomised: bool) -> dict[str, list[AttackSpec]]:
        """The evaluations of one run: Linf for every paradigm, L2 as well for SL (Table 2a)."""
        version = self.version(paradigm, randomised)
        threats = self.linf.specs(version)
        return {**self.l2.specs(version), **threats} if paradigm == "SL" else threats


def _paradigm_run_type(paradigm: str, config_type: type) -> type:
    """The params dataclass of one paradigm's pretraining: ``config`` (its own config type) and ``train``."""
    cls = dataclasses.make_dataclass(
        f"{paradigm}Run",
        [("config", config_type, field(default_factory=config_type)), ("train", TrainConfig, field(default_factory=TrainConfig))],
        frozen=True,
    )
    cls.__doc__ = f"{paradigm} pretraining: ``config`` ({config_type.__name__}) and trainer settings ``train``."
    return cls


def _paradigms_params_type() -> type:
    # One section per paradigm, each validated against its own config type (a typo in paradigms.CL.config
    # fails with the key's path, like every other params key), and robust_cl: a CL section of its own.
    types = {p: _paradigm_run_type(p, PARADIGM_CONFIGS[p]) for p in PARADIGMS}
    fields: list[Any] = [(p, types[p], field(default_factory=types[p])) for p in PARADIGMS]
    fields.append((ROBUST_CL, types["CL"], field(default_factory=types["CL"])))
    cls = dataclasses.make_dataclass("ParadigmsParams", fields, frozen=True)
    cls.__doc__ = ("Pretraining of E5/E6 (``paradigms`` in params.yaml): one section per paradigm, and "
                   f"``{ROBUST_CL}``, the adversarially trained CL source of D_R_CL.")
    return cls


ParadigmsParams = _paradigms_params_type()


def paradigm_run(paradigms: Any, name: str) -> Any:
    """The ``{config, train}`` section of paradigm ``name`` (or of ``robust_cl``) in ``paradigms``."""
    if not hasattr(paradigms, name):
        raise ValueError(f"paradigms: no section {name!r}; use one of {', '.join((*PARADIGMS, ROBUST_CL))}")
    return getattr(paradigms, name)


@dataclass(frozen=True)
class CurveParams:
    """Robust accuracy against the attack radius (E1 and E4 models): L2 and Linf PGD at each eps of ``l2`` and
    ``linf`` (ascending; 0 is the clean accuracy), ``steps`` steps of ``step_factor * eps / steps``, on
    ``test_size`` class-balanced natural test images (null: all)."""

    l2: tuple[float, ...] = (0.0, 0.125, 0.25, 0.35, 0.5, 0.75, 1.0, 1.5)
    linf: tuple[float, ...] = (0.0, 1 / 255, 2 / 255, 4 / 255, 8 / 255, 16 / 255)
    steps: int = 20
    step_factor: float = 2.5
    restarts: int = 1
    test_size: int | None = 1000
    batch_size: int = 256

    def __post_init__(self) -> None:
        for norm in ("l2", "linf"):
            radii = getattr(self, norm)
            if not radii or any(b <= a for a, b in zip(radii, radii[1:])) or radii[0] < 0:
                raise ValueError(f"{norm}: must be a non-empty list of ascending radii >= 0, got {list(radii)}")
        if not self.step_factor > 0:
            raise ValueError(f"step_factor: must be > 0, got {self.step_factor}; 2.5 is the usual choice")
        if self.test_size is not None and self.test_size < 1:
            raise ValueError(f"test_size: must be a positive count or null, got {self.test_size}")
        check_attack_settings(steps=self.steps, restarts=self.restarts, batch_size=self.batch_size)

    def specs(self, norm: str) -> list[AttackSpec]:
        """One PGD spec per positive radius of ``norm``, in ascending order (the driver attacks each on the
        points the smaller radii left standing: a point broken at eps is broken at every larger eps)."""
        return [AttackSpec(kind="pgd", norm=norm, eps=eps, steps=self.steps, step_size=self.step_factor * eps / self.steps,
                           restarts=self.restarts) for eps in getattr(self, norm) if eps > 0]


@dataclass(frozen=True)
class GaussianParams:
    """E13, Ilyas et al. section 4: x ~ N(y mu*, Sigma*), y = +-1 in ``dim`` dimensions.

    Sigma* has eigenvalues log-spaced from ``var_min`` to ``var_max`` in a random basis, ``||mu*||`` is
    ``mean_norm`` along a random direction (both drawn from ``seed``). The standard and the robust maximum
    likelihood estimates are fitted to ``samples`` draws by ``fit_steps`` full-batch Adam steps of ``lr``, at
    every attack radius of ``eps`` (0: the standard MLE), and compared with the closed form.
    """

    dim: int = 10
    samples: int = 10000
    var_min: float = 0.01
    var_max: float = 1.0
    mean_norm: float = 1.0
    eps: tuple[float, ...] = (0.0, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0)
    fit_steps: int = 300
    lr: float = 0.02

    def __post_init__(self) -> None:
        if self.dim < 2:
            raise ValueError(f"dim: must be >= 2, got {self.dim}; a covariance needs two directions to be anisotropic")
        if self.samples <= self.dim:
            raise ValueError(f"samples: must exceed dim ({self.dim}), got {self.samples}; use e.g. 20000")
        if not self.var_min > 0:
            raise ValueError(f"var_min: must be > 0 (an eigenvalue of Sigma*), got {self.var_min}; use e.g. 0.01")
        if not self.var_max >= self.var_min:
            raise ValueError(f"var_max: must be >= var_min ({self.var_min}), got {self.var_max}; use e.g. 1.0")
        if not self.mean_norm > 0:
            raise ValueError(f"mean_norm: must be > 0, got {self.mean_norm}; the classes need distinct means")
        if not self.eps or any(b <= a for a, b in zip(self.eps, self.eps[1:])) or self.eps[0] < 0:
            raise ValueError(f"eps: must be a non-empty list of ascending radii >= 0, got {list(self.eps)}")
        if self.fit_steps < 1:
            raise ValueError(f"fit_steps: must be >= 1, got {self.fit_steps}; use e.g. 300")
        if not self.lr > 0:
            raise ValueError(f"lr: must be > 0, got {self.lr}; use e.g. 0.02")


@dataclass(frozen=True)
class LeakageParams:
    """E14, robust feature leakage (Goh, Distill): a lower bound on real images. A linear model adversarially
    trained (``adversarial``, Goh: L2 0.25) on the natural training images with ``linear``; then a linear
    classifier restricted to its ``num_classes`` weight vectors trained with ``restricted`` on D_rand and on D_det
    (their assigned labels), tested on natural data: what robust linear features alone learn from those labels."""

    linear: TrainConfig = field(default_factory=lambda: TrainConfig(epochs=10, optimizer="adam", lr=1e-3, weight_decay=0.0))
    adversarial: AdversarialConfig = field(default_factory=lambda: AdversarialConfig(norm="l2", eps=0.25, steps=7))
    restricted: TrainConfig = field(default_factory=lambda: TrainConfig(epochs=30, optimizer="adam", lr=1e-2, weight_decay=0.0))


@dataclass(frozen=True)
class MislabelledParams:
    """E16, learning from mislabelled data (Wallace, Distill): a weak model (``weak``, trained on the first
    ``weak_size`` class-balanced natural training images; null: all) labels the natural training set; a fresh
    ``model.arch`` classifier trained with ``train`` on its errors alone is tested on natural data. Control: as many
    uniform-noise images, labelled by the weak model, trained on the same way."""

    weak_size: int | None = None
    weak: TrainConfig = field(default_factory=lambda: TrainConfig(epochs=1))
    train: TrainConfig = field(default_factory=TrainConfig)

    def __post_init__(self) -> None:
        if self.weak_size is not None and self.weak_size < 1:
            raise ValueError(f"weak_size: must be a positive count or null (all images), got {self.weak_size}")


@dataclass(frozen=True)
class FrequencyParams:
    """E18, the frequency control (Hendrycks and Gilmer, Distill): a ``model.arch`` classifier trained with
    ``train`` on the natural images the constructions start from, high-passed (minus a Gaussian blur of
    ``sigma`` pixels, plus 0.5 grey), tested on natural, high-passed and (synthetic data) pattern-free images."""

    sigma: float = 1.0
    train: TrainConfig = field(default_factory=TrainConfig)

    def __post_init__(self) -> None:
        if not self.sigma > 0:
            raise ValueError(f"sigma: must be > 0 pixels, got {self.sigma}; use e.g. 1.0")


@dataclass(frozen=True)
class E7Params:
    """E7, attack-objective transfer (Li et al. section 5.1, Fig. 2, Table 7): the package's APGD (default settings)
    on each objective against the SL and the CL encoder + linear probe, at radius ``eps`` under ``norm`` (Li: Linf
    8/255), on ``test_size`` class-balanced natural test images (null: all), ``batch_size`` points per chunk (also
    InfoNCE's batch: a point's negatives are the other clean images of its chunk). ``projector``: the training of
    the projection head on the frozen SL encoder (Li: "re-trained"; the CL encoder has its own), on the natural
    images the encoders were pretrained on, with the CL paradigm's views, temperature and head sizes."""

    test_size: int | None = 1000
    batch_size: int = 256
    norm: Literal["l2", "linf"] = "linf"
    eps: float = 8 / 255
    projector: TrainConfig = field(default_factory=lambda: TrainConfig(epochs=100, batch_size=512, optimizer="adam", lr=1e-4))

    def __post_init__(self) -> None:
        if self.test_size is not None and self.test_size < 1:
            raise ValueError(f"test_size: must be a positive count or null, got {self.test_size}")
        if self.batch_size < 2:
            raise ValueError(f"batch_size: must be >= 2 (InfoNCE needs negatives), got {self.batch_size}")
        check_attack_settings(norm=self.norm, eps=self.eps)


@dataclass(frozen=True)
class E8Params:
    """E8, the transfer matrix (Li et al. section 5.2, Fig. 3): APGD-CE (AutoAttack's, 'rand' for randomised
    encoders) at ``eps`` under ``norm`` on every classifier (encoder + linear probe) of every paradigm trained on
    natural images and of each SL ``backbones`` architecture (trained with the SL paradigm's recipe, then probed;
    Li: ResNet-50, DenseNet-121, Inception-v3), and the accuracy of every classifier on every source's adversarial
    images; ``test_size`` class-balanced natural test images (null: all), ``rand_test_size`` as many of those for a
    randomised source (AutoAttack 'rand' averages 20 EOT gradients per step, 20 times the cost; null: ``test_size``),
    ``batch_size`` points per chunk."""

    backbones: tuple[str, ...] = ("resnet50", "densenet121", "inception_v3")
    test_size: int | None = 1000
    rand_test_size: int | None = None
    batch_size: int = 256
    norm: Literal["l2", "linf"] = "linf"
    eps: float = 8 / 255

    def __post_init__(self) -> None:
        for name in ("test_size", "rand_test_size"):
            size = getattr(self, name)
            if size is not None and size < 1:
                raise ValueError(f"{name}: must be a positive count or null, got {size}")
        if len(set(self.backbones)) < len(self.backbones):
            raise ValueError(f"backbones: {list(self.backbones)} repeats an architecture; list each once")
        check_attack_settings(norm=self.norm, eps=self.eps, batch_size=self.batch_size)


@dataclass(frozen=True)
class RobustifiedParams:
    """E9/E10, robustified test sets (Springer et al. 2021, Tables 1 and 5, Figs. 3 and 4): the natural test set
    (``test_size`` class-balanced images; null: all) inverted, unbounded, through each eps-robust source of the
    sweep ``eps`` (0: the E1 standard source; the E1 robust_l2 source's eps: that source; any other eps is trained
    by the stage with ``sources.train`` and ``sources.robust_l2``'s attack at that eps), ``steps`` L2 steps of
    ``step_size`` from ``start`` (Springer: a random other test image, 'image'; CIFAR 400 steps of 0.05);
    ``batch_size`` images per inversion chunk. The leak control projects the planted non-robust subspace (synthetic
    data) or, elsewhere, the top ``subspace_rank`` directions of the zero-robust classifiers' input gradients out
    of every image before the classifiers read it."""

    eps: tuple[float, ...] = (0.0, 1 / 256, 1 / 128, 1 / 64, 1 / 32, 1 / 16, 1 / 8, 1 / 4, 1 / 2, 1.0)
    test_size: int | None = None
    start: Start = "image"
    steps: int = 400
    step_size: float = 0.05
    batch_size: int = 256
    subspace_rank: int = 20

    def __post_init__(self) -> None:
        if not self.eps or any(b <= a for a, b in zip(self.eps, self.eps[1:])) or self.eps[0] < 0:
            raise ValueError(f"eps: must be a non-empty list of ascending radii >= 0, got {list(self.eps)}")
        if self.test_size is not None and self.test_size < 2:
            raise ValueError(f"test_size: must be >= 2 (a start is another image) or null, got {self.test_size}")
        if self.start == "noise":
            raise ValueError("start: 'noise' has no start image to report; use 'image' (Springer) or 'other'")
        if self.steps < 1:
            raise ValueError(f"steps: must be >= 1, got {self.steps}; e.g. 400 (Springer CIFAR)")
        if not self.step_size > 0:
            raise ValueError(f"step_size: must be > 0, got {self.step_size}; e.g. 0.05 (Springer CIFAR)")
        if self.batch_size < 1:
            raise ValueError(f"batch_size: must be >= 1, got {self.batch_size}")
        if self.subspace_rank < 1:
            raise ValueError(f"subspace_rank: must be >= 1, got {self.subspace_rank}; e.g. 20")


@dataclass(frozen=True)
class SlightTransferParams:
    """E11, transfer attacks from slightly robust sources (Springer et al. 2021, Figs. 5 and 6): untargeted and
    targeted (target: a uniformly drawn other class) L2 PGD, radius ``eps`` with ``steps`` steps of ``step_size``
    (Springer CIFAR: 2.0, 100, 0.1), on each eps-robust source of ``e9.eps``, from ``test_size`` class-balanced
    natural test images (null: all); the victims: the E8 SL backbones (``e8.backbones``, other architectures) and
    E4's first natural-data classifier (the sources' architecture, trained apart)."""

    test_size: int | None = 1000
    eps: float = 2.0
    steps: int = 100
    step_size: float = 0.1
    batch_size: int = 256

    def __post_init__(self) -> None:
        if self.test_size is not None and self.test_size < 2:
            raise ValueError(f"test_size: must be >= 2 or null, got {self.test_size}")
        check_attack_settings(norm="l2", eps=self.eps, step_size=self.step_size, steps=self.steps,
                              batch_size=self.batch_size)


@dataclass(frozen=True)
class LearnabilityParams:
    """E12, learnability vs transferability (Ilyas et al. Fig. 3): each of ``archs`` trained on D_det with ``train``
    (``model.arch``: E4's D_det classifiers, every seed, instead), tested on natural data; and the target-hit rate, on
    a naturally trained model of that architecture (``model.arch``: E4's natural classifiers; an ``e8.backbones``
    architecture: E8's backbone; any other: trained here with ``train`` on the natural images D_det starts from), of
    the standard source's targeted (y+1) PGD examples of ``test_size`` class-balanced test images (null: all), made
    with D_det's settings (``construct.relabel``)."""

    archs: tuple[str, ...] = ("small_cnn", "small_resnet", "mobilenetv2", "vgg16", "resnet18")
    test_size: int | None = 1000
    train: TrainConfig = field(default_factory=TrainConfig)

    def __post_init__(self) -> None:
        if not self.archs or len(set(self.archs)) < len(self.archs):
            raise ValueError(f"archs: {list(self.archs)} is empty or repeats an architecture; list each once")
        if self.test_size is not None and self.test_size < 1:
            raise ValueError(f"test_size: must be a positive count or null (all images), got {self.test_size}")


@dataclass(frozen=True)
class BugsOnlyParams:
    """E15, non-transferable "bugs-only" examples (Nakkiran, Distill): targeted (y+1) PGD on the standard source with
    ``attack``'s settings that also keeps the first ``references`` of E4's natural classifiers (independently trained,
    other seeds) on the true label, on the first ``size`` natural images D_det starts from; a fresh ``model.arch``
    classifier trained with ``train`` on the images relabelled y+1 is tested on natural data. ``ref_weight``: the
    weight of the references' cross-entropy beside the source's targeted one. The next E4 natural classifier (if
    ``retrain.seeds`` has one more) is the held-out model transfer is measured on."""

    size: int = 1000
    references: int = 2
    ref_weight: float = 1.0
    attack: RelabelConfig = field(default_factory=lambda: RelabelConfig(steps=100))
    train: TrainConfig = field(default_factory=TrainConfig)

    def __post_init__(self) -> None:
        if self.size < 1:
            raise ValueError(f"size: must be a positive count, got {self.size}; use e.g. 500")
        if self.references < 1:
            raise ValueError(f"references: must be >= 1, got {self.references}; Nakkiran kept 2-3 reference models")
        if not (math.isfinite(self.ref_weight) and self.ref_weight >= 0):
            raise ValueError(f"ref_weight: must be >= 0, got {self.ref_weight}; use e.g. 1.0")


@dataclass(frozen=True)
class LayerRobustnessParams:
    """E17, layer robustness (Nakano, Distill): per block f of each ``models`` E1 source, r = E max over ||d||_2 <=
    ``eps`` of ||f(x+d) - f(x)|| / E ||f(x) - f(x')|| (x' another test image), the max by ``steps`` L2 PGD steps of
    ``step_size`` (null: 2.5 eps / steps) from a random start, on ``test_size`` class-balanced test images."""

    models: tuple[str, ...] = ("standard", "robust_l2")
    eps: float = 0.5
    steps: int = 20
    step_size: float | None = None
    test_size: int = 1000

    def __post_init__(self) -> None:
        unknown = [m for m in self.models if m not in SOURCE_MODELS]
        if not self.models or unknown:
            raise ValueError(f"models: {list(self.models)} names no model or unknown ones; use E1's {', '.join(SOURCE_MODELS)}")
        if not (math.isfinite(self.eps) and self.eps > 0):
            raise ValueError(f"eps: must be > 0, got {self.eps}; use e.g. 0.5")
        if self.steps < 1:
            raise ValueError(f"steps: must be >= 1, got {self.steps}; use e.g. 10")
        if self.step_size is not None and not (math.isfinite(self.step_size) and self.step_size > 0):
            raise ValueError(f"step_size: must be > 0 or null (2.5 eps / steps), got {self.step_size}")
        if self.test_size < 2:
            raise ValueError(f"test_size: must be >= 2 (pairs of images), got {self.test_size}")

    @property
    def effective_step_size(self) -> float:
        """``step_size``, or 2.5 * eps / steps when it is None."""
        return self.step_size if self.step_size is not None else 2.5 * self.eps / self.steps


#: The forms ``device`` may take (``advtui.runtime.pick_device`` resolves them), and the rule they follow.
DEVICE_FORMS = ("auto", "cpu", "cuda", "cuda:N", "mps")
_DEVICE = re.compile(r"auto|cpu|cuda(:\d+)?|mps")


@dataclass(frozen=True)
class Params:
    """Everything in ``params.yaml``."""

    profile: str = "smoke"
    seed: int = 0
    device: str = "auto"
    jobs: int = 1  # stage commands `advtui repro` runs at once (no stage reads it: results do not depend on it)
    launcher: str = "local"  # local | torchrun: how training stages run (advtui.catalog.launch)
    nproc: int = 1  # ranks under torchrun
    data: DataParams = field(default_factory=DataParams)
    model: ModelParams = field(default_factory=ModelParams)
    sources: SourceModels = field(default_factory=SourceModels)
    attack: AttackParams = field(default_factory=AttackParams)
    construct: ConstructParams = field(default_factory=ConstructParams)
    retrain: RetrainParams = field(default_factory=RetrainParams)
    gallery: GalleryParams = field(default_factory=GalleryParams)
    paradigms: ParadigmsParams = field(default_factory=ParadigmsParams)  # type: ignore[valid-type]
    probe: ProbeParams = field(default_factory=ProbeParams)
    e6: E6Params = field(default_factory=E6Params)
    curves: CurveParams = field(default_factory=CurveParams)
    e13: GaussianParams = field(default_factory=GaussianParams)
    e14: LeakageParams = field(default_factory=LeakageParams)
    e16: MislabelledParams = field(default_factory=MislabelledParams)
    e18: FrequencyParams = field(default_factory=FrequencyParams)
    e7: E7Params = field(default_factory=E7Params)
    e8: E8Params = field(default_factory=E8Params)
    e9: RobustifiedParams = field(default_factory=RobustifiedParams)
    e11: SlightTransferParams = field(default_factory=SlightTransferParams)
    e12: LearnabilityParams = field(default_factory=LearnabilityParams)
    e15: BugsOnlyParams = field(default_factory=BugsOnlyParams)
    e17: LayerRobustnessParams = field(default_factory=LayerRobustnessParams)

    def __post_init__(self) -> None:
        if self.profile not in PROFILES:
            raise ValueError(f"profile: unknown profile {self.profile!r}; use one of {', '.join(PROFILES)}")
        if not _DEVICE.fullmatch(self.device):
            raise ValueError(f"device: unknown device {self.device!r}; use one of {', '.join(DEVICE_FORMS)}")
        if self.jobs < 1:
            raise ValueError(f"jobs: must be >= 1, got {self.jobs}; 1 runs one stage at a time, as dvc repro does")
        check_launch(self.launcher, self.nproc)


def parse_params(data: dict) -> Params:
    """Validate a params mapping (as read from YAML) into :class:`Params`."""
    return build(Params, data)


def _duplicate_key(node: yaml.Node, path: str = "", seen: set[int] | None = None) -> str | None:
    """The first key that a mapping of ``node``'s tree repeats, as "'<dotted key>' appears twice (lines A and B)",
    or None.

    PyYAML keeps the last of two equal keys without a word, so a value edited in one copy is silently
    ignored while the other wins; the composed tree still holds both, with their lines.
    """
    seen = set() if seen is None else seen
    if id(node) in seen:  # an alias: its node was checked where it was defined
        return None
    seen.add(id(node))
    if isinstance(node, yaml.MappingNode):
        lines: dict[str, int] = {}
        for key, value in node.value:
            name = str(key.value)
            dotted = f"{path}.{name}" if path else name
            if name in lines and name != "<<":
                return f"{dotted!r} appears twice (lines {lines[name]} and {key.start_mark.line + 1})"
            lines[name] = key.start_mark.line + 1
            found = _duplicate_key(value, dotted, seen)
            if found:
                return found
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            found = _duplicate_key(item, f"{path}[{i}]", seen)
            if found:
                return found
    return None


def _read_params_mapping(path: Path) -> dict:
    """``path``'s YAML as a mapping; an empty file, another top-level value or a repeated key is a ParamsError."""
    restore = "restore it with `advtui profile use smoke` (or cpu, paper)"
    loader = yaml.SafeLoader(path.read_text())
    try:
        node = loader.get_single_node()
        if node is None:  # an empty file, or comments only: never run on the built-in defaults
            raise ParamsError(f"{path}: is empty; {restore}")
        duplicate = _duplicate_key(node)
        if duplicate:
            raise ParamsError(f"{path}: key {duplicate}; delete one of them")
        data = loader.construct_document(node)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark else ""
        raise ParamsError(f"{path}: not valid YAML{where}; fix the syntax or {restore}") from None
    finally:
        loader.dispose()
    if not isinstance(data, dict):
        raise ParamsError(f"{path}: holds a {type(data).__name__}, not a mapping of params keys; {restore}")
    return data


def load_params(path: str | os.PathLike = PARAMS_FILE) -> Params:
    """Load and validate ``params.yaml``; every problem (an empty file, a repeated key, a bad value) is one
    :class:`ParamsError` line naming the file, the key and the fix."""
    path = Path(path)
    if not path.exists():
        raise ParamsError(f"{path}: not found; run `advtui profile use smoke` to create it")
    if path.is_dir():
        raise ParamsError(f"{path}: is a folder; pass the params file (e.g. {path / PARAMS_FILE.name})")
    data = _read_params_mapping(path)
    try:
        return parse_params(data)
    except ParamsError as err:
        raise ParamsError(f"{path}: {err}") from None


def profile_path(name: str) -> Path:
    """The shipped params file of profile ``name``."""
    if name not in PROFILES:
        raise ParamsError(f"profile: unknown profile {name!r}; use one of {', '.join(PROFILES)}")
    return Path(str(resources.files("advtui.catalog") / "profiles" / f"{name}.yaml"))


def use_profile(name: str, path: str | os.PathLike = PARAMS_FILE) -> Params:
    """Write profile ``name`` over ``params.yaml`` (atomically) and return its validated params."""
    source = profile_path(name)
    params = load_params(source)
    target = Path(path)
    tmp = atomic_path(target)
    try:
        shutil.copyfile(source, tmp)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    return params
